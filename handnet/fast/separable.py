"""Separable convolution, vectorized (``handnet.ops.separable_spec`` is the specification, in
the same notation): the depthwise step of ``handnet.fast.depthwise``, then the 1×1 pointwise
step as one matrix product over every position of the batch,

    d = depthwise(x, D)                             (N, OH, OW, C·M), kept for backward
    y = d.reshape(R, C·M) @ P.reshape(C·M, F) + b   (R = N·OH·OW rows)

    dP = d.reshape(R, C·M)ᵀ @ dy.reshape(R, F),   db = Σ_rows dy
    dd = dy.reshape(R, F) @ P.reshape(C·M, F)ᵀ,   then (dx, dD) = depthwise's backward from dd

1-D sequences run as images one row high (as in ``handnet.fast.conv1d``).
"""

import numpy as np

from . import depthwise
from ..ops.padding1d import as_image


def separable_conv2d_forward(
    x,
    depthwise_kernel,
    pointwise_kernel,
    bias=None,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
):
    """(y (N, OH, OW, F), d: the depthwise output backward needs)."""
    d = depthwise.depthwise_conv2d_forward(x, depthwise_kernel, None, strides, padding, dilation)
    filters = pointwise_kernel.shape[-1]
    y = d.reshape(-1, d.shape[-1]) @ pointwise_kernel.reshape(-1, filters)
    if bias is not None:
        y += bias
    return y.reshape(*d.shape[:-1], filters), d


def separable_conv2d_backward(
    dy,
    d,
    x,
    depthwise_kernel,
    pointwise_kernel,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
    input_gradient=True,
):
    """(dx or None, d depthwise_kernel, d pointwise_kernel, dbias) from dy (N, OH, OW, F)."""
    filters = pointwise_kernel.shape[-1]
    rows_dy, rows_d = dy.reshape(-1, filters), d.reshape(-1, d.shape[-1])
    pointwise = pointwise_kernel.reshape(-1, filters)
    dpointwise = (rows_d.T @ rows_dy).reshape(pointwise_kernel.shape)
    dd = (rows_dy @ pointwise.T).reshape(d.shape)
    dx, ddepthwise, _ = depthwise.depthwise_conv2d_backward(
        dd, x, depthwise_kernel, strides, padding, dilation, input_gradient
    )
    return dx, ddepthwise, dpointwise, rows_dy.sum(axis=0)


def separable_conv1d_forward(
    x, depthwise_kernel, pointwise_kernel, bias=None, strides=1, padding="valid", dilation=1
):
    """(y (N, OL, F), d) from x (N, L, C), D (k, C, M), P (1, C·M, F)."""
    image, padding_2d, _ = as_image(x, depthwise_kernel.shape[0], dilation, padding)
    y, d = separable_conv2d_forward(
        image,
        depthwise_kernel[None],
        pointwise_kernel[None],
        bias,
        (1, strides),
        padding_2d,
        (1, dilation),
    )
    return y[:, 0], d


def separable_conv1d_backward(
    dy,
    d,
    x,
    depthwise_kernel,
    pointwise_kernel,
    strides=1,
    padding="valid",
    dilation=1,
    input_gradient=True,
):
    """(dx or None, d depthwise_kernel, d pointwise_kernel, dbias) from dy (N, OL, F)."""
    image, padding_2d, before = as_image(x, depthwise_kernel.shape[0], dilation, padding)
    dx, ddepthwise, dpointwise, dbias = separable_conv2d_backward(
        dy[:, None],
        d,
        image,
        depthwise_kernel[None],
        pointwise_kernel[None],
        (1, strides),
        padding_2d,
        (1, dilation),
        input_gradient,
    )
    dx = None if dx is None else np.ascontiguousarray(dx[:, 0, before:])
    return dx, ddepthwise[0], dpointwise[0], dbias
