"""The vectorized ops of the new convolutions and 1-D pooling (handnet.fast.conv1d,
grouped_conv, conv_transpose, depthwise, separable, pool1d) against their loop specifications
(the *_spec modules) on random shapes and options, forward and backward, in float64; every
backward leaves dy untouched."""

from unittest import mock

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handnet.errors import InvalidInputError
from handnet.fast import (
    conv,
    conv1d,
    conv_transpose,
    depthwise,
    grouped_conv,
    pool1d,
    separable,
)
from handnet.ops import (
    conv1d_spec,
    conv_spec,
    conv_transpose_spec,
    depthwise_spec,
    grouped_conv_spec,
    pool1d_spec,
    separable_spec,
)
from handnet.ops.padding import window_geometry_2d
from handnet.ops.padding1d import sequence_geometry
from handnet.ops.transpose_padding import transpose_geometry_2d

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))
dilations = st.tuples(st.integers(1, 2), st.integers(1, 2))
seeds = st.integers(0, 2**16)
# The strategies several tests draw alike: a 2-D window, a 1-D one, Keras's groups.
WINDOW_2D = {
    "kernel_size": pairs,
    "strides": pairs,
    "dilation": dilations,
    "padding": st.sampled_from(["valid", "same"]),
}
WINDOW_1D = {
    "window": st.integers(1, 4),
    "stride": st.integers(1, 3),
    "dilation": st.integers(1, 3),
}
GROUPED = {
    "groups": st.integers(1, 3),
    "group_channels": st.sampled_from([1, 2, 8]),
    "group_filters": st.integers(1, 2),
}
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def fits(shape, window, strides, dilation, padding):
    try:
        window_geometry_2d(shape, window, strides, dilation, padding)
    except InvalidInputError:
        return False
    return True


def fits_sequence(length, window, stride, dilation, padding):
    try:
        sequence_geometry(length, window, stride, dilation, padding)
    except InvalidInputError:
        return False
    return True


def assert_all_close(got, want, names):
    assert len(got) == len(want)
    for name, fast, spec in zip(names, got, want):
        assert fast.shape == spec.shape, name
        np.testing.assert_allclose(fast, spec, **TIGHT, err_msg=name)


def assert_backward_matches(rng, shape, fast_backward, spec_backward, names, use_bias=True):
    """Draw dy of the output's shape, run both backwards on it and compare their gradients
    (without a bias the fast op returns None for it); dy must come back untouched."""
    dy = rng.standard_normal(shape)
    dy_before = dy.copy()
    fast, spec = fast_backward(dy), spec_backward(dy)
    if not use_bias:
        assert fast[2] is None
        fast, spec = fast[:2], spec[:2]
    assert_all_close(fast, spec, names)
    np.testing.assert_array_equal(dy, dy_before)


GRADIENTS = ("dx", "dkernel", "dbias")


def assert_op_matches(rng, fast_ops, spec_ops, x, kernel, bias, options):
    """An op whose forward reads (x, kernel, bias, *options) and backward (dy, x, kernel,
    *options), given as (forward, backward) pairs: the fast one against its spec, both ways.
    Returns the fast forward's y."""
    (forward, backward), (spec_forward, spec_backward) = fast_ops, spec_ops
    y = forward(x, kernel, bias, *options)
    np.testing.assert_allclose(y, spec_forward(x, kernel, bias, *options), **TIGHT)
    assert_backward_matches(
        rng,
        y.shape,
        lambda dy: backward(dy, x, kernel, *options),
        lambda dy: spec_backward(dy, x, kernel, *options),
        GRADIENTS,
    )
    return y


