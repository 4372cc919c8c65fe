"""The catalogue's layers in real Keras files, both ways.

For each layer, a Keras model holding it (random weights, options away from their defaults),
saved by Keras as .keras and as legacy .h5, imports into handnet with Keras's outputs node by
node and for the whole model within 1e-5; handnet's export of each import reopens in Keras (safe
mode) with the same outputs and the same weights bit for bit (keras_models.
assert_files_round_trip). Half the models are Sequential, half the same chain as a functional
model. Then: options handnet lacks, set in a file, are refused by name.
"""

import io
import json
import types
import zipfile

import h5py
import numpy as np
import pytest
from keras_models import (
    assert_files_round_trip,
    assert_same_weights_bit_for_bit,
    keras_chain,
    keras_weights,
    randomize_weights,
)

import handnet as hn
from handnet.errors import HandnetError
from handnet.keras_io.maps import layer_from_keras

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TOLERANCE = 1e-5


def adapted_normalization(K):
    layer = K.Normalization(axis=-1)
    layer.adapt(np.random.default_rng(1).normal(2.0, 3.0, (50, 3)).astype("float32"))
    return [layer, K.Dense(2)]


#: (id, the layers (a function of keras.layers), per-sample input shape)
CASES = [
    # core.py: Embedding (integer ids, given as floats; masks: test_masked_models below)
    ("Embedding", lambda K: [K.Embedding(10, 3), K.Flatten(), K.Dense(2)], (6,)),
    ("Masking", lambda K: [K.Masking(mask_value=0.5), K.Dense(2)], (4, 3)),
    # normalization.py
    ("LayerNormalization", lambda K: [K.LayerNormalization(epsilon=0.01, center=False)], (4, 6)),
    ("LayerNormalization-rms", lambda K: [K.Dense(5), K.LayerNormalization(rms_scaling=True)],
     (3,)),
    ("GroupNormalization", lambda K: [K.GroupNormalization(groups=3, epsilon=0.01)], (5, 6)),
    ("UnitNormalization", lambda K: [K.Dense(4), K.UnitNormalization()], (3, 4)),
    # preprocessing.py
    ("Normalization-adapted", adapted_normalization, (3,)),
    ("Normalization-invert", lambda K: [K.Normalization(mean=[1.0, -2.0, 0.5],
                                                       variance=[4.0, 0.25, 1.0], invert=True)],
     (3,)),
    # activations.py
    ("PReLU", lambda K: [K.Dense(6), K.Reshape((2, 3)), K.PReLU(shared_axes=[1])], (4,)),
    ("ELU", lambda K: [K.Dense(4), K.ELU(alpha=0.7)], (3,)),
    # reshaping.py
    ("Identity", lambda K: [K.Dense(3), K.Identity()], (4,)),
    ("Permute", lambda K: [K.Permute((2, 1))], (4, 3)),
    ("RepeatVector", lambda K: [K.Dense(2), K.RepeatVector(3)], (4,)),
    ("Cropping1D", lambda K: [K.Cropping1D((1, 2))], (6, 3)),
    ("Cropping2D", lambda K: [K.Cropping2D(((1, 0), (0, 2)))], (6, 6, 2)),
    ("ZeroPadding1D", lambda K: [K.ZeroPadding1D((2, 1)), K.Conv1D(2, 3)], (5, 3)),
    ("ZeroPadding2D", lambda K: [K.ZeroPadding2D(((1, 2), (0, 1))), K.Conv2D(2, 3)], (5, 5, 1)),
    ("UpSampling1D", lambda K: [K.UpSampling1D(3)], (4, 2)),
    ("UpSampling2D", lambda K: [K.UpSampling2D((2, 3))], (3, 3, 2)),
    ("UpSampling2D-bilinear", lambda K: [K.UpSampling2D(2, interpolation="bilinear")],
     (3, 4, 2)),
    ("Resizing", lambda K: [K.Resizing(32, 30), K.Conv2D(2, 3)], (28, 28, 1)),
    ("Resizing-nearest-crop", lambda K: [K.Resizing(5, 9, interpolation="nearest",
                                                    crop_to_aspect_ratio=True)], (7, 6, 2)),
    ("Resizing-pad", lambda K: [K.Resizing(6, 4, pad_to_aspect_ratio=True, fill_value=0.25)],
     (5, 5, 1)),
    ("CenterCrop", lambda K: [K.CenterCrop(24, 24), K.Conv2D(2, 3)], (28, 28, 1)),
    ("CenterCrop-larger", lambda K: [K.CenterCrop(6, 4)], (4, 4, 2)),
    # core.py
    ("Flatten-channels_first", lambda K: [K.Flatten(data_format="channels_first"), K.Dense(3)],
     (3, 4, 2)),
    # conv.py
    ("Conv1D-causal", lambda K: [K.Conv1D(4, 3, padding="causal", dilation_rate=2,
                                          activation="tanh")], (9, 3)),
    ("Conv1D-groups", lambda K: [K.Conv1D(6, 3, strides=2, padding="same", groups=2)], (9, 4)),
    ("Conv2D-groups", lambda K: [K.Conv2D(6, 3, padding="same", groups=3, activation="relu")],
     (6, 6, 3)),
    ("Conv2DTranspose", lambda K: [K.Conv2DTranspose(3, 3, strides=2, padding="same")],
     (4, 4, 2)),
    ("Conv2DTranspose-output_padding",
     lambda K: [K.Conv2DTranspose(2, (3, 2), strides=(2, 3), output_padding=(1, 0))], (3, 3, 2)),
    ("DepthwiseConv1D", lambda K: [K.DepthwiseConv1D(3, depth_multiplier=2, padding="same",
                                                     activation="relu")], (7, 3)),
    ("DepthwiseConv2D", lambda K: [K.DepthwiseConv2D((3, 2), strides=2, depth_multiplier=2)],
     (7, 6, 2)),
    ("SeparableConv1D", lambda K: [K.SeparableConv1D(4, 3, depth_multiplier=2, padding="same")],
     (7, 3)),
    ("SeparableConv2D", lambda K: [K.SeparableConv2D(5, 3, strides=2, depth_multiplier=2,
                                                     activation="sigmoid")], (7, 7, 2)),
    # pooling.py
    ("MaxPooling1D", lambda K: [K.MaxPooling1D(3, strides=2, padding="same")], (7, 2)),
    ("AveragePooling1D", lambda K: [K.AveragePooling1D(2, strides=1)], (6, 2)),
    ("GlobalMaxPooling1D", lambda K: [K.GlobalMaxPooling1D(keepdims=True)], (5, 3)),
    ("GlobalAveragePooling1D", lambda K: [K.GlobalAveragePooling1D(), K.Dense(2)], (5, 3)),
    ("GlobalAveragePooling2D-keepdims", lambda K: [K.GlobalAveragePooling2D(keepdims=True)],
     (4, 4, 3)),
    ("GlobalMaxPooling2D-keepdims", lambda K: [K.GlobalMaxPooling2D(keepdims=True)], (4, 4, 3)),
    # noise.py: the identity in inference, as in Keras
    ("SpatialDropout1D", lambda K: [K.Dense(3), K.SpatialDropout1D(0.3, seed=1)], (5, 2)),
    ("SpatialDropout2D", lambda K: [K.SpatialDropout2D(0.4)], (4, 4, 2)),
    ("GaussianNoise", lambda K: [K.GaussianNoise(0.5, seed=2), K.Dense(2)], (3,)),
    ("GaussianDropout", lambda K: [K.GaussianDropout(0.3)], (3,)),
    ("AlphaDropout", lambda K: [K.AlphaDropout(0.2, noise_shape=(None, 1, 3))], (4, 3)),
    ("ActivityRegularization", lambda K: [K.Dense(3), K.ActivityRegularization(0.01, 0.02)],
     (4,)),
    # augmentation.py: the identity in inference (RandomCrop: images of its size, see below)
    ("RandomFlip", lambda K: [K.RandomFlip("horizontal", seed=1)], (5, 5, 1)),
    ("RandomRotation", lambda K: [K.RandomRotation((-0.2, 0.3), fill_mode="nearest",
                                                   interpolation="nearest")], (5, 5, 1)),
    ("RandomTranslation", lambda K: [K.RandomTranslation(0.1, (-0.2, 0.2), fill_mode="constant",
                                                         fill_value=0.5)], (5, 5, 1)),
    ("RandomZoom", lambda K: [K.RandomZoom(0.2, 0.1, fill_mode="wrap", seed=3)], (5, 5, 1)),
    ("RandomContrast", lambda K: [K.RandomContrast(0.3, value_range=(0, 1))], (5, 5, 1)),
    ("RandomCrop", lambda K: [K.RandomCrop(5, 4, seed=4), K.Flatten(), K.Dense(2)], (5, 4, 1)),
    # recurrent.py: TimeDistributed, its layer's weights in the wrapper's path
    ("TimeDistributed-Dense", lambda K: [K.TimeDistributed(K.Dense(3, activation="relu"))],
     (4, 5)),
    ("TimeDistributed-Conv2D", lambda K: [K.TimeDistributed(K.Conv2D(2, 3, strides=2))],
     (3, 6, 6, 1)),
    ("TimeDistributed-LSTM", lambda K: [K.TimeDistributed(K.LSTM(2, return_sequences=True))],
     (4, 3, 2)),
    ("TimeDistributed-Bidirectional",
     lambda K: [K.TimeDistributed(K.Bidirectional(K.GRU(2), merge_mode="sum"))], (3, 4, 2)),
]


