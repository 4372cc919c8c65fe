"""handnet experiment: grids of runs on a small MNIST subset, resuming, reports, and bad specs;
the same grid on a Dask LocalCluster."""

import csv
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import handnet as hn
from handnet.cli import main
from handnet.errors import HandnetError
from handnet.experiments import Experiment, run_experiment, run_name
from handnet.experiments.training import build_model
from handnet.layers import Dropout
from handnet.experiments.spec import parse_assignment

pytestmark = pytest.mark.mnist

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# Seconds per run: 180 training images, 20 validation, a network with 8 hidden units.
TINY = {
    "hidden": "8",
    "optimizer": "sgd",
    "schedule": "constant",
    "dropout": 0,
    "batch_size": 60,
    "epochs": 2,
    "train_limit": 200,
}
# A linear hidden layer and an absurd learning rate: the weights overflow, the loss turns NaN.
DIVERGING = "activation=linear_lr=1e+30"


def tiny_experiment(**grid):
    experiment = Experiment(title="tiny")
    for name, value in TINY.items():
        experiment.fix(name, value, where="test")
    for name, values in grid.items():
        experiment.vary(name, values, where="test")
    return experiment


def strict_json(path):
    """JSON as the standard has it: NaN and Infinity are not JSON."""
    return json.loads(Path(path).read_text(), parse_constant=lambda name: pytest.fail(name))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Four runs, one of them diverging, trained by two worker processes."""
    out = tmp_path_factory.mktemp("experiment") / "grid"
    experiment = tiny_experiment(activation=["relu", "linear"], lr=["0.1", "1e30"])
    lines = []
    results = run_experiment(experiment, out, jobs=2, print_fn=lines.append)
    return experiment, out, results, lines


def test_every_run_has_a_folder_named_after_its_values(finished):
    experiment, out, results, lines = finished
    names = [
        "activation=relu_lr=0.1",
        "activation=relu_lr=1e+30",
        "activation=linear_lr=0.1",
        DIVERGING,
    ]
    assert [result["run"] for result in results] == names
    for name in names:
        assert strict_json(out / name / "result.json")["run"] == name
        assert strict_json(out / name / "history.json")["batch_loss"]
    assert len(lines) == 4 and all(line.startswith("[") for line in lines)


def test_a_diverging_run_is_recorded_not_raised(finished):
    _, out, results, _ = finished
    result = strict_json(out / DIVERGING / "result.json")
    assert result["diverged"] and result["diverged_at"]["epoch"] == 1
    assert result["test_accuracy"] is None
    converged = strict_json(out / "activation=linear_lr=0.1" / "result.json")
    assert not converged["diverged"] and 0 < converged["test_accuracy"] <= 1


def test_tables_are_written_and_parse(finished):
    _, out, results, _ = finished
    table = strict_json(out / "results.json")
    assert table["varied"] == ["activation", "lr"]
    assert [row["run"] for row in table["runs"]] == [result["run"] for result in results]
    assert table["fixed"]["hidden"] == [8]
    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["lr"] for row in rows] == ["0.1", "1e+30", "0.1", "1e+30"]
    assert [row["diverged"] for row in rows][-1] == "True"
    markdown = (out / "results.md").read_text()
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + 4
    assert "| linear | 1e+30 |" in markdown and "yes, epoch 1" in markdown


def test_plots_are_written_and_readable(finished):
    _, out, _, _ = finished
    for name in ("accuracy.png", "loss.png"):
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.width > 500 and image.height > 300
            darkest, lightest = image.convert("L").getextrema()
            assert lightest - darkest > 100  # something drawn on the white


def test_finished_runs_are_skipped_and_a_deleted_one_reruns(finished, tmp_path):
    experiment, original, _, _ = finished
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    lines = []
    run_experiment(experiment, out, jobs=1, print_fn=lines.append)
    assert len(lines) == 4 and all(line.endswith("skipped: done") for line in lines)

    kept = (out / DIVERGING / "result.json").stat().st_mtime_ns
    (out / "activation=relu_lr=0.1" / "result.json").unlink()
    lines = []
    run_experiment(experiment, out, jobs=1, print_fn=lines.append)
    rerun = [line for line in lines if not line.endswith("skipped: done")]
    assert len(rerun) == 1 and "activation=relu_lr=0.1:" in rerun[0]
    assert (out / "activation=relu_lr=0.1" / "result.json").exists()
    assert (out / DIVERGING / "result.json").stat().st_mtime_ns == kept


def test_a_folder_of_other_settings_is_not_taken_for_done(finished, tmp_path):
    _, original, _, _ = finished
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    changed = tiny_experiment(activation=["relu"], lr=["0.1"])
    changed.fix("epochs", 3, where="test")
    with pytest.raises(HandnetError, match="other settings \\(epochs differ\\)"):
        run_experiment(changed, out, jobs=1, print_fn=lambda line: None)


def test_command_line_runs_an_experiment(tmp_path, capsys):
    status = main([
        "experiment", "--vary", "hidden=4,6-4", "--set", "optimizer=sgd", "--epochs", "1",
        "--train-limit", "100", "--jobs", "1", "--out", str(tmp_path),
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "| 6-4 |" in printed and "results.md" in printed
    assert (tmp_path / "hidden=6-4" / "result.json").exists()


# What differs between two trainings of one grid: how long each took.
TIMES = ("train_seconds", "seconds")
CLI_TINY = [
    "--set", "hidden=8", "--set", "optimizer=sgd", "--set", "schedule=constant",
    "--set", "dropout=0", "--set", "batch_size=60", "--epochs", "2", "--train-limit", "200",
    "--vary", "activation=relu,linear", "--vary", "lr=0.1,1e30",
]


def without_times(data):
    """``data`` (a result, or results.json) with every time taken out."""
    if isinstance(data, dict):
        return {key: without_times(value) for key, value in data.items() if key not in TIMES}
    if isinstance(data, list):
        return [without_times(value) for value in data]
    return data


def table_without_times(text, separator):
    """results.md's table rows or results.csv's lines, split into cells, the time column out."""
    rows = [line.split(separator) for line in text.splitlines() if separator in line]
    header = next(row for row in rows if "train time (s)" in row or "train_seconds" in row)
    column = header.index("train time (s)" if "train time (s)" in header else "train_seconds")
    return [row[:column] + row[column + 1:] for row in rows]


def require_distributed():
    if importlib.util.find_spec("distributed") is None:
        reason = "distributed not installed: pip install -e '.[test]'"
        if os.environ.get("HANDNET_REQUIRE_ALL") == "1":
            pytest.fail(reason + " [HANDNET_REQUIRE_ALL=1: a missing resource fails]")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def dask_scheduler():
    """The address of a LocalCluster: two worker processes, one thread each."""
    require_distributed()
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def on_cluster(finished, dask_scheduler, tmp_path_factory):
    """``finished``'s grid again, on the Dask cluster."""
    experiment = finished[0]
    out = tmp_path_factory.mktemp("dask") / "grid"
    lines = []
    results = run_experiment(experiment, out, scheduler=dask_scheduler, print_fn=lines.append)
    return out, results, lines


