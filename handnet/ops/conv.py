"""Convolution, vectorized: im2col + one matrix product (the layers' fast path).

Same notation as the specification ``handnet.ops.conv_spec``: x (N, H, W, C), kernel K
(kh, kw, C, F), bias b (F,), z (N, OH, OW, F), stride s, dilation d, x zero-padded first
for "same".  D = kh·kw·C, M = N·OH·OW.

im2col lays every receptive field out as one row, in the order (u, v, c) of the kernel's own
first three axes, followed by a constant 1 when there is a bias:

    cols[(n, i, j), (u, v, c)] = x[n, i·s + u·d, j·s + v·d, c],   cols[·, D] = 1    cols (M, D + 1)

so that the whole convolution is one matrix product with the kernel as Keras stores it, the
bias being the weight of that constant input:

    z = cols @ [K.reshape(D, F); b]  =  Σ_{u,v,c} x[…] · K[u, v, c, :] + b             z (M, F)

Backward, given dz = ∂L/∂z reshaped to (M, F):

    [dK; db] = colsᵀ @ dz               (D + 1, F): rows 0…D-1 are dK, row D is db = Σ_rows dz
    dcols    = dz @ K.reshape(D, F)ᵀ    (M, D)
    dx       = col2im(dcols): every entry goes back to the input cell it was copied from,
               added up where receptive fields overlap (see ``col2im_matmul``).

The column of ones costs nothing measurable in the copy or the products, and saves two passes
over z (M·F values, the largest array of a first conv layer): the bias add and the db sum.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .padding import crop_spatial, pad_spatial, window_geometry_2d

# Below this many channels a receptive-field row is too short for one big strided copy to
# run well (C = 1 copies 3 values at a time, 4x slower measured); copying tap by tap moves
# whole image rows instead.
_TAPWISE_IM2COL_BELOW_CHANNELS = 8


def window_view(xp, window_hw, strides, dilation, out_hw):
    """A read-only view v (N, OH, OW, kh, kw, C) of the padded input xp (N, Hp, Wp, C) with
    v[n, i, j, u, v, c] = xp[n, i·s_h + u·d_h, j·s_w + v·d_w, c].  Nothing is copied."""
    n, _, _, c = xp.shape
    step_n, step_h, step_w, step_c = xp.strides
    return as_strided(
        xp,
        shape=(n, *out_hw, *window_hw, c),
        strides=(
            step_n,
            strides[0] * step_h,
            strides[1] * step_w,
            dilation[0] * step_h,
            dilation[1] * step_w,
            step_c,
        ),
        writeable=False,
    )


def tap_slices(tap, strides, dilation, out_hw):
    """The (rows, cols) slices of a padded input that kernel tap (u, v) meets at every output
    position: xp[:, rows, cols] (N, OH, OW, C) is x[n, i·s + u·d, j·s + v·d] for all (i, j)."""
    return tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, s, d, o in zip(tap, strides, dilation, out_hw)
    )


def im2col(x, window_hw, strides=(1, 1), padding="valid", dilation=(1, 1), ones_column=False):
    """x (N, H, W, C) -> (cols, (OH, OW)): cols (M, D), or (M, D + 1) ending in a column of
    ones with ``ones_column``; a fresh array, filled by one copy."""
    n, height, width, channels = x.shape
    out_hw, pads = window_geometry_2d((height, width), window_hw, strides, dilation, padding)
    xp = pad_spatial(x, pads)
    depth = window_hw[0] * window_hw[1] * channels
    cols = np.empty((n * out_hw[0] * out_hw[1], depth + ones_column), dtype=x.dtype)
    # Splitting axes never copies, so this is a view into cols.
    fields = cols[:, :depth].reshape(n, *out_hw, *window_hw, channels)
    if channels < _TAPWISE_IM2COL_BELOW_CHANNELS:
        for u in range(window_hw[0]):
            for v in range(window_hw[1]):
                rows, columns = tap_slices((u, v), strides, dilation, out_hw)
                fields[:, :, :, u, v] = xp[:, rows, columns]
    else:
        np.copyto(fields, window_view(xp, window_hw, strides, dilation, out_hw))
    if ones_column:
        cols[:, depth] = 1
    return cols, out_hw


def col2im_matmul(dz, kernel, x_shape, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """dx (N, H, W, C) = col2im(dz @ K.reshape(D, F)ᵀ), computed tap by tap.

    Column block (u, v) of dcols is dz @ K[u, v]ᵀ (M, C), and col2im adds it onto the cells
    that tap (u, v) read: dx[n, i·s + u·d, j·s + v·d, :] += block[(n, i, j), :].  Making each
    block by its own product gives a contiguous block, whose slice-add runs along whole image
    rows; slicing the blocks out of one big dcols adds C values at a time and took longer than
    the product itself (measured 1.6x slower in all for C = 32).  One strided slice-add per
    tap, and no ``np.add.at`` (unbuffered, an order of magnitude slower).
    """
    n, height, width, channels = x_shape
    kh, kw, _, filters = kernel.shape
    out_hw, pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    (top, bottom), (left, right) = pads
    dtype = np.result_type(dz, kernel)
    dxp = np.zeros((n, top + height + bottom, left + width + right, channels), dtype=dtype)
    dz = dz.reshape(-1, filters)
    block = np.empty((len(dz), channels), dtype=dtype)
    for u in range(kh):
        for v in range(kw):
            rows, columns = tap_slices((u, v), strides, dilation, out_hw)
            np.matmul(dz, kernel[u, v].T, out=block)
            dxp[:, rows, columns] += block.reshape(n, *out_hw, channels)
    return crop_spatial(dxp, pads)


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """(z (N, OH, OW, F), cols) for x (N, H, W, C), kernel (kh, kw, C, F), bias (F,) or None.

    ``cols`` is what ``conv2d_backward`` needs; z is a fresh array the caller may overwrite
    (an activation applied in place).
    """
    kh, kw, _, filters = kernel.shape
    weights = kernel.reshape(-1, filters)
    if bias is not None:
        weights = np.concatenate([weights, bias.reshape(1, filters)])
    cols, out_hw = im2col(x, (kh, kw), strides, padding, dilation, ones_column=bias is not None)
    z = cols @ weights
    return z.reshape(x.shape[0], *out_hw, filters), cols


def conv2d_backward(
    dz, cols, kernel, x_shape, strides=(1, 1), padding="valid", dilation=(1, 1), input_gradient=True
):
    """(dx or None, dkernel, dbias or None) from dz = ∂L/∂z (N, OH, OW, F) and the forward's
    cols (whose column of ones, if there is one, yields dbias).

    With ``input_gradient=False`` (the first layer: nobody needs ∂L/∂x) the col2im products
    are skipped and dx is None.
    """
    depth, filters = kernel.size // kernel.shape[-1], kernel.shape[-1]
    dz = dz.reshape(-1, filters)
    dweights = cols.T @ dz
    dkernel = dweights[:depth].reshape(kernel.shape)
    dbias = dweights[depth] if len(dweights) > depth else None
    if not input_gradient:
        return None, dkernel, dbias
    return col2im_matmul(dz, kernel, x_shape, strides, padding, dilation), dkernel, dbias