def _model(keras, make, shape, functional, seed):
    keras.utils.set_random_seed(seed)
    model = keras_chain(keras, make(keras.layers), shape, functional=functional)
    rng = np.random.default_rng(seed)
    # A Normalization's mean, variance and count come from adapt (a variance must be > 0).
    randomizable = [layer for layer in model.layers if type(layer).__name__ != "Normalization"]
    randomize_weights(types.SimpleNamespace(layers=randomizable), rng)
    return model


@pytest.mark.parametrize(
    "index, case", list(enumerate(CASES)), ids=[case[0] for case in CASES]
)
def test_keras_files_import_and_export(keras, torch, tmp_path, index, case):
    _, make, shape = case
    original = _model(keras, make, shape, functional=index % 2 == 1, seed=index)
    x = np.random.default_rng(100 + index).standard_normal((5, *shape)).astype("float32")
    if "Random" in case[0]:
        x = np.abs(x) / 3  # images in the value range (0, 1)
    if case[0] == "Embedding":
        x = np.random.default_rng(index).integers(0, 10, (5, *shape)).astype("float32")
    imported = assert_files_round_trip(keras, original, x, tmp_path, TOLERANCE)
    for model in imported:
        handnet_class = type(model.layers[-1]).__name__
        assert handnet_class == type(original.layers[-1]).__name__


