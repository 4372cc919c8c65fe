"""Pooling layers: MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D.

Channels-last, as Keras: x (N, H, W, C).  No parameters; each channel is pooled on its own.
"""

import numpy as np

from ..fast import pool
from ..ops.padding import check_padding, spatial_pair, window_geometry_2d
from .base import BackwardStep, Layer, batch
from .conv2d import require_images
from .convolution_base import scaled


class _Pooling2D(Layer):
    """Shared arguments: pool_size (p_h, p_w), strides (default: pool_size), padding.

    Output size along each axis as for Conv2D with kernel p and dilation 1:
        valid: OH = floor((H - p) / s) + 1
        same:  OH = ceil(H / s), the bottom/right side getting the odd cell of padding.
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = spatial_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else spatial_pair(strides, "strides")
        self.padding = check_padding(padding)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        (out_h, out_w), _ = window_geometry_2d(
            input_shape[:2], self.pool_size, self.strides, padding=self.padding
        )
        return (out_h, out_w, input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }

    def explain_windows(self, op):
        """(headline, formula) of a pooling that takes ``op`` ("max", "mean") of each window."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        headline = f"{op} over {ph}×{pw} windows, stride {sh}×{sw}, {self.padding} padding"
        return headline, f"y[n,i,j,c] = {op}_(u<{ph}, v<{pw}) x[n, {sh}i+u, {sw}j+v, c]"

    def window_index(self):
        (sh, sw) = self.strides
        return f"{scaled('i', sh)}+u, {scaled('j', sw)}+v"


class MaxPooling2D(_Pooling2D):
    """y[n, i, j, c] = max over the window of output (i, j) of x[n, ·, ·, c]

    Backward: dy[n, i, j, c] goes to one cell, the window's first maximum in row-major order
    (PyTorch's choice on ties — after a ReLU, windows of equal zeros are common).  Overlapping
    windows add up.  "same" padding pads with -inf, so a padded cell never wins.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        y, self._cache = pool.max_pool2d_forward(x, self.pool_size, self.strides, self.padding)
        return y

    def backward(self, dy):
        return pool.max_pool2d_backward(dy, self._cache, self.pool_size, self.strides)

    def explain(self):
        return self.explain_windows("max")

    def explain_backward(self, input_shape):
        formula = (
            f"dx[n, {self.window_index()}, c] += dy[n,i,j,c] at (u,v) = the window's first "
            "argmax (row-major), 0 elsewhere"
        )
        return [BackwardStep("x", formula, batch(input_shape))]


class AveragePooling2D(_Pooling2D):
    """y[n, i, j, c] = mean over the window of output (i, j) of x[n, ·, ·, c]

    Backward: each cell of a window receives dy[n, i, j, c] / (cells in the window).  With
    "same" padding the padded cells are not counted (Keras/TensorFlow semantics; PyTorch's
    count_include_pad=True would count them).
    """

    def forward(self, x, training=False):
        self.check_input(x)
        return pool.avg_pool2d_forward(x, self.pool_size, self.strides, self.padding)

    def backward(self, dy):
        return pool.avg_pool2d_backward(
            dy, (len(dy), *self.input_shape), self.pool_size, self.strides, self.padding
        )

    def explain(self):
        return self.explain_windows("mean")

    def explain_backward(self, input_shape):
        (ph, pw) = self.pool_size
        cells = f"{ph * pw}" if self.padding == "valid" else "(the window's cells inside x)"
        formula = f"dx[n, {self.window_index()}, c] += dy[n,i,j,c] / {cells}   (u<{ph}, v<{pw})"
        return [BackwardStep("x", formula, batch(input_shape))]


class _GlobalPooling2D(Layer):
    """(N, H, W, C) -> (N, C), or (N, 1, 1, C) with keepdims=True."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """y[n, c] = (1 / HW) Σ_{h, w} x[n, h, w, c];   dx[n, h, w, c] = dy[n, c] / HW."""

    def forward(self, x, training=False):
        self.check_input(x)
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, dy):
        height, width, channels = self.input_shape
        scale = dy.reshape(-1, 1, 1, channels) / (height * width)
        return np.broadcast_to(scale, (len(dy), height, width, channels)).copy()

    def explain(self):
        return "mean over all positions", "y[n,c] = mean_(i,j) x[n,i,j,c]"

    def explain_backward(self, input_shape):
        height, width, _ = input_shape
        dy = "dy[n,0,0,c]" if self.keepdims else "dy[n,c]"
        return [BackwardStep("x", f"dx[n,i,j,c] = {dy} / {height * width}", batch(input_shape))]


class GlobalMaxPooling2D(_GlobalPooling2D):
    """y[n, c] = max_{h, w} x[n, h, w, c];  dx: dy[n, c] goes to the first maximum in row-major
    (h, w) order, the same tie rule as MaxPooling2D."""

    def forward(self, x, training=False):
        self.check_input(x)
        n, height, width, channels = x.shape
        cells = x.reshape(n, height * width, channels)
        # argmax returns the first of equal maxima: the tie rule, for free.
        self._first_max = cells.argmax(axis=1)[:, None]  # (N, 1, C)
        y = np.take_along_axis(cells, self._first_max, axis=1)
        return y.reshape(n, 1, 1, channels) if self.keepdims else y.reshape(n, channels)

    def backward(self, dy):
        height, width, channels = self.input_shape
        n = len(dy)
        dx = np.zeros((n, height * width, channels), dtype=dy.dtype)
        np.put_along_axis(dx, self._first_max, dy.reshape(n, 1, channels), axis=1)
        return dx.reshape(n, height, width, channels)

    def explain(self):
        return "max over all positions", "y[n,c] = max_(i,j) x[n,i,j,c]"

    def explain_backward(self, input_shape):
        dy = "dy[n,0,0,c]" if self.keepdims else "dy[n,c]"
        formula = f"dx[n,i,j,c] = {dy} at (i,j) = the first argmax (row-major), 0 elsewhere"
        return [BackwardStep("x", formula, batch(input_shape))]
