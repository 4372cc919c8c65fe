"""Convolution written as loops: the specification that ``handnet.fast.conv`` must match.

Channels-last, as Keras: x (N, H, W, C), kernel K (kh, kw, C, F), bias b (F,), y (N, OH, OW, F).
With x zero-padded first (``padding="same"``), stride s and dilation d:

    y[n, i, j, f] = b[f] + Σ_{u, v, c} x[n, i·s + u·d, j·s + v·d, c] · K[u, v, c, f]

(Deep-learning "convolution" is cross-correlation: the kernel is not flipped.)  The sum over c
is written as a dot product, the rest as plain loops over output positions and kernel taps.

Backward, given dy = ∂L/∂y (N, OH, OW, F): every term above is a product, so each input cell
and each kernel entry collects dy times the factor it was multiplied by:

    dK[u, v, c, f] = Σ_{n, i, j} x[n, i·s + u·d, j·s + v·d, c] · dy[n, i, j, f]
    db[f]          = Σ_{n, i, j} dy[n, i, j, f]
    dx[n, i·s + u·d, j·s + v·d, c] += Σ_f K[u, v, c, f] · dy[n, i, j, f]   for every (i, j, u, v)

and dx of the padded input is cropped back to (N, H, W, C).  Far too slow to train with; tests
check the fast version against this one.
"""

import numpy as np

from .padding import crop_spatial, pad_spatial, window_geometry_2d


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """y (N, OH, OW, F) from x (N, H, W, C), kernel (kh, kw, C, F), bias (F,) or None."""
    n_samples, height, width, _ = x.shape
    kh, kw, _, filters = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    (out_h, out_w), pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    y = np.zeros((n_samples, out_h, out_w, filters), dtype=np.result_type(x, kernel))
    for n in range(n_samples):
        for i in range(out_h):
            for j in range(out_w):
                for u in range(kh):
                    for v in range(kw):
                        y[n, i, j] += xp[n, i * sh + u * dh, j * sw + v * dw] @ kernel[u, v]
                if bias is not None:
                    y[n, i, j] += bias
    return y


def conv2d_backward(dy, x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """(dx, dkernel, dbias) from dy (N, OH, OW, F), with the x and kernel of the forward pass."""
    n_samples, height, width, _ = x.shape
    kh, kw, _, _ = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    (out_h, out_w), pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, kernel))
    dkernel = np.zeros_like(kernel, dtype=dxp.dtype)
    for n in range(n_samples):
        for i in range(out_h):
            for j in range(out_w):
                for u in range(kh):
                    for v in range(kw):
                        row, col = i * sh + u * dh, j * sw + v * dw
                        dkernel[u, v] += np.outer(xp[n, row, col], dy[n, i, j])
                        dxp[n, row, col] += kernel[u, v] @ dy[n, i, j]
    dbias = dy.sum(axis=(0, 1, 2))
    return crop_spatial(dxp, pads), dkernel, dbias