def masked_models(keras):
    K = keras.layers
    # Keras's integer input (handnet's is float32); a Sequential: in a functional model Keras
    # records the mask as an operation node (test_a_mask_op_node_is_refused_by_name).
    by_ids = keras.Sequential([keras.Input((6,), dtype="int32"),
                               K.Embedding(10, 3, mask_zero=True), K.LSTM(4)])
    steps = keras.Input((5, 2))
    by_value = keras.Sequential([steps, K.Masking(mask_value=0.5), K.SimpleRNN(3)])
    return [(by_ids, "ids"), (by_value, "steps")]


def test_masked_models(keras, tmp_path):
    """Embedding(mask_zero=True) and Masking in Keras files: the masks they make reach the
    recurrent layer after them, in Keras and in handnet. Compared on the whole model: handnet's
    compare_keras calls each Keras layer on arrays, which carry no mask."""
    rng = np.random.default_rng(0)
    for original, kind in masked_models(keras):
        randomize_weights(original, rng)
        if kind == "ids":
            x = rng.integers(0, 10, (8, 6))
            x[:, 4:] = 0  # padding at the end
        else:
            x = rng.standard_normal((8, 5, 2)).astype("float32")
            x[::2, 3:] = 0.5  # padded steps: every feature equals mask_value
        expected = np.asarray(original.predict(x, verbose=0))
        for name in ("model.keras", "model.h5"):
            original.save(tmp_path / name)
            imported = hn.from_keras(tmp_path / name)
            np.testing.assert_allclose(imported.predict(x.astype("float32")), expected, rtol=0,
                                       atol=TOLERANCE)
            imported.to_keras(tmp_path / "back.keras")
            reloaded = keras.models.load_model(tmp_path / "back.keras")
            np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), expected,
                                       rtol=0, atol=TOLERANCE)
            assert_same_weights_bit_for_bit(keras_weights(original), keras_weights(reloaded))


