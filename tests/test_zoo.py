"""handnet.zoo.recipes.train, the one way the commands train: it counts the validation split
exactly as Model.fit cuts it (int(N·(1 - split)), handnet.training.epochs.split_point)."""

import contextlib
import io
import json

import numpy as np
import pytest

from handnet import cli, plots
from handnet.cli import common
from handnet.datasets import Dataset
from handnet.errors import HandnetError
from handnet.training import loop
from handnet.zoo import architectures, recipes


def test_the_split_is_counted_as_fit_cuts_it():
    # 1234 · 0.9 = 1110.6: fit trains on int() = 1110; round(1234 · 0.1) = 123 would say 1111.
    assert recipes.split_counts(1234, 0.1) == {"train": 1110, "validation": 124}
    assert recipes.split_counts(1234, 0.0) == {"train": 1234, "validation": 0}
    with pytest.raises(HandnetError, match="at least one"):
        recipes.split_counts(1, 0.1)


class Fake1300:
    """1300 random training digits and 20 test ones, no download."""

    @staticmethod
    def load_data(data_dir=None, verbose=False):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (1320, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, 1320)
        return (images[:1300], labels[:1300]), (images[1300:], labels[1300:])


def test_train_limit_1234_reports_the_1110_images_fit_trains_on(tmp_path, monkeypatch):
    monkeypatch.setitem(common.DATASETS, "mnist", Dataset("Fake", Fake1300))
    for name in plots.__all__:
        if name.startswith("plot_"):
            monkeypatch.setattr(plots, name, lambda *args, **kwargs: None)
    trained = []
    real_step = loop.train_step

    def counting_step(model, split, x_batch, y_batch, *args):
        trained.append(len(y_batch[0]))
        return real_step(model, split, x_batch, y_batch, *args)

    monkeypatch.setattr(loop, "train_step", counting_step)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # Batches of 111: 1110 images make 10 steps, 1111 would make 11.
        status = cli.main(
            ["train", "--train-limit", "1234", "--epochs", "1", "--batch-size", "111",
             "--out", str(tmp_path), "-q"]
        )
    assert status == 0
    assert sum(trained) == 1110 and len(trained) == 10
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["images"] == {"train": 1110, "validation": 124, "test": 20}
    assert results["steps_per_epoch"] == 10
    assert "1,110 training, 124 validation" in out.getvalue()


def test_train_returns_the_run_it_did():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 200)
    recipe = recipes.TrainingRecipe(epochs=2, batch_size=32, learning_rate=1e-3)
    model = architectures.build("mlp", seed=0)
    run = recipes.train(recipe, (images, labels), model, validation_split=0.25, seed=0)
    assert run.model is model and run.diverged is None
    assert run.images == {"train": 150, "validation": 50} and run.steps_per_epoch == 5
    assert run.history.epoch == [0, 1] and "val_accuracy" in run.history.history
    assert model.optimizer.iterations == 10  # the schedule was sized to these steps
