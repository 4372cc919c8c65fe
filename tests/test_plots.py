"""plots: each figure is written, non-empty, and a PNG that Pillow reads."""

import numpy as np
import pytest
from PIL import Image

from handnet import plots


def assert_png(path, min_size=(400, 300)):
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        assert image.width >= min_size[0] and image.height >= min_size[1]


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
    plots.plot_misclassified(images.reshape(len(images), 784), labels, probabilities, path)
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
