"""Noise and regularization layers (Keras's regularization family, beside Dropout):

    SpatialDropout1D, SpatialDropout2D   whole channels dropped: one Bernoulli per (sample, channel)
    GaussianNoise(stddev)                y = x + ε,            ε ~ N(0, stddev²)
    GaussianDropout(rate)                y = x · ε,            ε ~ N(1, rate / (1 - rate))
    AlphaDropout(rate)                   dropped units set to SELU's negative saturation, then an
                                         affine map that keeps the mean and variance of the input
    ActivityRegularization(l1, l2)       y = x, and l1·Σ|x| + l2·Σx² (over N) added to the loss

Every noise layer is the exact identity at inference (``training=False``) and draws only in
training. The draws come from ``self.rng``: ``fit(seed=...)`` gives each layer a child generator
of its own (handnet.training.loop.seed_layers), and a ``seed`` given here takes precedence, as in
handnet's Dropout. The distributions are Keras's; the draws are NumPy's, so a seeded handnet run
and a seeded Keras run drop different units.

Backward passes differentiate with the drawn noise held fixed (it does not depend on x):
dx = dy · (what multiplied x).
"""

import math

import numpy as np

from ..errors import HandnetError, InvalidInputError
from ..regularizers import L1L2
from .base import BackwardStep, Layer, batch

#: SELU's constants (Klambauer et al., 2017), as Keras writes them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _rate(kind, rate):
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)):
        raise HandnetError(f"{kind} rate must be a number in [0, 1), got {rate!r}")
    if not 0 <= rate < 1:
        raise HandnetError(f"{kind} rate must be in [0, 1), got {rate}")
    return float(rate)


