"""Per-sample normalization layers, with Keras 3's definitions: LayerNormalization,
GroupNormalization, UnitNormalization.

Unlike BatchNormalization, each sample is normalized on its own, in training and at inference
alike: no batch statistics, no moving averages, nothing that depends on the rest of the batch.

Axes are counted as Keras counts them, with the batch axis: for x (N, T, D), axis=-1 or 2 is D,
axis=1 is T. The batch axis itself (0) is refused: a per-sample layer never mixes samples.

The backward pass shared by the mean-and-variance layers. Within one normalized group of m
values (one sample's values along the normalized axes):

    μ = mean(x),  v = mean((x - μ)²),  s = 1 / sqrt(v + ε),  x̂ = (x - μ) · s,  y = γ · x̂ + β

with u = γ · dy = ∂L/∂x̂ and means over the same m values,

    dv = Σ u · (x - μ) · (-1/2) s³,   dμ = -s · Σ u   (the path through v vanishes: Σ (x - μ) = 0)
    dx = u · s + dv · 2(x - μ)/m + dμ/m
       = s · (u - mean(u) - x̂ · mean(u · x̂))

which is BatchNormalization's training formula with the roles of the axes swapped (there the m
values are one channel across the batch; here they are one sample's).
"""

import math

import numpy as np

from .. import initializers
from ..errors import HandnetError
from .base import BackwardStep, Layer, batch

#: The floor under the norm in UnitNormalization: Keras calls ops.normalize with epsilon=1e-12.
UNIT_NORM_EPSILON = 1e-12


def _axis_argument(layer_name, axis):
    """Keras's axis argument, an int or a list of ints, kept as given (for the config)."""
    if isinstance(axis, (list, tuple)):
        axes = list(axis)
    else:
        axes = [axis]
    if not axes or not all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes
    ):
        raise HandnetError(f"{layer_name} axis must be an int or a list of ints, got {axis!r}")
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else int(axis)


def _resolve_axes(layer, axis, input_shape):
    """Keras's axes (with the batch axis) as sorted positive axes of the full (N, …) array."""
    rank = len(input_shape) + 1
    axes = axis if isinstance(axis, list) else [axis]
    if any(not -rank <= a < rank or a % rank == 0 for a in axes):
        raise HandnetError(
            f"{type(layer).__name__} {layer.name!r}: axis {axis} must name axes 1…{rank - 1} "
            f"(or -1…{1 - rank}) of inputs shaped (None, {', '.join(map(str, input_shape))}); "
            "the batch axis 0 is not allowed"
        )
    resolved = sorted({a % rank for a in axes})
    if len(resolved) != len(axes):
        raise HandnetError(
            f"{type(layer).__name__} {layer.name!r}: axis {axis} names an axis twice"
        )
    return tuple(resolved)


def _check_epsilon(layer_name, epsilon):
    if not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise HandnetError(f"{layer_name} epsilon must be a number > 0, got {epsilon!r}")
    return float(epsilon)


_ONES = {}


def _ones(count):
    """A read-only float32 vector of ``count`` ones, made once per count (a fresh one per call
    cost as much as the product it serves, at batch 1)."""
    ones = _ONES.get(count)
    if ones is None:
        ones = np.ones(count, np.float32)
        ones.flags.writeable = False
        _ONES[count] = ones
    return ones


def _mean(x, axes, count):
    """x.mean(axis=axes, keepdims=True) without its Python overhead: a sum over the ``count``
    values of each group, divided by count. float32 over trailing axes sums as a product with a
    vector of ones (BLAS adds short rows several times faster than NumPy's reduction, which pays
    a setup per row); anything else with NumPy's own sum, so that float64 (the gradient checks)
    adds in the order it always has (NumPy divides a float32 sum in float64 and rounds once
    more: for a quotient that gives the float32 quotient itself)."""
    kind = x.dtype.type
    # Trailing axes: the last one is ndim - 1 and they are consecutive (axes are sorted).
    trailing = axes[-1] == x.ndim - 1 and axes[-1] - axes[0] == len(axes) - 1
    if kind is np.float32 and trailing and x.flags.c_contiguous:
        total = x.reshape(-1, count) @ _ones(count)
        total = total.reshape(*x.shape[: x.ndim - len(axes)], *(1,) * len(axes))
    else:
        total = np.add.reduce(x, axis=axes, keepdims=True)
    total /= kind(count)
    return total


def _normalized_backward(u, x_hat, inverse_std, axes):
    """dx = s · (u - mean(u) - x̂ · mean(u · x̂)), means over ``axes`` (see the module doc).
    u is left alone; two new arrays, the operations in the formula's order."""
    count = u.size // inverse_std.size
    mean_u = _mean(u, axes, count)
    product = u * x_hat
    mean_u_x_hat = _mean(product, axes, count)
    dx = u - mean_u
    dx -= np.multiply(x_hat, mean_u_x_hat, out=product)
    dx *= inverse_std
    return dx


