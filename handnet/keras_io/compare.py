"""Run a Keras model in Keras and in handnet on the same inputs; compare them node by node.

For every call of every layer (a node of the graph: a shared layer has one per call, a nested
model counts as one layer), on the first ``samples`` inputs, both frameworks' outputs are
compared:

    max abs diff  = max_i |h_i - k_i|
    max rel diff  = max_i |h_i - k_i| / max_i |k_i|     (relative to the node's scale, as in
                                                         gradcheck: no blow-up on entries near 0)

where h is handnet's output and k Keras's. handnet's come from ``Model.trace(x)``; Keras's
from calling each Keras layer on Keras's own outputs of the nodes it reads, in the same order
(so an error shows where it starts, and how it grows downstream). A node fails when its max
abs diff exceeds the tolerance times its scale, max(1, max_i |k_i|) (default 1e-5: float32
outputs of order 1 carry ~1e-7 of rounding per operation, and a trained network's larger
activations, of 50 or 80, carry that much more: an absolute 1e-5 there would ask for one ulp
after sums of thousands of terms in another order). Then both models predict every input: the
fraction of equal argmaxes (over every output), and with labels (one output) both accuracies.

Keras runs on whatever backend KERAS_BACKEND names (torch when unset: handnet's oracle).
"""

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import HandnetError
from ..layers import AveragePooling2D
from ..ops.padding import window_geometry_2d
from .importer import from_keras
from .maps import attention as attention_map

DEFAULT_TOLERANCE = 1e-5
KERAS_MISSING = "Keras is not installed: pip install keras torch; set KERAS_BACKEND=torch"
CHUNK = 500


class KerasUnavailableError(HandnetError):
    """Keras (or its backend) cannot be imported, so there is nothing to compare against."""


def json_shape(shape):
    return [json_shape(s) if isinstance(s, (list, tuple)) else s for s in shape]


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


def _shape_text(shape):
    """(None, 6, 6, 3); several outputs: (None, 2), (None, 3)."""
    if shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(_shape_text(s) for s in shape)
    return "(None, " + ", ".join(map(str, shape)) + ")"


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
        shapes = [_shape_text(row.output_shape) for row in self.rows]
        name_width = max([len("layer"), *map(len, names)]) + 2
        shape_width = max([len("output shape"), *map(len, shapes)]) + 2
        lines = [
            f"{self.path}: handnet vs Keras on {self.samples} inputs, node by node",
            f"{'layer':<{name_width}}{'output shape':<{shape_width}}"
            f"{'max abs diff':>13} {'max rel diff':>13}",
        ]
        for row, name, shape in zip(self.rows, names, shapes):
            mark = "" if row.passed else "   over tolerance"
            lines.append(
                f"{name:<{name_width}}{shape:<{shape_width}}"
                f"{row.max_abs_diff:>13.3e} {row.max_rel_diff:>13.3e}{mark}"
            )
        if not math.isnan(self.argmax_agreement):
            lines.append(
                f"argmax agreement on {self.predictions} inputs: {self.argmax_agreement:.2%}"
            )
        if self.handnet_accuracy is not None:
            lines.append(
                f"accuracy: handnet {self.handnet_accuracy:.2%}, Keras {self.keras_accuracy:.2%}"
            )
        lines += [f"note: {note}" for note in self.notes]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"worst max abs diff {self.worst:.2e} (tolerance {self.tolerance:.0e} × max(1, the "
            f"node's largest output)): {verdict}"
        )
        return "\n".join(lines)

    def as_dict(self):
        return {
            **{k: v for k, v in asdict(self).items() if k != "rows"},
            "passed": self.passed,
            "worst": self.worst,
            "rows": [
                asdict(row) | {"output_shape": json_shape(row.output_shape)} for row in self.rows
            ],
        }


def within_tolerance(difference, scale, tolerance):
    """max |h - k| ≤ tolerance · max(1, max |k|): absolute for outputs of order 1 or less,
    relative to the output's scale above (module docstring)."""
    return difference <= tolerance * max(1.0, scale)


def compare_keras(path, x, y=None, samples=1000, tolerance=DEFAULT_TOLERANCE):
    """Compare the model in ``path`` (.keras or .h5) in handnet and in Keras.

    x: inputs (N, *input_shape) as the model expects them (a list, or a dict by input name,
    for several inputs); y: optional labels (N,) for the accuracies (one output). Nodes are
    compared on x[:samples], predictions on all of x.
    """
    keras = import_keras()
    model = from_keras(path)
    keras_model = load_keras_model(keras, path)
    xs = _input_list(model, x)
    count = len(xs[0])
    if count == 0 or samples < 1:
        raise HandnetError(
            f"compare needs at least one input and samples >= 1, got {count} inputs, "
            f"samples={samples}"
        )
    for array, tensor, name in zip(xs, model.input_tensors, model.input_names):
        if array.shape[1:] != tuple(tensor.per_sample_shape) or len(array) != count:
            raise HandnetError(
                f"inputs {name!r} of shape {array.shape} do not fit the model's input "
                f"{tensor.shape} ({count} samples expected)"
            )
    report = CompareReport(str(path), min(samples, count), tolerance)
    for node, name, difference, scale, same_shapes in _outputs_by_node(
        model, keras_model, keras, [a[: report.samples] for a in xs]
    ):
        shapes = [tuple(t.per_sample_shape) for t in node.outputs]
        report.rows.append(
            LayerRow(
                name,
                type(node.layer).__name__,
                shapes[0] if len(shapes) == 1 else tuple(shapes),
                difference,
                difference / scale if scale else difference,
                within_tolerance(difference, scale, tolerance) and same_shapes,
            )
        )
    if keras.backend.backend() == "torch":
        report.notes += [
            f"{layer.name}: Keras's torch backend pads uneven 'same' average pooling by repeating "
            "edge cells and averages them in; TensorFlow, JAX and handnet average the real cells "
            "only"
            for layer in model.flat_layers()
            if _uneven_same_average_pooling(layer)
        ]
    inputs = xs if len(xs) > 1 else xs[0]
    names = model.output_names
    ours = _as_outputs(model.predict(inputs, batch_size=CHUNK), names)
    theirs = _as_outputs(
        keras_model.predict(keras_feed(model, xs), batch_size=CHUNK, verbose=0), names
    )
    # Classes are read off outputs (N, K); an image out (an autoencoder's) has no argmax to agree
    # on, and its largest difference is the one the rows already show.
    classes = [(h, np.asarray(k)) for h, k in zip(ours, theirs) if h.ndim == 2]
    agree = [h.argmax(axis=-1) == k.argmax(axis=-1) for h, k in classes]
    report.predictions = count
    if agree:
        report.argmax_agreement = float(np.mean(np.concatenate([a.ravel() for a in agree])))
    else:
        report.notes.append("no output is a vector of classes: no argmax agreement, no accuracy")
    if y is not None and len(ours) == 1 and ours[0].ndim == 2:
        y = np.asarray(y)
        report.handnet_accuracy = float((ours[0].argmax(axis=-1) == y).mean())
        report.keras_accuracy = float((np.asarray(theirs[0]).argmax(axis=-1) == y).mean())
    return report


