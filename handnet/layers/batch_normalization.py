"""BatchNormalization over the last (channel) axis, with Keras's definitions."""

import numpy as np

from .. import initializers
from ..errors import HandnetError
from .base import BackwardStep, Layer, batch


class BatchNormalization(Layer):
    """Normalize each channel, then scale and shift it:

        x̂ = (x - μ) / σ,   σ = sqrt(v + ε),   y = γ · x̂ + β

    x (N, ..., C) -> y (N, ..., C); γ = gamma, β = beta, μ and v are (C,). Statistics are taken
    over every axis but the last: m = N·H·W values per channel for images, N for vectors.

    Inference (``training=False``, or a frozen layer): μ, v = moving_mean, moving_variance.
        dx = dy · γ / σ,   dγ = Σ dy · x̂,   dβ = Σ dy

    Training: μ, v = the batch mean and the *biased* batch variance (1/m Σ (x - μ)²), and the
    moving statistics follow Keras's convention (PyTorch's ``momentum`` is 1 - this one, and
    PyTorch stores the unbiased variance):
        moving_mean     ← moving_mean · momentum + μ · (1 - momentum)
        moving_variance ← moving_variance · momentum + v · (1 - momentum)
    Now μ and σ depend on x too. With the sums Σ over the m values of one channel:
        dβ = Σ dy,   dγ = Σ dy · x̂,   dx̂ = γ · dy
        dv = Σ dx̂ · (x - μ) · (-1/2) σ⁻³
        dμ = -Σ dx̂ / σ            (the term through v vanishes: Σ (x - μ) = 0)
        dx = dx̂ / σ + dv · 2(x - μ)/m + dμ / m
    and substituting, everything collapses to one line:
        dx = (γ / σ) · (dy - mean(dy) - x̂ · mean(dy · x̂))
    (mean over the same m values). ``center=False`` drops β, ``scale=False`` drops γ (γ = 1).
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = int(axis)
        if not 0 <= momentum <= 1:
            raise HandnetError(f"BatchNormalization momentum must be in [0, 1], got {momentum}")
        if not epsilon > 0:
            raise HandnetError(f"BatchNormalization epsilon must be > 0, got {epsilon}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer

    def build(self, input_shape, rng=None):
        rank = len(input_shape) + 1
        # Keras counts the batch axis: for images (N, H, W, C) the channel axis is -1 or 3.
        if self.axis not in (-1, rank - 1):
            raise HandnetError(
                f"BatchNormalization {self.name!r}: handnet normalizes the last axis only "
                f"(axis=-1 or {rank - 1} for inputs of rank {rank}), got axis={self.axis}"
            )
        channels = (int(input_shape[-1]),)
        rng = rng if rng is not None else np.random.default_rng()
        if self.scale:
            self.add_param(
                "gamma", initializers.get(self.gamma_initializer)(channels, rng, self.dtype)
            )
        if self.center:
            self.add_param(
                "beta", initializers.get(self.beta_initializer)(channels, rng, self.dtype)
            )
        self.state["moving_mean"] = initializers.get(self.moving_mean_initializer)(
            channels, rng, self.dtype
        )
        self.state["moving_variance"] = initializers.get(self.moving_variance_initializer)(
            channels, rng, self.dtype
        )
        super().build(input_shape)

    #: Set by handnet.training.parallel while a batch runs in parts on several threads:
    #: part_mean(part's sum, part's count) -> the mean over the whole batch (as PyTorch's
    #: SyncBatchNorm), so the parts normalize with the whole batch's statistics.
    part_mean = None

    def _batch_mean(self, values, axes):
        if self.part_mean is None:
            return values.mean(axis=axes)
        return self.part_mean(values.sum(axis=axes), values.size // values.shape[-1])

    def forward(self, x, training=False):
        self.check_input(x)
        dtype = x.dtype.type
        axes = tuple(range(x.ndim - 1))
        self._batch_statistics = bool(training and self.trainable)
        if self._batch_statistics:
            mean = self._batch_mean(x, axes)
            centered = x - mean
            variance = self._batch_mean(centered * centered, axes)
            keep, blend = dtype(self.momentum), dtype(1 - self.momentum)
            for key, batch_value in (("moving_mean", mean), ("moving_variance", variance)):
                moving = self.state[key]
                moving[...] = moving * keep + batch_value * blend
        else:
            mean, variance = self.state["moving_mean"], self.state["moving_variance"]
            centered = x - mean
        self._inverse_std = dtype(1) / np.sqrt(variance + dtype(self.epsilon))
        self._x_hat = centered * self._inverse_std
        y = self._x_hat * self.params["gamma"] if self.scale else self._x_hat.copy()
        if self.center:
            y += self.params["beta"]
        return y

    def backward(self, dy):
        axes = tuple(range(dy.ndim - 1))
        x_hat = self._x_hat
        if self.center:
            np.sum(dy, axis=axes, out=self.grads["beta"])
        if self.scale:
            np.sum(dy * x_hat, axis=axes, out=self.grads["gamma"])
        if not self.needs_input_gradient:
            return None
        gain = self._inverse_std * self.params["gamma"] if self.scale else self._inverse_std
        if not self._batch_statistics:
            return dy * gain
        return gain * (dy - self._batch_mean(dy, axes) - x_hat * self._batch_mean(dy * x_hat, axes))

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
        }

    def explain(self):
        return (
            f"epsilon {self.epsilon}",
            "y = γ · (x - μ) / sqrt(σ² + ε) + β   "
            "(μ, σ²: batch statistics in training, moving averages at inference)",
        )

    def explain_backward(self, input_shape):
        over = "n" if len(input_shape) == 1 else "n,…"
        steps = []
        if self.center:
            dbeta = f"dβ[c] = Σ_({over}) dy[{over},c]"
            steps.append(BackwardStep("beta", dbeta, self.params["beta"].shape))
        if self.scale:
            dgamma = f"dγ[c] = Σ_({over}) dy · x̂[{over},c]"
            steps.append(BackwardStep("gamma", dgamma, self.params["gamma"].shape))
        gain = "γ / σ" if self.scale else "1 / σ"
        count = "·".join(["N", *map(str, input_shape[:-1])])
        steps += [
            BackwardStep(
                "x",
                f"training: dx = ({gain}) · (dy - mean(dy) - x̂ · mean(dy · x̂)),  means over the "
                f"m = {count} values of a channel",
                batch(input_shape),
            ),
            BackwardStep(None, f"inference (or frozen): dx = dy · {gain}   (σ from the moving "
                         "variance)", batch(input_shape)),
        ]
        return steps
