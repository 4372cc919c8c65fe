"""The handnet command, run in-process through cli.main (plus one real subprocess)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from handnet import cli, layers
from handnet.preprocess import prepare_images
from handnet.zoo import architectures, recipes
from handnet.errors import HandnetError
from handnet.saving import load_model
from cli_run import assert_clean_error, run


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("untrained") / "mlp.npz"
    architectures.build("mlp", seed=0).save(path)
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One quick training: 1 epoch on the first 2,000 MNIST images (1,800 train, 200 validation).
    A smaller batch and a higher learning rate than the recipe's give ~57 steps that get far."""
    folder = tmp_path_factory.mktemp("run")
    status, out, err = run(
        [
            "train",
            "--model",
            "mlp",
            "--epochs",
            1,
            "--train-limit",
            2000,
            "--batch-size",
            32,
            "--lr",
            0.003,
            "--out",
            folder / "run",
            "--json",
            folder / "figures.json",
            "-q",
        ]
    )
    return {
        "status": status,
        "out": out,
        "err": err,
        "folder": folder / "run",
        "json": folder / "figures.json",
    }


# -- architectures: what train builds ------------------------------------------------------


def test_mlp_architecture_and_its_small_copy():
    model = architectures.build("mlp", seed=3)
    assert model.input_shape == (784,) and model.output_shape == (10,)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert [layer.units for layer in model.layers if hasattr(layer, "units")] == [256, 128, 10]
    again = architectures.build("mlp", seed=3)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    small = architectures.build("mlp", seed=3, small=True)
    assert [type(layer) for layer in small.layers] == [type(layer) for layer in model.layers]
    assert small.count_params() < 100


def test_prepare_images_follows_the_input_shape():
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28) % 256
    images = images.astype(np.uint8)
    flat = prepare_images(images, (784,))
    assert flat.shape == (2, 784) and flat.dtype == np.float32
    assert flat.max() == 1 and flat[0, 1] == np.float32(1 / 255)
    assert prepare_images(images, (28, 28, 1)).shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match="cannot feed"):
        prepare_images(images, (100,))


# onecycle rises first, on purpose: tests/test_schedules.py checks it.
@pytest.mark.parametrize("schedule", [s for s in recipes.SCHEDULE_NAMES if s != "onecycle"])
def test_schedules_start_at_the_learning_rate_and_never_rise(schedule):
    optimizer = recipes.make_optimizer("adam", 0.01, schedule, total_steps=90)
    rates = [optimizer.schedule(step) for step in range(90)]
    assert rates[0] == pytest.approx(0.01)
    assert all(later <= earlier + 1e-15 for earlier, later in zip(rates, rates[1:]))


def test_warmup_rises_then_decays_and_needs_the_cosine_schedule():
    optimizer = recipes.make_optimizer("sgd", 0.1, "cosine", total_steps=100, warmup_steps=10)
    assert optimizer.schedule(0) == 0 and optimizer.schedule(10) == pytest.approx(0.1)
    assert optimizer.schedule(99) < 0.001
    with pytest.raises(HandnetError, match="cosine"):
        recipes.make_optimizer("sgd", 0.1, "step", total_steps=100, warmup_steps=10)


# -- train --------------------------------------------------------------------------------


