"""Run a Keras model in Keras and in handnet on the same inputs; compare them layer by layer.

For every layer, on the first ``samples`` inputs, both frameworks' outputs are compared:

    max abs diff  = max_i |h_i - k_i|
    max rel diff  = max_i |h_i - k_i| / max_i |k_i|     (relative to the layer's scale, as in
                                                         gradcheck: no blow-up on entries near 0)

where h is handnet's output and k Keras's, each framework feeding each layer its own previous
output (so an error shows where it starts, and how it grows downstream). A layer fails when its
max abs diff exceeds the tolerance (default 1e-5: float32 outputs of order 1 carry ~1e-7 of
rounding per operation). Then both models predict every input: the fraction of equal argmaxes,
and with labels both accuracies.

Keras runs on whatever backend KERAS_BACKEND names (torch when unset: handnet's oracle).
"""

import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import HandnetError
from ..layers import AveragePooling2D
from ..ops.padding import window_geometry_2d
from .importer import from_keras

DEFAULT_TOLERANCE = 1e-5
KERAS_MISSING = "Keras is not installed: pip install keras torch; set KERAS_BACKEND=torch"
CHUNK = 500


class KerasUnavailableError(HandnetError):
    """Keras (or its backend) cannot be imported, so there is nothing to compare against."""


def import_keras():
    """Keras, on the torch backend unless KERAS_BACKEND says otherwise."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as error:  # Keras itself, or the backend it was told to use
        raise KerasUnavailableError(f"{KERAS_MISSING} ({error})") from None
    return keras


@dataclass
class LayerRow:
    name: str
    class_name: str
    output_shape: tuple
    max_abs_diff: float
    max_rel_diff: float
    passed: bool


@dataclass
class CompareReport:
    path: str
    samples: int
    tolerance: float
    rows: list = field(default_factory=list)
    predictions: int = 0
    argmax_agreement: float = float("nan")
    handnet_accuracy: float | None = None
    keras_accuracy: float | None = None
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return all(row.passed for row in self.rows)

    @property
    def worst(self):
        return max((row.max_abs_diff for row in self.rows), default=0.0)

    def __str__(self):
        names = [f"{row.name} ({row.class_name})" for row in self.rows]
        shapes = ["(None, " + ", ".join(map(str, row.output_shape)) + ")" for row in self.rows]
        name_width = max([len("layer"), *map(len, names)]) + 2
        shape_width = max([len("output shape"), *map(len, shapes)]) + 2
        lines = [
            f"{self.path}: handnet vs Keras on {self.samples} inputs, layer by layer",
            f"{'layer':<{name_width}}{'output shape':<{shape_width}}{'max abs diff':>13} {'max rel diff':>13}",
        ]
        for row, name, shape in zip(self.rows, names, shapes):
            mark = "" if row.passed else "   over tolerance"
            lines.append(
                f"{name:<{name_width}}{shape:<{shape_width}}{row.max_abs_diff:>13.3e} {row.max_rel_diff:>13.3e}{mark}"
            )
        lines.append(f"argmax agreement on {self.predictions} inputs: {self.argmax_agreement:.2%}")
        if self.handnet_accuracy is not None:
            lines.append(
                f"accuracy: handnet {self.handnet_accuracy:.2%}, Keras {self.keras_accuracy:.2%}"
            )
        lines += [f"note: {note}" for note in self.notes]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"worst max abs diff {self.worst:.2e} (tolerance {self.tolerance:.0e}): {verdict}"
        )
        return "\n".join(lines)

    def as_dict(self):
        return {
            **{k: v for k, v in asdict(self).items() if k != "rows"},
            "passed": self.passed,
            "worst": self.worst,
            "rows": [asdict(row) | {"output_shape": list(row.output_shape)} for row in self.rows],
        }


def compare_keras(path, x, y=None, samples=1000, tolerance=DEFAULT_TOLERANCE):
    """Compare the model in ``path`` (.keras or .h5) in handnet and in Keras.

    x: inputs (N, *input_shape) as the model expects them; y: optional labels (N,) for the
    accuracies. Layers are compared on x[:samples], predictions on all of x.
    """
    keras = import_keras()
    model = from_keras(path)
    try:
        keras_model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras's own errors have no common base class
        raise HandnetError(
            f"Keras could not load {path}: {type(error).__name__}: {error}"
        ) from None
    x = np.asarray(x, dtype=model.dtype)
    if len(x) == 0 or samples < 1:
        raise HandnetError(
            f"compare needs at least one input and samples >= 1, got {len(x)} inputs, samples={samples}"
        )
    if x.shape[1:] != tuple(model.input_shape):
        raise HandnetError(
            f"inputs of shape {x.shape} do not fit the model's input (None, {model.input_shape})"
        )
    report = CompareReport(str(path), min(samples, len(x)), tolerance)
    keras_layers = [keras_model.get_layer(layer.name) for layer in model.layers]
    ours, theirs = _outputs_by_layer(model, keras_layers, keras, x[: report.samples])
    for layer, h, k in zip(model.layers, ours, theirs):
        difference = float(np.abs(h - k).max(initial=0))
        scale = float(np.abs(k).max(initial=0))
        report.rows.append(
            LayerRow(
                layer.name,
                type(layer).__name__,
                tuple(layer.output_shape),
                difference,
                difference / scale if scale else difference,
                difference <= tolerance and h.shape == k.shape,
            )
        )
    if keras.backend.backend() == "torch":
        report.notes += [
            f"{layer.name}: Keras's torch backend pads uneven 'same' average pooling by repeating edge "
            "cells and averages them in; TensorFlow, JAX and handnet average the real cells only"
            for layer in model.layers
            if _uneven_same_average_pooling(layer)
        ]
    handnet_predictions = model.predict(x, batch_size=CHUNK)
    keras_predictions = np.asarray(keras_model.predict(x, batch_size=CHUNK, verbose=0))
    ours, theirs = handnet_predictions.argmax(axis=-1), keras_predictions.argmax(axis=-1)
    report.predictions = len(x)
    report.argmax_agreement = float((ours == theirs).mean()) if len(x) else float("nan")
    if y is not None:
        y = np.asarray(y)
        report.handnet_accuracy = float((ours == y).mean())
        report.keras_accuracy = float((theirs == y).mean())
    return report


def _uneven_same_average_pooling(layer):
    if not isinstance(layer, AveragePooling2D) or layer.padding != "same":
        return False
    _, ((top, bottom), (left, right)) = window_geometry_2d(
        layer.input_shape[:2], layer.pool_size, layer.strides, padding="same"
    )
    return top != bottom or left != right


def _outputs_by_layer(model, keras_layers, keras, x):
    """Each layer's outputs on x in handnet and in Keras, chunk by chunk: two lists of arrays."""
    ours = [[] for _ in model.layers]
    theirs = [[] for _ in model.layers]
    for start in range(0, len(x), CHUNK):
        h = k = x[start : start + CHUNK]
        for index, (layer, keras_layer) in enumerate(zip(model.layers, keras_layers)):
            h = layer.forward(h)
            k = keras_layer(k, training=False)
            ours[index].append(np.array(h))
            theirs[index].append(keras.ops.convert_to_numpy(k))
    return [np.concatenate(parts) for parts in ours], [np.concatenate(parts) for parts in theirs]