def functional_masked_models(keras):
    """Functional models on masked sequences: Keras records each mask as operation nodes —
    NotEqual(ids, 0) for Embedding(mask_zero=True), Any(NotEqual(x, v), axis=-1) for Masking —
    and hands it to the layers that read it as mask=…"""
    K = keras.layers
    ids = keras.Input((6,), dtype="int32")
    h = K.LSTM(4, return_sequences=True)(K.Embedding(10, 3, mask_zero=True)(ids))
    stacked = keras.Model(ids, K.Dense(2)(K.LSTM(3)(h)))
    steps = keras.Input((5, 2))
    h = K.GRU(4, return_sequences=True)(K.Masking(mask_value=0.5)(steps))
    by_value = keras.Model(steps, K.LSTM(2)(K.Dense(3, activation="tanh")(h)))
    ids = keras.Input((6,))
    h = K.GRU(3, return_sequences=True)(K.Dense(4)(K.Embedding(10, 3, mask_zero=True)(ids)))
    tagger = keras.Model(ids, K.TimeDistributed(K.Dense(2))(h))
    return [(stacked, "ids"), (by_value, "steps"), (tagger, "ids")]


def test_functional_masked_models(keras, tmp_path):
    """The mask nodes are left out and handnet's own masks take their place: the whole model's
    outputs are Keras's, from .keras and .h5, and the export reopens in Keras."""
    rng = np.random.default_rng(1)
    for original, kind in functional_masked_models(keras):
        randomize_weights(original, rng)
        if kind == "ids":
            x = rng.integers(1, 10, (8, 6))
            x[:, 4:] = 0
            x[1, 1:] = 0
            x[2, 2] = 0
        else:
            x = rng.standard_normal((8, 5, 2)).astype("float32")
            x[::2, 3:] = 0.5
            x[1, 1] = 0.5
        expected = np.asarray(original.predict(x, verbose=0))
        for name in ("model.keras", "model.h5"):
            original.save(tmp_path / name)
            imported = hn.from_keras(tmp_path / name)
            assert not any("equal" in layer.name for layer in imported.layers)
            np.testing.assert_allclose(imported.predict(x.astype("float32")), expected, rtol=0,
                                       atol=TOLERANCE)
            imported.to_keras(tmp_path / "back.keras")
            reloaded = keras.models.load_model(tmp_path / "back.keras")
            np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), expected,
                                       rtol=0, atol=TOLERANCE)


