"""The models a server offers: a model file, or every model file in a folder, loaded once.

    registry = ModelRegistry.from_path("runs")     # runs/demo/model.npz, runs/mlp/model.npz, …
    served = registry.get("demo/model.npz")        # or registry.get() for the default one

A model is named by its path relative to the folder, so two runs of the same architecture stay
apart. handnet .npz files and Keras .keras / .h5 files are read alike (keras_io.load_any); files
that are not 28×28 digit classifiers (784 inputs, 10 outputs) are skipped with a warning. A Keras
file is parsed in a child process stopped after keras_io.isolated.DEFAULT_TIMEOUT_SECONDS, so a
damaged one on which the HDF5 library would hang (or crash) is skipped too, not the server's end.
"""

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HandnetError
from ..keras_io import load_any
from ..layers import Conv2D, MultiHeadAttention
from ..model import Sequential

MODEL_SUFFIXES = (".npz", ".keras", ".h5")
#: Each model stays in memory; a folder with more model files than this is refused.
MAX_MODELS = 32


@dataclass
class ServedModel:
    id: str
    path: Path
    model: Sequential
    #: results.json written beside the model by ``handnet train``, when there is one.
    results: dict = field(default_factory=dict)
    # A forward pass caches its inputs in the layers (for backward) and reuses their buffers,
    # so two requests must not run one model at the same time.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_convolutional(self):
        return any(isinstance(layer, Conv2D) for layer in self.model.layers)

    @property
    def has_attention(self):
        """Whether the page can show where this model looks (a transformer's attention)."""
        return any(isinstance(layer, MultiHeadAttention) for layer in self.model.layers)

    def describe(self):
        """What GET /api/models says about this model (JSON-ready)."""
        accuracy = self.results.get("test_accuracy")
        return {
            "id": self.id,
            "name": self.model.name,
            "file": self.path.suffix.lstrip("."),
            "layers": [type(layer).__name__ for layer in self.model.layers],
            "parameters": self.model.count_params(),
            "input_shape": list(self.model.input_shape),
            "dataset": self.results.get("dataset"),
            "test_accuracy": accuracy if isinstance(accuracy, (int, float)) else None,
        }


class ModelRegistry:
    """The served models by id, in a stable order, and the one a request without "model" gets."""

    def __init__(self, served_models, default_id=None):
        if not served_models:
            raise HandnetError("no model to serve")
        self.models = {served.id: served for served in served_models}
        self.default_id = default_id or _preferred(served_models).id

    @classmethod
    def from_path(cls, path, warn=print):
        """Every digit classifier at ``path`` (a model file or a folder searched recursively);
        ``warn`` receives one line per file skipped."""
        path = Path(path)
        if path.is_file():
            return cls([_load(path, path.name)])
        if not path.is_dir():
            raise HandnetError(f"{path}: no such model file or folder")
        files = model_files(path)
        if len(files) > MAX_MODELS:
            raise HandnetError(
                f"{path} holds {len(files)} model files; handnet serve loads at most "
                f"{MAX_MODELS}: name one file or a smaller folder"
            )
        served = []
        for file in files:
            try:
                served.append(_load(file, file.relative_to(path).as_posix()))
            except HandnetError as error:
                warn(f"handnet serve: skipping {file}: {error}")
        if not served:
            raise HandnetError(f"{path}: no digit classifier among its model files")
        return cls(served)

    def get(self, model_id=None):
        """The ServedModel ``model_id`` (None: the default); HandnetError naming the known ones."""
        model_id = self.default_id if model_id is None else model_id
        if model_id not in self.models:
            raise HandnetError(
                f"unknown model {model_id!r}; this server has {', '.join(map(repr, self.models))}"
            )
        return self.models[model_id]

    def has_convolutional_model(self):
        return any(served.is_convolutional for served in self.models.values())

    def describe(self):
        return {
            "default": self.default_id,
            "models": [served.describe() for served in self.models.values()],
        }


def model_files(folder):
    """The .npz, .keras and .h5 files under ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix in MODEL_SUFFIXES and p.is_file())


def _load(path, model_id):
    model = load_any(path)
    if math.prod(model.input_shape) != 28 * 28 or tuple(model.output_shape) != (10,):
        raise HandnetError(
            f"expected a digit classifier, 784 inputs (28×28) → 10 outputs, got input "
            f"{tuple(model.input_shape)} → output {tuple(model.output_shape)}"
        )
    return ServedModel(model_id, path, model, _results_beside(path))


def _results_beside(path):
    try:
        results = json.loads((path.parent / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    return results if isinstance(results, dict) else {}


def _preferred(served_models):
    """The CNN of ``handnet train --model cnn`` if there is one, else any CNN, else the first."""
    for wanted in (lambda s: s.model.name == "cnn", lambda s: s.is_convolutional):
        for served in served_models:
            if wanted(served):
                return served
    return served_models[0]
