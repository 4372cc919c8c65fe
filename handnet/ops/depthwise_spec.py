"""Depthwise convolution written as loops: the specification ``handnet.fast.depthwise`` must
match.

x (N, H, W, C), kernel K (kh, kw, C, M) as Keras stores it (M = depth_multiplier), bias b
(C·M,), y (N, OH, OW, C·M).  Every channel is convolved on its own with M kernels, output
channel c·M + m coming from input channel c (x zero-padded first for "same"):

    y[n, i, j, c·M + m] = b[c·M + m] + Σ_{u, v} x[n, i·s + u·d, j·s + v·d, c] · K[u, v, c, m]

(a grouped convolution with G = C groups, K reshaped to (kh, kw, 1, C·M)).  Backward, given
dy = ∂L/∂y:

    dK[u, v, c, m]      = Σ_{n, i, j} x[n, i·s + u·d, j·s + v·d, c] · dy[n, i, j, c·M + m]
    dx[n, i·s + u·d, j·s + v·d, c] += Σ_m K[u, v, c, m] · dy[n, i, j, c·M + m]
    db[c·M + m]         = Σ_{n, i, j} dy[n, i, j, c·M + m]
"""

import numpy as np

from .padding import crop_spatial, pad_spatial, window_geometry_2d


def depthwise_conv2d_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)
):
    """y (N, OH, OW, C·M) from x (N, H, W, C), kernel (kh, kw, C, M), bias (C·M,) or None."""
    n_samples, height, width, channels = x.shape
    kh, kw, _, multiplier = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    (out_h, out_w), pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    y = np.zeros((n_samples, out_h, out_w, channels, multiplier), dtype=np.result_type(x, kernel))
    for n in range(n_samples):
        for i in range(out_h):
            for j in range(out_w):
                for c in range(channels):
                    for u in range(kh):
                        for v in range(kw):
                            y[n, i, j, c] += (
                                xp[n, i * sh + u * dh, j * sw + v * dw, c] * kernel[u, v, c]
                            )
    y = y.reshape(n_samples, out_h, out_w, channels * multiplier)
    return y if bias is None else y + bias


def depthwise_conv2d_backward(dy, x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """(dx, dkernel, dbias) from dy (N, OH, OW, C·M), with the forward pass's x and kernel."""
    n_samples, height, width, channels = x.shape
    kh, kw, _, multiplier = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    (out_h, out_w), pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    dy_split = dy.reshape(n_samples, out_h, out_w, channels, multiplier)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, kernel))
    dkernel = np.zeros_like(kernel, dtype=dxp.dtype)
    for n in range(n_samples):
        for i in range(out_h):
            for j in range(out_w):
                for c in range(channels):
                    for u in range(kh):
                        for v in range(kw):
                            row, col = i * sh + u * dh, j * sw + v * dw
                            dkernel[u, v, c] += xp[n, row, col, c] * dy_split[n, i, j, c]
                            dxp[n, row, col, c] += kernel[u, v, c] @ dy_split[n, i, j, c]
    return crop_spatial(dxp, pads), dkernel, dy.sum(axis=(0, 1, 2))