def random_inputs(rng, x_shape, kernel_shape, bias_size, use_bias):
    """x, kernel and (use_bias) a bias of standard normals, drawn in that order; else None."""
    x = rng.standard_normal(x_shape)
    kernel = rng.standard_normal(kernel_shape)
    bias = rng.standard_normal(bias_size) if use_bias else None
    return x, kernel, bias


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    **GROUPED,
    **WINDOW_2D,
    use_bias=st.booleans(),
    seed=seeds,
    chunk_bytes=st.sampled_from([1, conv.CHUNK_BYTES]),
)
def test_grouped_conv_fast_equals_spec(
    batch, height, width, groups, group_channels, group_filters, kernel_size, strides,
    dilation, padding, use_bias, seed, chunk_bytes,
):  # fmt: skip
    assume(fits((height, width), kernel_size, strides, dilation, padding))
    rng = np.random.default_rng(seed)
    x, kernel, bias = random_inputs(
        rng,
        (batch, height, width, groups * group_channels),
        (*kernel_size, group_channels, groups * group_filters),
        groups * group_filters,
        use_bias,
    )
    options = (strides, padding, dilation, groups)

    y, cols = grouped_conv.conv2d_forward(x, kernel, bias, *options)
    np.testing.assert_allclose(
        y, grouped_conv_spec.conv2d_forward(x, kernel, bias, *options), **TIGHT
    )
    if groups == 1:  # G = 1 is the plain convolution's specification too
        expected = conv_spec.conv2d_forward(x, kernel, bias, strides, padding, dilation)
        np.testing.assert_allclose(y, expected, **TIGHT)

    def fast_backward(dy):
        with mock.patch.object(conv, "CHUNK_BYTES", chunk_bytes):
            return grouped_conv.conv2d_backward(
                dy, cols, kernel, x.shape, strides, padding, dilation, groups, use_bias=use_bias
            )

    assert_backward_matches(
        rng,
        y.shape,
        fast_backward,
        lambda dy: grouped_conv_spec.conv2d_backward(dy, x, kernel, *options),
        GRADIENTS,
        use_bias,
    )


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    length=st.integers(1, 9),
    **GROUPED,
    **WINDOW_1D,
    padding=st.sampled_from(["valid", "same", "causal"]),
    use_bias=st.booleans(),
    seed=seeds,
)
def test_conv1d_fast_equals_spec(
    batch, length, groups, group_channels, group_filters, window, stride, dilation, padding,
    use_bias, seed,
):  # fmt: skip
    assume(fits_sequence(length, window, stride, dilation, padding))
    rng = np.random.default_rng(seed)
    x, kernel, bias = random_inputs(
        rng,
        (batch, length, groups * group_channels),
        (window, group_channels, groups * group_filters),
        groups * group_filters,
        use_bias,
    )
    options = (stride, padding, dilation, groups)

    y, cache = conv1d.conv1d_forward(x, kernel, bias, *options)
    np.testing.assert_allclose(y, conv1d_spec.conv1d_forward(x, kernel, bias, *options), **TIGHT)
    assert_backward_matches(
        rng,
        y.shape,
        lambda dy: conv1d.conv1d_backward(dy, cache, kernel, *options, use_bias=use_bias),
        lambda dy: conv1d_spec.conv1d_backward(dy, x, kernel, *options),
        GRADIENTS,
        use_bias,
    )


