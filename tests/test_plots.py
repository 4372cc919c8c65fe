"""plots: each figure is written, non-empty, and a PNG that Pillow reads; the commands that
write them (train --plots, evaluate --plots, handnet plot)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handnet import layers, plots
from handnet.cli import common, train
from handnet.datasets import Dataset
from handnet.errors import HandnetError
from handnet.model import Sequential
from cli_run import run as run_cli


def assert_png(path, min_size=(400, 300), max_size=(4000, 6000)):
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as image:
        image.verify()  # the whole file: chunks and checksums
    with Image.open(path) as image:
        image.load()  # and the pixels decode
        assert image.format == "PNG"
        assert min_size[0] <= image.width <= max_size[0], image.size
        assert min_size[1] <= image.height <= max_size[1], image.size


def fake_run(num=300, classes=10, seed=0):
    """Images, labels and probabilities that are right about 80 % of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, num)
    logits = rng.standard_normal((num, classes))
    logits[np.arange(num), labels] += 2.5
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    images = rng.integers(0, 256, (num, 28, 28), dtype=np.uint8)
    return images, labels, probabilities


HISTORY = {
    "loss": [0.5, 0.2, 0.1],
    "accuracy": [0.85, 0.94, 0.97],
    "val_loss": [0.25, 0.15, 0.12],
    "val_accuracy": [0.92, 0.95, 0.96],
    "learning_rate": [8e-4, 3e-4, 0.0],
}


def test_confusion_matrix_counts():
    counts = plots.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], num_classes=3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert counts.sum() == 6


def test_training_curves(tmp_path):
    path = tmp_path / "curves.png"
    plots.plot_training_curves(HISTORY, path, title="test run")
    assert_png(path)


@pytest.mark.parametrize(
    "keys", [("loss", "accuracy"), ("loss",), ("loss", "accuracy", "learning_rate")]
)
def test_training_curves_without_validation_or_learning_rate(tmp_path, keys):
    path = tmp_path / "curves.png"
    plots.plot_training_curves({key: HISTORY[key][:1] for key in keys}, path)
    assert_png(path)


def test_confusion_matrix_figure(tmp_path):
    _, labels, probabilities = fake_run()
    path = tmp_path / "sub" / "confusion.png"  # missing folders are created
    plots.plot_confusion_matrix(labels, probabilities.argmax(axis=1), path)
    assert_png(path)


def test_confusion_matrix_figure_with_class_names_and_a_perfect_model(tmp_path):
    labels = np.arange(10).repeat(5)
    path = tmp_path / "confusion.png"
    plots.plot_confusion_matrix(labels, labels, path, class_names=[f"class {k}" for k in range(10)])
    assert_png(path)


def test_misclassified_gallery(tmp_path):
    images, labels, probabilities = fake_run()
    path = tmp_path / "misclassified.png"
    flat = images.reshape(len(images), 784)
    plots.plot_misclassified(flat, labels, probabilities, path, count=12)
    assert_png(path)


@pytest.mark.parametrize("mistakes", [0, 3])
def test_misclassified_gallery_with_few_or_no_mistakes(tmp_path, mistakes):
    images, _, probabilities = fake_run(num=20)
    labels = probabilities.argmax(axis=1)
    labels[:mistakes] = (labels[:mistakes] + 1) % 10
    path = tmp_path / "misclassified.png"
    plots.plot_misclassified(
        images, labels, probabilities, path, class_names=[f"class {k}" for k in range(10)]
    )
    assert_png(path, min_size=(300, 100))


# -- pictures of a model: a tiny MLP and a tiny CNN, random weights and data --------------


