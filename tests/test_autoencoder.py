"""The ``autoencoder`` architecture (handnet.zoo.autoencoder): its shape, its gradients, a tiny
training, the "reconstruct" task of the recipes, and the commands that train, evaluate, explain
and refuse it; and the benchmark's PyTorch and Keras twins of it."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handnet import layers
from handnet.cli import common, train
from handnet.datasets import Dataset
from handnet.errors import HandnetError
from handnet.gradcheck import gradcheck
from handnet.preprocess import prepare_images
from handnet.serve import ModelRegistry
from handnet.zoo import architectures, autoencoder, recipes
from cli_run import assert_clean_error, run

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


# -- the network --------------------------------------------------------------------------


def test_strided_convolutions_down_to_a_code_and_transposed_ones_back_up():
    model = architectures.build("autoencoder", seed=0)
    assert model.input_shape == model.output_shape == (28, 28, 1)
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    assert shapes["encode1"] == (14, 14, 32) and shapes["encode2"] == (7, 7, 64)
    assert shapes["code"] == (16,) and shapes["unflatten"] == (7, 7, 64)
    assert shapes["decode1"] == (14, 14, 32) and shapes["decode2"] == (28, 28, 1)
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            assert layer.strides == (2, 2) and layer.padding == "same"
    assert isinstance(model.get_layer("decode2"), layers.Conv2DTranspose)
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    y = model.predict(x)
    assert y.shape == x.shape and np.all((y > 0) & (y < 1))  # the sigmoid: pixels in (0, 1)


def test_the_small_copy_has_the_same_layer_types_and_passes_the_gradient_check():
    small = architectures.build("autoencoder", seed=0, small=True)
    full = architectures.build("autoencoder")
    assert [type(layer) for layer in small.layers] == [type(layer) for layer in full.layers]
    assert small.input_shape == small.output_shape == (8, 8, 1)
    assert small.get_layer("code").output_shape == (2,)
    small.compile("sgd", "mean_squared_error", [])
    x = np.random.default_rng(0).random((4, 8, 8, 1))
    report = gradcheck(small, x, x, training=True)  # the targets are the inputs
    assert report.passed, report.rows
    checked = {row.layer for row in report.rows}
    assert {"encode1", "code", "expand", "decode1", "decode2"} <= checked


def test_gradcheck_command_checks_the_autoencoder_through_its_mse():
    status, out, err = run(["gradcheck", "--model", "autoencoder"])
    assert status == 0, err
    assert "model autoencoder (small) + loss" in out and "decode2/kernel" in out


def test_the_encoder_shares_the_weights_up_to_the_code():
    model = architectures.build("autoencoder", seed=0)
    encoder = autoencoder.encoder(model)
    assert encoder.output_shape == (16,)
    assert encoder.get_layer("code") is model.get_layer("code")
    x = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    by_hand = x
    for layer in model.layers[:4]:  # encode1, encode2, flatten, code
        by_hand = layer.forward(by_hand)
    np.testing.assert_allclose(encoder.predict(x), by_hand, rtol=1e-6, atol=1e-6)


def test_the_principal_plane_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    # codes spread mostly along two directions of a 5-D space
    codes = rng.standard_normal((400, 2)) * [3.0, 1.5] @ rng.standard_normal((2, 5))
    codes += 0.05 * rng.standard_normal((400, 5)) + 7.0
    points, shares = autoencoder.principal_plane(codes)
    values, vectors = np.linalg.eigh(np.cov(codes, rowvar=False))
    top = vectors[:, ::-1][:, :2]
    expected = (codes - codes.mean(axis=0)) @ top
    for k in range(2):  # each axis is fixed up to its sign
        sign = np.sign(points[:, k] @ expected[:, k])
        np.testing.assert_allclose(points[:, k], sign * expected[:, k], atol=1e-9)
    np.testing.assert_allclose(shares, values[::-1][:2] / values.sum(), rtol=1e-9)
    assert shares.sum() > 0.99
    with pytest.raises(HandnetError, match="expected codes"):
        autoencoder.principal_plane(codes[:, :1])


# -- the recipe's task --------------------------------------------------------------------


def test_the_recipe_reconstructs_and_refuses_what_does_not_fit():
    recipe = architectures.get("autoencoder").training
    assert recipe.task == "reconstruct" and recipe.augment is None
    with pytest.raises(HandnetError, match="augmentation is refused for a reconstruction"):
        recipes.TrainingRecipe(task="reconstruct", augment={"rotation": 10})
    with pytest.raises(HandnetError, match="label smoothing"):
        recipes.TrainingRecipe(task="reconstruct", label_smoothing=0.1)
    with pytest.raises(HandnetError, match="unknown task 'denoise'"):
        recipes.TrainingRecipe(task="denoise")
    images = np.zeros((20, 28, 28), dtype=np.uint8)
    with pytest.raises(HandnetError, match=r"outputs shaped as the inputs.*\(10,\)"):
        recipes.train(
            recipes.TrainingRecipe(task="reconstruct", epochs=1),
            (images, np.zeros(20, dtype=int)),
            architectures.build("mlp", seed=0),
        )


@pytest.mark.mnist
def test_a_tiny_training_rebuilds_digits_better_than_the_mean_digit():
    """300 MNIST digits, 20 epochs of 19 steps: measured (seeds 0, 1, 2) a validation MSE of
    0.031–0.034 from 0.10–0.11 at the first epoch's end; predicting the mean training digit for
    every image scores 0.064, so below 0.045 the code carries something of each digit."""
    from handnet.datasets import mnist

    (x, y), _ = mnist.load_data(verbose=False)
    x, y = x[:400], y[:400]
    model = architectures.build("autoencoder", seed=0)
    recipe = recipes.TrainingRecipe(
        epochs=20, batch_size=16, learning_rate=1e-3, task="reconstruct"
    )
    run_ = recipes.train(recipe, (x, y), model, validation_split=0.25, seed=0)
    history = run_.history.history
    assert "accuracy" not in history and "val_accuracy" not in history
    held_out = prepare_images(x[300:], model.input_shape)
    mean_digit = prepare_images(x[:300], model.input_shape).mean(axis=0)
    assert float(((held_out - mean_digit) ** 2).mean()) > 0.06
    assert history["val_loss"][-1] < 0.045 < history["val_loss"][0]
    reconstructions = model.predict(held_out)
    assert float(((reconstructions - held_out) ** 2).mean()) == pytest.approx(
        history["val_loss"][-1], rel=1e-5
    )


# -- the commands -------------------------------------------------------------------------


class FakeDigits:
    """260 random training images and 30 test ones (three of each class), no download."""

    @staticmethod
    def load_data(data_dir=None, verbose=False):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (290, 28, 28), dtype=np.uint8)
        labels = np.concatenate([rng.integers(0, 10, 260), np.repeat(np.arange(10), 3)])
        return (images[:260], labels[:260]), (images[260:], labels[260:])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """handnet train --model autoencoder on FakeDigits, one epoch."""
    folder = tmp_path_factory.mktemp("autoencoder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(common.DATASETS, "mnist", Dataset("Fake", FakeDigits))
        status, out, err = run(
            ["train", "--model", "autoencoder", "--epochs", 1, "--batch-size", 64,
             "--out", folder / "run", "--json", folder / "results.json", "-q"]
        )
    return {"status": status, "out": out, "err": err, "folder": folder / "run",
            "json": folder / "results.json"}


def test_train_writes_the_reconstruction_files_and_no_classifier_picture(trained):
    assert trained["status"] == 0, trained["err"]
    folder = trained["folder"]
    expected = [*train.DATA_FILES, *train.RECONSTRUCTION_PLOT_FILES]
    assert sorted(path.name for path in folder.iterdir()) == sorted(expected)
    for name in ("reconstructions.png", "embedding.png", "curves.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.width > 400
    results = json.loads((folder / "results.json").read_text())
    assert results == json.loads(trained["json"].read_text())
    assert results["task"] == "reconstruct" and results["files"] == expected
    assert "test_accuracy" not in results and "confusion_matrix" not in results
    assert 0 < results["test_mse"] == results["test_loss"] < 1
    assert results["embedding"]["kind"] == "pca" and results["embedding"]["code_units"] == 16
    assert 0 < sum(results["embedding"]["variance_shares"]) <= 1
    assert results["images"] == {"train": 234, "validation": 26, "test": 30}
    history = json.loads((folder / "history.json").read_text())["history"]
    assert set(history) == {"loss", "val_loss", "learning_rate", "seconds"}
    assert results["final_epoch"]["val_loss"] == history["val_loss"][-1]
    out = trained["out"]
    assert f"test MSE {results['test_mse']:.5f}" in out and "accuracy" not in out
    assert f"Wrote {folder}/: {' '.join(expected)}; and {trained['json']}" in out


def test_train_refuses_to_augment_a_reconstruction_before_loading_data(tmp_path):
    status, _, err = run(["train", "--model", "autoencoder", "--augment", "--out", tmp_path])
    assert_clean_error(status, err, "augmentation is refused for a reconstruction")


def test_evaluate_reports_the_mse_of_a_saved_autoencoder(trained, tmp_path):
    results = json.loads((trained["folder"] / "results.json").read_text())
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(common.DATASETS, "mnist", Dataset("Fake", FakeDigits))
        status, out, err = run(
            ["evaluate", trained["folder"] / "model.npz", "--plots", tmp_path / "pictures",
             "--json", tmp_path / "eval.json"]
        )
    assert status == 0, err
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["task"] == "reconstruct" and "test_accuracy" not in evaluated
    assert evaluated["test_mse"] == pytest.approx(results["test_mse"], rel=1e-6)
    assert f"mean squared error per pixel {results['test_mse']:.5f}" in out
    pictures = [*common.RECONSTRUCTION_PLOTS, *common.MODEL_PLOTS]
    assert sorted(path.name for path in (tmp_path / "pictures").iterdir()) == sorted(pictures)
    assert f"Wrote {tmp_path / 'pictures'}/: {' '.join(pictures)}" in out


def test_predict_refuses_an_autoencoder(trained, tmp_path):
    picture = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(picture)
    status, _, err = run(["predict", trained["folder"] / "model.npz", picture])
    assert_clean_error(status, err, "autoencoder", "predict needs a classifier")


def test_serve_refuses_an_autoencoder(trained):
    with pytest.raises(HandnetError, match=r"expected a digit classifier.*output \(28, 28, 1\)"):
        ModelRegistry.from_path(trained["folder"] / "model.npz")


def test_experiment_refuses_an_autoencoder():
    status, _, err = run(["experiment", "--set", "model=autoencoder", "--dry-run"])
    assert_clean_error(status, err, "compares classifiers", "handnet train --model autoencoder")


def test_summary_and_explain_describe_the_autoencoder():
    status, out, err = run(["summary", "autoencoder"])
    assert status == 0, err
    assert "decode1 (Conv2DTranspose)" in out and "unflatten (Reshape)" in out
    status, out, err = run(["explain", "--model", "autoencoder"])
    assert status == 0, err
    assert "the adjoint of Conv2D" in out and "(N, 14, 14, 32) → (N, 28, 28, 1)" in out


def test_the_curves_of_a_reconstruction_have_no_accuracy_panel(trained, tmp_path):
    status, out, err = run(["plot", trained["folder"] / "history.json", "--out", tmp_path])
    assert status == 0, err
    with Image.open(tmp_path / "curves.png") as alone, Image.open(
        trained["folder"] / "curves.png"
    ) as written:
        assert alone.size == written.size and alone.width < 900  # one panel, not two


# -- the benchmark's twins ----------------------------------------------------------------


@pytest.fixture(scope="module")
def twins():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("twins")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_pytorch_twin_computes_what_handnet_does(twins, torch):
    model = architectures.build("autoencoder", seed=0)
    net = twins.torch_twin(model)
    weighted = [m for m in net if hasattr(m, "weight")]
    with_weights = [layer for layer in model.layers if layer.params]
    assert len(weighted) == len(with_weights)
    with torch.no_grad():
        for module, layer in zip(weighted, with_weights):
            kernel = torch.from_numpy(layer.params["kernel"])
            # Conv2d (out, in, kh, kw) and ConvTranspose2d (in, out, kh, kw) from handnet's
            # (kh, kw, in, out) and (kh, kw, out, in): the same permutation; Linear (out, in).
            module.weight.copy_(kernel.T if kernel.ndim == 2 else kernel.permute(3, 2, 0, 1))
            module.bias.copy_(torch.from_numpy(layer.params["bias"]))
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    with torch.no_grad():
        y = net(twins.torch_input(x)).permute(0, 2, 3, 1).numpy()
    assert y.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(y, model.predict(x), atol=2e-6)


def test_the_keras_twin_computes_what_handnet_does(twins, keras):
    model = architectures.build("autoencoder", seed=0)
    twin = twins.keras_twin(model)
    assert [tuple(layer.output.shape[1:]) for layer in twin.layers] == [
        layer.output_shape for layer in model.layers
    ]
    twin.set_weights(model.get_weights())
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    y = twin.predict(x, verbose=0)
    np.testing.assert_allclose(y, model.predict(x), atol=2e-6)
