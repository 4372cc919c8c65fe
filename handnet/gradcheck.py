"""Gradient checking: the analytic backward pass against central differences, in float64.

For a layer (or model) f and a random upstream gradient g, the scalar L = Σ f(x) · g
(plus the layer's L1/L2 penalty, whose gradient backward adds) has

    ∂L/∂θ_i ≈ (L(θ_i + h) - L(θ_i - h)) / 2h        (error O(h²) + round-off O(ε·|L|/h))

for every parameter entry θ_i and every input entry x_i. A random, non-uniform g matters: with
g = 1 everywhere, errors that cancel across outputs (a wrong sign in a sum, a transposed
kernel) stay hidden.

The reported error of a quantity is  max_i |analytic_i - numeric_i| / max(max_i |analytic_i|,
max_i |numeric_i|): the worst entry, relative to the gradient's scale. (A per-entry relative
error blows up on entries that are ~0 for honest reasons.) With h = 1e-6 in float64 correct
code scores ~1e-9 to 1e-11.

Kinks (ReLU at 0, ties in max-pooling) have no derivative; the check uses random normal
inputs, so a pre-activation within h of a kink has probability ~1e-6 per entry, and a failure
there shows up as one lone large entry, never as a systematic error.
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from .errors import HandnetError
from .model import Model

DEFAULT_TOLERANCE = 1e-7


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
        lines = [f"{'layer':<20} {'quantity':<16} {'shape':<18} {'max |grad|':>11} {'rel. error':>11}"]
        for row in self.rows:
            lines.append(
                f"{row.layer:<20} {row.quantity:<16} {str(row.shape):<18} {row.scale:>11.3e} {row.error:>11.2e}"
            )
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e}): {verdict}")
        return "\n".join(lines)

    def as_dict(self):
        return {
            "tolerance": self.tolerance,
            "worst": self.worst,
            "passed": self.passed,
            "rows": [vars(row) | {"shape": list(row.shape)} for row in self.rows],
        }


def relative_error(analytic, numeric):
    scale = max(float(np.abs(analytic).max(initial=0)), float(np.abs(numeric).max(initial=0)))
    if scale == 0:
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
    """Check ``target`` (a Layer or a Model) and return a GradcheckReport.

    x: input batch (N, *input_shape); drawn from N(0, 1) when omitted (give ``input_shape``).
       For a model with several inputs, a list (or a dict by name) of batches; with several
       outputs, L = Σ_k Σ f_k(x) · g_k, one random g_k per output.
    y: with a compiled model, check the training loss L = loss(y, f(x)) + penalties
       (this covers the fused softmax + cross-entropy gradient) instead of Σ f(x)·g.
    training: run stochastic layers in training mode; their random masks are re-seeded before
       every evaluation so that L is a deterministic function.
    The target is deep-copied and cast to float64; the original is untouched.
    """
    rng = np.random.default_rng(seed)
    if x is None:
        if input_shape is None:
            raise HandnetError("gradcheck needs x or input_shape")
        x = rng.standard_normal((batch_size, *input_shape))
    is_model = isinstance(target, Model)
    several = is_model and target.built and len(target.input_names) > 1
    if is_model and target.built:  # nudged entry by entry through flat views
        xs = [np.array(a, dtype=np.float64, order="C") for a in target._as_inputs(x)]
        x = xs if several else xs[0]
    else:
        x = np.array(x, dtype=np.float64, order="C")
        xs = [x]
    if y is not None and not (is_model and target.loss is not None):
        raise HandnetError(
            "gradcheck with y needs a compiled Sequential or Model (y goes through its loss)"
        )
    target = copy.deepcopy(target)
    if not target.built:  # seeded, so that the same call checks the same weights
        if is_model:
            target.seed = seed if target.seed is None else target.seed
            target.build(x.shape[1:])
        else:
            target.build(x.shape[1:], rng=np.random.default_rng(seed))
    target.cast(np.float64)
    layers = target.layers if is_model else [target]

    def reseed():
        flat = list(target.flat_layers()) if is_model else layers
        for index, layer in enumerate(flat):
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng([seed, index])

    def as_list(outputs):
        return outputs if isinstance(outputs, list) else [outputs]

    upstream = None
    if y is None:
        reseed()
        outputs = as_list(target.forward(x, training=training))
        upstream = [rng.standard_normal(o.shape) for o in outputs]

    def weighted_sum(out):
        return float(sum((o * g).sum() for o, g in zip(as_list(out), upstream)))

    def model_loss(out):
        """Σ_k w_k · L_k(y_k, ŷ_k), as compute_gradients adds it."""
        if isinstance(y, dict):
            targets = [y[name] for name in target.output_names]
        elif len(target.output_names) > 1:
            targets = list(y)
        else:
            targets = [y]  # one output: y is its labels, even as a Python list
        return sum(
            w * loss(t, o)
            for loss, w, t, o in zip(target.losses, target.loss_weights, targets, as_list(out))
        )

    def loss_and_gradients(inputs):
        """L at ``inputs``; also fills grads and returns ∂L/∂x."""
        reseed()
        if y is not None:
            loss, _, dx = target.compute_gradients(inputs, y, training=training, input_gradient=True)
            return loss, dx
        out = target.forward(inputs, training=training)
        if is_model:
            dy = upstream if target.returns_list else upstream[0]
            dx = target.backward(dy, input_gradient=True)
        else:
            target.needs_input_gradient = True
            dx = target.backward(upstream[0])
        return weighted_sum(out) + target.regularization_penalty(), dx

    def loss_only(inputs):
        reseed()
        out = target.forward(inputs, training=training)
        if y is not None:
            return model_loss(out) + target.regularization_penalty()
        return weighted_sum(out) + target.regularization_penalty()

    _, dx = loss_and_gradients(x)
    dxs = dx if several else [dx]
    analytic = {(layer.name, key): layer.grads[key].copy() for layer in layers for key in layer.params}
    report = GradcheckReport(tolerance=tolerance)
    for layer in layers:
        for key, param in layer.params.items():
            numeric = _numeric_gradient(lambda: loss_only(x), param, h)
            error = relative_error(analytic[layer.name, key], numeric)
            report.rows.append(GradcheckRow(layer.name, key, param.shape, error, _scale(numeric)))
    names = target.input_names if several else ["x"]
    for name, array, analytic_dx in zip(names, xs, dxs):
        numeric_dx = _numeric_gradient(lambda: loss_only(x), array, h)
        error = relative_error(analytic_dx, numeric_dx)
        report.rows.append(GradcheckRow("(input)", name, array.shape, error, _scale(numeric_dx)))
    return report


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