class LayerNormalization(Layer):
    """Normalize each sample over ``axis``, then scale and shift elementwise:

        μ, v = mean and biased variance of x[n] over the axes,  s = 1 / sqrt(v + ε)
        x̂ = (x - μ) · s,   y = γ · x̂ + β

    Shapes: x (N, …) -> y of the same shape; γ = gamma and β = beta have the sizes of the
    normalized axes, in order: x (N, T, D) with axis=-1 gives γ, β (D,); axis=[1, 2] gives
    (T, D). μ and s are one number per sample (and per position along the other axes).

    Backward (module docstring): with u = γ · dy,
        dx = s · (u - mean(u) - x̂ · mean(u · x̂))
        dγ = Σ dy · x̂,   dβ = Σ dy      (sums over the batch and the axes not normalized)

    ``rms_scaling=True`` is Keras's deprecated option, computed as Keras computes it (it scales
    by the variance, the mean is not subtracted, there is no β):
        y = γ · x · s,   s = 1 / sqrt(v + ε)  with v the *centered* variance
        dx = s · u - s³ · (x - μ) · mean(u · x),   dγ = Σ dy · x · s
    (v = mean((x - μ)²) has ∂v/∂x = 2(x - μ)/m, so ∂s/∂x = -s³ (x - μ)/m.)
    ``center=False`` drops β; ``scale=False`` drops γ (γ = 1), unless rms_scaling, which keeps γ.

    Keras's torch backend hands contiguous axes to torch's layer_norm, which normalizes the
    *trailing* axes: axis=1 of (N, T, D) fails there, or normalizes D when T = D. handnet
    normalizes the axes named, as Keras's own formula (ops.moments) and its other backends do.
    """

    def __init__(
        self,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        rms_scaling=False,
        beta_initializer="zeros",
        gamma_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = _axis_argument("LayerNormalization", axis)
        self.epsilon = _check_epsilon("LayerNormalization", epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer

    @property
    def has_gamma(self):
        return self.scale or self.rms_scaling

    @property
    def has_beta(self):
        return self.center and not self.rms_scaling

    def build(self, input_shape, rng=None):
        self._axes = _resolve_axes(self, self.axis, input_shape)
        shape = tuple(int(input_shape[a - 1]) for a in self._axes)
        # γ and β broadcast against (N, …): size 1 on every axis not normalized.
        self._broadcast = tuple(
            int(input_shape[a - 1]) if a in self._axes else 1 for a in range(len(input_shape) + 1)
        )
        self._count = math.prod(shape)  # the values in one normalized group
        # Normalizing the last axis alone, γ and β (D,) broadcast as they are.
        self._last_only = self._axes == (len(input_shape),)
        rng = rng if rng is not None else np.random.default_rng()
        if self.has_gamma:
            init = initializers.get(self.gamma_initializer)
            self.add_param("gamma", init(shape, rng, self.dtype))
        if self.has_beta:
            init = initializers.get(self.beta_initializer)
            self.add_param("beta", init(shape, rng, self.dtype))
        super().build(input_shape)

    def _weight(self, key):
        weight = self.params[key]
        return weight if self._last_only else weight.reshape(self._broadcast)

    def forward(self, x, training=False):
        self.check_input(x)
        dtype = x.dtype.type
        count = self._count
        centered = x - _mean(x, self._axes, count)
        y = np.multiply(centered, centered)  # the squares; y's buffer afterwards
        variance = _mean(y, self._axes, count)
        variance += dtype(self.epsilon)
        self._inverse_std = np.divide(dtype(1), np.sqrt(variance, out=variance), out=variance)
        if self.rms_scaling:
            self._x, self._centered = x, centered
            self._x_hat = x * self._inverse_std
        else:  # centered is this call's own array: it becomes x̂
            self._x_hat = np.multiply(centered, self._inverse_std, out=centered)
        if self.has_gamma:
            np.multiply(self._x_hat, self._weight("gamma"), out=y)
        else:
            y[...] = self._x_hat
        if self.has_beta:
            y += self._weight("beta")
        return y

    def backward(self, dy):
        others = tuple(a for a in range(dy.ndim) if a not in self._axes)
        if self.has_beta:
            self.grads["beta"][...] = dy.sum(axis=others).reshape(self.params["beta"].shape)
        if self.has_gamma:
            gamma_grad = (dy * self._x_hat).sum(axis=others)
            self.grads["gamma"][...] = gamma_grad.reshape(self.params["gamma"].shape)
        if not self.needs_input_gradient:
            return None
        u = dy * self._weight("gamma") if self.has_gamma else dy
        s = self._inverse_std
        if self.rms_scaling:
            mean_u_x = (u * self._x).mean(axis=self._axes, keepdims=True)
            return s * u - s * s * s * self._centered * mean_u_x
        return _normalized_backward(u, self._x_hat, s, self._axes)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        where = f"over axis {self.axis}, epsilon {self.epsilon:g}"
        if self.rms_scaling:
            return (
                f"scaled by the per-sample variance (rms_scaling) {where}",
                "y = γ · x / sqrt(var(x) + ε)",
            )
        gamma = "γ · " if self.has_gamma else ""
        beta = " + β" if self.has_beta else ""
        return (
            f"each sample normalized {where}",
            f"y = {gamma}(x - mean(x)) / sqrt(var(x) + ε){beta}   (per sample)",
        )

    def explain_backward(self, input_shape):
        axes = ", ".join(map(str, self._axes))
        others = ", ".join(["n", *(f"axis {a}" for a in range(1, len(input_shape) + 1)
                                  if a not in self._axes)])
        steps = []
        if self.has_beta:
            steps.append(BackwardStep("beta", f"dβ = Σ_({others}) dy", self.params["beta"].shape))
        x_hat = "x · s" if self.rms_scaling else "x̂"
        if self.has_gamma:
            steps.append(BackwardStep(
                "gamma", f"dγ = Σ_({others}) dy · {x_hat}", self.params["gamma"].shape
            ))
        u = "u = γ · dy" if self.has_gamma else "u = dy"
        if self.rms_scaling:
            dx = "dx = s · u - s³ · (x - μ) · mean(u · x)"
        else:
            dx = "dx = s · (u - mean(u) - x̂ · mean(u · x̂))"
        over = f"axis {axes}" if len(self._axes) == 1 else f"axes ({axes})"
        steps.append(BackwardStep(
            "x", f"{u};  {dx},  s = 1/sqrt(var + ε), means over {over} of each sample",
            batch(input_shape),
        ))
        return steps


class GroupNormalization(Layer):
    """Split the channels into ``groups`` groups; normalize each sample's group over the group's
    channels and every other per-sample axis; then scale and shift each channel:

        x (N, H, W, C), G groups of C/G channels:  x reshaped to (N, H, W, G, C/G)
        μ, v over (H, W, C/G) for each (n, g),   s = 1 / sqrt(v + ε)
        x̂ = (x - μ) · s   (reshaped back),   y[..., c] = γ[c] · x̂[..., c] + β[c]

    Channel c belongs to group c // (C/G), as in Keras. γ = gamma, β = beta are (C,). groups=C
    is instance normalization; groups=1 normalizes each sample over all its values (γ and β
    still per channel); Keras's groups=-1 means C. ``axis`` (one int, with the batch axis)
    names the channel axis.

    Backward: the module docstring's formula within each (n, g) group, with u = γ · dy:
        dx = s · (u - mean(u) - x̂ · mean(u · x̂)),   dγ[c] = Σ dy · x̂,   dβ[c] = Σ dy
    (the sums over every axis but the channel axis).
    """

    def __init__(
        self,
        groups=32,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or not (
            groups >= 1 or groups == -1
        ):
            raise HandnetError(
                f"GroupNormalization groups must be an int >= 1 (or -1 for one group per "
                f"channel), got {groups!r}"
            )
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise HandnetError(f"GroupNormalization axis must be one int, got {axis!r}")
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = _check_epsilon("GroupNormalization", epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer

    def build(self, input_shape, rng=None):
        (self._channel_axis,) = _resolve_axes(self, self.axis, input_shape)
        channels = int(input_shape[self._channel_axis - 1])
        if self.groups == -1:  # Keras resolves -1 at build and reports the number afterwards
            self.groups = channels
        if channels < self.groups or channels % self.groups:
            raise HandnetError(
                f"GroupNormalization {self.name!r}: {channels} channels (axis {self.axis}) "
                f"cannot be split into {self.groups} equal groups"
            )
        rank = len(input_shape) + 1
        self._broadcast = tuple(channels if a == self._channel_axis else 1 for a in range(rank))
        a = self._channel_axis
        self._grouped = (*input_shape[: a - 1], self.groups, channels // self.groups,
                         *input_shape[a:])
        # In the grouped array (N, …, G, C/G, …) the group axis is a; statistics over the rest.
        self._stat_axes = tuple(i for i in range(1, rank + 1) if i != a)
        rng = rng if rng is not None else np.random.default_rng()
        if self.scale:
            init = initializers.get(self.gamma_initializer)
            self.add_param("gamma", init((channels,), rng, self.dtype))
        if self.center:
            init = initializers.get(self.beta_initializer)
            self.add_param("beta", init((channels,), rng, self.dtype))
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        dtype = x.dtype.type
        grouped = x.reshape(x.shape[0], *self._grouped)
        mean = grouped.mean(axis=self._stat_axes, keepdims=True)
        centered = grouped - mean
        variance = (centered * centered).mean(axis=self._stat_axes, keepdims=True)
        self._inverse_std = dtype(1) / np.sqrt(variance + dtype(self.epsilon))
        self._x_hat = centered * self._inverse_std  # grouped shape
        x_hat = self._x_hat.reshape(x.shape)
        y = x_hat * self.params["gamma"].reshape(self._broadcast) if self.scale else x_hat.copy()
        if self.center:
            y += self.params["beta"].reshape(self._broadcast)
        return y

    def backward(self, dy):
        others = tuple(a for a in range(dy.ndim) if a != self._channel_axis)
        x_hat = self._x_hat.reshape(dy.shape)
        if self.center:
            np.sum(dy, axis=others, out=self.grads["beta"])
        if self.scale:
            np.sum(dy * x_hat, axis=others, out=self.grads["gamma"])
        if not self.needs_input_gradient:
            return None
        u = dy * self.params["gamma"].reshape(self._broadcast) if self.scale else dy
        u = u.reshape(self._x_hat.shape)
        dx = _normalized_backward(u, self._x_hat, self._inverse_std, self._stat_axes)
        return dx.reshape(dy.shape)

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        gamma = "γ[c] · " if self.scale else ""
        beta = " + β[c]" if self.center else ""
        return (
            f"{self.groups} groups of channels (axis {self.axis}), each sample's group normalized,"
            f" epsilon {self.epsilon:g}",
            f"y[..., c] = {gamma}(x - mean_g(x)) / sqrt(var_g(x) + ε){beta}   "
            "(g = the group of c, statistics per sample and group)",
        )

    def explain_backward(self, input_shape):
        others = "n,…" if len(input_shape) > 1 else "n"
        channels = (int(input_shape[self._channel_axis - 1]),)
        steps = []
        if self.center:
            steps.append(BackwardStep("beta", f"dβ[c] = Σ_({others}) dy[…, c]", channels))
        if self.scale:
            steps.append(BackwardStep("gamma", f"dγ[c] = Σ_({others}) dy · x̂[…, c]", channels))
        u = "u = γ · dy" if self.scale else "u = dy"
        size = channels[0] // self.groups
        steps.append(BackwardStep(
            "x",
            f"{u};  dx = s · (u - mean_g(u) - x̂ · mean_g(u · x̂)),  means over each sample's "
            f"group g of {size} channels (and its other axes)",
            batch(input_shape),
        ))
        return steps


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over ``axis``, as Keras's ops.normalize computes it:

        r = sqrt(Σ x²)   over the axes,   y = x · min(1/r, 1/ε),   ε = 1e-12

    Shapes: x (N, …) -> y of the same shape; r is one number per sample (and per position along
    the other axes). Below r = ε the factor is held at 1/ε (finite at x = 0, where y = 0).

    Backward, given dy, with ŷ = x / r:
        r > ε:   dx = (dy - ŷ · Σ dy · ŷ) / r     (the part of dy along ŷ changes only the
                                                   norm, which the division removes)
        r ≤ ε:   dx = dy / ε                       (the factor is a constant there)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_argument("UnitNormalization", axis)

    def build(self, input_shape, rng=None):
        self._axes = _resolve_axes(self, self.axis, input_shape)
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        dtype = x.dtype.type
        square_sum = (x * x).sum(axis=self._axes, keepdims=True)
        with np.errstate(divide="ignore"):  # 1/0 = inf, then held at 1/ε
            inverse_norm = dtype(1) / np.sqrt(square_sum)
        self._floored = inverse_norm >= dtype(1 / UNIT_NORM_EPSILON)
        self._inverse_norm = np.minimum(inverse_norm, dtype(1 / UNIT_NORM_EPSILON))
        self._y = x * self._inverse_norm
        return self._y

    def backward(self, dy):
        y, inverse_norm = self._y, self._inverse_norm
        along = (dy * y).sum(axis=self._axes, keepdims=True)
        # Where the factor is floored it is a constant: no term through the norm.
        along = np.where(self._floored, dy.dtype.type(0), along)
        return (dy - y * along) * inverse_norm

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (
            f"each sample scaled to unit L2 norm over axis {self.axis}",
            "y = x / max(sqrt(Σ x²), 1e-12)",
        )

    def explain_backward(self, input_shape):
        axes = ", ".join(map(str, self._axes))
        formula = (
            f"dx = (dy - y · Σ_axes({axes}) dy · y) / r,  r = sqrt(Σ x²);  "
            "where r ≤ 1e-12: dx = dy / 1e-12"
        )
        return [BackwardStep("x", formula, batch(input_shape))]


__all__ = ["GroupNormalization", "LayerNormalization", "UnitNormalization"]
