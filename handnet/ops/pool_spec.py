"""Pooling written as loops: the specification that ``handnet.fast.pool`` must match.

x (N, H, W, C) -> y (N, OH, OW, C), channel by channel.  The window of output (i, j) covers
rows  i·s_h - top … i·s_h - top + p_h - 1  (columns alike), clipped to the image: with
``padding="same"`` the padded cells simply do not exist, which is Keras's semantics for both
kinds of pooling (max pads with -inf; average divides by the number of real cells only).

    max:      y[n, i, j, c] = max over the window of x[n, ·, ·, c]
              dx: dy[n, i, j, c] goes to ONE cell, the first maximum in row-major window order
              (PyTorch's rule for ties; any subgradient would do, but one rule makes results
              comparable)
    average:  y[n, i, j, c] = (1 / |window|) Σ over the window of x[n, ·, ·, c]
              dx: every cell of the window receives dy[n, i, j, c] / |window|

Windows may overlap (stride < pool size); their gradients then add up.
"""

import numpy as np

from .padding import window_geometry_2d


def _windows(x_shape, pool_size, strides, padding):
    """Yield (i, j, rows, cols): each output position and the slices of its clipped window."""
    _, height, width, _ = x_shape
    (out_h, out_w), ((top, _), (left, _)) = window_geometry_2d(
        (height, width), pool_size, strides, padding=padding
    )
    for i in range(out_h):
        row = i * strides[0] - top
        rows = slice(max(row, 0), min(row + pool_size[0], height))
        for j in range(out_w):
            col = j * strides[1] - left
            yield i, j, rows, slice(max(col, 0), min(col + pool_size[1], width))


def _output(x, pool_size, strides, padding):
    (out_h, out_w), _ = window_geometry_2d(x.shape[1:3], pool_size, strides, padding=padding)
    return np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=x.dtype)


def max_pool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    y = _output(x, pool_size, strides, padding)
    for n in range(x.shape[0]):
        for i, j, rows, cols in _windows(x.shape, pool_size, strides, padding):
            y[n, i, j] = x[n, rows, cols].max(axis=(0, 1))
    return y


def max_pool2d_backward(dy, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    dx = np.zeros_like(x, dtype=dy.dtype)
    channels = np.arange(x.shape[3])
    for n in range(x.shape[0]):
        for i, j, rows, cols in _windows(x.shape, pool_size, strides, padding):
            window = x[n, rows, cols]  # (wh, ww, C)
            # argmax returns the first of tied maxima in row-major window order (PyTorch's rule)
            first_max = window.reshape(-1, x.shape[3]).argmax(axis=0)
            row, col = np.divmod(first_max, window.shape[1])
            dx[n, rows.start + row, cols.start + col, channels] += dy[n, i, j]
    return dx


def avg_pool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    y = _output(x, pool_size, strides, padding)
    for n in range(x.shape[0]):
        for i, j, rows, cols in _windows(x.shape, pool_size, strides, padding):
            y[n, i, j] = x[n, rows, cols].mean(axis=(0, 1))
    return y


def avg_pool2d_backward(dy, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    dx = np.zeros_like(x, dtype=dy.dtype)
    for n in range(x.shape[0]):
        for i, j, rows, cols in _windows(x.shape, pool_size, strides, padding):
            count = (rows.stop - rows.start) * (cols.stop - cols.start)
            dx[n, rows, cols] += dy[n, i, j] / count
    return dx
