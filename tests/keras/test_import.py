"""Import: Keras files into handnet Sequentials, with NumPy and h5py alone; one real MNIST model."""

import argparse
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError
from handnet.keras_io import from_keras, load_any, register_cli
from handnet.keras_io.compare import compare_keras

keras = pytest.importorskip("keras")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]


def small_keras_model(dtype="float32"):
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), dtype=dtype),
            keras.layers.Conv2D(3, 3, activation="relu", name="features", dtype=dtype),
            keras.layers.BatchNormalization(name="norm", dtype=dtype),
            keras.layers.GlobalAveragePooling2D(name="pool", dtype=dtype),
            keras.layers.Dense(4, activation="softmax", name="classes", dtype=dtype),
        ],
        name="small",
    )


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="handnet")
    register_cli(parser.add_subparsers(required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.command(args)


def test_names_input_shape_weights_and_outputs_carry_over(tmp_path):
    original = small_keras_model()
    original.save(tmp_path / "small.keras")
    model = from_keras(tmp_path / "small.keras")
    assert model.name == "small" and model.input_shape == (8, 8, 1)
    assert [(layer.name, type(layer).__name__) for layer in model.layers] == [
        ("features", "Conv2D"),
        ("norm", "BatchNormalization"),
        ("pool", "GlobalAveragePooling2D"),
        ("classes", "Dense"),
    ]
    for ours, theirs in zip(model.get_weights(), original.get_weights()):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert model.layers[1].epsilon == 1e-3 and model.layers[1].momentum == 0.99
    x = np.random.default_rng(0).random((7, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x), original.predict(x, verbose=0), atol=1e-6)


def test_float64_models_import_as_float64(tmp_path):
    small_keras_model("float64").save(tmp_path / "small.keras")
    model = from_keras(tmp_path / "small.keras")
    assert {layer.dtype.name for layer in model.layers} == {"float64"}
    assert model.get_weights()[0].dtype == np.float64


def test_a_functional_single_chain_imports_with_its_layers(tmp_path):
    inputs = keras.Input((5,), name="pixels")
    x = keras.layers.Dense(4, name="hidden")(inputs)
    x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    outputs = keras.layers.Softmax()(keras.layers.Dense(3)(x))
    original = keras.Model(inputs, outputs, name="chain")
    for name in ("chain.keras", "chain.h5"):
        original.save(tmp_path / name)
        model = from_keras(tmp_path / name)
        assert [type(layer).__name__ for layer in model.layers] == [
            "Dense",
            "LeakyReLU",
            "Dense",
            "Softmax",
        ]
        assert model.layers[1].negative_slope == pytest.approx(0.1)
        x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
        np.testing.assert_allclose(model.predict(x), original.predict(x, verbose=0), atol=1e-6)


def test_a_branching_functional_model_imports_as_a_graph(tmp_path):
    inputs = keras.Input((5,))
    outputs = keras.layers.Add()([keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)])
    original = keras.Model(inputs, outputs)
    original.save(tmp_path / "branches.keras")
    model = from_keras(tmp_path / "branches.keras")
    assert type(model) is hn.Model and len(model.nodes) == 3
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), original.predict(x, verbose=0), atol=1e-6)


def test_a_model_with_unknown_input_sizes_is_refused(tmp_path):
    keras.Sequential([keras.Input((None, 3)), keras.layers.Dense(2)]).save(
        tmp_path / "ragged.keras"
    )
    unknown = r"input shape \[None, None, 3\] has unknown sizes"
    with pytest.raises(HandnetError, match=unknown) as caught:
        from_keras(tmp_path / "ragged.keras")
    assert str(caught.value).count(str(tmp_path / "ragged.keras")) == 1  # the file named once