def edited_config(path, target, edit):
    """A copy of the .keras file at ``path`` with its config.json changed by ``edit(config)``."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            out.writestr(item, data)
    return target


def entry(config, class_name):
    return next(e for e in config["config"]["layers"] if e["class_name"] == class_name)


def test_mask_nodes_that_are_not_a_pure_mask_are_refused(keras, tmp_path):
    """Anything but the exact mask of an Embedding(mask_zero=True) or a Masking of the file,
    handed to a layer that handnet's masks reach, is refused by name: nothing is run."""
    K = keras.layers
    ids = keras.Input((6,), name="ids")
    other = keras.Input((6, 3), name="other")
    masked = K.LSTM(4, name="masked")(K.Embedding(10, 3, mask_zero=True)(ids))
    plain = K.GRU(4, name="plain")(other)
    path = tmp_path / "m.keras"
    keras.Model([ids, other], K.Concatenate()([masked, plain])).save(path)
    assert hn.from_keras(path).output_shape == (8,)

    def constant(config):  # NotEqual(ids, 1): not the Embedding's mask
        entry(config, "NotEqual")["inbound_nodes"][0]["args"][1] = 1

    def handed_elsewhere(config):  # the GRU reads "other", which carries no mask
        mask = entry(config, "LSTM")["inbound_nodes"][0]["kwargs"]["mask"]
        entry(config, "GRU")["inbound_nodes"][0]["kwargs"]["mask"] = mask

    def no_mask_zero(config):
        entry(config, "Embedding")["config"]["mask_zero"] = False

    def as_data(config):  # the mask fed to a layer as its input
        name = entry(config, "NotEqual")["name"]
        args = entry(config, "LSTM")["inbound_nodes"][0]["args"]
        args[0]["config"]["keras_history"] = [name, 0, 0]

    cases = [
        (constant, "compares 'ids' with 1"),
        (handed_elsewhere, "layer 'plain' is handed the mask 'not_equal[_0-9]*' .* does not"),
        (no_mask_zero, "no Embedding\\(mask_zero=True\\)"),
        (as_data, "its output is used as data"),
    ]
    for index, (edit, message) in enumerate(cases):
        edited = edited_config(path, tmp_path / f"edited{index}.keras", edit)
        with pytest.raises(HandnetError, match=message):
            hn.from_keras(edited)
    steps = keras.Input((5, 2))
    keras.Model(steps, K.GRU(2)(K.Masking(0.5)(steps))).save(path)
    assert hn.from_keras(path).output_shape == (2,)

    def other_axis(config):  # Any over the steps: not Masking's mask
        entry(config, "Any")["config"]["axis"] = 1

    def other_value(config):
        entry(config, "Masking")["config"]["mask_value"] = 0.25

    for edit, message in [(other_axis, "is not Any"), (other_value, "compares .* with 0.5")]:
        with pytest.raises(HandnetError, match=message):
            hn.from_keras(edited_config(path, tmp_path / "edited.keras", edit))


def test_grouped_conv2d_exports_its_groups(keras, tmp_path):
    """The export once wrote groups=1 whatever the layer had: Keras then built a kernel
    (3, 3, 6, 6) and refused the file's (3, 3, 2, 6)."""
    model = hn.Sequential([hn.layers.Conv2D(6, 3, groups=3, name="grouped")])
    model.build((5, 5, 6))
    model.to_keras(tmp_path / "grouped.keras")
    reloaded = keras.models.load_model(tmp_path / "grouped.keras")
    assert reloaded.get_layer("grouped").get_config()["groups"] == 3
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), model.predict(x),
                               rtol=0, atol=TOLERANCE)


def test_time_distributed_weights_sit_in_the_wrapper_path(keras, tmp_path):
    """Keras 3 stores TimeDistributed(Dense)'s kernel at layers/time_distributed/layer/vars/0
    (its own vars empty), and the .h5 under the wrapper's group as
    <model>/time_distributed/dense/kernel; handnet writes the first the same way."""
    inner = keras.layers.Dense(2)
    wrapper = keras.layers.TimeDistributed(inner)
    original = keras.Sequential([keras.Input((3, 4)), wrapper])
    original.save(tmp_path / "td.keras")
    original.save(tmp_path / "td.h5")
    hn.from_keras(tmp_path / "td.keras").to_keras(tmp_path / "back.keras")

    def layout(path):
        with zipfile.ZipFile(path) as archive, h5py.File(
            io.BytesIO(archive.read("model.weights.h5"))
        ) as h5:
            found = []
            h5["layers"].visititems(lambda name, item: found.append(
                (name, getattr(item, "shape", None))))
            return found

    assert layout(tmp_path / "td.keras") == layout(tmp_path / "back.keras")
    assert ("time_distributed/layer/vars/0", (4, 2)) in layout(tmp_path / "back.keras")
    with h5py.File(tmp_path / "td.h5") as h5:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in h5[f"model_weights/{wrapper.name}"].attrs["weight_names"]]
    assert [name.split("/", 1)[1] for name in names] == [
        f"{wrapper.name}/{inner.name}/kernel", f"{wrapper.name}/{inner.name}/bias"
    ]


