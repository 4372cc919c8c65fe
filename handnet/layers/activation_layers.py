"""Activations as layers of their own, as Keras writes them: ReLU, LeakyReLU, Softmax, PReLU, ELU.

They compute the same functions as ``Activation("relu")`` and friends, with the options the
Keras layers have (a ReLU cap and threshold, a LeakyReLU slope, a softmax axis), so a Keras
file that uses them maps onto handnet one layer for one layer.
"""

import numpy as np

from .. import activations, initializers
from ..errors import HandnetError
from .base import BackwardStep, Layer, batch


class ReLU(Layer):
    """Keras's ReLU layer, with θ = threshold, α = negative_slope, M = max_value (None = ∞):

        y = min(x, M)      where x > θ
        y = α · (x - θ)    where x ≤ θ
        dx = dy            where θ < x < M
        dx = 0             where x ≥ M        (saturated)
        dx = α · dy        where x ≤ θ

    The defaults (θ = 0, α = 0, M = None) give y = max(x, 0). As in Keras, the three options
    must be ≥ 0. The derivative at the kinks x = θ and x = M is a convention (no derivative
    exists there); random inputs never land on them.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        for option, value in (
            ("max_value", max_value),
            ("negative_slope", negative_slope),
            ("threshold", threshold),
        ):
            if value is not None and value < 0:
                raise HandnetError(f"ReLU {option} must be >= 0 (as in Keras), got {value}")
        if negative_slope is None or threshold is None:
            raise HandnetError("ReLU negative_slope and threshold must be numbers, not None")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def _plain(self):
        return self.max_value is None and self.negative_slope == 0 and self.threshold == 0

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        if self._plain():
            return np.maximum(x, 0)
        dtype = x.dtype.type
        positive = x if self.max_value is None else np.minimum(x, dtype(self.max_value))
        negative = (x - dtype(self.threshold)) * dtype(self.negative_slope)
        return np.where(x > dtype(self.threshold), positive, negative)

    def backward(self, dy):
        x, dtype = self._x, dy.dtype.type
        above = x > dtype(self.threshold)
        if self.max_value is not None:
            slope = np.where(above & (x < dtype(self.max_value)), dtype(1), dtype(0))
        else:
            slope = above.astype(dy.dtype)
        if self.negative_slope:
            slope = np.where(above, slope, dtype(self.negative_slope))
        return dy * slope

    def get_config(self):
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }

    def explain(self):
        return "", "y = max(x, 0)"

    def explain_backward(self, input_shape):
        theta = f"{self.threshold:g}"
        passes = f"[x > {theta}]" if self.max_value is None else (
            f"[{theta} < x < {self.max_value:g}]"
        )
        formula = f"dx = dy · {passes}"
        if self.negative_slope:
            formula += f" + {self.negative_slope:g} · dy · [x ≤ {theta}]"
        return [BackwardStep("x", formula, batch(input_shape))]


class LeakyReLU(Layer):
    """y = x where x > 0, else α·x;  dx = dy where x > 0, else α·dy.

    The layer's default α = 0.3 is Keras 3's LeakyReLU layer default (the ``"leaky_relu"``
    activation string uses 0.2 — the two differ in Keras too).
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise HandnetError(
                f"LeakyReLU negative_slope must be >= 0 (as in Keras), got {negative_slope}"
            )
        self.negative_slope = float(negative_slope)
        self._function = activations.LeakyReLU(self.negative_slope)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        return self._function.forward(x)

    def backward(self, dy):
        return self._function.backward(dy, self._x, None)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}

    def explain(self):
        return "", f"y = x if x > 0 else {self.get_config().get('negative_slope')}·x"

    def explain_backward(self, input_shape):
        formula = f"dx = dy if x > 0 else {self.negative_slope:g} · dy"
        return [BackwardStep("x", formula, batch(input_shape))]


