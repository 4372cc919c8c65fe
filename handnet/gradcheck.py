"""Gradient checking: the analytic backward pass against central differences, in float64.

For a layer (or model) f and a random upstream gradient g, the scalar L = Σ f(x) · g
(plus the layer's L1/L2 penalty, whose gradient backward adds) has

    ∂L/∂θ_i ≈ (L(θ_i + h) - L(θ_i - h)) / 2h        (error O(h²) + round-off O(ε·|L|/h))

for every parameter entry θ_i and every input entry x_i; with several inputs x₁, …, x_K (a
merge layer, a graph with two inputs), for every entry of each x_k, row by row. A random,
non-uniform g matters: with g = 1 everywhere, errors that cancel across outputs (a wrong sign
in a sum, a transposed kernel) stay hidden.

The reported error of a quantity is  max_i |analytic_i - numeric_i| / max(max_i |analytic_i|,
max_i |numeric_i|): the worst entry, relative to the gradient's scale. (A per-entry relative
error blows up on entries that are ~0 for honest reasons.) With h = 1e-6 in float64 correct
code scores ~1e-9 to 1e-11.

A gradient that is exactly zero for a reason (the bias of attention's keys: the softmax
ignores a constant added to a row of scores) is compared against round-off alone: when both
the analytic and the numeric gradient stay below the round-off floor 64·ε·max(|L|, 1)/h, the
quantity is zero to the precision central differences have, and its error is reported as 0.

Kinks (ReLU at 0, ties in max-pooling) have no derivative; the check uses random normal
inputs, so a pre-activation within h of a kink has probability ~1e-6 per entry, and a failure
there shows up as one lone large entry, never as a systematic error.
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from .errors import HandnetError
from .model import Model

#: Central differences lose ~ε·|L|/h to rounding; 64ε leaves a margin (module docstring).
ROUND_OFF = 64 * np.finfo(np.float64).eps

DEFAULT_TOLERANCE = 1e-7
REPORT_ROW = "{:<20} {:<16} {:<18} {:>11} {:>11}"


@dataclass
class GradcheckRow:
    layer: str
    quantity: str
    shape: tuple
    error: float
    scale: float


@dataclass
class GradcheckReport:
    rows: list = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def worst(self):
        return max((row.error for row in self.rows), default=0.0)

    @property
    def passed(self):
        return self.worst < self.tolerance

    def __str__(self):
        lines = [REPORT_ROW.format("layer", "quantity", "shape", "max |grad|", "rel. error")]
        for row in self.rows:
            lines.append(
                REPORT_ROW.format(
                    row.layer, row.quantity, str(row.shape), f"{row.scale:.3e}", f"{row.error:.2e}"
                )
            )
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e}): {verdict}"
        )
        return "\n".join(lines)

    def as_dict(self):
        return {
            "tolerance": self.tolerance,
            "worst": self.worst,
            "passed": self.passed,
            "rows": [vars(row) | {"shape": list(row.shape)} for row in self.rows],
        }


def relative_error(analytic, numeric, floor=0.0):
    """The worst entry's difference over the gradient's scale; 0 when the scale is at or below
    ``floor`` (the round-off floor of central differences: both are zero, as far as they tell)."""
    scale = max(float(np.abs(analytic).max(initial=0)), float(np.abs(numeric).max(initial=0)))
    if scale <= floor:
        return 0.0
    return float(np.abs(analytic - numeric).max() / scale)


def gradcheck(
    target,
    x=None,
    y=None,
    input_shape=None,
    batch_size=3,
    h=1e-6,
    training=False,
    seed=0,
    tolerance=DEFAULT_TOLERANCE,
):
    """Check ``target`` (a Layer or a Model, a Sequential or a graph) and return a
    GradcheckReport: one row per parameter, and one per input.

    x: input batch (N, *input_shape); drawn from N(0, 1) when omitted (give ``input_shape``).
       An integer array (an Embedding's indices) is used as it is and gets no row: integers
       have no gradient.
       For a target with several inputs (a merge layer such as Add, a multi-input Model), x is
       a list [x₁, x₂, …] and ``input_shape`` a list of per-sample shapes; each ∂L/∂x_k is
       checked on its own (rows "x1", "x2", …; a model's rows bear its inputs' names).
    y: with a compiled Model, check the training loss L = Σ_k w_k·loss_k(y_k, f(x)_k) +
       penalties (this covers the fused softmax + cross-entropy gradient) instead of Σ f(x)·g.
    training: run stochastic layers in training mode; their random masks are re-seeded before
       every evaluation so that L is a deterministic function.
    The target is deep-copied and cast to float64; the original is untouched.
    """
    rng = np.random.default_rng(seed)
    if isinstance(x, dict) and isinstance(target, Model):  # by input name
        x = target.as_inputs(x)
    several = _several(x, input_shape)
    if x is None:
        if input_shape is None:
            raise HandnetError("gradcheck needs x or input_shape")
        shapes = input_shape if several else [input_shape]
        drawn = [rng.standard_normal((batch_size, *shape)) for shape in shapes]
        x = drawn if several else drawn[0]
    # Nudged entry by entry through a flat view, so each must be its own C-ordered array.
    # Integer inputs (an Embedding's indices) have no gradient: kept as they are, not nudged.
    xs = [
        np.array(item, order="C") if np.asarray(item).dtype.kind in "iu"
        else np.array(item, dtype=np.float64, order="C")
        for item in (x if several else [x])
    ]
    indices = [item.dtype.kind in "iu" for item in xs]
    inputs = xs if several else xs[0]
    is_model = isinstance(target, Model)
    if y is not None and not (is_model and target.losses):
        raise HandnetError(
            "gradcheck with y needs a compiled Sequential or Model (y goes through its loss)"
        )
    target = copy.deepcopy(target)
    if not target.built:  # seeded, so that the same call checks the same weights
        shapes = [item.shape[1:] for item in xs] if several else xs[0].shape[1:]
        if is_model:
            target.seed = seed if target.seed is None else target.seed
            target.build(shapes)
        else:
            target.build(shapes, rng=np.random.default_rng(seed))
    target.cast(np.float64)
    layers = target.layers if is_model else [target]
    stochastic = list(target.flat_layers()) if is_model else [target]

    def reseed():
        for index, layer in enumerate(stochastic):
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng([seed, index])

    upstream = None
    if y is None:
        reseed()
        upstream = _random_like(target.forward(inputs, training=training), rng)

    def loss_and_gradients():
        """L at the current inputs; also fills grads and returns [∂L/∂x_k]."""
        reseed()
        if y is not None:
            loss, _, dx = target.compute_gradients(
                inputs, y, training=training, input_gradient=True
            )
        else:
            out = target.forward(inputs, training=training)
            if is_model:
                dx = target.backward(upstream, input_gradient=True)
            else:
                target.needs_input_gradient = True
                dx = target.backward(upstream)
            loss = _dot(out, upstream) + target.regularization_penalty()
        return loss, (list(dx) if several else [dx])

    def loss_only():
        reseed()
        out = target.forward(inputs, training=training)
        if y is not None:
            return _model_loss(target, y, out) + target.regularization_penalty()
        return _dot(out, upstream) + target.regularization_penalty()

    _, dxs = loss_and_gradients()
    dxs = [None if integer else dx for dx, integer in zip(dxs, indices)]
    if [np.shape(dx) for dx, i in zip(dxs, indices) if not i] != [
        item.shape for item, i in zip(xs, indices) if not i
    ]:
        raise HandnetError(
            f"{getattr(target, 'name', target)}: backward returned gradients of shapes "
            f"{[np.shape(dx) for dx in dxs]} for inputs of shapes {[item.shape for item in xs]}"
        )
    analytic = {
        (layer.name, key): layer.grads[key].copy() for layer in layers for key in layer.params
    }
    report = GradcheckReport(tolerance=tolerance)
    floor = ROUND_OFF * max(abs(float(loss_only())), 1.0) / h
    for layer in layers:
        for key, param in layer.params.items():
            numeric = _numeric_gradient(loss_only, param, h)
            error = relative_error(analytic[layer.name, key], numeric, floor)
            report.rows.append(GradcheckRow(layer.name, key, param.shape, error, _scale(numeric)))
    names = target.input_names if is_model and several else [f"x{k}" for k in range(1, len(xs) + 1)]
    for k, (item, dx) in enumerate(zip(xs, dxs)):
        if indices[k]:
            continue
        numeric_dx = _numeric_gradient(loss_only, item, h)
        report.rows.append(
            GradcheckRow(
                "(input)",
                names[k] if several else "x",
                item.shape,
                relative_error(dx, numeric_dx, floor),
                _scale(numeric_dx),
            )
        )
    return report


def _several(x, input_shape):
    """Whether the target takes a list of inputs: x is a list, or input_shape a list of shapes."""
    if x is not None:
        return isinstance(x, (list, tuple))
    return isinstance(input_shape, list) and all(
        isinstance(shape, (list, tuple)) for shape in input_shape
    )


def _random_like(out, rng):
    """A random upstream gradient g for each output (a list for a model with several)."""
    if isinstance(out, (list, tuple)):
        return [rng.standard_normal(np.shape(item)) for item in out]
    return rng.standard_normal(out.shape)


def _dot(out, upstream):
    """Σ f(x)·g, summed over every output."""
    if isinstance(out, (list, tuple)):
        return sum(float((item * g).sum()) for item, g in zip(out, upstream))
    return float((out * upstream).sum())


def _model_loss(model, y, out):
    """Σ_k w_k·loss_k(y_k, ŷ_k) of a compiled model, as compute_gradients counts it (an output
    carrying a mask in the pass that made ``out``: its masked mean)."""
    outs = out if model.returns_list else [out]
    if isinstance(y, dict):
        ys = [y[name] for name in model.output_names]
    else:  # one output: y is its labels, even as a Python list
        ys = list(y) if model.returns_list else [y]
    masks = model.compute_mask(None, None)
    masks = masks if model.returns_list else [masks]
    return sum(
        weight * model.output_loss(index, target, prediction, mask)
        for index, (weight, target, prediction, mask) in enumerate(
            zip(model.loss_weights, ys, outs, masks)
        )
    )


def _scale(array):
    return float(np.abs(array).max(initial=0))


def _numeric_gradient(evaluate, array, h):
    """Central differences of evaluate() with respect to every entry of ``array`` (in place)."""
    grad = np.zeros_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        plus = evaluate()
        flat[i] = saved - h
        minus = evaluate()
        flat[i] = saved
        grad_flat[i] = (plus - minus) / (2 * h)
    return grad
