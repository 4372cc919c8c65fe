"""Normalization: standardize features with statistics measured once on the data (Keras's
preprocessing family), inside the model, so a saved model takes raw inputs."""

import math

import numpy as np

from ..errors import HandnetError, InvalidInputError
from .base import BackwardStep, Layer, batch

#: Keras's ``backend.epsilon()``: the floor under the standard deviation.
STD_EPSILON = 1e-7


class Normalization(Layer):
    """y = (x - mean) / max(sqrt(variance), 1e-7)    (invert=True: y = mean + x · that)

    exactly as Keras 3 computes it (the floor is on the standard deviation, not the variance).

    ``axis`` names the axes that keep their own statistics (with the batch axis, as in Keras):
    x (N, H, W, C) with axis=-1 has one mean and variance per channel, (C,), taken over N, H, W;
    axis=(1, 2) one per pixel, (H, W); axis=None one for everything, (). The batch axis itself
    may not be kept.

    The statistics come either from the constructor (``mean``, ``variance``: numbers, or arrays
    whose shape lines up with the kept axes from the right, broadcast as in Keras) — then the
    layer has no weights, as in Keras — or from ``adapt(data)``, which fills the saved,
    never-trained weights ``mean`` and ``variance`` (and ``count``, which Keras 3 creates but
    never updates: it stays 0, and is kept here as a float, like every handnet weight).

    Nothing is trained, so backward is one line:
        dx = dy / max(sqrt(variance), 1e-7)      (invert: dx = dy · max(sqrt(variance), 1e-7))

    Only ``adapt`` writes the statistics, never a training step: a batch split across threads
    (handnet.training.parallel) reads the same arrays in every part.
    """

    #: The saved statistics stay as they are while a model trains (BatchNormalization's move).
    state_changes_in_training = False

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis
        ):
            axis = tuple(int(a) for a in axis)
        else:
            raise HandnetError(f"Normalization axis must be None, an int or ints, got {axis!r}")
        self.axis = axis
        if (mean is None) != (variance is None):
            raise HandnetError(
                "Normalization needs both mean and variance, or neither (then call adapt); got "
                f"mean={mean!r}, variance={variance!r}"
            )
        if mean is not None:
            mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
            if mean.shape != variance.shape:
                raise HandnetError(
                    f"Normalization mean and variance must have one shape, got {mean.shape} "
                    f"and {variance.shape}"
                )
            if mean.ndim > len(self.axis):
                raise HandnetError(
                    f"Normalization mean of shape {mean.shape} has more axes than axis="
                    f"{self.axis} keeps ({len(self.axis)})"
                )
            if (variance < 0).any() or not np.isfinite(variance).all():
                raise HandnetError("Normalization variance must be finite and >= 0")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)

    def build(self, input_shape, rng=None):
        rank = len(input_shape) + 1
        if any(not -rank <= a < rank or a % rank == 0 for a in self.axis):
            raise HandnetError(
                f"Normalization {self.name!r}: axis {self.axis} must name axes 1…{rank - 1} "
                f"(or -1…{1 - rank}) of inputs shaped (None, {', '.join(map(str, input_shape))});"
                " the batch axis 0 cannot keep statistics of its own"
            )
        self._keep = tuple(sorted({a % rank for a in self.axis}))
        self._reduce = tuple(a for a in range(rank) if a not in self._keep)
        self._broadcast = tuple(
            int(input_shape[a - 1]) if a in self._keep else 1 for a in range(rank)
        )
        shape = tuple(int(input_shape[a - 1]) for a in self._keep)
        if self.input_mean is None:
            self.state["mean"] = np.zeros(shape, self.dtype)
            self.state["variance"] = np.ones(shape, self.dtype)
            self.state["count"] = np.zeros((), self.dtype)
        else:
            # Keras lines the given statistics up with the kept axes from the right.
            expanded = [1] * rank
            for i in range(1, self.input_mean.ndim + 1):
                expanded[self._keep[-i]] = self.input_mean.shape[-i]
            try:
                for name, value in (("mean", self.input_mean), ("variance", self.input_variance)):
                    np.broadcast_to(value.reshape(expanded), self._broadcast)
            except ValueError:
                raise HandnetError(
                    f"Normalization {self.name!r}: {name} of shape {value.shape} does not fit "
                    f"the kept axes {self.axis} of sizes {shape}"
                ) from None
            self._given = tuple(v.reshape(expanded) for v in (self.input_mean, self.input_variance))
        super().build(input_shape)

    def replica(self, rng=None, share_state=False):
        """A replica reads this layer's very statistics (only read in forward; an ``adapt``,
        which writes them in place, reaches every replica)."""
        twin = super().replica(rng, share_state)
        twin.state = self.state
        return twin

    # -- the statistics ---------------------------------------------------------------------
    def adapt(self, data):
        """Measure mean and variance (the biased one, 1/m Σ (x - μ)²) over every axis but the
        kept ones, as Keras's adapt: ``data`` is one array (N, …) or an iterable of such
        batches, whose statistics are merged exactly (Chan et al.'s pairwise update, Keras's)."""
        if self.input_mean is not None:
            raise HandnetError(
                f"Normalization {self.name!r} was given mean and variance; adapt would ignore "
                "them (Keras cannot adapt such a layer either): build one without them"
            )
        if isinstance(data, np.ndarray):
            self._check_data(data)
            total_mean = np.mean(data, axis=self._reduce)
            total_variance = np.var(data, axis=self._reduce)
        elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
            total_mean = total_variance = None
            total_count = 0
            for batch in data:
                batch = np.asarray(batch)
                self._check_data(batch)
                batch_mean = batch.mean(axis=self._reduce, dtype=np.float64)
                batch_variance = batch.var(axis=self._reduce, dtype=np.float64)
                batch_count = math.prod(batch.shape[a] for a in self._reduce)
                total_count += batch_count
                if total_mean is None:
                    total_mean, total_variance = batch_mean, batch_variance
                    continue
                weight = batch_count / total_count
                new_mean = total_mean * (1 - weight) + batch_mean * weight
                total_variance = (total_variance + (total_mean - new_mean) ** 2) * (1 - weight) + (
                    batch_variance + (batch_mean - new_mean) ** 2
                ) * weight
                total_mean = new_mean
            if total_mean is None:
                raise HandnetError(f"Normalization {self.name!r}: adapt got no batches")
        else:
            raise HandnetError(
                "Normalization adapt takes an array (N, …) or an iterable of batches, got "
                f"{type(data).__name__}"
            )
        self.state["mean"][...] = total_mean
        self.state["variance"][...] = total_variance
        return self

    def _check_data(self, data):
        if data.ndim == 0 or not np.issubdtype(data.dtype, np.number):
            raise InvalidInputError(
                f"Normalization {self.name!r} adapts on numeric arrays (N, …), got "
                f"{data.dtype} {data.shape}"
            )
        if not np.isfinite(data).all():
            raise InvalidInputError(f"Normalization {self.name!r}: adapt data holds NaN or inf")
        if not self.built:
            self.build(data.shape[1:])
        elif data.shape[1:] != self.input_shape:
            raise InvalidInputError(
                f"Normalization {self.name!r} was built for per-sample shape {self.input_shape}, "
                f"adapt got data of shape {data.shape}"
            )

    def _statistics(self, dtype):
        """(mean, max(sqrt(variance), ε)), shaped to broadcast against (N, …)."""
        if self.input_mean is not None:
            mean, variance = self._given
        else:
            mean = self.state["mean"].reshape(self._broadcast)
            variance = self.state["variance"].reshape(self._broadcast)
        mean, variance = mean.astype(dtype, copy=False), variance.astype(dtype, copy=False)
        return mean, np.maximum(np.sqrt(variance), dtype(STD_EPSILON))

    # -- computation ------------------------------------------------------------------------
    def forward(self, x, training=False):
        self.check_input(x)
        mean, self._std = self._statistics(x.dtype.type)
        if self.invert:
            return mean + x * self._std
        return (x - mean) / self._std

    def backward(self, dy):
        return dy * self._std if self.invert else dy / self._std

    def get_config(self):
        def listed(value):
            return None if value is None else value.tolist()

        return {
            **super().get_config(),
            "axis": list(self.axis),
            "mean": listed(self.input_mean),
            "variance": listed(self.input_variance),
            "invert": self.invert,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        source = "given" if self.input_mean is not None else "adapted"
        kept = f"kept axes {list(self.axis)}" if self.axis else "one mean for all"
        if self.invert:
            return (f"undo a standardization ({source} statistics, {kept})",
                    "y = mean + x · max(sqrt(variance), 1e-7)")
        return (f"standardize with {source} statistics ({kept})",
                "y = (x - mean) / max(sqrt(variance), 1e-7)")

    def explain_backward(self, input_shape):
        if self.invert:
            formula = "dx = dy · max(sqrt(variance), 1e-7)   (nothing trained)"
        else:
            formula = "dx = dy / max(sqrt(variance), 1e-7)   (nothing trained)"
        return [BackwardStep("x", formula, batch(input_shape))]