class RandomLayer(Layer):
    """A layer that draws from ``self.rng`` in training and is the identity at inference (the
    base of the noise layers here and of the augmentation layers)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise HandnetError(f"{type(self).__name__} seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.rng = np.random.default_rng(seed)
        self._factor = None  # what multiplied x in the last training pass (None: identity)

    def backward(self, dy):
        """dx = dy · factor (the noise drawn in forward, held fixed); dx = dy at inference."""
        if self._factor is None:
            return dy
        return dy * self._factor

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class _SpatialDropout(RandomLayer):
    """Training:  m[n, c] ~ Bernoulli(1 - rate), one per sample and channel, shared by every
    step / pixel of that channel;  y = x · m / (1 - rate),  dx = dy · m / (1 - rate).
    Inference:  y = x.

    Neighbouring steps or pixels of a feature map are strongly correlated, so dropping them one
    by one (Dropout) removes little information: the neighbours still carry it. Dropping the
    whole map makes the channels learn not to rely on each other (Tompson et al., 2014).
    """

    spatial_axes = 0  # per-sample axes before the channels: 1 (sequences) or 2 (images)

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(type(self).__name__, rate)

    def build(self, input_shape, rng=None):
        if len(input_shape) != self.spatial_axes + 1:
            what = "sequences (steps, channels)" if self.spatial_axes == 1 else (
                "images (height, width, channels)"
            )
            raise InvalidInputError(
                f"{type(self).__name__} {self.name!r} expects {what} per sample, got per-sample "
                f"shape {tuple(input_shape)}"
            )
        super().build(input_shape, rng)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0:
            self._factor = None
            return x
        keep = 1 - self.rate
        noise_shape = (len(x), *[1] * self.spatial_axes, x.shape[-1])  # (N, 1, …, 1, C)
        mask = self.rng.random(noise_shape, dtype=np.float32) < keep
        self._factor = mask * x.dtype.type(1 / keep)
        return x * self._factor

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        keep = 1 - self.rate
        return (
            f"in training, whole channels dropped with probability {self.rate:g}",
            f"y = x · m[n, c] / {keep:g},  m ~ Bernoulli({keep:g})  (inference: y = x)",
        )

    def explain_backward(self, input_shape):
        keep = 1 - self.rate
        formula = f"training: dx = dy · m[n, c] / {keep:g} (the forward's m);  inference: dx = dy"
        return [BackwardStep("x", formula, batch(input_shape))]


class SpatialDropout1D(_SpatialDropout):
    __doc__ = _SpatialDropout.__doc__ + "\n    Sequences: x (N, T, C), m (N, 1, C).\n"
    spatial_axes = 1


class SpatialDropout2D(_SpatialDropout):
    __doc__ = _SpatialDropout.__doc__ + "\n    Images: x (N, H, W, C), m (N, 1, 1, C).\n"
    spatial_axes = 2

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise HandnetError(
                f"SpatialDropout2D: handnet is channels-last; data_format must be None or "
                f"'channels_last', got {data_format!r}"
            )
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}


class GaussianNoise(RandomLayer):
    """Training:  y = x + ε,  ε ~ N(0, stddev²) per element;  dx = dy (ε does not depend on x).
    Inference:  y = x.

    Additive noise on the inputs (or on activations) is a smooth regularizer: to first order,
    training on x + ε penalizes the squared gradient of the loss with respect to x (Bishop, 1995).
    Shapes: any; y has x's shape.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.number)):
            raise HandnetError(f"GaussianNoise stddev must be a number >= 0, got {stddev!r}")
        if not 0 <= stddev < math.inf:
            raise HandnetError(f"GaussianNoise stddev must be a finite number >= 0, got {stddev}")
        self.stddev = float(stddev)

    def forward(self, x, training=False):
        self.check_input(x)
        self._factor = None  # additive: the backward pass is the identity either way
        if not training or self.stddev == 0:
            return x
        noise = self.rng.standard_normal(x.shape, dtype=_draw_dtype(x))
        return x + (noise * self.stddev).astype(x.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (
            f"in training, Gaussian noise of standard deviation {self.stddev:g} added",
            f"y = x + ε,  ε ~ N(0, {self.stddev:g}²)  (inference: y = x)",
        )

    def explain_backward(self, input_shape):
        formula = "dx = dy   (the noise ε does not depend on x)"
        return [BackwardStep("x", formula, batch(input_shape))]


class GaussianDropout(RandomLayer):
    """Training:  y = x · ε,  ε ~ N(1, σ²) per element with σ² = rate / (1 - rate);
    dx = dy · ε.  Inference:  y = x.

    The multiplicative noise of Dropout, made Gaussian: Dropout's scaled mask m / (1 - rate) has
    mean 1 and variance rate / (1 - rate), and this ε has the same two moments (Srivastava et
    al., 2014, section 10). E[y] = x, so inference needs no rescaling.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate("GaussianDropout", rate)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0:
            self._factor = None
            return x
        stddev = math.sqrt(self.rate / (1 - self.rate))
        noise = self.rng.standard_normal(x.shape, dtype=_draw_dtype(x))
        self._factor = (noise * stddev + 1).astype(x.dtype, copy=False)
        return x * self._factor

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        variance = self.rate / (1 - self.rate)
        return (
            f"in training, multiplied by Gaussian noise of mean 1 (rate {self.rate:g})",
            f"y = x · ε,  ε ~ N(1, {variance:.4g})  (inference: y = x)",
        )

    def explain_backward(self, input_shape):
        formula = "training: dx = dy · ε (the forward's draw);  inference: dx = dy"
        return [BackwardStep("x", formula, batch(input_shape))]


class AlphaDropout(RandomLayer):
    """Training, with keep mask m ~ Bernoulli(1 - rate) (of ``noise_shape``, broadcast):

        y = a · (x · m + α' · (1 - m)) + b,     α' = -λα ≈ -1.7581 (SELU's limit for x → -∞)
        a = ((1 - rate) · (1 + rate · α'²))^(-1/2),     b = -a · α' · rate
        dx = a · m · dy

    Inference:  y = x.

    Dropout's zeros would shift the mean and variance that SELU networks keep at (0, 1); a unit
    set to α' instead, followed by the affine map (a, b), leaves an input of mean 0 and variance
    1 with mean 0 and variance 1 (Klambauer et al., 2017).
    ``noise_shape``: the mask's shape with the batch axis, None entries taking x's size (e.g.
    (None, 1, C) drops whole channels of sequences); None for one draw per element.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate("AlphaDropout", rate)
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or not all(
                d is None or (isinstance(d, (int, np.integer)) and d >= 1) for d in noise_shape
            ):
                raise HandnetError(
                    f"AlphaDropout noise_shape must be None or a list of ints >= 1 / None with "
                    f"the batch axis, got {noise_shape!r}"
                )
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape

    def build(self, input_shape, rng=None):
        super().build(input_shape, rng)
        if self.noise_shape is not None:
            per_sample = self.noise_shape[1:]
            if len(self.noise_shape) != len(self.input_shape) + 1 or any(
                d not in (None, 1, size) for d, size in zip(per_sample, self.input_shape)
            ):
                raise InvalidInputError(
                    f"AlphaDropout {self.name!r}: noise_shape {self.noise_shape} does not "
                    f"broadcast to inputs (None, {', '.join(map(str, self.input_shape))})"
                )

    def _mask_shape(self, x):
        if self.noise_shape is None:
            return x.shape
        return tuple(size if d is None else d for d, size in zip(self.noise_shape, x.shape))

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0:
            self._factor = None
            return x
        alpha_p = -SELU_ALPHA * SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        # Keras's comparison: a unit is kept where u >= rate, u ~ U[0, 1).
        kept = self.rng.random(self._mask_shape(x), dtype=np.float32) >= self.rate
        kept = kept.astype(x.dtype)
        self._factor = kept * x.dtype.type(a)  # ∂y/∂x
        constant = (1 - kept) * x.dtype.type(a * alpha_p) + x.dtype.type(b)
        return x * self._factor + constant

    def get_config(self):
        noise_shape = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise_shape}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (
            f"in training, units set to SELU's saturation with probability {self.rate:g}, "
            "mean and variance kept",
            "y = a · (x · m + α'(1 - m)) + b,  α' = -λα  (inference: y = x)",
        )

    def explain_backward(self, input_shape):
        alpha_p = -SELU_ALPHA * SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        formula = f"training: dx = {a:.4g} · m · dy (a, the forward's mask m);  inference: dx = dy"
        return [BackwardStep("x", formula, batch(input_shape))]


class ActivityRegularization(Layer):
    """y = x, and in training a penalty on the activity x added to the loss:

        P = (l1 · Σ |x| + l2 · Σ x²) / N          (sums over the whole batch (N, …))
        dx = dy + (l1 · sign(x) + 2 · l2 · x) / N

    Keras adds l1·Σ|x| + l2·Σx² for each call and divides it by the batch size N
    (keras.src.layers.layer, "Normalize by batch size"), so that the penalty's weight does not
    grow with N, as the mean loss does not. ``regularization_penalty()`` returns the P of the last
    forward pass, which is how it enters ``fit``'s loss (Model.compute_gradients adds every
    layer's penalty after the forward pass); its gradient enters ``backward``.

    An inference pass has its penalty too, on the inference activity (and ``backward`` its
    gradient, as after any pass): Keras's ``evaluate`` adds each test batch's to the loss, and
    so does handnet's (the validation loss of ``fit`` with it). Called twice in one graph, the
    layer's penalty is the sum of both calls' (each over the batch size).
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("l1", l1), ("l2", l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
                0 <= value < math.inf
            ):
                raise HandnetError(
                    f"ActivityRegularization {key} must be a finite number >= 0, got {value!r}"
                )
        self.l1, self.l2 = float(l1), float(l2)
        self._regularizer = L1L2(self.l1, self.l2)
        self._x = None
        # The penalty of each call in the last forward pass, by the copy that ran it: a layer
        # called twice in one graph runs its second call on a replica (handnet.model.plan),
        # which shares this dict, and the loss needs both calls' penalties.
        self._owner, self._penalties = self, {}

    def forward(self, x, training=False):
        self.check_input(x)
        if self._owner is self:  # the first call of a pass: forget the last pass's calls
            self._penalties.clear()
        if self.l1 or self.l2:
            self._x = x
            self._penalties[id(self)] = self._regularizer.penalty(x) / len(x)
        else:
            self._x = None
            self._penalties[id(self)] = 0.0
        return x

    def backward(self, dy):
        if self._x is None:
            return dy
        gradient = self._regularizer.gradient(self._x)
        return dy + gradient / dy.dtype.type(len(dy))

    def regularization_penalty(self):
        """P of the last forward pass, summed over the calls of a shared layer."""
        return float(sum(self._penalties.values()))

    def replica(self, rng=None, share_state=False):
        """A replica for a second call in the same graph (``share_state``) reports its penalty
        to this layer; one for a part of a split batch (handnet.parallel) keeps its own."""
        twin = super().replica(rng, share_state)
        if not share_state:
            twin._owner, twin._penalties = twin, {}
        return twin

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (
            f"passes its input through; adds l1 = {self.l1:g}, l2 = {self.l2:g} "
            "activity penalties to the loss",
            "y = x,  loss += (l1 · Σ|x| + l2 · Σx²) / N",
        )

    def explain_backward(self, input_shape):
        formula = f"dx = dy + ({self.l1:g} · sign(x) + {2 * self.l2:g} · x) / N   (the penalty's)"
        return [BackwardStep("x", formula, batch(input_shape))]


def _draw_dtype(x):
    """Gaussian draws in float64 for float64 inputs (gradient checks), float32 otherwise."""
    return np.float64 if x.dtype == np.float64 else np.float32
