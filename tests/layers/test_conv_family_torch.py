"""The convolution family and 1-D pooling against PyTorch, forward and every gradient, in
float64: torch.nn.functional.conv1d and conv2d (with groups=, and depthwise as groups=C),
conv_transpose2d, max_pool1d / avg_pool1d.  "same" padding is written out explicitly, as
TensorFlow defines it (PyTorch's symmetric padding= cannot put the odd cell after)."""

import numpy as np
import pytest

import handnet as hn

pytestmark = pytest.mark.torch

CLOSE = {"rtol": 1e-10, "atol": 1e-10}


def tensorflow_same_padding(size, kernel, stride, dilation):
    """(before, after) as TensorFlow documents "SAME", written out again here."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def run(layer, x, rng):
    """(y, dy, dx) of a float64 handnet layer built on x's shape with random weights."""
    layer.build(x.shape[1:], rng)
    for value in layer.params.values():
        value[...] = rng.standard_normal(value.shape)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    return y, dy, layer.backward(dy)


def leaf(torch, array):
    return torch.tensor(array, requires_grad=True)


# -- Conv1D and grouped Conv2D ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kernel_size, strides, padding, dilation, groups",
    [
        (3, 1, "valid", 1, 1),
        (3, 2, "same", 1, 1),
        (4, 1, "same", 2, 1),
        (3, 1, "causal", 2, 1),
        (2, 3, "causal", 1, 1),
        (3, 2, "valid", 1, 2),
        (2, 1, "same", 1, 4),
        (3, 1, "causal", 1, 4),
    ],
)
def test_conv1d_matches_torch(torch, kernel_size, strides, padding, dilation, groups):
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 11, 4))
    layer = hn.layers.Conv1D(
        8, kernel_size, strides, padding, dilation, groups=groups, dtype="float64"
    )
    y, dy, dx = run(layer, x, rng)

    xt = leaf(torch, x.transpose(0, 2, 1))  # NLC -> NCL
    kernel = leaf(torch, layer.params["kernel"].transpose(2, 1, 0))  # (F, C/G, k)
    bias = leaf(torch, layer.params["bias"])
    if padding == "same":
        padded = F.pad(xt, tensorflow_same_padding(11, kernel_size, strides, dilation))
    elif padding == "causal":
        padded = F.pad(xt, (dilation * (kernel_size - 1), 0))
    else:
        padded = xt
    yt = F.conv1d(padded, kernel, bias, stride=strides, dilation=dilation, groups=groups)
    yt.backward(torch.tensor(dy.transpose(0, 2, 1)))

    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), **CLOSE)
    np.testing.assert_allclose(
        layer.grads["kernel"], kernel.grad.numpy().transpose(2, 1, 0), **CLOSE
    )
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **CLOSE)


@pytest.mark.parametrize(
    "kernel_size, strides, padding, dilation, groups, filters",
    [
        ((3, 3), (1, 1), "valid", (1, 1), 2, 4),
        ((2, 3), (2, 1), "same", (1, 1), 3, 6),
        ((3, 2), (1, 1), "same", (2, 1), 6, 6),
        ((3, 3), (2, 2), "valid", (1, 1), 6, 12),
    ],
)
def test_grouped_conv2d_matches_torch(
    torch, kernel_size, strides, padding, dilation, groups, filters
):
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 7, 6))
    layer = hn.layers.Conv2D(
        filters, kernel_size, strides, padding, dilation, groups=groups, dtype="float64"
    )
    y, dy, dx = run(layer, x, rng)

    xt = leaf(torch, x.transpose(0, 3, 1, 2))
    kernel = leaf(torch, layer.params["kernel"].transpose(3, 2, 0, 1))  # (F, C/G, kh, kw)
    bias = leaf(torch, layer.params["bias"])
    padded = xt
    if padding == "same":
        top, bottom = tensorflow_same_padding(8, kernel_size[0], strides[0], dilation[0])
        left, right = tensorflow_same_padding(7, kernel_size[1], strides[1], dilation[1])
        padded = F.pad(xt, (left, right, top, bottom))
    yt = F.conv2d(padded, kernel, bias, stride=strides, dilation=dilation, groups=groups)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))

    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **CLOSE)
    np.testing.assert_allclose(
        layer.grads["kernel"], kernel.grad.numpy().transpose(2, 3, 1, 0), **CLOSE
    )
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **CLOSE)


