"""Depthwise convolution, vectorized (``handnet.ops.depthwise_spec`` is the specification, in
the same notation: x (N, H, W, C), K (kh, kw, C, M), y (N, OH, OW, C·M)).

No channel mixes with another, so there is no matrix product to make: the convolution is
kh·kw broadcast multiply-adds, one per kernel tap, each over the whole batch at once.  With
xp_uv = xp[:, u·d_h :: s_h, v·d_w :: s_w] (N, OH, OW, C), the input cells tap (u, v) reads,
and y, dy viewed as (N, OH, OW, C, M):

    y   = b + Σ_{u, v} xp_uv[..., None] · K[u, v]              (N, OH, OW, C, M)
    dK[u, v]   = Σ_{n, i, j} xp_uv[..., None] · dy              (C, M)
    dxp_uv    += Σ_m K[u, v] · dy                               (N, OH, OW, C)

(An im2col would copy kh·kw times the input to multiply it by a block-diagonal matrix that
is almost all zeros.)
"""

import numpy as np

from .conv import tap_slices
from .padding import crop_spatial, pad_spatial, window_geometry_2d


def depthwise_conv2d_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1)
):
    """y (N, OH, OW, C·M) from x (N, H, W, C), kernel (kh, kw, C, M), bias (C·M,) or None."""
    n_samples, height, width, channels = x.shape
    kh, kw, _, multiplier = kernel.shape
    out_hw, pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    xp = pad_spatial(x, pads)
    y = np.zeros((n_samples, *out_hw, channels, multiplier), dtype=np.result_type(x, kernel))
    for u in range(kh):
        for v in range(kw):
            rows, cols = tap_slices((u, v), strides, dilation, out_hw)
            y += xp[:, rows, cols, :, None] * kernel[u, v]
    y = y.reshape(n_samples, *out_hw, channels * multiplier)
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
    dy_split = dy.reshape(n_samples, *out_hw, channels, multiplier)
    dxp = np.zeros(xp.shape, dtype=dtype) if input_gradient else None
    dkernel = np.empty(kernel.shape, dtype=dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = tap_slices((u, v), strides, dilation, out_hw)
            dkernel[u, v] = np.einsum("nijc,nijcm->cm", xp[:, rows, cols], dy_split)
            if input_gradient:
                dxp[:, rows, cols] += np.einsum("nijcm,cm->nijc", dy_split, kernel[u, v])
    dx = crop_spatial(dxp, pads) if input_gradient else None
    return dx, dkernel, dy.sum(axis=(0, 1, 2))