def test_causal_outputs_read_no_future_input():
    """Changing x[t] changes no output before position t (stride 1)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 2))
    kernel = rng.standard_normal((3, 2, 2))
    y, _ = conv1d.conv1d_forward(x, kernel, None, 1, "causal", 2)
    later = x.copy()
    later[0, 5] += 1.0
    y_later, _ = conv1d.conv1d_forward(later, kernel, None, 1, "causal", 2)
    np.testing.assert_array_equal(y[0, :5], y_later[0, :5])
    assert not np.allclose(y[0, 5], y_later[0, 5])


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 4),
    width=st.integers(1, 4),
    channels=st.sampled_from([1, 2, 9]),
    filters=st.integers(1, 3),
    **WINDOW_2D,
    output_padding=st.one_of(st.none(), pairs),
    use_bias=st.booleans(),
    seed=seeds,
)
def test_conv_transpose_fast_equals_spec(
    batch, height, width, channels, filters, kernel_size, strides, dilation, padding,
    output_padding, use_bias, seed,
):  # fmt: skip
    if output_padding is not None:
        output_padding = tuple(p - 1 for p in output_padding)  # 0, 1 or 2
        assume(all(p < s for p, s in zip(output_padding, strides)))  # Keras's rule
    options = (strides, padding, output_padding, dilation)
    try:
        transpose_geometry_2d(
            (height, width), kernel_size, strides, dilation, padding, output_padding
        )
    except InvalidInputError:
        assume(False)
    rng = np.random.default_rng(seed)
    x, kernel, bias = random_inputs(
        rng, (batch, height, width, channels), (*kernel_size, filters, channels), filters, use_bias
    )
    assert_op_matches(
        rng,
        (conv_transpose.conv2d_transpose_forward, conv_transpose.conv2d_transpose_backward),
        (
            conv_transpose_spec.conv2d_transpose_forward,
            conv_transpose_spec.conv2d_transpose_backward,
        ),
        x,
        kernel,
        bias,
        options,
    )


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 5),
    width=st.integers(1, 5),
    channels=st.integers(1, 3),
    filters=st.integers(1, 3),
    **WINDOW_2D,
    seed=seeds,
)
def test_conv_transpose_is_the_adjoint_of_conv2d(
    height, width, channels, filters, kernel_size, strides, dilation, padding, seed
):
    """<convᵀ(x), y'> = <x, conv(y')> for the Conv2D over the transpose's output (padded as
    ``transpose_padding`` says): the two are one linear map and its transpose."""
    try:
        out_hw, crops, _ = transpose_geometry_2d(
            (height, width), kernel_size, strides, dilation, padding, None
        )
    except InvalidInputError:
        assume(False)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, height, width, channels))
    kernel = rng.standard_normal((*kernel_size, filters, channels))
    other = rng.standard_normal((1, *out_hw, filters))
    y = conv_transpose.conv2d_transpose_forward(x, kernel, None, strides, padding, None, dilation)
    dx, _, _ = conv_transpose.conv2d_transpose_backward(
        other, x, kernel, strides, padding, None, dilation
    )
    np.testing.assert_allclose((y * other).sum(), (x * dx).sum(), rtol=1e-12)
    # dx is the forward pass of a Conv2D with the same kernel over `other`, padded by the crops.
    (top, bottom), (left, right) = crops
    padded = np.pad(other, ((0, 0), (top, max(bottom, 0)), (left, max(right, 0)), (0, 0)))
    z = conv_spec.conv2d_forward(padded, kernel, None, strides, "valid", dilation)
    np.testing.assert_allclose(dx, z, **TIGHT)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    channels=st.integers(1, 3),
    multiplier=st.integers(1, 3),
    **WINDOW_2D,
    use_bias=st.booleans(),
    seed=seeds,
)
def test_depthwise_fast_equals_spec(
    batch, height, width, channels, multiplier, kernel_size, strides, dilation, padding,
    use_bias, seed,
):  # fmt: skip
    assume(fits((height, width), kernel_size, strides, dilation, padding))
    rng = np.random.default_rng(seed)
    x, kernel, bias = random_inputs(
        rng,
        (batch, height, width, channels),
        (*kernel_size, channels, multiplier),
        channels * multiplier,
        use_bias,
    )
    options = (strides, padding, dilation)
    y = assert_op_matches(
        rng,
        (depthwise.depthwise_conv2d_forward, depthwise.depthwise_conv2d_backward),
        (depthwise_spec.depthwise_conv2d_forward, depthwise_spec.depthwise_conv2d_backward),
        x,
        kernel,
        bias,
        options,
    )
    # Depthwise is grouped convolution with one group per channel.
    grouped = grouped_conv_spec.conv2d_forward(
        x, kernel.reshape(*kernel_size, 1, -1), bias, *options, groups=channels
    )
    np.testing.assert_allclose(y, grouped, **TIGHT)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    length=st.integers(1, 9),
    channels=st.integers(1, 3),
    multiplier=st.integers(1, 3),
    **WINDOW_1D,
    padding=st.sampled_from(["valid", "same"]),
    use_bias=st.booleans(),
    seed=seeds,
)
def test_depthwise1d_fast_equals_spec(
    batch, length, channels, multiplier, window, stride, dilation, padding, use_bias, seed
):
    assume(fits_sequence(length, window, stride, dilation, padding))
    rng = np.random.default_rng(seed)
    x, kernel, bias = random_inputs(
        rng,
        (batch, length, channels),
        (window, channels, multiplier),
        channels * multiplier,
        use_bias,
    )
    options = (stride, padding, dilation)
    assert_op_matches(
        rng,
        (conv1d.depthwise_conv1d_forward, conv1d.depthwise_conv1d_backward),
        (conv1d_spec.depthwise_conv1d_forward, conv1d_spec.depthwise_conv1d_backward),
        x,
        kernel,
        bias,
        options,
    )


@settings(max_examples=50, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 5),
    width=st.integers(1, 5),
    channels=st.integers(1, 3),
    multiplier=st.integers(1, 2),
    filters=st.integers(1, 3),
    **WINDOW_2D,
    use_bias=st.booleans(),
    one_dimensional=st.booleans(),
    seed=seeds,
)
def test_separable_fast_equals_spec(
    batch, height, width, channels, multiplier, filters, kernel_size, strides, dilation,
    padding, use_bias, one_dimensional, seed,
):  # fmt: skip
    rng = np.random.default_rng(seed)
    bias = rng.standard_normal(filters) if use_bias else None
    if one_dimensional:
        window, stride, rate = kernel_size[0], strides[0], dilation[0]
        assume(fits_sequence(width, window, stride, rate, padding))
        window, spatial, options = (window,), (width,), (stride, padding, rate)
        forward, backward = separable.separable_conv1d_forward, separable.separable_conv1d_backward
        spec_forward = separable_spec.separable_conv1d_forward
        spec_backward = separable_spec.separable_conv1d_backward
    else:
        assume(fits((height, width), kernel_size, strides, dilation, padding))
        window, spatial, options = kernel_size, (height, width), (strides, padding, dilation)
        forward, backward = separable.separable_conv2d_forward, separable.separable_conv2d_backward
        spec_forward = separable_spec.separable_conv2d_forward
        spec_backward = separable_spec.separable_conv2d_backward
    x = rng.standard_normal((batch, *spatial, channels))
    depth = rng.standard_normal((*window, channels, multiplier))
    point = rng.standard_normal((*(1,) * len(spatial), channels * multiplier, filters))
    y, d = forward(x, depth, point, bias, *options)
    spec_y = spec_forward(x, depth, point, bias, *options)
    np.testing.assert_allclose(y, spec_y, **TIGHT)
    assert_backward_matches(
        rng,
        y.shape,
        lambda dy: backward(dy, d, x, depth, point, *options),
        lambda dy: spec_backward(dy, x, depth, point, *options),
        ("dx", "ddepthwise", "dpointwise", "dbias"),
    )


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    length=st.integers(1, 9),
    channels=st.integers(1, 3),
    pool_size=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    few_values=st.booleans(),
    seed=seeds,
)
def test_pool1d_fast_equals_spec(
    batch, length, channels, pool_size, stride, padding, few_values, seed
):
    assume(fits_sequence(length, pool_size, stride, 1, padding))
    rng = np.random.default_rng(seed)
    shape = (batch, length, channels)
    # Values from {0, 1, 2} make ties common: both must send the gradient to the same cell.
    x = rng.integers(0, 3, shape).astype(float) if few_values else rng.standard_normal(shape)
    options = (pool_size, stride, padding)

    y, cache = pool1d.max_pool1d_forward(x, *options)
    np.testing.assert_array_equal(y, pool1d_spec.max_pool1d_forward(x, *options))
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = pool1d.max_pool1d_backward(dy, cache, pool_size, stride)
    np.testing.assert_allclose(dx, pool1d_spec.max_pool1d_backward(dy, x, *options), **TIGHT)

    y = pool1d.avg_pool1d_forward(x, *options)
    np.testing.assert_allclose(y, pool1d_spec.avg_pool1d_forward(x, *options), **TIGHT)
    dx = pool1d.avg_pool1d_backward(dy, x.shape, *options)
    np.testing.assert_allclose(dx, pool1d_spec.avg_pool1d_backward(dy, x, *options), **TIGHT)
    np.testing.assert_array_equal(dy, dy_before)
