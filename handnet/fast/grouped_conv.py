"""Grouped convolution, vectorized: one ``handnet.fast.conv`` convolution per group
(``handnet.ops.grouped_conv_spec`` is the specification, in the same notation).

Group g reads input channels g·C/G … (g + 1)·C/G - 1 and writes filters g·F/G … (g + 1)·F/G - 1
with the kernel's slice K[..., g·F/G : (g + 1)·F/G] (kh, kw, C/G, F/G): G independent
convolutions side by side, forward and backward.

    y[..., group g]    = conv(x[..., inputs of g], K[..., filters of g]) + b[filters of g]
    dx[..., inputs of g] = conv's dx of that group;  dK, db: conv's, filter slice by slice

Each group keeps its own im2col (C/G channels wide, so G of them cost what one of width C
does).  G = 1 is exactly ``handnet.fast.conv``.
"""

import numpy as np

from . import conv


def _slices(kernel, groups):
    """(input channels, filters) slices of each group."""
    group_channels, filters = kernel.shape[2], kernel.shape[3]
    group_filters = filters // groups
    for g in range(groups):
        yield (
            slice(g * group_channels, (g + 1) * group_channels),
            slice(g * group_filters, (g + 1) * group_filters),
        )


def conv2d_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1
):
    """(y (N, OH, OW, F), cols: one im2col per group) for x (N, H, W, C), kernel
    (kh, kw, C/G, F), bias (F,) or None."""
    pieces, cols = [], []
    for inputs, filters in _slices(kernel, groups):
        part_bias = None if bias is None else bias[filters]
        # A slice of channels is strided; im2col copies it either way.
        y, group_cols = conv.conv2d_forward(
            x[..., inputs], kernel[..., filters], part_bias, strides, padding, dilation
        )
        pieces.append(y)
        cols.append(group_cols)
    return np.concatenate(pieces, axis=-1), cols


def conv2d_backward(
    dy,
    cols,
    kernel,
    x_shape,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
    groups=1,
    input_gradient=True,
    use_bias=True,
):
    """(dx or None, dkernel, dbias or None) from dy (N, OH, OW, F) and the forward's cols."""
    dtype = np.result_type(dy, kernel)
    dx = np.empty(x_shape, dtype=dtype) if input_gradient else None
    dkernel = np.empty(kernel.shape, dtype=dtype)
    dbias = np.empty(kernel.shape[-1], dtype=dtype) if use_bias else None
    for (inputs, filters), group_cols in zip(_slices(kernel, groups), cols):
        group_shape = (*x_shape[:3], inputs.stop - inputs.start)
        part_dx, dkernel[..., filters], part_dbias = conv.conv2d_backward(
            np.ascontiguousarray(dy[..., filters]),
            group_cols,
            np.ascontiguousarray(kernel[..., filters]),
            group_shape,
            strides,
            padding,
            dilation,
            input_gradient=input_gradient,
        )
        if input_gradient:
            dx[..., inputs] = part_dx
        if use_bias:
            dbias[filters] = part_dbias
    return dx, dkernel, dbias