def tiny_mlp():
    """784 → 12 → 10: the first layer's units are drawn as 28×28 pictures."""
    model = Sequential(
        [
            layers.Input((784,)),
            layers.Dense(12, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    return model.build().compile("adam", "sparse_categorical_crossentropy")


def tiny_cnn():
    """12×12×1 → Conv 4 → BatchNorm → MaxPool → Flatten → Dense 10."""
    model = Sequential(
        [
            layers.Input((12, 12, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    return model.build().compile("adam", "sparse_categorical_crossentropy")


def random_batch(model, num=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((num, *model.input_shape), dtype=np.float32)
    return x, rng.integers(0, 10, num)


@pytest.mark.parametrize("make_model", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn"])
def test_model_pictures(tmp_path, make_model):
    model = make_model()
    x, y = random_batch(model)
    plots.plot_first_layer_weights(model, tmp_path / "first_layer.png")
    plots.plot_feature_maps(model, x[0], tmp_path / "feature_maps.png", label=y[0])
    gradients = plots.batch_gradients(model, x, y)
    plots.plot_weight_histograms(model, tmp_path / "histograms.png", gradients)
    for name in ("first_layer.png", "feature_maps.png", "histograms.png"):
        assert_png(tmp_path / name, min_size=(300, 200))
    # Written atomically: no temporary file is left beside the pictures.
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "feature_maps.png",
        "first_layer.png",
        "histograms.png",
    ]


def test_first_layer_pictures_of_each_kind():
    layer, pictures, _, matrix = plots.weights.first_layer_pictures(tiny_mlp())
    assert layer.name.startswith("dense") and len(pictures) == 12 and not matrix
    assert pictures[0][1].shape == (28, 28)
    _, pictures, _, _ = plots.weights.first_layer_pictures(tiny_cnn())
    assert len(pictures) == 4 and pictures[0][1].shape == (3, 3)
    colour = Sequential([layers.Input((5, 5, 3)), layers.Conv2D(20, 2)], seed=0).build()
    _, pictures, _, _ = plots.weights.first_layer_pictures(colour)
    assert len(pictures) == 32  # 20 filters × 3 input channels, capped
    assert pictures[1][0] == "filter 0, in 1"
    flat = Sequential([layers.Input((6,)), layers.Dense(3)], seed=0).build()
    _, pictures, _, matrix = plots.weights.first_layer_pictures(flat)
    assert matrix and len(pictures) == 1 and pictures[0][1].shape == (3, 6)


@pytest.mark.parametrize(
    "model_layers",
    [[layers.Input((6,)), layers.Dense(3)], [layers.Input((6, 6, 1)), layers.Conv2D(1, 3)]],
    ids=["matrix", "one-filter"],
)
def test_first_layer_figure_of_one_picture(tmp_path, model_layers):
    model = Sequential(model_layers, seed=0).build()
    plots.plot_first_layer_weights(model, tmp_path / "first_layer.png")
    assert_png(tmp_path / "first_layer.png", min_size=(200, 150))


def test_layer_outputs_run_every_layer_unfused():
    model = tiny_cnn()
    x, _ = random_batch(model, num=1)
    outputs = plots.layer_outputs(model, x[0])
    assert [layer for layer, _ in outputs] == model.layers
    shapes = [output.shape for _, output in outputs]
    assert shapes == [(10, 10, 4), (10, 10, 4), (5, 5, 4), (100,), (10,)]
    np.testing.assert_allclose(outputs[-1][1], model.predict(x)[0], rtol=1e-5)


def test_batch_gradients_match_the_model_and_leave_it_unchanged():
    model = tiny_cnn()
    x, y = random_batch(model)
    normalization = model.layers[1]
    before = {key: value.copy() for key, value in normalization.state.items()}
    gradients = plots.batch_gradients(model, x, y)
    for key, value in before.items():  # the moving statistics are put back
        np.testing.assert_array_equal(normalization.state[key], value)
    model.compute_gradients(x, y, training=True)
    for layer in model.layers:
        for key, grad in layer.grads.items():
            np.testing.assert_allclose(gradients[layer.name][key], grad, rtol=1e-5, atol=1e-8)
    assert set(gradients) == {layer.name for layer in model.layers if layer.params}


def test_batch_gradients_need_a_compiled_model():
    model = Sequential([layers.Input((4,)), layers.Dense(2)], seed=0).build()
    with pytest.raises(HandnetError, match="compile"):
        plots.batch_gradients(model, np.zeros((2, 4), np.float32), np.zeros(2, int))


def test_pictures_of_a_diverged_model(tmp_path):
    """NaN weights (a learning rate far too high) still give pictures, not a crash."""
    model = tiny_mlp()
    model.layers[0].params["kernel"][:5] = np.nan
    x, y = random_batch(model)
    plots.plot_first_layer_weights(model, tmp_path / "first_layer.png")
    plots.plot_feature_maps(model, x[0], tmp_path / "feature_maps.png")
    plots.plot_weight_histograms(model, tmp_path / "histograms.png")
    for name in ("first_layer.png", "feature_maps.png", "histograms.png"):
        assert_png(tmp_path / name, min_size=(300, 200))


# -- the command line: train --plots, evaluate --plots, handnet plot ------------------------


class FakeMnist:
    """Stands in for handnet.datasets.mnist: random 28×28 digits, no download."""

    @staticmethod
    def load_data(data_dir=None, verbose=False):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (312, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, 312)
        return (images[:300], labels[:300]), (images[300:], labels[300:])


@pytest.fixture(scope="module")
def fake_training(tmp_path_factory):
    """handnet train on FakeMnist, its pictures sent to a folder of their own. The drawing is
    stubbed (each picture is drawn for real by the tests above): this checks where they go."""
    folder = tmp_path_factory.mktemp("train")
    drawn = []

    def draw(*args, **kwargs):
        path = next(arg for arg in args if isinstance(arg, Path) and arg.suffix == ".png")
        path.write_bytes(b"PNG")
        drawn.append(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(common.DATASETS, "mnist", Dataset("Fake MNIST", FakeMnist))
        for name in plots.__all__:
            if name.startswith("plot_"):
                patch.setattr(plots, name, draw)
        status, out, err = run_cli(
            [
                "train",
                "--epochs",
                2,
                "--batch-size",
                50,
                "--out",
                folder / "run",
                "--plots",
                folder / "pictures",
                "-q",
            ]
        )
    return {"status": status, "out": out, "err": err, "folder": folder, "drawn": drawn}


def test_train_writes_its_pictures_where_asked(fake_training):
    assert fake_training["status"] == 0, fake_training["err"]
    folder = fake_training["folder"]
    assert sorted(path.name for path in (folder / "run").iterdir()) == sorted(train.DATA_FILES)
    assert fake_training["drawn"] == [folder / "pictures" / name for name in train.PLOT_FILES]
    results = json.loads((folder / "run" / "results.json").read_text())
    assert results["files"] == list(train.DATA_FILES)
    assert results["plots"] == str(folder / "pictures")
    assert f"Wrote {folder / 'pictures'}/: curves.png" in fake_training["out"]


def test_evaluate_writes_every_picture(tmp_path):
    model = tmp_path / "model.npz"
    tiny_mlp().save(model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(common.DATASETS, "mnist", Dataset("Fake MNIST", FakeMnist))
        status, out, err = run_cli(["evaluate", model, "--plots", tmp_path / "pictures"])
    assert status == 0, err
    for name in common.TEST_SET_PLOTS + common.MODEL_PLOTS:
        assert_png(tmp_path / "pictures" / name, min_size=(300, 200))
    assert "feature_maps.png" in out


def test_plot_command_redraws_the_curves(fake_training, tmp_path):
    history = fake_training["folder"] / "run" / "history.json"
    status, out, err = run_cli(["plot", history, "--out", tmp_path, "--title", "again"])
    assert status == 0, err
    assert_png(tmp_path / "curves.png")
    assert "2 epochs" in out


def test_plot_command_reads_a_bare_history_next_to_it(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps(HISTORY))
    status, _, err = run_cli(["plot", tmp_path / "history.json"])
    assert status == 0, err
    assert_png(tmp_path / "curves.png")


@pytest.mark.parametrize(
    "text, fragment",
    [
        (None, "no such file"),
        ("{not json", "not a JSON history"),
        ('{"history": {"accuracy": [0.5]}}', "one loss per epoch"),
        ('{"loss": []}', "no epoch"),
        ('{"loss": [1.0, 0.5], "val_loss": [1.0]}', "'val_loss' should have one value per epoch"),
        ('{"loss": [1.0, "x"]}', "should hold numbers"),
    ],
)
def test_plot_command_explains_a_bad_history(tmp_path, text, fragment):
    path = tmp_path / "history.json"
    if text is not None:
        path.write_text(text)
    status, _, err = run_cli(["plot", path])
    assert status == 2 and "Traceback" not in err
    assert err.startswith("handnet: error: ") and fragment in err, err
    assert not (tmp_path / "curves.png").exists()
