"""Grouped convolution written as loops: the specification ``handnet.fast.grouped_conv`` must
match.

x (N, H, W, C), kernel K (kh, kw, C/G, F), bias b (F,), y (N, OH, OW, F), with G groups: the
channels split into G runs of C/G inputs and F/G outputs, output f seeing only the inputs of
its group g = f // (F/G):

    y[n, i, j, f] = b[f] + Σ_{u, v, c < C/G} x[n, i·s + u·d, j·s + v·d, g·C/G + c] · K[u, v, c, f]

G = 1 is ``conv_spec``'s convolution; G = C with F = C·M is a depthwise convolution.  Backward
as there, each group on its own channels:

    dK[u, v, c, f]  = Σ_{n, i, j} x[n, i·s + u·d, j·s + v·d, g·C/G + c] · dy[n, i, j, f]
    dx[n, i·s + u·d, j·s + v·d, g·C/G + c] += Σ_{f in group g} K[u, v, c, f] · dy[n, i, j, f]
    db[f]           = Σ_{n, i, j} dy[n, i, j, f]
"""

import numpy as np

from .padding import crop_spatial, pad_spatial, window_geometry_2d


def conv2d_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1
):
    """y (N, OH, OW, F) from x (N, H, W, C), kernel (kh, kw, C/G, F), bias (F,) or None."""
    n_samples, height, width, _ = x.shape
    kh, kw, group_channels, filters = kernel.shape
    group_filters = filters // groups
    (sh, sw), (dh, dw) = strides, dilation
    (out_h, out_w), pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    y = np.zeros((n_samples, out_h, out_w, filters), dtype=np.result_type(x, kernel))
    for n in range(n_samples):
        for i in range(out_h):
            for j in range(out_w):
                for f in range(filters):
                    first = (f // group_filters) * group_channels
                    channels = slice(first, first + group_channels)
                    for u in range(kh):
                        for v in range(kw):
                            cell = xp[n, i * sh + u * dh, j * sw + v * dw, channels]
                            y[n, i, j, f] += cell @ kernel[u, v, :, f]
                    if bias is not None:
                        y[n, i, j, f] += bias[f]
    return y


def conv2d_backward(dy, x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1):
    """(dx, dkernel, dbias) from dy (N, OH, OW, F), with the x and kernel of the forward pass."""
    n_samples, height, width, _ = x.shape
    kh, kw, group_channels, filters = kernel.shape
    group_filters = filters // groups
    (sh, sw), (dh, dw) = strides, dilation
    (out_h, out_w), pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, kernel))
    dkernel = np.zeros_like(kernel, dtype=dxp.dtype)
    for n in range(n_samples):
        for i in range(out_h):
            for j in range(out_w):
                for f in range(filters):
                    first = (f // group_filters) * group_channels
                    channels = slice(first, first + group_channels)
                    for u in range(kh):
                        for v in range(kw):
                            row, col = i * sh + u * dh, j * sw + v * dw
                            dkernel[u, v, :, f] += xp[n, row, col, channels] * dy[n, i, j, f]
                            dxp[n, row, col, channels] += kernel[u, v, :, f] * dy[n, i, j, f]
    return crop_spatial(dxp, pads), dkernel, dy.sum(axis=(0, 1, 2))