# -- Conv2DTranspose ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kernel_size, strides, dilation, output_padding",
    [
        ((3, 3), (1, 1), (1, 1), None),
        ((3, 2), (2, 2), (1, 1), None),
        ((2, 3), (2, 3), (1, 1), (1, 2)),  # valid: PyTorch's output_padding is Keras's
        ((3, 3), (1, 1), (2, 1), None),
        ((2, 2), (3, 3), (1, 1), (0, 1)),
    ],
)
def test_conv2d_transpose_valid_matches_torch(
    torch, kernel_size, strides, dilation, output_padding
):
    """With "valid" padding nothing is cropped, and output_padding adds cells at the end, as in
    PyTorch (the default, None, is max(k_eff, s) - k_eff there; "same" crops are Keras's,
    checked in tests/keras/test_conv_family_keras.py)."""
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 3))
    layer = hn.layers.Conv2DTranspose(
        5, kernel_size, strides, "valid", output_padding, dilation, dtype="float64"
    )
    y, dy, dx = run(layer, x, rng)

    extents = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation)]
    if output_padding is None:
        output_padding = tuple(max(e, s) - e for e, s in zip(extents, strides))
    xt = leaf(torch, x.transpose(0, 3, 1, 2))
    kernel = leaf(torch, layer.params["kernel"].transpose(3, 2, 0, 1))  # (C, F, kh, kw)
    bias = leaf(torch, layer.params["bias"])
    yt = F.conv_transpose2d(
        xt, kernel, bias, stride=strides, output_padding=output_padding, dilation=dilation
    )
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))

    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **CLOSE)
    np.testing.assert_allclose(
        layer.grads["kernel"], kernel.grad.numpy().transpose(2, 3, 1, 0), **CLOSE
    )
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **CLOSE)


def test_conv2d_transpose_same_is_a_crop_of_torchs_full_output(torch):
    """kernel 3, stride 2, "same": Keras's rule pads (2, 1) around the dilated input, i.e.
    crops 0 cells before and 1 after PyTorch's full (padding=0) output of 2·(n - 1) + 3."""
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 4, 2))
    layer = hn.layers.Conv2DTranspose(2, 3, strides=2, padding="same", dtype="float64")
    y, _, _ = run(layer, x, rng)
    full = F.conv_transpose2d(
        torch.tensor(x.transpose(0, 3, 1, 2)),
        torch.tensor(layer.params["kernel"].transpose(3, 2, 0, 1)),
        torch.tensor(layer.params["bias"]),
        stride=2,
    ).numpy()
    assert y.shape == (1, 6, 8, 2) and full.shape == (1, 2, 7, 9)
    np.testing.assert_allclose(y, full[:, :, :6, :8].transpose(0, 2, 3, 1), **CLOSE)


# -- depthwise and separable ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kernel_size, strides, padding, dilation, multiplier",
    [
        ((3, 3), (1, 1), "valid", (1, 1), 1),
        ((3, 2), (2, 2), "same", (1, 1), 2),
        ((2, 3), (1, 1), "same", (2, 2), 3),
    ],
)
def test_depthwise_conv2d_matches_torch_groups_c(
    torch, kernel_size, strides, padding, dilation, multiplier
):
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 8, 3))
    layer = hn.layers.DepthwiseConv2D(
        kernel_size, strides, padding, multiplier, dilation, dtype="float64"
    )
    y, dy, dx = run(layer, x, rng)

    kh, kw = kernel_size
    xt = leaf(torch, x.transpose(0, 3, 1, 2))
    # (kh, kw, C, M) -> (C·M, 1, kh, kw): output channel c·M + m, as groups=C orders them.
    kernel = leaf(torch, layer.params["kernel"].reshape(kh, kw, 1, -1).transpose(3, 2, 0, 1))
    bias = leaf(torch, layer.params["bias"])
    padded = xt
    if padding == "same":
        top, bottom = tensorflow_same_padding(7, kh, strides[0], dilation[0])
        left, right = tensorflow_same_padding(8, kw, strides[1], dilation[1])
        padded = F.pad(xt, (left, right, top, bottom))
    yt = F.conv2d(padded, kernel, bias, stride=strides, dilation=dilation, groups=3)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))

    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **CLOSE)
    dkernel = kernel.grad.numpy().transpose(2, 3, 1, 0).reshape(kh, kw, 3, multiplier)
    np.testing.assert_allclose(layer.grads["kernel"], dkernel, **CLOSE)
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **CLOSE)


@pytest.mark.parametrize(
    "padding, strides, dilation", [("valid", 1, 1), ("same", 2, 1), ("same", 1, 3)]
)
@pytest.mark.parametrize("separable", [False, True])
def test_depthwise_and_separable_conv1d_match_torch(torch, padding, strides, dilation, separable):
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 10, 3))
    if separable:
        layer = hn.layers.SeparableConv1D(
            4, 3, strides, padding, dilation, depth_multiplier=2, dtype="float64"
        )
        depth_name = "depthwise_kernel"
    else:
        layer = hn.layers.DepthwiseConv1D(3, strides, padding, 2, dilation, dtype="float64")
        depth_name = "kernel"
    y, dy, dx = run(layer, x, rng)

    xt = leaf(torch, x.transpose(0, 2, 1))
    depth = leaf(torch, layer.params[depth_name].reshape(3, 1, 6).transpose(2, 1, 0))
    padded = xt
    if padding == "same":
        padded = F.pad(xt, tensorflow_same_padding(10, 3, strides, dilation))
    if separable:
        d = F.conv1d(padded, depth, stride=strides, dilation=dilation, groups=3)
        point = leaf(torch, layer.params["pointwise_kernel"].transpose(2, 1, 0))  # (F, C·M, 1)
        bias = leaf(torch, layer.params["bias"])
        yt = F.conv1d(d, point, bias)
    else:
        bias = leaf(torch, layer.params["bias"])
        yt = F.conv1d(padded, depth, bias, stride=strides, dilation=dilation, groups=3)
    yt.backward(torch.tensor(dy.transpose(0, 2, 1)))

    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), **CLOSE)
    ddepth = depth.grad.numpy().transpose(2, 1, 0).reshape(3, 3, 2)
    np.testing.assert_allclose(layer.grads[depth_name], ddepth, **CLOSE)
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **CLOSE)
    if separable:
        dpoint = point.grad.numpy().transpose(2, 1, 0)
        np.testing.assert_allclose(layer.grads["pointwise_kernel"], dpoint, **CLOSE)


