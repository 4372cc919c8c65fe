"""Export: handnet models written as .keras files that Keras 3 loads in safe mode, with equal
predictions, Keras's own file layout, and atomic writes."""

import argparse
import io
import json
import zipfile

import h5py
import numpy as np
import pytest
from keras_models import assert_same_weights_bit_for_bit, keras_weights

import handnet as hn
from handnet.errors import HandnetError
from handnet.keras_io import from_keras, register_cli

keras = pytest.importorskip("keras")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

L = hn.layers


def every_layer_model(seed=0):
    """One handnet model with every layer type export supports, random weights everywhere."""
    model = hn.Sequential(
        [
            L.Input((9, 12, 2)),
            L.Rescaling([0.5, 2.0], offset=-0.1),
            L.ZeroPadding2D(((1, 0), (0, 2))),
            L.Conv2D(
                4, 3, strides=(1, 2), padding="same", activation="relu", kernel_regularizer="l2"
            ),
            L.BatchNormalization(epsilon=1e-2),
            L.MaxPooling2D(2),
            L.Conv2D(3, 2, dilation_rate=2, activation="tanh", use_bias=False),
            L.ReLU(max_value=0.9, negative_slope=0.05, threshold=0.1),
            L.AveragePooling2D(pool_size=(2, 1), strides=1),
            L.LeakyReLU(0.2),
            L.Softmax(axis=1),
            L.GlobalMaxPooling2D(keepdims=True),
            L.GlobalAveragePooling2D(),
            L.Dense(6, activation="leaky_relu"),
            L.Dropout(0.3),
            L.Activation("sigmoid"),
            L.Reshape((2, 3)),
            L.Flatten(),
            L.BatchNormalization(center=False),
            L.Dense(5, activation="softmax", use_bias=False),
        ],
        seed=seed,
    ).build()
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key, value in layer.weights().items():
            value[...] = (
                rng.uniform(0.5, 1.5, value.shape)
                if key.startswith("moving_variance")
                else rng.normal(0, 0.5, value.shape)
            )
    return model


def test_keras_loads_the_export_in_safe_mode_with_equal_predictions(tmp_path):
    model = every_layer_model()
    model.to_keras(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(1).standard_normal((6, 9, 12, 2)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(reloaded.predict(x, verbose=0)), model.predict(x), rtol=0, atol=1e-5
    )
    for ours, theirs in zip(model.get_weights(), reloaded.get_weights()):
        assert ours.tobytes() == np.asarray(theirs).tobytes()
    # And back again: handnet reads what it wrote, bit for bit.
    for ours, again in zip(model.get_weights(), from_keras(tmp_path / "model.keras").get_weights()):
        assert ours.tobytes() == again.tobytes()


def test_the_archive_has_keras_s_own_layout(tmp_path):
    model = every_layer_model()
    model.to_keras(tmp_path / "ours.keras")
    keras.models.load_model(tmp_path / "ours.keras").save(tmp_path / "theirs.keras")
    ours, theirs = (_archive(tmp_path / name) for name in ("ours.keras", "theirs.keras"))
    assert (
        ours["members"] == theirs["members"] == ["metadata.json", "config.json", "model.weights.h5"]
    )
    assert ours["h5"] == theirs["h5"]  # every group, dataset, shape, dtype and name attribute
    assert _layer_classes(ours["config"]) == _layer_classes(theirs["config"])
    assert ours["config"]["class_name"] == "Sequential" and ours["config"]["module"] == "keras"


def _archive(path):
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
        config = json.loads(archive.read("config.json"))
        entries = {}
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
            h5.visititems(
                lambda name, item: entries.__setitem__(
                    name,
                    (
                        getattr(item, "shape", None),
                        str(getattr(item, "dtype", "")),
                        dict(item.attrs),
                    ),
                )
            )
    return {"members": members, "config": config, "h5": entries}


def _layer_classes(config):
    return [
        (layer["module"], layer["class_name"], layer["config"].get("name"))
        for layer in config["config"]["layers"]
    ]


def test_round_trip_keras_handnet_keras_keeps_every_weight_bit_for_bit(tmp_path):
    keras.utils.set_random_seed(3)
    original = keras.Sequential(
        [
            keras.Input((5, 5, 3)),
            keras.layers.Conv2D(2, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    original.layers[1].set_weights(
        [np.random.default_rng(0).normal(size=(2,)).astype(np.float32) for _ in range(4)]
    )
    original.save(tmp_path / "original.keras")
    from_keras(tmp_path / "original.keras").to_keras(tmp_path / "again.keras")
    assert_same_weights_bit_for_bit(
        keras_weights(original), keras_weights(keras.models.load_model(tmp_path / "again.keras"))
    )


def test_export_keras_command(tmp_path, capsys):
    model = every_layer_model()
    model.save(tmp_path / "model.npz")
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(required=True))
    args = parser.parse_args(
        ["export-keras", str(tmp_path / "model.npz"), str(tmp_path / "out.keras")]
    )
    assert args.command(args) == 0
    assert "out.keras" in capsys.readouterr().out
    x = np.random.default_rng(1).standard_normal((2, 9, 12, 2)).astype(np.float32)
    reloaded = keras.models.load_model(tmp_path / "out.keras")
    np.testing.assert_allclose(
        np.asarray(reloaded.predict(x, verbose=0)), model.predict(x), atol=1e-5
    )


def test_what_keras_cannot_express_is_refused_and_the_old_file_survives(tmp_path):
    target = tmp_path / "model.keras"
    every_layer_model().to_keras(target)
    before = target.read_bytes()
    odd_slope = hn.Sequential(
        [L.Input((3,)), L.Dense(2, activation=hn.activations.LeakyReLU(0.1))]
    ).build()
    with pytest.raises(HandnetError, match="Use a separate layers.LeakyReLU layer"):
        odd_slope.to_keras(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temporary file left


def test_export_errors(tmp_path):
    model = hn.Sequential([L.Input((3,)), L.Dense(2)])
    with pytest.raises(HandnetError, match="build or fit the model before exporting"):
        model.to_keras(tmp_path / "m.keras")
    model.build()
    with pytest.raises(HandnetError, match=r"files named \*.keras; got 'm.h5'"):
        model.to_keras(tmp_path / "m.h5")


def test_summary_counts_trainable_weights_as_keras_does(keras, tmp_path):
    """BatchNormalization's moving statistics are weights no gradient moves: non-trainable in
    Keras's count, and in handnet's summary; a frozen layer's weights too."""
    from handnet.zoo import architectures

    model = architectures.build("mobile", seed=0)
    model.layers[1].trainable = False  # the stem's convolution, frozen
    model.to_keras(tmp_path / "mobile.keras")
    twin = keras.saving.load_model(tmp_path / "mobile.keras", safe_mode=True)
    trainable = sum(int(np.prod(w.shape)) for w in twin.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in twin.non_trainable_weights)
    printed = []
    model.summary(print_fn=printed.append)
    text = "\n".join(printed)
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {frozen:,}" in text
    assert frozen > 1152  # the moving statistics and the frozen kernel