def test_import_needs_neither_keras_nor_torch(tmp_path):
    small_keras_model().save(tmp_path / "small.keras")
    small_keras_model().save(tmp_path / "small.h5")
    script = textwrap.dedent(
        f"""
        import sys
        # importing them fails
        sys.modules["keras"] = sys.modules["torch"] = sys.modules["tensorflow"] = None
        import numpy as np, handnet
        for name in ("small.keras", "small.h5"):
            model = handnet.from_keras({str(tmp_path)!r} + "/" + name)
            model.predict(np.zeros((1, 8, 8, 1)))
        model.to_keras({str(tmp_path)!r} + "/again.keras")
        print("ok", len(model.layers))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "4"]


def test_load_any_tells_the_formats_apart_by_content(tmp_path):
    small_keras_model().save(tmp_path / "small.keras")
    small_keras_model().save(tmp_path / "small.h5")
    from_keras(tmp_path / "small.keras").save(tmp_path / "small.npz")
    (tmp_path / "small.keras").rename(tmp_path / "renamed.bin")
    for name in ("renamed.bin", "small.h5", "small.npz"):
        assert [layer.name for layer in load_any(tmp_path / name).layers][0] == "features"


def test_import_keras_command_writes_a_handnet_model(tmp_path, capsys):
    original = small_keras_model()
    original.save(tmp_path / "small.keras")
    assert run_cli("import-keras", tmp_path / "small.keras", tmp_path / "small.npz") == 0
    assert "4 layers" in capsys.readouterr().out
    model = hn.load_model(tmp_path / "small.npz")
    for ours, theirs in zip(model.get_weights(), original.get_weights()):
        assert np.array_equal(ours, theirs)
    lines = []
    load_any(tmp_path / "small.keras").summary(print_fn=lines.append)
    assert "features (Conv2D)" in lines[0] and f"Total params: {model.count_params()}" in lines[0]


def test_compare_report_rows(tmp_path):
    small_keras_model().save(tmp_path / "small.keras")
    x = np.random.default_rng(0).random((30, 8, 8, 1), dtype=np.float32)
    report = compare_keras(tmp_path / "small.keras", x, np.zeros(30, int), samples=10)
    assert report.passed and report.samples == 10 and report.predictions == 30
    assert [row.name for row in report.rows] == ["features", "norm", "pool", "classes"]
    assert report.rows[0].output_shape == (6, 6, 3) and report.argmax_agreement == 1.0
    assert report.keras_accuracy == report.handnet_accuracy
    text = str(report)
    assert "features (Conv2D)" in text and "(None, 6, 6, 3)" in text and text.endswith("PASS")
    assert json.loads(json.dumps(report.as_dict()))["rows"][3]["name"] == "classes"
    exact = compare_keras(tmp_path / "small.keras", x, samples=10, tolerance=0.0)
    assert exact.passed == (exact.worst == 0.0)


def test_compare_says_clearly_when_keras_is_missing(tmp_path, monkeypatch):
    from handnet.keras_io import compare

    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(
        compare.KerasUnavailableError,
        match="Keras is not installed: pip install keras torch; set KERAS_BACKEND=torch",
    ):
        compare.compare_keras(tmp_path / "any.keras", np.zeros((1, 2)))


@pytest.mark.mnist
@pytest.mark.slow
def test_a_keras_model_trained_on_mnist_agrees_on_every_test_image(tmp_path, capsys):
    (x_train, y_train), (x_test, y_test) = hn.datasets.mnist.load_data(verbose=False)
    keras.utils.set_random_seed(0)
    original = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    original.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    original.fit(
        x_train[..., None].astype(np.float32), y_train, epochs=1, batch_size=256, verbose=0
    )
    original.save(tmp_path / "mnist.keras")

    status = run_cli(
        "compare-keras",
        tmp_path / "mnist.keras",
        "--samples",
        500,
        "--json",
        tmp_path / "report.json",
    )
    output = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert status == 0, output
    assert report["predictions"] == 10000 and report["argmax_agreement"] == 1.0, output
    assert report["handnet_accuracy"] == report["keras_accuracy"] > 0.8  # it did learn
    assert report["passed"] and len(report["rows"]) == 6


def test_the_tolerance_scales_with_a_node_s_largest_output():
    """An absolute bar for outputs of order 1, a relative one above: a trained network's
    activations of 80 carry 80 times the rounding of activations of 1."""
    from handnet.keras_io.compare import within_tolerance

    assert within_tolerance(9e-6, 0.5, 1e-5) and not within_tolerance(2e-5, 0.5, 1e-5)
    assert within_tolerance(4.6e-5, 79.0, 1e-5)  # 5.8e-7 of the scale: float32 rounding
    assert not within_tolerance(1e-3, 79.0, 1e-5)  # 1.3e-5 of it: a real difference


def test_an_image_output_is_compared_without_argmax_or_accuracy(keras, tmp_path):
    """An autoencoder's output is an image: its rows are compared, and labels given for the
    test set do not turn into an "accuracy" of pixels."""
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(2, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid"),
    ])
    model.save(tmp_path / "ae.keras")
    x = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    report = compare_keras(tmp_path / "ae.keras", x, np.arange(20) % 10, samples=20)
    assert report.passed and report.handnet_accuracy is None
    assert "no argmax agreement" in str(report) and "argmax agreement on" not in str(report)