def test_a_dask_cluster_gives_the_local_runners_folders_tables_and_plots(finished, on_cluster):
    _, local, local_results, _ = finished
    out, results, lines = on_cluster
    assert lines[0].endswith(": 2 workers, 2 threads")
    assert len(lines) == 5 and all(line.startswith("[") for line in lines[1:])
    assert without_times(results) == without_times(local_results)
    for result in local_results:
        for name in ("result.json", "history.json"):
            assert without_times(strict_json(out / result["run"] / name)) == without_times(
                strict_json(local / result["run"] / name)
            ), f"{result['run']}/{name}"
    assert strict_json(out / DIVERGING / "result.json")["diverged"]
    assert without_times(strict_json(out / "results.json")) == without_times(
        strict_json(local / "results.json")
    )
    for name, separator in (("results.md", " | "), ("results.csv", ",")):
        assert table_without_times((out / name).read_text(), separator) == table_without_times(
            (local / name).read_text(), separator
        ), name
    for name in ("experiment.json", "accuracy.png", "loss.png"):
        assert (out / name).read_bytes() == (local / name).read_bytes(), name


def test_a_rerun_on_the_cluster_skips_finished_runs(on_cluster, dask_scheduler, tmp_path, capsys):
    original, results, _ = on_cluster
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    kept = (out / DIVERGING / "result.json").stat().st_mtime_ns
    (out / "activation=relu_lr=0.1" / "result.json").unlink()
    assert main(
        ["experiment", *CLI_TINY, "--scheduler", dask_scheduler, "--out", str(out)]
    ) == 0
    printed = capsys.readouterr().out
    assert f"4 runs, on the Dask cluster at {dask_scheduler}" in printed
    progress = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(progress) == 4
    rerun = [line for line in progress if not line.endswith("skipped: done")]
    assert len(rerun) == 1 and "activation=relu_lr=0.1:" in rerun[0]
    assert without_times(strict_json(out / "activation=relu_lr=0.1" / "result.json")) == (
        without_times(results[0])
    )
    assert (out / DIVERGING / "result.json").stat().st_mtime_ns == kept


