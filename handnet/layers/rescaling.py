"""Rescaling: a fixed affine map of the inputs, e.g. pixels 0…255 to 0…1 inside the model."""

import numpy as np

from ..errors import HandnetError
from .base import BackwardStep, Layer, batch


class Rescaling(Layer):
    """y = x · scale + offset;  dx = dy · scale.

    ``scale`` and ``offset`` are numbers, or lists broadcast against the per-sample shape as
    NumPy broadcasts (one value per channel: a list as long as the last axis). They are
    constants, not weights: nothing is trained or saved besides the configuration.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _number_or_list(scale)
        self.offset = _number_or_list(offset)

    def build(self, input_shape, rng=None):
        try:
            shape = np.broadcast_shapes(
                tuple(input_shape), np.shape(self.scale), np.shape(self.offset)
            )
        except ValueError:
            shape = None
        if shape != tuple(input_shape):
            raise HandnetError(
                f"Rescaling {self.name!r}: scale {np.shape(self.scale)} and offset "
                f"{np.shape(self.offset)} must broadcast to the per-sample input shape "
                f"{tuple(input_shape)}"
            )
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return x * np.asarray(self.scale, dtype=x.dtype) + np.asarray(self.offset, dtype=x.dtype)

    def backward(self, dy):
        # Summing over broadcast axes is not needed: the output has the input's shape.
        return dy * np.asarray(self.scale, dtype=dy.dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    def explain(self):
        return "", f"y = x · {self.scale} + {self.offset}"

    def explain_backward(self, input_shape):
        return [BackwardStep("x", f"dx = dy · {self.scale}", batch(input_shape))]


def _number_or_list(value):
    array = np.asarray(value, dtype=np.float64)
    return float(array) if array.ndim == 0 else array.tolist()
