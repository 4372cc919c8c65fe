"""Dropout, inverted: the scaling happens in training so inference is the identity."""

import numpy as np

from ..errors import HandnetError
from .base import BackwardStep, Layer, batch


class Dropout(Layer):
    """Training:   m ~ Bernoulli(1 - rate) per element,
                y = x · m / (1 - rate),  dx = dy · m / (1 - rate)
    Inference:  y = x.

    Dividing by the keep probability in training keeps E[y] = x, so the trained weights need no
    rescaling at inference (unlike the original, non-inverted formulation).
    The mask comes from ``self.rng``: the model seeds it from ``fit(seed=...)``; a ``seed`` given
    here takes precedence.
    """

    supports_masking = True  # a padded-sequence mask passes through, as in Keras

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise HandnetError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0:
            self._scaled_mask = None
            return x
        keep = 1 - self.rate
        mask = self.rng.random(x.shape, dtype=np.float32) < keep
        self._scaled_mask = mask * x.dtype.type(1 / keep)
        return x * self._scaled_mask

    def backward(self, dy):
        if self._scaled_mask is None:
            return dy
        return dy * self._scaled_mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    def explain(self):
        keep = 1 - self.rate
        return (
            f"rate {self.rate}",
            f"training: y = x · m / {keep:g}, m ~ Bernoulli({keep:g});  inference: y = x",
        )

    def explain_backward(self, input_shape):
        keep = 1 - self.rate
        formula = f"training: dx = dy · m / {keep:g} (the forward's mask m);  inference: dx = dy"
        return [BackwardStep("x", formula, batch(input_shape))]