@pytest.mark.parametrize("padding, strides", [("valid", (1, 1)), ("same", (2, 1))])
def test_separable_conv2d_matches_torch(torch, padding, strides):
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 7, 6, 2))
    layer = hn.layers.SeparableConv2D(
        3, (3, 2), strides, padding, depth_multiplier=2, activation="tanh", dtype="float64"
    )
    y, dy, dx = run(layer, x, rng)

    xt = leaf(torch, x.transpose(0, 3, 1, 2))
    depth = leaf(torch, layer.params["depthwise_kernel"].reshape(3, 2, 1, 4).transpose(3, 2, 0, 1))
    point = leaf(torch, layer.params["pointwise_kernel"].transpose(3, 2, 0, 1))
    bias = leaf(torch, layer.params["bias"])
    padded = xt
    if padding == "same":
        top, bottom = tensorflow_same_padding(7, 3, strides[0], 1)
        left, right = tensorflow_same_padding(6, 2, strides[1], 1)
        padded = F.pad(xt, (left, right, top, bottom))
    yt = torch.tanh(F.conv2d(F.conv2d(padded, depth, stride=strides, groups=2), point, bias))
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))

    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **CLOSE)
    ddepth = depth.grad.numpy().transpose(2, 3, 1, 0).reshape(3, 2, 2, 2)
    np.testing.assert_allclose(layer.grads["depthwise_kernel"], ddepth, **CLOSE)
    dpoint = point.grad.numpy().transpose(2, 3, 1, 0)
    np.testing.assert_allclose(layer.grads["pointwise_kernel"], dpoint, **CLOSE)
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **CLOSE)


# -- 1-D pooling ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pool_size, strides, padding", [(2, 2, "valid"), (3, 1, "valid"), (3, 2, "same")]
)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pooling1d_matches_torch(torch, pool_size, strides, padding, ties):
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    shape = (2, 9, 3)
    # Values from {0, 1, 2}: ties everywhere, and the gradient must reach PyTorch's cell.
    x = rng.integers(0, 3, shape).astype(float) if ties else rng.standard_normal(shape)
    layer = hn.layers.MaxPooling1D(pool_size, strides, padding, dtype="float64")
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)

    xt = leaf(torch, x.transpose(0, 2, 1))
    padded = xt
    if padding == "same":
        padded = F.pad(xt, tensorflow_same_padding(9, pool_size, strides, 1), value=-np.inf)
    yt = F.max_pool1d(padded, pool_size, strides)
    yt.backward(torch.tensor(dy.transpose(0, 2, 1)))
    np.testing.assert_array_equal(y, yt.detach().numpy().transpose(0, 2, 1))
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), **CLOSE)


@pytest.mark.parametrize("pool_size, strides", [(2, 2), (3, 1), (2, 3)])
def test_average_pooling1d_matches_torch(torch, pool_size, strides):
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 9, 3))
    layer = hn.layers.AveragePooling1D(pool_size, strides, dtype="float64")
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = leaf(torch, x.transpose(0, 2, 1))
    yt = F.avg_pool1d(xt, pool_size, strides)
    yt.backward(torch.tensor(dy.transpose(0, 2, 1)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 1), **CLOSE)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), **CLOSE)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling1d_matches_torch(torch, keepdims):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, (3, 7, 4)).astype(float)  # ties: the first maximum takes dy
    layers = hn.layers
    for layer, reduce in [
        (layers.GlobalMaxPooling1D(keepdims, dtype="float64"), lambda t: t.max(1, True).values),
        (layers.GlobalAveragePooling1D(keepdims, dtype="float64"), lambda t: t.mean(1, True)),
    ]:
        y = layer(x)
        assert y.shape == ((3, 1, 4) if keepdims else (3, 4))
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        xt = leaf(torch, x)
        yt = reduce(xt)
        yt.backward(torch.tensor(dy.reshape(3, 1, 4)))
        np.testing.assert_allclose(y.reshape(3, 1, 4), yt.detach().numpy(), **CLOSE)
        np.testing.assert_allclose(dx, xt.grad.numpy(), **CLOSE)
