"""Activations as layers of their own, as Keras writes them: ReLU, LeakyReLU, Softmax.

They compute the same functions as ``Activation("relu")`` and friends, with the options the
Keras layers have (a ReLU cap and threshold, a LeakyReLU slope, a softmax axis), so a Keras
file that uses them maps onto handnet one layer for one layer.
"""

import numpy as np

from .. import activations
from ..errors import HandnetError
from .base import Layer


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
                f"Softmax {self.name!r}: axis {self.axis} must name axes 1…{rank - 1} (or -1…{1 - rank}) "
                f"of inputs shaped (None, {', '.join(map(str, input_shape))}); the batch axis 0 is not allowed"
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