@pytest.mark.mnist
def test_train_writes_every_file_and_reaches_a_sensible_accuracy(trained_run):
    assert trained_run["status"] == 0, trained_run["err"]
    folder = trained_run["folder"]
    for name in cli.RUN_FILES:
        assert (folder / name).stat().st_size > 0, name
    for name in ("curves.png", "confusion.png", "misclassified.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG"
    results = json.loads((folder / "results.json").read_text())
    assert results == json.loads(trained_run["json"].read_text())
    assert results["test_accuracy"] > 0.8
    assert results["images"] == {"train": 1800, "validation": 200, "test": 10000}
    assert results["epochs"] == 1 and results["settings"]["batch_size"] == 32
    assert np.sum(results["confusion_matrix"]) == 10000
    history = json.loads((folder / "history.json").read_text())["history"]
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    out = trained_run["out"]
    assert f"test accuracy {results['test_accuracy']:.2%}" in out
    assert "images/s" in out and f"Wrote {folder}/" in out


@pytest.mark.mnist
def test_saved_model_reloads_with_the_reported_accuracy(trained_run):
    results = json.loads((trained_run["folder"] / "results.json").read_text())
    status, out, err = run(
        [
            "evaluate",
            trained_run["folder"] / "model.npz",
            "--json",
            trained_run["folder"] / "eval.json",
        ]
    )
    assert status == 0, err
    evaluated = json.loads((trained_run["folder"] / "eval.json").read_text())
    assert evaluated["test_accuracy"] == results["test_accuracy"]
    assert evaluated["test_loss"] == pytest.approx(results["test_loss"], rel=1e-6)
    assert f"accuracy {results['test_accuracy']:.2%}" in out


@pytest.mark.mnist
def test_evaluate_writes_plots_on_request(trained_run, tmp_path):
    status, _, err = run(
        ["evaluate", trained_run["folder"] / "model.npz", "--plots", tmp_path / "plots"]
    )
    assert status == 0, err
    for name in ("confusion.png", "misclassified.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 0


@pytest.mark.mnist
def test_predict_reads_a_digit_from_png_files(trained_run, tmp_path):
    """A test digit the model gets right, saved as a 28×28 PNG and as a 280×280 dark-on-light
    PNG, is read as the same digit through preprocessing."""
    from handnet.datasets import mnist

    _, (x_test, y_test) = mnist.load_data(verbose=False)
    model = load_model(trained_run["folder"] / "model.npz")
    probabilities = model.predict(prepare_images(x_test[:50], model.input_shape))
    confident = np.flatnonzero(
        (probabilities.argmax(axis=1) == y_test[:50]) & (probabilities.max(axis=1) > 0.9)
    )
    index = int(confident[0])
    digit = int(y_test[index])
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    Image.fromarray(x_test[index]).save(small)
    Image.fromarray(255 - x_test[index]).resize((280, 280), Image.Resampling.BICUBIC).save(large)

    status, out, err = run(
        [
            "predict",
            trained_run["folder"] / "model.npz",
            small,
            large,
            "--json",
            tmp_path / "p.json",
        ]
    )
    assert status == 0, err
    predictions = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert [p["prediction"] for p in predictions] == [digit, digit]
    for p in predictions:
        assert len(p["probabilities"]) == 10 and sum(p["probabilities"]) == pytest.approx(
            1, abs=1e-5
        )
    assert f"{small}: {digit}" in out and f"{large}: {digit}" in out


@pytest.mark.mnist
def test_train_with_no_plots_writes_the_model_and_results_and_no_picture(tmp_path):
    status, out, err = run(["train", "--model", "mlp", "--epochs", 1, "--train-limit", 300,
                            "--out", tmp_path / "run", "--json", tmp_path / "r.json",
                            "--no-plots", "-q"])
    assert status == 0, err
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == ["history.json", "model.npz", "results.json"], written
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["plots"] is None and 0 < results["test_accuracy"] <= 1


@pytest.mark.mnist
def test_train_with_no_plots_never_imports_matplotlib(tmp_path):
    """matplotlib takes half a second to import: the speed run (train --no-plots) must not."""
    script = (
        "import sys; from handnet import cli; "
        f"status = cli.main(['train', '--model', 'mlp', '--epochs', '1', '--train-limit', '300', "
        f"'--out', {str(tmp_path / 'run')!r}, '--no-plots', '-q']); "
        "print(status, sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["0", "[]"], done.stdout[-500:]


def test_train_fails_fast_on_an_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = run(["train", "--epochs", 1, "--out", blocker / "run"])
    assert_clean_error(status, err, str(blocker))


def test_train_refuses_a_bad_validation_split(tmp_path):
    status, _, err = run(["train", "--validation-split", 1.5, "--out", tmp_path])
    assert_clean_error(status, err, "--validation-split")


def test_unknown_options_are_usage_errors():
    status, _, err = run(["train", "--model", "transformer"])
    assert status == 2 and "invalid choice" in err
    status, _, err = run(["train", "--epochs", 0])
    assert status == 2 and "expected a whole number" in err


# -- predict, evaluate: bad paths ---------------------------------------------------------


def test_predict_missing_image(untrained_model, tmp_path):
    status, out, err = run(["predict", untrained_model, tmp_path / "missing.png"])
    assert_clean_error(status, err, "missing.png", "no such file")
    assert out == ""


def test_predict_unreadable_image(untrained_model, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    status, _, err = run(["predict", untrained_model, path])
    assert_clean_error(status, err, "notes.png", "not an image")


def test_predict_blank_image(untrained_model, tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(path)
    status, _, err = run(["predict", untrained_model, path])
    assert_clean_error(status, err, "blank.png", "no ink found")


def test_predict_answers_every_readable_image_and_names_the_others(untrained_model, tmp_path):
    """One blank and one missing image among good ones: the good ones are answered (stdout and
    --json), each bad one named on its own stderr line, exit status 2."""
    good, blank = tmp_path / "good.png", tmp_path / "blank.png"
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    Image.fromarray(digit).save(good)
    Image.new("L", (40, 40), 255).save(blank)
    missing = tmp_path / "missing.png"
    status, out, err = run(
        ["predict", untrained_model, good, blank, missing, good, "--json", tmp_path / "p.json"]
    )
    assert status == 2 and "Traceback" not in err
    assert out.count(f"{good}: ") == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("handnet: error: ") for line in lines), err
    assert "blank.png" in lines[0] and "no ink found" in lines[0]
    assert "missing.png" in lines[1] and "no such file" in lines[1]
    written = json.loads((tmp_path / "p.json").read_text())
    assert [p["image"] for p in written["predictions"]] == [str(good)] * 2
    assert [e["image"] for e in written["errors"]] == [str(blank), str(missing)]


def test_predict_missing_model(tmp_path):
    path = tmp_path / "digit.png"
    Image.new("L", (40, 40), 0).save(path)
    status, _, err = run(["predict", tmp_path / "nope.npz", path])
    assert_clean_error(status, err, "nope.npz")


def test_evaluate_missing_or_broken_model(tmp_path):
    status, _, err = run(["evaluate", tmp_path / "nope.npz"])
    assert_clean_error(status, err, "nope.npz")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    status, _, err = run(["evaluate", broken])
    assert_clean_error(status, err, "broken.npz")


# -- summary ------------------------------------------------------------------------------


def test_summary_of_an_architecture_and_of_a_saved_model(untrained_model, tmp_path):
    status, by_name, _ = run(["summary", "mlp", "--json", tmp_path / "s.json"])
    assert status == 0
    assert "Total params: 235,146" in by_name and "Dense" in by_name
    assert json.loads((tmp_path / "s.json").read_text())["total_parameters"] == 235_146
    status, from_file, _ = run(["summary", untrained_model])
    assert status == 0 and "Total params: 235,146" in from_file


def test_summary_of_something_unknown(tmp_path):
    status, _, err = run(["summary", "transformer"])
    assert_clean_error(status, err, "'transformer' is neither a model file nor an architecture")
    status, _, err = run(["summary", tmp_path / "missing.npz"])
    assert_clean_error(status, err, "missing.npz")


# -- gradcheck ----------------------------------------------------------------------------


def test_every_layer_type_has_a_gradcheck_entry():
    """A new layer type must come with a way to check its gradients (handnet.cli.LAYER_CHECKS)."""
    assert sorted(set(layers.LAYERS) - set(cli.LAYER_CHECKS)) == []


def test_gradcheck_passes_and_reports_every_layer(tmp_path):
    status, out, err = run(["gradcheck", "--json", tmp_path / "g.json"])
    assert status == 0, out + err
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["passed"] and report["unchecked"] == []
    names = {check["name"] for check in report["checks"]}
    assert {f"layer {name}" for name in cli.LAYER_CHECKS if name in layers.LAYERS} <= names
    assert any(name.startswith("model mlp") for name in names)
    assert "checks passed" in out
    status, _, _ = run(["gradcheck", "--model", "mlp-small"])
    assert status == 0


def test_gradcheck_exits_1_when_a_backward_pass_is_wrong(monkeypatch):
    class WrongDense(layers.Dense):
        def backward_pre_activation(self, dz):
            dx = super().backward_pre_activation(dz)
            self.grads["kernel"] *= 1.01  # a 1 % error, far above the tolerance
            return dx

    broken = cli.LayerCheck(lambda: WrongDense(3), (4,))
    monkeypatch.setitem(cli.LAYER_CHECKS, "Dense", broken)
    status, out, _ = run(["gradcheck"])
    assert status == 1
    assert "FAIL" in out and "layer Dense" in out.split("FAILED:")[1]


def test_gradcheck_reports_layer_types_it_cannot_check(monkeypatch, tmp_path):
    monkeypatch.delitem(cli.LAYER_CHECKS, "Flatten")
    status, out, _ = run(["gradcheck", "--json", tmp_path / "g.json"])
    assert status == 0
    assert "not checked (no entry in handnet.cli.LAYER_CHECKS): Flatten" in out
    assert json.loads((tmp_path / "g.json").read_text())["unchecked"] == ["Flatten"]


def test_gradcheck_unknown_architecture():
    status, _, err = run(["gradcheck", "--model", "transformer"])
    assert_clean_error(status, err, "unknown architecture 'transformer'")


# -- the real command ---------------------------------------------------------------------


def test_python_dash_m_handnet_help():
    done = subprocess.run(
        [sys.executable, "-m", "handnet", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("train", "evaluate", "predict", "summary", "gradcheck"):
        assert command in done.stdout


def test_explain_prints_every_layer_with_its_formula_and_shapes(capsys, tmp_path):
    from handnet import cli

    assert cli.main(["explain", "--model", "cnn", "--json", str(tmp_path / "e.json")]) == 0
    text = capsys.readouterr().out
    assert "(N, 28, 28, 1) → (N, 26, 26, 32)" in text
    assert "(N, 13, 13, 32) → (N, 11, 11, 64)" in text
    assert "y[n,i,j,f] = relu(b[f] + Σ_(u,v,c) x[n, i+u, j+v, c] · K[u,v,c,f])" in text
    assert "34,826 weights in all" in text
    table = json.loads((tmp_path / "e.json").read_text())["layers"]
    assert [row["class_name"] for row in table][:2] == ["Conv2D", "MaxPooling2D"]
