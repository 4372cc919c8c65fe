"""Reference outputs kept in a handnet model file, and ``handnet check``: does this model still
compute what Keras computed when it was imported? Checking needs NumPy alone.

When Keras can be imported, ``handnet import-keras`` feeds the imported file to Keras too, on a
few random inputs (``SAMPLES`` of them, standard normal, from ``np.random.default_rng(SEED)``),
and keeps the inputs and Keras's outputs in the .npz beside the weights:

    check/x/<i>       the inputs, one array per model input, in the model's order
    check/y/<j>       Keras's outputs for them, one per model output
    check/note.json   uint8 bytes of JSON: {"samples", "seed", "source", "keras_version",
                      "keras_backend", "dtype", "inputs", "outputs"}

handnet's loader reads only config.json, weights/ and optimizer/, so these members change
nothing else (a model saved again from Python does not carry them). ``run_check`` reloads the
model, predicts the stored inputs and reports, per output, max |handnet − Keras|; the check
passes when every one is within the tolerance (DEFAULT_TOLERANCE = 1e-4: float32 outputs of
order 1 agree to ~1e-6 here; float64 models agree no better, since Keras 3 computes parts of
float64 in float32).
"""

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import HandnetError
from ..npz import read_npz
from ..saving import load_model

PREFIX = "check/"
NOTE = "check/note.json"
SAMPLES = 4
SEED = 0
DEFAULT_TOLERANCE = 1e-4


def random_inputs(model, samples=SAMPLES, seed=SEED):
    """One standard-normal array (samples, *shape) per model input, in the model's dtype."""
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((samples, *t.per_sample_shape)).astype(model.dtype)
        for t in model.input_tensors
    ]


def reference_arrays(model, keras_path, samples=SAMPLES, seed=SEED):
    """{member: array} of the check/ members for ``model``, imported from ``keras_path``, with
    Keras's own outputs for the random inputs (needs Keras: raises KerasUnavailableError, or
    HandnetError when Keras cannot load the file)."""
    from .compare import _as_outputs, import_keras, keras_feed, load_keras_model

    keras = import_keras()
    keras_model = load_keras_model(keras, keras_path)
    xs = random_inputs(model, samples, seed)
    predictions = keras_model.predict(keras_feed(model, xs), verbose=0)
    ys = [np.asarray(y, dtype=model.dtype) for y in _as_outputs(predictions, model.output_names)]
    if len(ys) != len(model.output_names):
        raise HandnetError(
            f"Keras's model gives {len(ys)} outputs, handnet's {len(model.output_names)}"
        )
    note = {
        "samples": samples,
        "seed": seed,
        "source": str(keras_path),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "dtype": model.dtype.name,
        "inputs": list(model.input_names),
        "outputs": list(model.output_names),
    }
    arrays = {f"{PREFIX}x/{i}": x for i, x in enumerate(xs)}
    arrays.update({f"{PREFIX}y/{j}": y for j, y in enumerate(ys)})
    arrays[NOTE] = np.frombuffer(json.dumps(note).encode(), dtype=np.uint8)
    return arrays


@dataclass
class CheckReport:
    path: str
    tolerance: float
    note: dict
    rows: list = field(default_factory=list)  # (output name, shape, max abs diff)

    @property
    def worst(self):
        return max((difference for _, _, difference in self.rows), default=0.0)

    @property
    def passed(self):
        return all(difference <= self.tolerance for _, _, difference in self.rows)

    def __str__(self):
        note = self.note
        lines = [
            f"{self.path}: {note.get('samples')} reference inputs (seed {note.get('seed')}), "
            f"outputs of Keras {note.get('keras_version')} ({note.get('keras_backend')}) "
            f"for {note.get('source')}",
        ]
        width = max([len("output"), *(len(name) for name, _, _ in self.rows)]) + 2
        lines.append(f"{'output':<{width}}{'shape':<18}{'max abs diff':>13}")
        for name, shape, difference in self.rows:
            mark = "" if difference <= self.tolerance else "   over tolerance"
            shape_text = "(None, " + ", ".join(map(str, shape)) + ")"
            lines.append(f"{name:<{width}}{shape_text:<18}{difference:>13.3e}{mark}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"largest max abs diff {self.worst:.2e} (tolerance {self.tolerance:.0e}, for "
            f"{note.get('dtype')} outputs): {verdict}"
        )
        return "\n".join(lines)


def run_check(path, tolerance=DEFAULT_TOLERANCE):
    """Re-run the reference inputs stored in the handnet model file ``path``; a CheckReport.
    Raises HandnetError when the file holds no reference outputs, or they do not fit it."""
    arrays = read_npz(path, what="handnet model (.npz)")
    raw = arrays.get(NOTE)
    if raw is None:
        raise HandnetError(
            f"{path} holds no reference outputs, so there is nothing to check: handnet "
            "import-keras stores them when Keras is installed"
        )
    try:
        note = json.loads(raw.tobytes().decode())
        if not isinstance(note, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise HandnetError(f"{path}: {NOTE} is damaged ({error})") from None
    model = load_model(path, compile=False)
    xs = _numbered(arrays, f"{PREFIX}x/")
    ys = _numbered(arrays, f"{PREFIX}y/")
    if len(xs) != len(model.input_names) or len(ys) != len(model.output_names):
        raise HandnetError(
            f"{path}: the reference holds {len(xs)} inputs and {len(ys)} outputs, the model has "
            f"{len(model.input_names)} and {len(model.output_names)}"
        )
    for x, tensor in zip(xs, model.input_tensors):
        if x.shape[1:] != tuple(tensor.per_sample_shape) or x.dtype.kind != "f":
            raise HandnetError(
                f"{path}: a reference input is {x.dtype} {x.shape}, the model takes {tensor.shape}"
            )
    predictions = model.predict(xs if len(xs) > 1 else xs[0])
    if isinstance(predictions, dict):
        predictions = [predictions[name] for name in model.output_names]
    elif len(ys) == 1:
        predictions = [predictions]
    report = CheckReport(str(path), tolerance, note)
    for name, y, prediction in zip(model.output_names, ys, predictions):
        if y.shape != prediction.shape:
            raise HandnetError(
                f"{path}: reference output {name!r} has shape {y.shape}, the model gives "
                f"{prediction.shape}"
            )
        difference = float(np.abs(prediction.astype(np.float64) - y).max(initial=0))
        report.rows.append((name, prediction.shape[1:], difference))
    return report


def _numbered(arrays, prefix):
    found = {name[len(prefix):]: array for name, array in arrays.items() if name.startswith(prefix)}
    if set(found) != {str(i) for i in range(len(found))}:
        raise HandnetError(f"reference members {prefix}… are not numbered 0…{len(found) - 1}")
    return [found[str(i)] for i in range(len(found))]
