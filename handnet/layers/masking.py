"""Masking: the steps of a sequence that are all ``mask_value`` become padding for the layers
after it; and which layers Keras lets a mask reach."""

import numpy as np

from .base import BackwardStep, Layer, batch

#: What Keras 3 does with a mask that reaches a layer (read from its sources: the layers that
#: set ``supports_masking`` and those whose ``call`` takes ``mask``), by handnet class name.
#: These pass it on unchanged: their arithmetic ignores it (Dense, Dropout and Activation say
#: so themselves with ``supports_masking = True``).
KERAS_PASSES_MASK = frozenset(
    {
        "ActivityRegularization", "AlphaDropout", "ELU", "GaussianDropout", "GaussianNoise",
        "GroupNormalization", "Identity", "LayerNormalization", "LeakyReLU", "Normalization",
        "PReLU", "ReLU", "Rescaling", "SpatialDropout1D", "SpatialDropout2D",
        "UnitNormalization",
    }
)
#: These read or combine a mask in ways handnet does not reproduce (masked batch statistics,
#: masked means or softmax, a merge of several masks, a mask handed to a wrapped layer, a
#: nested model): a mask reaching one is refused rather than silently dropped, since the
#: numbers would differ from Keras's. Any other layer that takes no mask drops it, as Keras
#: does for layers without ``supports_masking`` (with the same warning).
KERAS_READS_MASK = frozenset(
    {
        "Add", "Average", "BatchNormalization", "Concatenate", "Dot", "GlobalAveragePooling1D",
        "Maximum", "Merge", "Minimum", "Model", "Multiply", "Softmax", "Subtract",
        "TimeDistributed",
    }
)


class Masking(Layer):
    """Marks as padding every step whose features all equal ``mask_value``, and zeroes it.

    Shapes:  x (N, T, D) -> y (N, T, D), mask (N, T) boolean, True = a real step.
        m_t = any_d(x[:, t, d] != mask_value)         (per sample)
        y_t = x_t if m_t else 0                         (Keras zeroes the masked steps)
    Backward, with the mask a step function of x (constant almost everywhere, as in Keras's
    ``where``):  dx_t = dy_t if m_t else 0.

    The layers after it that ``support_masking`` pass the mask on; the recurrent layers
    skip the masked steps (handnet.layers.recurrent).
    """

    makes_mask = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, x, mask):
        return np.any(x != self.mask_value, axis=-1)

    def forward(self, x, training=False):
        self.check_input(x)
        self._keep = np.any(x != self.mask_value, axis=-1)[..., None]
        return np.where(self._keep, x, x.dtype.type(0))

    def backward(self, dy):
        return np.where(self._keep, dy, dy.dtype.type(0))

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}

    def explain(self):
        return (
            f"steps equal to {self.mask_value:g} are padding",
            f"m_t = any(x_t != {self.mask_value:g});  y_t = m_t · x_t;  the mask m goes on to "
            "the layers after",
        )

    def explain_backward(self, input_shape):
        formula = "dx_t = m_t · dy_t   (a masked step gets no gradient)"
        return [BackwardStep("x", formula, batch(input_shape))]
