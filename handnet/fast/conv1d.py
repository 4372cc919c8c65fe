"""1-D convolutions, vectorized: a sequence x (N, L, C) is an image (N, 1, L, C) one row
high, and a kernel (k, …) one (1, k, …) — so the 2-D fast paths run them unchanged
(``handnet.ops.conv1d_spec`` is the specification, in the same notation):

    conv1d(x, K)           = conv2d(x[:, None], K[None])[:, 0]          (grouped_conv, G groups)
    depthwise_conv1d(x, K) = depthwise_conv2d(x[:, None], K[None])[:, 0]

and backward likewise, dx taken back to (N, L, C).  "causal" padding is applied here, on
the left (``padding1d.as_image``), and the 2-D paths run as "valid".
"""

from . import conv, depthwise, grouped_conv
from ..ops.padding1d import as_image


def conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation=1, groups=1):
    """(y (N, OL, F), cache) from x (N, L, C), kernel (k, C/G, F), bias (F,) or None."""
    image, padding_2d, before = as_image(x, kernel.shape[0], dilation, padding)
    options = ((1, strides), padding_2d, (1, dilation))
    if groups == 1:
        y, cols = conv.conv2d_forward(image, kernel[None], bias, *options)
    else:
        y, cols = grouped_conv.conv2d_forward(image, kernel[None], bias, *options, groups)
    return y[:, 0], (cols, image.shape, before)


def conv1d_backward(
    dy,
    cache,
    kernel,
    strides=1,
    padding="valid",
    dilation=1,
    groups=1,
    input_gradient=True,
    use_bias=True,
):
    """(dx or None, dkernel, dbias or None) from dy (N, OL, F) and the forward's cache."""
    cols, image_shape, before = cache
    options = ((1, strides), "valid" if padding == "causal" else padding, (1, dilation))
    if groups == 1:
        dx, dkernel, dbias = conv.conv2d_backward(
            dy[:, None], cols, kernel[None], image_shape, *options, input_gradient=input_gradient
        )
    else:
        dx, dkernel, dbias = grouped_conv.conv2d_backward(
            dy[:, None],
            cols,
            kernel[None],
            image_shape,
            *options,
            groups=groups,
            input_gradient=input_gradient,
            use_bias=use_bias,
        )
    if dx is not None:
        dx = dx[:, 0, before:]
    return dx, dkernel[0], dbias


def depthwise_conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation=1):
    """y (N, OL, C·M) from x (N, L, C), kernel (k, C, M), bias (C·M,) or None."""
    image, padding_2d, _ = as_image(x, kernel.shape[0], dilation, padding)
    y = depthwise.depthwise_conv2d_forward(
        image, kernel[None], bias, (1, strides), padding_2d, (1, dilation)
    )
    return y[:, 0]


def depthwise_conv1d_backward(
    dy, x, kernel, strides=1, padding="valid", dilation=1, input_gradient=True
):
    """(dx or None, dkernel, dbias) from dy (N, OL, C·M) and the forward pass's x."""
    image, padding_2d, before = as_image(x, kernel.shape[0], dilation, padding)
    dx, dkernel, dbias = depthwise.depthwise_conv2d_backward(
        dy[:, None], image, kernel[None], (1, strides), padding_2d, (1, dilation), input_gradient
    )
    return (None if dx is None else dx[:, 0, before:]), dkernel[0], dbias