def test_random_brightness_both_formats(keras, tmp_path):
    """Keras 3.15 cannot write a RandomBrightness to .h5 (its saver fails to pickle the layer:
    "cannot pickle 'module' object"); the .h5 here is Keras's own file of the same model with a
    RandomContrast in its place, whose model_config entry then gets the RandomBrightness's
    entry from the .keras file's config.json."""
    def model(kind):
        return keras.Sequential([keras.Input((5, 5, 1)),
                                 getattr(keras.layers, kind)(0.2, value_range=(0, 1), seed=5,
                                                             name="augment")])

    original = model("RandomBrightness")
    with pytest.raises(TypeError, match="pickle"):
        original.save(tmp_path / "direct.h5")  # if Keras fixes this, test the real file
    x = np.random.default_rng(0).uniform(0, 1, (3, 5, 5, 1)).astype("float32")
    original.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        entry = json.loads(archive.read("config.json"))["config"]["layers"][1]
    model("RandomContrast").save(tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        assert config["config"]["layers"][1]["class_name"] == "RandomContrast"
        config["config"]["layers"][1] = entry
        h5.attrs["model_config"] = json.dumps(config)
    for name in ("model.keras", "model.h5"):
        imported = hn.from_keras(tmp_path / name)
        layer = imported.layers[0]
        assert isinstance(layer, hn.layers.RandomBrightness)
        assert layer.get_config()["factor"] == [-0.2, 0.2] and layer.get_config()["seed"] == 5
        np.testing.assert_array_equal(imported.predict(x), original.predict(x, verbose=0))
        imported.to_keras(tmp_path / "back.keras")
        reloaded = keras.models.load_model(tmp_path / "back.keras")
        assert list(reloaded.get_layer("augment").get_config()["factor"]) == [-0.2, 0.2]
        np.testing.assert_array_equal(np.asarray(reloaded.predict(x, verbose=0)), x)
        assert keras_weights(reloaded) == {}


def test_unit_normalization_over_several_axes_from_h5(keras, tmp_path):
    """Keras 3.15 reloads a legacy .h5 UnitNormalization with axis -1 whatever its file says
    ([1, 2] here): handnet reads the file's axes, so its import computes the saved model, and
    Keras's reload of its own .h5 does not (its .keras reload does)."""
    original = keras.Sequential([keras.Input((3, 4)), keras.layers.UnitNormalization(axis=[1, 2])])
    x = np.random.default_rng(0).standard_normal((4, 3, 4)).astype("float32")
    expected = np.asarray(original.predict(x, verbose=0))
    for name in ("model.keras", "model.h5"):
        original.save(tmp_path / name)
        imported = hn.from_keras(tmp_path / name)
        assert imported.layers[0].axis == [1, 2]
        np.testing.assert_allclose(imported.predict(x), expected, rtol=0, atol=TOLERANCE)
        imported.to_keras(tmp_path / "back.keras")
        reloaded = keras.models.load_model(tmp_path / "back.keras")
        np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), expected, rtol=0,
                                   atol=TOLERANCE)
    assert keras.models.load_model(tmp_path / "model.h5").layers[0].axis == -1  # Keras's slip


def test_random_crop_declares_what_handnet_computes(keras):
    """Keras 3.15's RandomCrop returns its input unchanged at inference, larger than the shape
    it declares (its docstring promises the centred window): with images larger than the crop,
    the Keras model cannot even run the Dense its graph built after it. handnet computes what
    the graph declares (the centred window), so an import's predictions follow the shapes."""
    original = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.RandomCrop(4, 4),
                                 keras.layers.Flatten(), keras.layers.Dense(2)])
    x = np.random.default_rng(0).uniform(0, 1, (2, 6, 6, 1)).astype("float32")
    with pytest.raises((RuntimeError, ValueError)):  # torch's matmul of (2, 36) by (16, 2)
        original.predict(x, verbose=0)
    layer = layer_from_keras("RandomCrop", original.layers[0].get_config())
    assert layer.compute_output_shape((6, 6, 1)) == (4, 4, 1)


