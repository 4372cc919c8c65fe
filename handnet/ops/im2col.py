"""Convolution as one matrix product, written plainly: im2col, the product, col2im.

Notation of ``handnet.ops.conv_spec``: x (N, H, W, C) zero-padded to xp, kernel K (kh, kw, C, F),
bias b (F,), stride s, dilation d, y (N, OH, OW, F); D = kh·kw·C, M = N·OH·OW.  im2col copies
every receptive field into one row, in the order (u, v, c) of the kernel's first three axes:

    cols[(n, i, j), (u, v, c)] = xp[n, i·s + u·d, j·s + v·d, c]            cols (M, D)

so the whole sum of the specification becomes one matrix product with the kernel as Keras
stores it:

    y = cols @ K.reshape(D, F) + b                                         y (M, F)

Backward, given dy = ∂L/∂y reshaped to (M, F):

    dK = (colsᵀ @ dy).reshape(kh, kw, C, F),    db = Σ_rows dy
    dcols = dy @ K.reshape(D, F)ᵀ                                          (M, D)
    dx = col2im(dcols): each entry goes back to the input cell it was copied from, added up
         where receptive fields overlap, then the padding is cropped.

One slice per kernel tap (u, v) copies that tap's cells for every output position at once,
so the loops over n, i, j of the specification are gone and kh·kw copies remain.  This is the
version to read; ``handnet.fast.conv`` is the one the layers run (a strided view, the bias as
a column of ones, a row order that suits a following max pooling), and tests check both
against ``conv_spec``.
"""

import numpy as np

from .padding import crop_spatial, pad_spatial, window_geometry_2d


def tap(xp, u, v, strides, dilation, out_hw):
    """The cells of xp that kernel tap (u, v) multiplies, one per output position: a view
    (N, OH, OW, C) with ``tap(...)[n, i, j] = xp[n, i·s_h + u·d_h, j·s_w + v·d_w]``."""
    (sh, sw), (dh, dw), (out_h, out_w) = strides, dilation, out_hw
    rows = slice(u * dh, u * dh + (out_h - 1) * sh + 1, sh)
    cols = slice(v * dw, v * dw + (out_w - 1) * sw + 1, sw)
    return xp[:, rows, cols, :]


def im2col(xp, kernel_hw, strides, dilation, out_hw):
    """cols (N·OH·OW, kh·kw·C) from the padded input xp (N, Hp, Wp, C)."""
    n_samples, channels = xp.shape[0], xp.shape[3]
    (kh, kw), (out_h, out_w) = kernel_hw, out_hw
    cols = np.empty((n_samples, out_h, out_w, kh, kw, channels), dtype=xp.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, :, u, v, :] = tap(xp, u, v, strides, dilation, out_hw)
    return cols.reshape(n_samples * out_h * out_w, kh * kw * channels)


def col2im(dcols, xp_shape, kernel_hw, strides, dilation, out_hw):
    """dxp (N, Hp, Wp, C): every entry of dcols (N·OH·OW, kh·kw·C) added back to its cell."""
    n_samples, _, _, channels = xp_shape
    (kh, kw), (out_h, out_w) = kernel_hw, out_hw
    dcols = dcols.reshape(n_samples, out_h, out_w, kh, kw, channels)
    dxp = np.zeros(xp_shape, dtype=dcols.dtype)
    for u in range(kh):
        for v in range(kw):
            # One tap's cells are distinct, so += on the view adds each entry once.
            tap(dxp, u, v, strides, dilation, out_hw)[...] += dcols[:, :, :, u, v, :]
    return dxp


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """y (N, OH, OW, F) from x (N, H, W, C), kernel (kh, kw, C, F), bias (F,) or None."""
    kh, kw, _, filters = kernel.shape
    out_hw, pads = window_geometry_2d(x.shape[1:3], (kh, kw), strides, dilation, padding)
    cols = im2col(pad_spatial(x, pads), (kh, kw), strides, dilation, out_hw)
    y = cols @ kernel.reshape(-1, filters)
    if bias is not None:
        y = y + bias
    return y.reshape(x.shape[0], *out_hw, filters)


def conv2d_backward(dy, x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """(dx, dkernel, dbias) from dy (N, OH, OW, F), with the x and kernel of the forward pass."""
    kh, kw, _, filters = kernel.shape
    out_hw, pads = window_geometry_2d(x.shape[1:3], (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    cols = im2col(xp, (kh, kw), strides, dilation, out_hw)
    dy_rows = dy.reshape(-1, filters)
    dkernel = (cols.T @ dy_rows).reshape(kernel.shape)
    dcols = dy_rows @ kernel.reshape(-1, filters).T
    dxp = col2im(dcols, xp.shape, (kh, kw), strides, dilation, out_hw)
    return crop_spatial(dxp, pads), dkernel, dy_rows.sum(axis=0)
