"""1-D convolutions written as loops: the specification ``handnet.fast.conv1d`` must match.

Sequences channels-last, as Keras: x (N, L, C).  With x zero-padded first ("same": as
``handnet.ops.padding``; "causal": d·(k - 1) cells on the left only, see ``padding1d``),
stride s, dilation d:

Convolution with G groups, kernel K (k, C/G, F), bias b (F,), y (N, OL, F); output f sees the
inputs of its group g = f // (F/G) only (G = 1: every input):

    y[n, t, f] = b[f] + Σ_{u, c < C/G} x[n, t·s + u·d, g·C/G + c] · K[u, c, f]

    dK[u, c, f] = Σ_{n, t} x[n, t·s + u·d, g·C/G + c] · dy[n, t, f]
    dx[n, t·s + u·d, g·C/G + c] += Σ_{f in group g} K[u, c, f] · dy[n, t, f]
    db[f]       = Σ_{n, t} dy[n, t, f]

Depthwise convolution, kernel K (k, C, M), bias b (C·M,), y (N, OL, C·M):

    y[n, t, c·M + m] = b[c·M + m] + Σ_u x[n, t·s + u·d, c] · K[u, c, m]

    dK[u, c, m] = Σ_{n, t} x[n, t·s + u·d, c] · dy[n, t, c·M + m]
    dx[n, t·s + u·d, c] += Σ_m K[u, c, m] · dy[n, t, c·M + m]
"""

import numpy as np

from .padding1d import sequence_geometry


def _padded(x, window, stride, dilation, padding):
    out, before, after = sequence_geometry(x.shape[1], window, stride, dilation, padding)
    xp = np.zeros((x.shape[0], before + x.shape[1] + after, x.shape[2]), dtype=x.dtype)
    xp[:, before : before + x.shape[1]] = x
    return xp, out, before


def conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation=1, groups=1):
    """y (N, OL, F) from x (N, L, C), kernel (k, C/G, F), bias (F,) or None."""
    window, group_channels, filters = kernel.shape
    group_filters = filters // groups
    xp, out, _ = _padded(x, window, strides, dilation, padding)
    y = np.zeros((len(x), out, filters), dtype=np.result_type(x, kernel))
    for n in range(len(x)):
        for t in range(out):
            for f in range(filters):
                first = (f // group_filters) * group_channels
                for u in range(window):
                    cell = xp[n, t * strides + u * dilation, first : first + group_channels]
                    y[n, t, f] += cell @ kernel[u, :, f]
                if bias is not None:
                    y[n, t, f] += bias[f]
    return y


def conv1d_backward(dy, x, kernel, strides=1, padding="valid", dilation=1, groups=1):
    """(dx, dkernel, dbias) from dy (N, OL, F), with the forward pass's x and kernel."""
    window, group_channels, filters = kernel.shape
    group_filters = filters // groups
    xp, out, before = _padded(x, window, strides, dilation, padding)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, kernel))
    dkernel = np.zeros_like(kernel, dtype=dxp.dtype)
    for n in range(len(x)):
        for t in range(out):
            for f in range(filters):
                first = (f // group_filters) * group_channels
                channels = slice(first, first + group_channels)
                for u in range(window):
                    step = t * strides + u * dilation
                    dkernel[u, :, f] += xp[n, step, channels] * dy[n, t, f]
                    dxp[n, step, channels] += kernel[u, :, f] * dy[n, t, f]
    dx = dxp[:, before : before + x.shape[1]]
    return dx, dkernel, dy.sum(axis=(0, 1))


def depthwise_conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation=1):
    """y (N, OL, C·M) from x (N, L, C), kernel (k, C, M), bias (C·M,) or None."""
    window, channels, multiplier = kernel.shape
    xp, out, _ = _padded(x, window, strides, dilation, padding)
    y = np.zeros((len(x), out, channels, multiplier), dtype=np.result_type(x, kernel))
    for n in range(len(x)):
        for t in range(out):
            for c in range(channels):
                for u in range(window):
                    y[n, t, c] += xp[n, t * strides + u * dilation, c] * kernel[u, c]
    y = y.reshape(len(x), out, channels * multiplier)
    return y if bias is None else y + bias


def depthwise_conv1d_backward(dy, x, kernel, strides=1, padding="valid", dilation=1):
    """(dx, dkernel, dbias) from dy (N, OL, C·M), with the forward pass's x and kernel."""
    window, channels, multiplier = kernel.shape
    xp, out, before = _padded(x, window, strides, dilation, padding)
    dy_split = dy.reshape(len(x), out, channels, multiplier)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, kernel))
    dkernel = np.zeros_like(kernel, dtype=dxp.dtype)
    for n in range(len(x)):
        for t in range(out):
            for c in range(channels):
                for u in range(window):
                    step = t * strides + u * dilation
                    dkernel[u, c] += xp[n, step, c] * dy_split[n, t, c]
                    dxp[n, step, c] += kernel[u, c] @ dy_split[n, t, c]
    dx = dxp[:, before : before + x.shape[1]]
    return dx, dkernel, dy.sum(axis=(0, 1))
