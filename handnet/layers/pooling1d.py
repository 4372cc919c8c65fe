"""1-D pooling layers: MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D,
GlobalAveragePooling1D.  Channels-last, as Keras: x (N, L, C); no parameters, each channel
pooled on its own.
"""

import numpy as np

from ..fast import pool1d
from ..ops.padding import check_padding
from ..ops.padding1d import sequence_geometry
from .base import BackwardStep, Layer, batch
from .convolution_base import require_sequences, scaled, sequence_int


class _Pooling1D(Layer):
    """Shared arguments: pool_size p, strides s (default: pool_size), padding.

    Output length as for Conv1D with kernel p and dilation 1:
        valid: OL = floor((L - p) / s) + 1
        same:  OL = ceil(L / s), the end getting the odd cell of padding.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = sequence_int(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else sequence_int(strides, "strides")
        self.padding = check_padding(padding)

    def compute_output_shape(self, input_shape):
        require_sequences(self, input_shape)
        out, _, _ = sequence_geometry(input_shape[0], self.pool_size, self.strides, 1, self.padding)
        return (out, input_shape[1])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": [self.pool_size],
            "strides": [self.strides],
            "padding": self.padding,
        }

    def _explain(self, operation):
        headline = (
            f"{operation} over windows of {self.pool_size}, stride {self.strides}, "
            f"{self.padding} padding"
        )
        window = f"{scaled('t', self.strides)}+u"
        return headline, f"y[n,t,c] = {operation}_(u<{self.pool_size}) x[n, {window}, c]"

    def _explain_backward(self, input_shape, share):
        window = f"{scaled('t', self.strides)}+u"
        formula = f"dx[n, {window}, c] += {share}   (u<{self.pool_size})"
        return [BackwardStep("x", formula, batch(input_shape))]


class MaxPooling1D(_Pooling1D):
    """y[n, t, c] = max_{u < p} x[n, t·s + u, c]  (with "same", over the window's real cells)

    Backward: dy[n, t, c] goes to one cell, the window's first maximum (PyTorch's tie rule);
    overlapping windows add up.  Loops in ``handnet.ops.pool1d_spec``; the layer runs
    MaxPooling2D's op on the sequence as an image one row high (``handnet.fast.pool1d``).
    """

    def forward(self, x, training=False):
        self.check_input(x)
        y, self._cache = pool1d.max_pool1d_forward(x, self.pool_size, self.strides, self.padding)
        return y

    def backward(self, dy):
        return pool1d.max_pool1d_backward(dy, self._cache, self.pool_size, self.strides)

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return self._explain("max")

    def explain_backward(self, input_shape):
        share = "dy[n,t,c] at u = the window's first argmax, 0 elsewhere"
        return self._explain_backward(input_shape, share)


class AveragePooling1D(_Pooling1D):
    """y[n, t, c] = mean over the window of output t of x[n, ·, c]

    Backward: each cell of a window receives dy[n, t, c] / (cells in the window).  With
    "same" padding the padded cells are not counted (Keras's semantics, as AveragePooling2D).
    """

    def forward(self, x, training=False):
        self.check_input(x)
        return pool1d.avg_pool1d_forward(x, self.pool_size, self.strides, self.padding)

    def backward(self, dy):
        return pool1d.avg_pool1d_backward(
            dy, (len(dy), *self.input_shape), self.pool_size, self.strides, self.padding
        )

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return self._explain("mean")

    def explain_backward(self, input_shape):
        cells = f"{self.pool_size}" if self.padding == "valid" else "(the window's cells inside x)"
        return self._explain_backward(input_shape, f"dy[n,t,c] / {cells}")


class _GlobalPooling1D(Layer):
    """(N, L, C) -> (N, C), or (N, 1, C) with keepdims=True."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        require_sequences(self, input_shape)
        return (1, input_shape[1]) if self.keepdims else (input_shape[1],)

    def _shaped(self, y):
        """y (N, 1, C) as the layer returns it."""
        return y if self.keepdims else y[:, 0]

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}

    def _explain(self, operation):
        shape = "(N, 1, C)" if self.keepdims else "(N, C)"
        return f"{operation} over all steps, to {shape}", f"y[n,c] = {operation}_t x[n,t,c]"

    def _explain_backward(self, input_shape, formula):
        dy = "dy[n,0,c]" if self.keepdims else "dy[n,c]"
        return [BackwardStep("x", formula.format(dy=dy), batch(input_shape))]


class GlobalAveragePooling1D(_GlobalPooling1D):
    """y[n, c] = (1 / L) Σ_t x[n, t, c];   dx[n, t, c] = dy[n, c] / L."""

    def forward(self, x, training=False):
        self.check_input(x)
        return self._shaped(x.mean(axis=1, keepdims=True))

    def backward(self, dy):
        length, channels = self.input_shape
        scale = dy.reshape(-1, 1, channels) / length
        return np.broadcast_to(scale, (len(dy), length, channels)).copy()

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return self._explain("mean")

    def explain_backward(self, input_shape):
        return self._explain_backward(input_shape, f"dx[n,t,c] = {{dy}} / {input_shape[0]}")


class GlobalMaxPooling1D(_GlobalPooling1D):
    """y[n, c] = max_t x[n, t, c];  dx: dy[n, c] goes to the first maximum along t (the tie
    rule of MaxPooling1D), every other cell gets 0."""

    def forward(self, x, training=False):
        self.check_input(x)
        # argmax returns the first of equal maxima: the tie rule, for free.
        self._first_max = x.argmax(axis=1)[:, None]  # (N, 1, C)
        return self._shaped(np.take_along_axis(x, self._first_max, axis=1))

    def backward(self, dy):
        length, channels = self.input_shape
        dx = np.zeros((len(dy), length, channels), dtype=dy.dtype)
        np.put_along_axis(dx, self._first_max, dy.reshape(-1, 1, channels), axis=1)
        return dx

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return self._explain("max")

    def explain_backward(self, input_shape):
        formula = "dx[n,t,c] = {dy} at t = the first argmax, 0 elsewhere"
        return self._explain_backward(input_shape, formula)
