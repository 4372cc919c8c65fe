"""Transposed convolution, vectorized: the adjoint of ``handnet.fast.conv`` (the layers' fast
path; ``handnet.ops.conv_transpose_spec`` is the specification, and its notation is used here).

A Conv2D z = conv(x', K) over x' (N, H', W', C') with kernel K (kh, kw, C', F') is linear in
x'; its input-gradient  dx' = convᵀ(dz, K)  is the transposed map.  Conv2DTranspose IS that
map, with Keras's kernel (kh, kw, F, C) read as the Conv2D's (kh, kw, C' = F, F' = C):

    forward:   full = col2im(x @ K.reshape(kh·kw·F, C)ᵀ)       Conv2D's input-gradient, dz = x
               y    = window(full) + b                        (``transpose_padding``)
    backward:  dfull = the window's adjoint of dy (zeros outside it)
               cols  = im2col(dfull)          (N·H·W, kh·kw·F)     Conv2D's forward pass ...
               dx    = cols @ K.reshape(kh·kw·F, C)                ... with dfull as its input
               dK    = colsᵀ @ x.reshape(N·H·W, C)                 Conv2D's kernel gradient,
                                                                   its dz being x
               db    = Σ_{n, i, j} dy[n, i, j, :]

Nothing new is computed: the three products are ``handnet.fast.conv``'s, taken the other way
round.
"""

from . import conv
from ..ops.transpose_padding import crop_full, transpose_geometry_2d, uncrop


def conv2d_transpose_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", output_padding=None, dilation=(1, 1)
):
    """y (N, OH, OW, F) from x (N, H, W, C), kernel (kh, kw, F, C), bias (F,) or None."""
    kh, kw, filters, _ = kernel.shape
    out_hw, crops, full_hw = transpose_geometry_2d(
        x.shape[1:3], (kh, kw), strides, dilation, padding, output_padding
    )
    full_shape = (len(x), *full_hw, filters)
    # The full grid is exactly what a "valid" Conv2D with n outputs per axis reads.
    full = conv.col2im_matmul(x, kernel, full_shape, strides, "valid", dilation)
    y = crop_full(full, crops, out_hw)
    if bias is not None:
        y += bias
    return y


def conv2d_transpose_backward(
    dy,
    x,
    kernel,
    strides=(1, 1),
    padding="valid",
    output_padding=None,
    dilation=(1, 1),
    input_gradient=True,
):
    """(dx or None, dkernel, dbias) from dy (N, OH, OW, F) and the forward pass's x."""
    kh, kw, _, channels = kernel.shape
    _, crops, full_hw = transpose_geometry_2d(
        x.shape[1:3], (kh, kw), strides, dilation, padding, output_padding
    )
    dfull = uncrop(dy, crops, full_hw)
    cols, _ = conv.im2col(dfull, (kh, kw), strides, "valid", dilation)
    weights = kernel.reshape(-1, channels)
    dx = (cols @ weights).reshape(x.shape) if input_gradient else None
    dkernel = conv.weight_gradients(x.reshape(-1, channels), cols).reshape(kernel.shape)
    return dx, dkernel, dy.sum(axis=(0, 1, 2))