def load_keras_model(keras, path):
    """keras.models.load_model in safe mode (a Lambda's code is never run), not compiled."""
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras's own errors have no common base class
        raise HandnetError(
            f"Keras could not load {path}: {type(error).__name__}: {error}"
        ) from None


def _input_list(model, x):
    """x as a list of arrays in the order of the model's inputs, in the model's dtype."""
    names = model.input_names
    if isinstance(x, dict):
        missing = [name for name in names if name not in x]
        if missing:
            raise HandnetError(f"inputs: expected entries {names}, got {sorted(x)}")
        x = [x[name] for name in names]
    elif not (isinstance(x, (list, tuple)) and len(names) > 1):
        x = [x]
    if len(x) != len(names):
        raise HandnetError(f"the model has {len(names)} inputs {names}, got {len(x)} arrays")
    return [np.asarray(array, dtype=model.dtype) for array in x]


def keras_feed(model, xs):
    """The inputs as Keras's model takes them: a dict by name where its inputs are a dict."""
    if getattr(model, "_inputs_as", None) == "dict":
        return dict(zip(model.input_names, xs))
    return xs if len(xs) > 1 else xs[0]


def _as_outputs(predictions, names=None):
    """Predictions as a list: one array, a list, or a dict (in the order of ``names``)."""
    if isinstance(predictions, dict):
        predictions = [predictions[n] for n in names] if names else list(predictions.values())
    return list(predictions) if isinstance(predictions, (list, tuple)) else [predictions]


def _uneven_same_average_pooling(layer):
    if not isinstance(layer, AveragePooling2D) or layer.padding != "same":
        return False
    _, ((top, bottom), (left, right)) = window_geometry_2d(
        layer.input_shape[:2], layer.pool_size, layer.strides, padding="same"
    )
    return top != bottom or left != right


def _outputs_by_node(model, keras_model, keras, xs):
    """(node, row name, max |handnet - Keras|, max |Keras|, same shapes) for every node.

    Chunk by chunk: handnet runs its own forward pass (``trace``), Keras calls its layers one
    by one on its own outputs, so a row shows the difference accumulated up to that node. Only
    the running maxima are kept: 10,000 images of a wide network take one chunk's memory."""
    nodes = list(model.nodes)
    keras_layers = {}
    for node in nodes:
        try:
            keras_layers[node.layer.name] = keras_model.get_layer(node.layer.name)
        except ValueError:
            raise HandnetError(f"Keras's model has no layer named {node.layer.name!r}") from None
    differences, scales = np.zeros(len(nodes)), np.zeros(len(nodes))
    same_shapes = [True] * len(nodes)
    for start in range(0, len(xs[0]), CHUNK):
        chunk = [array[start : start + CHUNK] for array in xs]
        values = {id(t): v for t, v in zip(model.input_tensors, chunk)}
        for index, (node, result) in enumerate(model.trace(chunk if len(chunk) > 1 else chunk[0])):
            args = [values[id(t)] for t in node.inputs]
            keras_layer = keras_layers[node.layer.name]
            if type(node.layer).__name__ in attention_map.CALL_FORMS:  # its tensors by role
                keras_result = attention_map.keras_call(keras_layer, node.layer, node, args)
            else:
                keras_result = keras_layer(args if node.takes_list else args[0], training=False)
            results = result if len(node.outputs) > 1 else [result]
            keras_results = _as_outputs(keras_result)
            for tensor, h, value in zip(node.outputs, results, keras_results):
                value = keras.ops.convert_to_numpy(value)
                values[id(tensor)] = value
                h = np.asarray(h)
                if h.shape != value.shape:
                    same_shapes[index], differences[index] = False, np.inf
                    continue
                differences[index] = max(differences[index], np.abs(h - value).max(initial=0))
                scales[index] = max(scales[index], np.abs(value).max(initial=0))
    for index, node in enumerate(nodes):
        calls = model.nodes_of(node.layer)
        name = node.layer.name
        if len(calls) > 1:
            name += f"[{next(i for i, n in enumerate(calls) if n is node)}]"
        yield node, name, float(differences[index]), float(scales[index]), same_shapes[index]
