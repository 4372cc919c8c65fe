"""Transposed convolution written as loops: the specification ``handnet.fast.conv_transpose``
must match.

Channels-last, as Keras: x (N, H, W, C), kernel K (kh, kw, F, C) — Keras's layout for
Conv2DTranspose, output channels before input channels — bias b (F,), y (N, OH, OW, F).
Every input cell is scattered through the kernel onto a "full" grid (stride s, dilation d):

    full[n, i·s + u·d, j·s + v·d, f] += Σ_c K[u, v, f, c] · x[n, i, j, c]

    full (N, (H - 1)·s_h + d_h·(kh - 1) + 1, (W - 1)·s_w + d_w·(kw - 1) + 1, F)

and y is the window of ``full`` that Keras's padding rules pick (``transpose_padding``), plus
b[f].  No kernel flip: this is PyTorch's conv_transpose2d, and exactly the input-gradient of
a Conv2D with the same kernel read as (kh, kw, C_conv = F, F_conv = C).

Backward, given dy = ∂L/∂y (N, OH, OW, F), put back on the full grid (dfull, zeros outside
the window): each term above is a product, so

    dx[n, i, j, c]    = Σ_{u, v, f} K[u, v, f, c] · dfull[n, i·s + u·d, j·s + v·d, f]
    dK[u, v, f, c]    = Σ_{n, i, j} dfull[n, i·s + u·d, j·s + v·d, f] · x[n, i, j, c]
    db[f]             = Σ_{n, i, j} dy[n, i, j, f]

— dx is a Conv2D's forward pass over dfull.  Far too slow to train with; tests check the
fast version against this one.
"""

import numpy as np

from .transpose_padding import crop_full, transpose_geometry_2d, uncrop


def conv2d_transpose_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", output_padding=None, dilation=(1, 1)
):
    """y (N, OH, OW, F) from x (N, H, W, C), kernel (kh, kw, F, C), bias (F,) or None."""
    n_samples, height, width, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    out_hw, crops, full_hw = transpose_geometry_2d(
        (height, width), (kh, kw), strides, dilation, padding, output_padding
    )
    full = np.zeros((n_samples, *full_hw, filters), dtype=np.result_type(x, kernel))
    for n in range(n_samples):
        for i in range(height):
            for j in range(width):
                for u in range(kh):
                    for v in range(kw):
                        full[n, i * sh + u * dh, j * sw + v * dw] += kernel[u, v] @ x[n, i, j]
    y = crop_full(full, crops, out_hw)
    if bias is not None:
        y += bias
    return y


def conv2d_transpose_backward(
    dy, x, kernel, strides=(1, 1), padding="valid", output_padding=None, dilation=(1, 1)
):
    """(dx, dkernel, dbias) from dy (N, OH, OW, F), with the forward pass's x and kernel."""
    n_samples, height, width, _ = x.shape
    kh, kw, _, _ = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    _, crops, full_hw = transpose_geometry_2d(
        (height, width), (kh, kw), strides, dilation, padding, output_padding
    )
    dfull = uncrop(dy, crops, full_hw)
    dx = np.zeros_like(x, dtype=np.result_type(dy, kernel))
    dkernel = np.zeros_like(kernel, dtype=dx.dtype)
    for n in range(n_samples):
        for i in range(height):
            for j in range(width):
                for u in range(kh):
                    for v in range(kw):
                        cell = dfull[n, i * sh + u * dh, j * sw + v * dw]
                        dx[n, i, j] += kernel[u, v].T @ cell
                        dkernel[u, v] += np.outer(cell, x[n, i, j])
    return dx, dkernel, dy.sum(axis=(0, 1, 2))