def test_jobs_and_a_scheduler_exclude_each_other(tmp_path, capsys):
    with pytest.raises(HandnetError, match="jobs=2 sets the local process pool"):
        run_experiment(tiny_experiment(), tmp_path, jobs=2, scheduler="tcp://127.0.0.1:8786")
    assert main(["experiment", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert "not allowed with argument --jobs" in capsys.readouterr().err


def test_a_scheduler_that_does_not_answer_is_a_clear_error(tmp_path):
    require_distributed()
    import dask

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(HandnetError, match=f"no Dask scheduler answered at '{address}'"):
            run_experiment(tiny_experiment(), tmp_path, scheduler=address, print_fn=print)


def test_without_distributed_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    with pytest.raises(HandnetError, match=r"pip install 'handnet\[cluster\]'"):
        run_experiment(tiny_experiment(), tmp_path, scheduler="tcp://127.0.0.1:8786")


def test_handnet_imports_distributed_only_for_a_scheduler():
    code = "import sys, handnet.cli, handnet.experiments; print('distributed' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_run_names_are_stable_and_readable():
    assert run_name({"activation": "relu", "lr": 0.1}) == "activation=relu_lr=0.1"
    assert run_name({"hidden": [256, 128], "batch_norm": True}) == "hidden=256-128_batch_norm=true"
    assert run_name({}) == "base"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda path: path.stem)
def test_the_shipped_experiments_are_valid(path):
    runs = Experiment.from_toml(path).runs()
    assert len(runs) >= 3 and len({run.name for run in runs}) == len(runs)


def test_the_three_experiments_are_shipped():
    assert {path.stem for path in EXPERIMENTS.glob("*.toml")} >= {
        "activations", "learning_rate", "capacity"
    }


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--vary", "lr"], "--vary expects SETTING=VALUE such as lr=0.01,0.1, got 'lr'"),
        (["--vary", "lrate=0.1"], "--vary: unknown setting 'lrate'; expected one of model,"),
        (["--vary", "lr=0.1,fast"], "--vary: lr expects a positive number, got 'fast'"),
        (["--vary", "lr=0.1,0.10"], "--vary: lr lists 0.1 more than once"),
        (["--vary", "activation=relu,swishy"], "activation expects an activation such as"),
        (["--set", "batch_norm=maybe"], "--set: batch_norm expects true or false, got 'maybe'"),
        (["--set", "hidden=256,0"], "hidden expects layer sizes such as 256,128"),
        (["--set", "model=cnn", "--set", "hidden=8"], "hidden applies to model mlp only"),
        (["--set", "train_limit=1"], "train_limit 1 with validation_split 0.1 leaves 0 images"),
    ],
)
def test_bad_settings_say_what_was_expected(arguments, message, capsys, tmp_path):
    assert main(["experiment", *arguments, "--dry-run", "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        ("[grid]\nlr = 0.1\n", "grid.lr expects a list of values such as [1, 2], got 0.1"),
        ("lr = 0.1\n", "unknown key lr; expected title, description, base, grid"),
        ("[base]\nepoch = 3\n", "base: unknown setting 'epoch'"),
        ("[base]\nepochs = 0\n", "base: epochs expects a whole number ≥ 1, got 0"),
        ("[grid]\nlr = []\n", "grid: lr needs at least one value to try"),
        ("[base]\nlr = 0.1\n[grid]\nlr = [1, 2]\n", "lr is in [base] and in [grid]"),
        ("[grid\n", "is not valid TOML"),
    ],
)
def test_bad_toml_says_what_was_expected(text, message, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(HandnetError) as raised:
        Experiment.from_toml(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_parse_assignment_keeps_commas_for_the_caller():
    assert parse_assignment("hidden=64,256-128", "--vary") == ("hidden", "64,256-128")


def test_a_graph_architecture_builds_for_an_experiment_with_its_settings():
    """resnet is a graph, not a list of layers: the grid's dropout and l2 reach its layers."""
    model = build_model({"model": "resnet", "seed": 0, "dropout": 0.3, "l2": 1e-4})
    assert isinstance(model, hn.Model) and model.output_shape == (10,)
    assert all(layer.rate == 0.3 for layer in model.layers if isinstance(layer, Dropout))
    kernels = [layer for layer in model.layers if hasattr(layer, "kernel_regularizer")]
    assert kernels and all(layer.kernel_regularizer is not None for layer in kernels)
    assert model.regularization_penalty() > 0