# -- options handnet lacks, refused by name ------------------------------------------------
L2 = {"class_name": "L2", "config": {"l2": 0.1}}
NON_NEG = {"class_name": "NonNeg", "config": {}}
REFUSED_OPTIONS = [
    ("LayerNormalization", {}, "gamma_regularizer", L2),
    ("LayerNormalization", {}, "beta_constraint", NON_NEG),
    ("GroupNormalization", {"groups": 2}, "gamma_constraint", NON_NEG),
    ("GroupNormalization", {"groups": 2}, "beta_regularizer", L2),
    ("PReLU", {}, "alpha_regularizer", L2),
    ("PReLU", {}, "alpha_constraint", NON_NEG),
    ("Conv1D", {"filters": 2, "kernel_size": 3}, "kernel_constraint", NON_NEG),
    ("Conv1D", {"filters": 2, "kernel_size": 3}, "activity_regularizer", L2),
    ("Conv1D", {"filters": 2, "kernel_size": 3}, "data_format", "channels_first"),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 3}, "bias_constraint", NON_NEG),
    ("DepthwiseConv1D", {"kernel_size": 3}, "depthwise_constraint", NON_NEG),
    ("DepthwiseConv2D", {"kernel_size": 3}, "activity_regularizer", L2),
    ("SeparableConv1D", {"filters": 2, "kernel_size": 3}, "pointwise_constraint", NON_NEG),
    ("SeparableConv2D", {"filters": 2, "kernel_size": 3}, "depthwise_constraint", NON_NEG),
    ("SeparableConv2D", {"filters": 2, "kernel_size": 3}, "padding", "causal"),
    ("MaxPooling1D", {"pool_size": 2}, "data_format", "channels_first"),
    ("GlobalAveragePooling1D", {}, "data_format", "channels_first"),
    ("Cropping2D", {}, "data_format", "channels_first"),
    ("ZeroPadding1D", {}, "data_format", "channels_first"),
    ("UpSampling2D", {}, "interpolation", "bicubic"),
    ("UpSampling2D", {}, "data_format", "channels_first"),
    ("Resizing", {"height": 4, "width": 4}, "interpolation", "bicubic"),
    ("Resizing", {"height": 4, "width": 4}, "antialias", True),
    ("Resizing", {"height": 4, "width": 4}, "data_format", "channels_first"),
    ("CenterCrop", {"height": 4, "width": 4}, "data_format", "channels_first"),
    ("SpatialDropout2D", {"rate": 0.1}, "data_format", "channels_first"),
    ("RandomRotation", {"factor": 0.1}, "interpolation", "bicubic"),
    ("RandomZoom", {"height_factor": 0.1}, "fill_mode", "crop"),
    ("RandomFlip", {}, "mode", "diagonal"),
    ("RandomCrop", {"height": 2, "width": 2}, "data_format", "channels_first"),
    ("Permute", {"dims": [2, 1]}, "some_future_option", 3),
    ("Normalization", {}, "some_future_option", [1]),
    ("TimeDistributed", {"layer": {"class_name": "Dense",
                                   "config": {"units": 2, "kernel_constraint": NON_NEG}}},
     "name", "td"),
]


@pytest.mark.parametrize("class_name, config, key, value", REFUSED_OPTIONS,
                         ids=[f"{c}-{k}" for c, _, k, _ in REFUSED_OPTIONS])
def test_options_handnet_lacks_are_refused_by_name(class_name, config, key, value):
    config = {"name": "x", **config, key: value}
    with pytest.raises(HandnetError) as caught:
        layer_from_keras(class_name, config)
    message = str(caught.value)
    refused = "kernel_constraint" if class_name == "TimeDistributed" else key
    assert f"{refused}=" in message and "is not supported" in message, message


def test_a_model_inside_time_distributed_is_refused():
    inner = {"class_name": "Sequential", "config": {"layers": []}}
    with pytest.raises(HandnetError, match="wraps one layer, not a model"):
        layer_from_keras("TimeDistributed", {"name": "td", "layer": inner})
