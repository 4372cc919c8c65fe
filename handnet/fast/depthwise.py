"""Depthwise convolution, vectorized (``handnet.ops.depthwise_spec`` is the specification, in
the same notation: x (N, H, W, C), K (kh, kw, C, M), y (N, OH, OW, C·M)).

No channel mixes with another, so there is no matrix product to make: the convolution is
kh·kw·M multiply-adds over the whole batch, one per kernel tap and multiplier.  With
xp_uv = xp[:, u·d_h :: s_h, v·d_w :: s_w] (N, OH, OW, C), the input cells tap (u, v) reads,
and y, dy held multiplier-major, as (M, N, OH, OW, C):

    y[m]       = Σ_{u, v} xp_uv · K[u, v, :, m]                      (N, OH, OW, C), + b after
    dK[u, v, :, m] = Σ_{n, i, j} xp_uv · dy[m]                        (C,)
    dxp_uv    += Σ_m dy[m] · K[u, v, :, m]                            (N, OH, OW, C)

Multiplier-major, every product runs along whole rows of C channels; broadcasting to
(…, C, M) instead leaves M (often 1 or 2) as the innermost axis, measured 2.3x slower.  The
one transpose to and from Keras's (N, OH, OW, C·M) order (c·M + m) costs a single copy.
(An im2col would copy kh·kw times the input to multiply it by a block-diagonal matrix that
is almost all zeros.)
"""

import numpy as np

from .conv import tap_slices
from ..ops.padding import crop_spatial, pad_spatial, window_geometry_2d


def depthwise_conv2d_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)
):
    """y (N, OH, OW, C·M) from x (N, H, W, C), kernel (kh, kw, C, M), bias (C·M,) or None."""
    n_samples, height, width, channels = x.shape
    kh, kw, _, multiplier = kernel.shape
    out_hw, pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    dtype = np.result_type(x, kernel)
    y = np.zeros((multiplier, n_samples, *out_hw, channels), dtype=dtype)
    product = np.empty(y.shape[1:], dtype=dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = tap_slices((u, v), strides, dilation, out_hw)
            tap = xp[:, rows, cols]
            for m in range(multiplier):
                np.multiply(tap, kernel[u, v, :, m], out=product)
                y[m] += product
    # (M, N, OH, OW, C) -> (N, OH, OW, C, M): channel c·M + m, Keras's order.
    y = np.moveaxis(y, 0, -1).reshape(n_samples, *out_hw, channels * multiplier)
    if bias is not None:
        y += bias
    return y


def depthwise_conv2d_backward(
    dy, x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1), input_gradient=True
):
    """(dx or None, dkernel, dbias) from dy (N, OH, OW, C·M) and the forward pass's x."""
    n_samples, height, width, channels = x.shape
    kh, kw, _, multiplier = kernel.shape
    out_hw, pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    dtype = np.result_type(dy, kernel)
    dy_major = np.moveaxis(dy.reshape(n_samples, *out_hw, channels, multiplier), -1, 0)
    dy_major = np.ascontiguousarray(dy_major)  # (M, N, OH, OW, C)
    dxp = np.zeros(xp.shape, dtype=dtype) if input_gradient else None
    product = np.empty(dy_major.shape[1:], dtype=dtype)
    dkernel = np.empty(kernel.shape, dtype=dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = tap_slices((u, v), strides, dilation, out_hw)
            tap = xp[:, rows, cols]
            for m in range(multiplier):
                dkernel[u, v, :, m] = np.einsum("nijc,nijc->c", tap, dy_major[m])
                if input_gradient:
                    np.multiply(dy_major[m], kernel[u, v, :, m], out=product)
                    dxp[:, rows, cols] += product
    dx = crop_spatial(dxp, pads) if input_gradient else None
    return dx, dkernel, dy.sum(axis=(0, 1, 2))
