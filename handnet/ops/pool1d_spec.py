"""1-D pooling written as loops: the specification ``handnet.fast.pool1d`` must match.

x (N, L, C) -> y (N, OL, C), channel by channel.  The window of output t covers cells
t·s - before … t·s - before + p - 1, clipped to the sequence (with "same" the padded cells do
not exist: Keras's semantics, as in ``pool_spec``):

    max:      y[n, t, c] = max over the window of x[n, ·, c]
              dx: dy[n, t, c] goes to the window's first maximum (PyTorch's tie rule)
    average:  y[n, t, c] = mean over the window's real cells of x[n, ·, c]
              dx: each real cell of the window receives dy[n, t, c] / (real cells)
"""

import numpy as np

from .padding import window_geometry


def _windows(length, pool_size, stride, padding):
    """Yield (t, cells): each output position and the slice of its clipped window."""
    out, before, _ = window_geometry(length, pool_size, stride, 1, padding)
    for t in range(out):
        start = t * stride - before
        yield t, slice(max(start, 0), min(start + pool_size, length))


def _output(x, pool_size, stride, padding):
    out, _, _ = window_geometry(x.shape[1], pool_size, stride, 1, padding)
    return np.zeros((x.shape[0], out, x.shape[2]), dtype=x.dtype)


def max_pool1d_forward(x, pool_size=2, strides=2, padding="valid"):
    y = _output(x, pool_size, strides, padding)
    for n in range(len(x)):
        for t, cells in _windows(x.shape[1], pool_size, strides, padding):
            y[n, t] = x[n, cells].max(axis=0)
    return y


def max_pool1d_backward(dy, x, pool_size=2, strides=2, padding="valid"):
    dx = np.zeros_like(x, dtype=dy.dtype)
    channels = np.arange(x.shape[2])
    for n in range(len(x)):
        for t, cells in _windows(x.shape[1], pool_size, strides, padding):
            first_max = x[n, cells].argmax(axis=0)  # argmax: the first of tied maxima
            dx[n, cells.start + first_max, channels] += dy[n, t]
    return dx


def avg_pool1d_forward(x, pool_size=2, strides=2, padding="valid"):
    y = _output(x, pool_size, strides, padding)
    for n in range(len(x)):
        for t, cells in _windows(x.shape[1], pool_size, strides, padding):
            y[n, t] = x[n, cells].mean(axis=0)
    return y


def avg_pool1d_backward(dy, x, pool_size=2, strides=2, padding="valid"):
    dx = np.zeros_like(x, dtype=dy.dtype)
    for n in range(len(x)):
        for t, cells in _windows(x.shape[1], pool_size, strides, padding):
            dx[n, cells] += dy[n, t] / (cells.stop - cells.start)
    return dx
