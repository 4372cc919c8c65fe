"""One run of an experiment: build the network its config describes, train, test; and its folder.

``train_run`` is the code a worker runs, a local process or a Dask worker on another machine:
everything it needs comes in its arguments and everything it finds comes back in its return
value; it writes nothing. ``write_run`` is what the process that started the grid does with
that: it writes ``history.json``, then ``result.json``, in the run's folder. The result is
written last, so a folder with a result.json holds a finished run.
"""

import functools
import json
import math
import time
from pathlib import Path

import numpy as np

from .. import layers, regularizers
from ..atomic import write_bytes_atomic
from ..datasets import DATASETS
from ..model import Sequential
from ..preprocess import prepare_images
from ..training.callbacks import Callback
from ..zoo import architectures, recipes
from .settings import MLP_ONLY

RESULT_FILE = "result.json"
HISTORY_FILE = "history.json"


def build_model(config):
    """A built, uncompiled model for the run's settings (a Sequential, or a graph's Model).

    mlp is assembled by architectures.mlp_layers from hidden, activation, initializer, dropout
    and batch_norm; another architecture keeps its layers, with its Dropout rates replaced when
    the config sets dropout. l2 puts the penalty λ·Σw² on every kernel.
    """
    architecture = architectures.get(config["model"])
    graph = None
    if config["model"] == "mlp":
        options = {argument: config[name] for name, argument in MLP_ONLY.items()}
        made = architectures.mlp_layers(dropout=config["dropout"], **options)
    else:
        if isinstance(architecture, architectures.GraphArchitecture):  # resnet: not a chain
            graph = architectures.build(config["model"], seed=config["seed"])
            made = graph.layers
        else:
            made = architecture.make_layers()
        if config["dropout"] is not None:
            for layer in made:
                if isinstance(layer, layers.Dropout):
                    layer.rate = config["dropout"]
    if config["l2"]:
        for layer in made:
            if hasattr(layer, "kernel_regularizer"):
                layer.kernel_regularizer = regularizers.L2(config["l2"])
    if graph is not None:
        return graph
    model = Sequential(
        [layers.Input(architecture.input_shape), *made], name=config["model"], seed=config["seed"]
    )
    return model.build()


class _Recorder(Callback):
    """Keeps every epoch's logs and every step's loss, and where training stood when it stopped
    (``fit`` raises on a non-finite loss before the batch ends, so these survive a divergence)."""

    def __init__(self):
        self.epochs = []
        self.logs = {}
        self.batch_losses = []
        self.epoch = self.batch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.batch = epoch, 0

    def on_batch_end(self, batch, logs=None):
        self.batch = batch + 1
        self.batch_losses.append(float(logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        for key, value in (logs or {}).items():
            self.logs.setdefault(key, []).append(float(value))


def train_run(name, varied, requested, config):
    """Train and test one run; returns (result, history), the dicts that ``write_run`` writes
    to result.json and history.json. Only data crosses back: plain dicts, lists and numbers."""
    started = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = _load(config["dataset"])
    if config["train_limit"]:
        x_train, y_train = x_train[: config["train_limit"]], y_train[: config["train_limit"]]
    model = build_model(config)
    recipe = recipes.TrainingRecipe(
        optimizer=config["optimizer"],
        learning_rate=config["lr"],
        schedule=config["schedule"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
    )
    recorder = _Recorder()
    # A learning rate set too high on purpose overflows on its way to NaN: that is the result
    # being measured, not something to warn about.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        run = recipes.train(
            recipe,
            (x_train, y_train),
            model,
            validation_split=config["validation_split"],
            seed=config["seed"],
            callbacks=[recorder],
            keep_divergence=True,
        )
        diverged_at = None
        if run.diverged is not None:
            diverged_at = {"epoch": recorder.epoch + 1, "batch": recorder.batch + 1}
        x_test = prepare_images(x_test, model.input_shape)
        test = None if diverged_at else model.evaluate(x_test, y_test)

    history = {
        "epoch": recorder.epochs,
        "history": recorder.logs,
        "batch_loss": recorder.batch_losses,
        "steps_per_epoch": run.steps_per_epoch,
    }
    result = {
        "run": name,
        "varied": varied,
        "requested": requested,
        "config": config,
        "diverged": diverged_at is not None,
        "diverged_at": diverged_at,
        "epochs": len(recorder.epochs),
        "final": {key: values[-1] for key, values in recorder.logs.items()},
        "test_loss": None if test is None else test["loss"],
        "test_accuracy": None if test is None else test["accuracy"],
        "train_seconds": run.train_seconds,
        "seconds": time.perf_counter() - started,
        "parameters": model.count_params(),
        "images": {**run.images, "test": len(x_test)},
    }
    return result, history


def write_run(folder, result, history):
    """Write a run's history.json, then its result.json; returns the result as the file holds
    it (a NaN as None, tuples as lists), the same dict a later rerun reads back when it skips
    the run, so that a fresh report and a resumed one are made of the same values."""
    folder = Path(folder)
    write_json_atomic(folder / HISTORY_FILE, history)
    return json.loads(write_json_atomic(folder / RESULT_FILE, result))


@functools.cache
def _load(dataset):
    """((x_train, y_train), (x_test, y_test)), read once per process: a worker trains many runs."""
    return DATASETS[dataset].load_data(verbose=False)


def write_json_atomic(path, data):
    """JSON as the standard has it: a NaN or infinity (an overflowing run's loss) becomes null.
    Returns the text written."""
    text = json.dumps(_finite_or_none(data), indent=1, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode())
    return text


def _finite_or_none(data):
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite_or_none(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_finite_or_none(value) for value in data]
    return data
