"""The vectorized ops (handnet.fast.conv, pool, fused, and the plain handnet.ops.im2col) against
the loop specifications (conv_spec, pool_spec) on random shapes and options, forward and
backward, in float64."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handnet.errors import InvalidInputError
from handnet.fast import conv, fused, pool
from handnet.ops import conv_spec, im2col, pool_spec
from handnet.ops.padding import window_geometry_2d

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


def fits(height, width, window, strides, dilation, padding):
    try:
        window_geometry_2d((height, width), window, strides, dilation, padding)
    except InvalidInputError:
        return False
    return True


@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 7),
    width=st.integers(1, 7),
    # Up to 9 channels: both im2col copy strategies (tap by tap below 8 channels, one copy above).
    channels=st.sampled_from([1, 2, 3, 8, 9]),
    filters=st.integers(1, 3),
    kernel_size=pairs,
    strides=pairs,
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
    # 1 byte: every image is a chunk of its own in the backward pass (the default: one chunk).
    chunk_bytes=st.sampled_from([1, conv.CHUNK_BYTES]),
)
def test_conv_fast_equals_spec(
    batch,
    height,
    width,
    channels,
    filters,
    kernel_size,
    strides,
    dilation,
    padding,
    use_bias,
    seed,
    chunk_bytes,
):
    assume(fits(height, width, kernel_size, strides, dilation, padding))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, height, width, channels))
    kernel = rng.standard_normal((*kernel_size, channels, filters))
    bias = rng.standard_normal(filters) if use_bias else None

    y, cols = conv.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    expected = conv_spec.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)

    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    with mock.patch.object(conv, "CHUNK_BYTES", chunk_bytes):
        fast = conv.conv2d_backward(dy, cols, kernel, x.shape, strides, padding, dilation)
    spec = conv_spec.conv2d_backward(dy, x, kernel, strides, padding, dilation)
    if not use_bias:
        assert fast[2] is None
        fast, spec = fast[:2], spec[:2]
    for name, got, want in zip(("dx", "dkernel", "dbias"), fast, spec):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(dy, dy_before)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 7),
    width=st.integers(1, 7),
    channels=st.integers(1, 3),
    filters=st.integers(1, 3),
    kernel_size=pairs,
    strides=pairs,
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_plain_im2col_equals_spec(
    batch, height, width, channels, filters, kernel_size, strides, dilation, padding, use_bias, seed
):
    assume(fits(height, width, kernel_size, strides, dilation, padding))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, height, width, channels))
    kernel = rng.standard_normal((*kernel_size, channels, filters))
    bias = rng.standard_normal(filters) if use_bias else None

    y = im2col.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    expected = conv_spec.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)

    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    plain = im2col.conv2d_backward(dy, x, kernel, strides, padding, dilation)
    spec = conv_spec.conv2d_backward(dy, x, kernel, strides, padding, dilation)
    for name, got, want in zip(("dx", "dkernel", "dbias"), plain, spec):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(dy, dy_before)


pool_options = {
    "batch": st.integers(1, 2),
    "height": st.integers(1, 7),
    "width": st.integers(1, 7),
    "channels": st.integers(1, 3),
    "pool_size": pairs,
    "strides": pairs,
    "padding": st.sampled_from(["valid", "same"]),
    "seed": st.integers(0, 2**16),
}


@settings(max_examples=80, deadline=None)
@given(**pool_options, few_values=st.booleans())
def test_max_pool_fast_equals_spec(
    batch, height, width, channels, pool_size, strides, padding, seed, few_values
):
    assume(fits(height, width, pool_size, strides, (1, 1), padding))
    rng = np.random.default_rng(seed)
    shape = (batch, height, width, channels)
    # Drawing from {0, 1, 2} makes ties common: both must send the gradient to the same cell.
    x = rng.integers(0, 3, shape).astype(float) if few_values else rng.standard_normal(shape)

    y, cache = pool.max_pool2d_forward(x, pool_size, strides, padding)
    np.testing.assert_array_equal(y, pool_spec.max_pool2d_forward(x, pool_size, strides, padding))
    dy = rng.standard_normal(y.shape)
    dx = pool.max_pool2d_backward(dy, cache, pool_size, strides)
    expected = pool_spec.max_pool2d_backward(dy, x, pool_size, strides, padding)
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(**pool_options)
def test_average_pool_fast_equals_spec(
    batch, height, width, channels, pool_size, strides, padding, seed
):
    assume(fits(height, width, pool_size, strides, (1, 1), padding))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, height, width, channels))

    y = pool.avg_pool2d_forward(x, pool_size, strides, padding)
    np.testing.assert_allclose(
        y, pool_spec.avg_pool2d_forward(x, pool_size, strides, padding), rtol=1e-12, atol=1e-12
    )
    dy = rng.standard_normal(y.shape)
    dx = pool.avg_pool2d_backward(dy, x.shape, pool_size, strides, padding)
    expected = pool_spec.avg_pool2d_backward(dy, x, pool_size, strides, padding)
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 3),
    height=st.integers(2, 9),
    width=st.integers(2, 9),
    channels=st.sampled_from([1, 2, 8, 9]),
    filters=st.integers(1, 3),
    kernel_size=pairs,
    strides=pairs,
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    pool_size=pairs,
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
    few_values=st.booleans(),
    chunk_bytes=st.sampled_from([1, conv.CHUNK_BYTES]),
    find_winners=st.booleans(),
)
def test_fused_conv_max_pool_equals_spec(
    batch,
    height,
    width,
    channels,
    filters,
    kernel_size,
    strides,
    dilation,
    padding,
    pool_size,
    use_bias,
    seed,
    few_values,
    chunk_bytes,
    find_winners,
):
    """handnet.fast.fused = the spec's convolution, then the spec's max pooling with
    non-overlapping "valid" windows (strides = pool_size), forward and backward."""
    assume(fits(height, width, kernel_size, strides, dilation, padding))
    (out_h, out_w), _ = window_geometry_2d((height, width), kernel_size, strides, dilation, padding)
    assume(fits(out_h, out_w, pool_size, pool_size, (1, 1), "valid"))
    rng = np.random.default_rng(seed)
    # Small integers make ties between the cells of a window common.
    draw = (
        (lambda shape: rng.integers(-1, 2, shape).astype(float))
        if few_values
        else rng.standard_normal
    )
    x = draw((batch, height, width, channels))
    kernel = draw((*kernel_size, channels, filters))
    bias = draw(filters) if use_bias else None

    best, cols, cells, winner = fused.conv2d_max_pool_forward(
        x, kernel, bias, strides, padding, dilation, pool_size, find_winners=find_winners
    )
    assert (winner is None) is not find_winners
    z = conv_spec.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    np.testing.assert_allclose(
        best, pool_spec.max_pool2d_forward(z, pool_size, pool_size), rtol=1e-12, atol=1e-12
    )
    dbest = rng.standard_normal(best.shape)
    dbest_before = dbest.copy()
    with mock.patch.object(conv, "CHUNK_BYTES", chunk_bytes):
        got = fused.conv2d_max_pool_backward(
            dbest, cols, cells, winner, kernel, x.shape, strides, padding, dilation, pool_size
        )
    dz = pool_spec.max_pool2d_backward(dbest, z, pool_size, pool_size)
    want = conv_spec.conv2d_backward(dz, x, kernel, strides, padding, dilation)
    if not use_bias:
        assert got[2] is None
        got, want = got[:2], want[:2]
    for name, fast, spec in zip(("dx", "dkernel", "dbias"), got, want):
        np.testing.assert_allclose(fast, spec, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(dbest, dbest_before)


@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 2),
    height=st.integers(1, 8),
    width=st.integers(1, 9),
    # Both copy strategies of paired_im2col (tap by tap below 8 channels, one copy above).
    channels=st.sampled_from([1, 2, 8, 9]),
    filters=st.integers(1, 3),
    kernel_size=pairs,
    padding=st.sampled_from(["valid", "same"]),
    use_bias=st.booleans(),
    pool_size=st.one_of(st.none(), pairs),
    seed=st.integers(0, 2**16),
)
def test_paired_forward_equals_spec(
    batch, height, width, channels, filters, kernel_size, padding, use_bias, pool_size, seed
):
    """The inference path with two output pixels a row (conv.paired_conv2d_forward, and with a
    pooling fused.paired_conv2d_max_pool_forward) = the spec, wherever pairs_apply says yes."""
    assume(fits(height, width, kernel_size, (1, 1), (1, 1), padding))
    (out_h, out_w), _ = window_geometry_2d((height, width), kernel_size, (1, 1), (1, 1), padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, height, width, channels))
    kernel = rng.standard_normal((*kernel_size, channels, filters))
    bias = rng.standard_normal(filters) if use_bias else None
    z = conv_spec.conv2d_forward(x, kernel, bias, padding=padding)
    window = (kernel_size, (1, 1), padding, (1, 1))
    if pool_size is None:
        assert conv.pairs_apply(x.shape, *window) is (out_w % 2 == 0)
        assume(out_w % 2 == 0)
        got, cols = conv.paired_conv2d_forward(x, kernel, bias, padding)
        np.testing.assert_allclose(got, z, rtol=1e-12, atol=1e-12)
        # A reused buffer of the right shape is written into, and gives the same result.
        again, cols_again = conv.paired_conv2d_forward(x, kernel, bias, padding, reuse_cols=cols)
        assert cols_again is cols
        np.testing.assert_array_equal(again, got)
        return
    assume(fits(out_h, out_w, pool_size, pool_size, (1, 1), "valid"))
    grid = fused.pooled_grid(x.shape, *window, pool_size)
    assume(conv.pairs_apply(x.shape, *window, out_hw=grid))
    best, _ = fused.paired_conv2d_max_pool_forward(x, kernel, bias, padding, pool_size)
    expected = pool_spec.max_pool2d_forward(z, pool_size, pool_size)
    np.testing.assert_allclose(best, expected, rtol=1e-12, atol=1e-12)


def test_pairs_apply_only_to_stride_1_and_dilation_1_with_even_columns():
    shape = (1, 6, 6, 1)
    assert conv.pairs_apply(shape, (3, 3), (1, 1), "valid", (1, 1))  # OW = 4
    assert not conv.pairs_apply(shape, (2, 2), (1, 1), "valid", (1, 1))  # OW = 5
    assert conv.pairs_apply(shape, (2, 2), (1, 1), "valid", (1, 1), out_hw=(4, 4))
    assert not conv.pairs_apply(shape, (3, 3), (2, 1), "valid", (1, 1))
    assert not conv.pairs_apply(shape, (3, 3), (1, 1), "valid", (1, 2))
    with pytest.raises(ValueError, match="even"):
        conv.paired_im2col(np.zeros((1, 6, 6, 1)), (2, 2))