class Softmax(Layer):
    """a = e^{x - m} / Σ e^{x - m} along ``axis`` (m = the maximum along it; cancels in the ratio
    and keeps every exponent ≤ 0).  Backward: dx = a · (da - Σ_axis da · a).

    ``axis`` counts the batch axis, as in Keras (-1 = the last axis); it may be a list of axes,
    which are then normalized together. The batch axis itself is refused: a softmax across
    samples would make each prediction depend on its batch.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = [int(a) for a in axis] if isinstance(axis, (list, tuple)) else int(axis)

    def build(self, input_shape, rng=None):
        rank = len(input_shape) + 1
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if any(not -rank <= a < rank or a % rank == 0 for a in axes):
            raise HandnetError(
                f"Softmax {self.name!r}: axis {self.axis} must name axes 1…{rank - 1} "
                f"(or -1…{1 - rank}) of inputs shaped (None, {', '.join(map(str, input_shape))}); "
                "the batch axis 0 is not allowed"
            )
        self._axes = tuple(sorted({a % rank for a in axes}))
        # Over the last axis alone this is the usual softmax, and the model may fuse it with a
        # following cross-entropy (the fused gradient starts at this layer's input).
        self.activation = activations.Softmax() if self._axes == (rank - 1,) else None
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        e = np.exp(x - x.max(axis=self._axes, keepdims=True))
        e /= e.sum(axis=self._axes, keepdims=True)
        self._y = e
        return e

    def backward(self, dy):
        a = self._y
        return a * (dy - (dy * a).sum(axis=self._axes, keepdims=True))

    def backward_pre_activation(self, dz):
        return dz

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}

    def explain(self):
        return "over the last axis", "y_k = e^(x_k - max x) / Σ_j e^(x_j - max x)"

    def explain_backward(self, input_shape):
        axes = ", ".join(map(str, self._axes))
        formula = f"dx = y · (dy - Σ_axes({axes}) dy · y)   (the Jacobian-vector product)"
        return [BackwardStep("x", formula, batch(input_shape))]


class PReLU(Layer):
    """The parametric ReLU: a LeakyReLU whose slope α = alpha is a trained weight, one slope per
    position (Keras's layout), or shared along ``shared_axes``:

        y = max(x, 0) - α · max(-x, 0)          (= x where x > 0, α·x where x < 0)

    Shapes: x (N, *S) -> y (N, *S);  α has shape S with size 1 on each shared axis (axes counted
    with the batch axis, as in Keras: shared_axes=[1, 2] on images (N, H, W, C) gives α
    (1, 1, C), one slope per channel).

    Backward:
        dx = dy where x > 0,   α · dy where x < 0,   0 at x = 0 (both ReLUs' slope there, as
             torch gives it)
        dα = Σ dy · min(x, 0)   over the batch and the shared axes
    Keras's default initial α is 0 (a plain ReLU to begin with).
    """

    def __init__(self, alpha_initializer="zeros", shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        if shared_axes is None:
            axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in axes):
                raise HandnetError(
                    "PReLU shared_axes must be None, an int or a list of ints >= 1 (axes "
                    f"counted with the batch axis 0, which is never shared), got {shared_axes!r}"
                )
        self.shared_axes = axes
        self.alpha_initializer = alpha_initializer

    def build(self, input_shape, rng=None):
        rank = len(input_shape) + 1
        if self.shared_axes and max(self.shared_axes) >= rank:
            raise HandnetError(
                f"PReLU {self.name!r}: shared_axes {self.shared_axes} must name axes 1…{rank - 1}"
                f" of inputs shaped (None, {', '.join(map(str, input_shape))})"
            )
        shape = [int(d) for d in input_shape]
        for axis in self.shared_axes or ():
            shape[axis - 1] = 1
        # The axes dα sums over: the batch and every shared axis.
        self._sum_axes = (0, *sorted(set(self.shared_axes or ())))
        rng = rng if rng is not None else np.random.default_rng()
        init = initializers.get(self.alpha_initializer)
        self.add_param("alpha", init(tuple(shape), rng, self.dtype))
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        alpha = self.params["alpha"]
        return np.maximum(x, 0) - alpha * np.maximum(-x, 0)

    def backward(self, dy):
        x, zero = self._x, dy.dtype.type(0)
        negative = np.minimum(x, zero)
        np.sum(dy * negative, axis=self._sum_axes, keepdims=True, out=self.grads["alpha"][None])
        if not self.needs_input_gradient:
            return None
        slope = np.where(x > 0, dy.dtype.type(1), np.where(x < 0, self.params["alpha"], zero))
        return dy * slope

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": self.alpha_initializer,
            "shared_axes": self.shared_axes,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        shared = f", shared along axes {self.shared_axes}" if self.shared_axes else ""
        return f"ReLU with a trained slope α for x < 0{shared}", "y = max(x, 0) - α · max(-x, 0)"

    def explain_backward(self, input_shape):
        over = ", ".join(["n", *(f"axis {a}" for a in sorted(set(self.shared_axes or ())))])
        return [
            BackwardStep("alpha", f"dα = Σ_({over}) dy · min(x, 0)", self.params["alpha"].shape),
            BackwardStep(
                "x", "dx = dy · [x > 0] + α · dy · [x < 0]   (0 at x = 0)", batch(input_shape)
            ),
        ]


class ELU(Layer):
    """The exponential linear unit as a layer (Keras's ELU layer):

        y = x where x > 0,   α · (e^x - 1) where x ≤ 0
        dx = dy where x > 0,   dy · α e^x where x ≤ 0

    Shapes: x (N, *S) -> y (N, *S). Computed by ``handnet.activations.ELU`` with this α (expm1
    for accuracy near 0, e^min(x, 0) so that nothing overflows).
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha):
            raise HandnetError(f"ELU alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)
        self._function = activations.ELU()
        self._function.alpha = self.alpha

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        return self._function.forward(x)

    def backward(self, dy):
        return self._function.backward(dy, self._x, None)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return f"alpha {self.alpha:g}", f"y = x if x > 0 else {self.alpha:g} · (e^x - 1)"

    def explain_backward(self, input_shape):
        formula = f"dx = dy if x > 0 else dy · {self.alpha:g} · e^x"
        return [BackwardStep("x", formula, batch(input_shape))]
