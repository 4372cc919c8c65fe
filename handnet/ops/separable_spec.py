"""Separable convolution written as loops: the specification ``handnet.fast.separable`` must
match.  It is two convolutions in a row, each already specified by loops:

    d = depthwise(x, D)            D = depthwise_kernel (kh, kw, C, M)   d (N, OH, OW, C·M)
    y = pointwise(d, P) + b        P = pointwise_kernel (1, 1, C·M, F)   y (N, OH, OW, F)

    y[n, i, j, f] = b[f] + Σ_{c, m} P[0, 0, c·M + m, f] ·
                    Σ_{u, v} x[n, i·s + u·d, j·s + v·d, c] · D[u, v, c, m]

The pointwise step is a 1×1 convolution (``conv_spec``), the depthwise step
``depthwise_spec``'s.  Backward is the chain rule through both, in reverse:

    (dd, dP, db) = the 1×1 convolution's backward from dy, with d as its input
    (dx, dD)     = the depthwise convolution's backward from dd

1-D (x (N, L, C), D (k, C, M), P (1, C·M, F)) with ``conv1d_spec``'s loops, the same way.
"""

from . import conv1d_spec, conv_spec, depthwise_spec


def separable_conv2d_forward(
    x,
    depthwise_kernel,
    pointwise_kernel,
    bias=None,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
):
    """y (N, OH, OW, F) from x (N, H, W, C) and the two kernels."""
    d = depthwise_spec.depthwise_conv2d_forward(
        x, depthwise_kernel, None, strides, padding, dilation
    )
    return conv_spec.conv2d_forward(d, pointwise_kernel, bias)


def separable_conv2d_backward(
    dy, x, depthwise_kernel, pointwise_kernel, strides=(1, 1), padding="valid", dilation=(1, 1)
):
    """(dx, d depthwise_kernel, d pointwise_kernel, dbias) from dy (N, OH, OW, F)."""
    d = depthwise_spec.depthwise_conv2d_forward(
        x, depthwise_kernel, None, strides, padding, dilation
    )
    dd, dpointwise, dbias = conv_spec.conv2d_backward(dy, d, pointwise_kernel)
    dx, ddepthwise, _ = depthwise_spec.depthwise_conv2d_backward(
        dd, x, depthwise_kernel, strides, padding, dilation
    )
    return dx, ddepthwise, dpointwise, dbias


def separable_conv1d_forward(
    x, depthwise_kernel, pointwise_kernel, bias=None, strides=1, padding="valid", dilation=1
):
    """y (N, OL, F) from x (N, L, C), D (k, C, M), P (1, C·M, F)."""
    d = conv1d_spec.depthwise_conv1d_forward(x, depthwise_kernel, None, strides, padding, dilation)
    return conv1d_spec.conv1d_forward(d, pointwise_kernel, bias)


def separable_conv1d_backward(
    dy, x, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", dilation=1
):
    """(dx, d depthwise_kernel, d pointwise_kernel, dbias) from dy (N, OL, F)."""
    d = conv1d_spec.depthwise_conv1d_forward(x, depthwise_kernel, None, strides, padding, dilation)
    dd, dpointwise, dbias = conv1d_spec.conv1d_backward(dy, d, pointwise_kernel)
    dx, ddepthwise, _ = conv1d_spec.depthwise_conv1d_backward(
        dd, x, depthwise_kernel, strides, padding, dilation
    )
    return dx, ddepthwise, dpointwise, dbias
