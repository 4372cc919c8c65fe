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


@settings(max_examples=60, deadline=None)
@given(
    channels=st.sampled_from([1, 3, 7, 8, 9]),
    kernel_size=pairs,
    strides=pairs,
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    pool_size=st.sampled_from([(1, 1), (2, 2), (2, 1)]),
    ones_column=st.booleans(),
    seed=st.integers(0, 2**16),
    # 1 byte: the pool-major copy goes one image at a time (as for inputs above 8 MiB)
    chunk_bytes=st.sampled_from([1, None]),
)
def test_im2col_layouts_hold_the_spec_rows_and_reuse_only_their_own_order(
    channels, kernel_size, strides, dilation, padding, pool_size, ones_column, seed, chunk_bytes
):
    """conv.im2col below 8 channels is column-major (cols.T C-contiguous: each tap a contiguous
    run), from 8 on row-major; either way row (n, pu, pv, i, j) holds the spec's patch of conv
    output (n, i·p_h + pu, j·p_w + pv), in (u, v, c) order. A buffer of the other order (same
    shape) is not written into; the array im2col itself returned is."""
    assume(fits(9, 8, kernel_size, strides, dilation, padding))
    (out_h, out_w), pads = window_geometry_2d((9, 8), kernel_size, strides, dilation, padding)
    assume(out_h >= pool_size[0] and out_w >= pool_size[1])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 9, 8, channels))
    window = (kernel_size, strides, padding, dilation, ones_column, pool_size)
    if chunk_bytes is None:
        cols, grid = conv.im2col(x, *window)
    else:
        with mock.patch.multiple(
            conv, _IM2COL_CHUNKED_ABOVE_BYTES=0, _IM2COL_CHUNK_BYTES=chunk_bytes
        ):
            cols, grid = conv.im2col(x, *window)
    tapwise = channels < 8
    assert (cols.T if tapwise else cols).flags.c_contiguous
    # The spec's rows: ops.im2col's (plain order, all outputs), rearranged pool-major.
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    plain = im2col.im2col(xp, kernel_size, strides, dilation, (out_h, out_w))
    read_hw = (grid[0] * pool_size[0], grid[1] * pool_size[1])  # the outputs pooling reads
    plain = plain.reshape(2, out_h, out_w, -1)[:, : read_hw[0], : read_hw[1]]
    expected = conv.pool_major(plain, pool_size).reshape(-1, plain.shape[-1])
    np.testing.assert_array_equal(cols[:, : expected.shape[1]], expected)
    if ones_column:
        np.testing.assert_array_equal(cols[:, -1], 1)

    if cols.shape[1] > 1:  # (one column is both orders at once)
        other_order = np.empty(cols.shape[::-1]).T if not tapwise else np.empty(cols.shape)
        again, _ = conv.im2col(x, *window, reuse=other_order)
        assert again is not other_order and not np.shares_memory(again, other_order)
    same, _ = conv.im2col(2 * x, *window, reuse=cols)
    assert same is cols
    np.testing.assert_array_equal(same[:, : expected.shape[1]], 2 * expected)


@pytest.mark.parametrize("channels", [1, 3, 9])
def test_weight_gradients_are_the_same_for_either_order_and_chunks_of_rows(channels):
    """colsᵀ·dz from column-major cols (and from slices of its rows, as backward_chunks cuts
    them) equals the product from a row-major copy."""
    rng = np.random.default_rng(channels)
    cols, _ = conv.im2col(rng.standard_normal((4, 7, 6, channels)), (3, 3), ones_column=True)
    dz = rng.standard_normal((len(cols), 5))
    row_major = np.ascontiguousarray(cols)
    for rows in (slice(None), slice(0, 20), slice(20, 40)):
        np.testing.assert_allclose(
            conv.weight_gradients(dz[rows], cols[rows]),
            row_major[rows].T @ dz[rows],
            rtol=1e-12,
            atol=1e-12,
        )


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_col2im_sums_into_the_array_given(padding):
    """With ``out`` (a chunk of the caller's dx, holding garbage), col2im returns that array,
    holding what it returns without one: zeroed first, and cropped for "same"."""
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 2, 2, 4))
    x_shape = (3, 7, 6, 2)
    (out_h, out_w), _ = window_geometry_2d(x_shape[1:3], (3, 2), (1, 1), (1, 1), padding)
    dz = rng.standard_normal((3, out_h, out_w, 4))
    expected = conv.col2im_matmul(dz, kernel, x_shape, padding=padding)
    dx = np.full((5, *x_shape[1:]), np.nan)
    got = conv.col2im_matmul(dz, kernel, x_shape, padding=padding, out=dx[1:4])
    assert np.shares_memory(got, dx)
    np.testing.assert_array_equal(dx[1:4], expected)
    assert np.isnan(dx[[0, 4]]).all()  # the rest of the caller's array is left alone


@pytest.mark.parametrize("taps", [1, 2, 4, 9])
def test_first_max_writes_the_winner_into_the_array_given(taps):
    rng = np.random.default_rng(taps)
    arrays = list(rng.integers(0, 3, (taps, 5, 6)).astype(float))  # ties are common
    best, winner = pool.first_max(arrays)
    stacked = np.stack(arrays)
    np.testing.assert_array_equal(best, stacked.max(axis=0))
    np.testing.assert_array_equal(winner, stacked.argmax(axis=0))  # argmax: the first maximum
    buffer = np.full(winner.shape, 7, dtype=winner.dtype)
    best_again, winner_again = pool.first_max(arrays, reuse_winner=buffer)
    assert winner_again is buffer
    np.testing.assert_array_equal(winner_again, winner)
    assert not any(np.shares_memory(best_again, a) for a in arrays)
    out = np.empty_like(best)
    best_out, _ = pool.first_max(arrays, out=out)
    assert best_out is out
    np.testing.assert_array_equal(out, best)


def test_relu_winners_send_nothing_where_the_relu_is_flat():
    """winner + 1 where y > 0, else 0, as ReLU's derivative [y > 0] (0 at 0, and at NaN); with
    first_cell=1, cell_major_to_winners then equals dbest = dy · [y > 0] sent to the plain
    winners."""
    y = np.array([[2.0, 0.0, np.nan, 0.5, 3.0]])
    winner = np.array([[0, 1, 2, 3, 1]], dtype=np.uint8)
    live = fused.relu_winners(y, winner, 4)
    np.testing.assert_array_equal(live, [[1, 0, 0, 4, 2]])
    dy = np.array([[1.0, -2.0, 3.0, -4.0, 5.0]])
    np.testing.assert_array_equal(
        fused.cell_major_to_winners(dy, live, 4, first_cell=1),
        fused.cell_major_to_winners(dy * (y > 0), winner, 4),
    )
    buffer = np.empty_like(winner)
    assert fused.relu_winners(y, winner, 4, reuse=buffer) is buffer
    assert fused.relu_winners(y, winner, 255) is None  # labels 0…255 would not fit a uint8


# -- inference: the layouts worked out once per input shape ----------------------------------
@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.sampled_from([1, 3, 7, 8, 9]),
    kernel_size=pairs,
    strides=pairs,
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    pool_size=st.sampled_from([(1, 1), (2, 2), (2, 1)]),
    ones_column=st.booleans(),
    paired=st.booleans(),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_im2col_layout_fills_the_cols_of_im2col_and_paired_im2col(
    batch, channels, kernel_size, strides, dilation, padding, pool_size, ones_column, paired,
    transposed, seed,
):  # fmt: skip
    """conv.Im2colLayout.fill (one strided view, geometry worked out once) gives the very cols
    of conv.im2col (plain or pool-major) or, ``paired``, of conv.paired_im2col: the same
    values in the same memory order; it writes into the previous call's cols, never into an
    array of the other order, and reads a non-contiguous x as well as a contiguous one."""
    assume(fits(9, 8, kernel_size, strides, dilation, padding))
    (out_h, out_w), _ = window_geometry_2d((9, 8), kernel_size, strides, dilation, padding)
    assume(out_h >= pool_size[0] and out_w >= pool_size[1])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 9, 8, channels))
    if transposed:  # a view with other strides (the layout's are those of a C-ordered xp)
        x = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    if paired:
        strides = dilation = (1, 1)
        (out_h, out_w), _ = window_geometry_2d((9, 8), kernel_size, (1, 1), (1, 1), padding)
        grid = (out_h // pool_size[0] * pool_size[0], out_w // pool_size[1] * pool_size[1])
        assume(grid[1] % 2 == 0 and grid[1] > 0 and grid[0] > 0)
        layout = conv.Im2colLayout(
            x.shape, x.dtype, kernel_size, padding=padding, ones_column=ones_column,
            paired=True, out_hw=grid,
        )  # fmt: skip
        expected, expected_grid = conv.paired_im2col(x, kernel_size, padding, ones_column, grid)
    else:
        layout = conv.Im2colLayout(
            x.shape, x.dtype, kernel_size, strides, padding, dilation, pool_size, ones_column
        )
        expected, expected_grid = conv.im2col(
            x, kernel_size, strides, padding, dilation, ones_column, pool_size
        )
    cols = layout.fill(x)
    assert layout.grid == tuple(expected_grid) and layout.paired is paired
    np.testing.assert_array_equal(cols, expected)
    assert cols.flags.c_contiguous == expected.flags.c_contiguous
    assert cols.T.flags.c_contiguous == expected.T.flags.c_contiguous
    again = layout.fill(2 * x, reuse=cols)
    assert again is cols
    np.testing.assert_array_equal(again[:, : layout.depth], 2 * expected[:, : layout.depth])
    if cols.shape[1] > 1:  # (one column is both orders at once)
        other = np.empty(cols.shape[::-1]).T if cols.flags.c_contiguous else np.empty(cols.shape)
        fresh = layout.fill(x, reuse=other)
        assert fresh is not other and not np.shares_memory(fresh, other)
        np.testing.assert_array_equal(fresh, expected)
    with pytest.raises(ValueError, match="Im2colLayout"):
        layout.fill(x[:, :-1])


@pytest.mark.parametrize("use_bias", [True, False])
def test_weight_matrices_written_into_a_used_array_equal_fresh_ones(use_bias):
    """paired_kernel_matrix(out=) and kernel_matrix_in(out=) write every entry (the zeros
    of K₂ too) into an array holding anything, and follow a kernel changed in place."""
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 2, 4, 5))
    bias = rng.standard_normal(5) if use_bias else None
    for build, reference in (
        (conv.paired_kernel_matrix, conv.paired_kernel_matrix),
        (conv.kernel_matrix_in, conv.kernel_matrix),
    ):
        fresh = reference(kernel, bias)
        used = np.full(fresh.shape, np.nan)
        got = build(kernel, bias, out=used)
        np.testing.assert_array_equal(got, fresh)
        assert got is used or (bias is None and build is conv.kernel_matrix_in)
        kernel *= 2  # as an optimizer or set_weights do: in place
        np.testing.assert_array_equal(build(kernel, bias, out=got), reference(kernel, bias))
        wrong = np.zeros((fresh.shape[0] + 1, fresh.shape[1]))
        assert build(kernel, bias, out=wrong) is not wrong


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.sampled_from([1, 8, 9]),
    filters=st.integers(1, 3),
    kernel_size=pairs,
    padding=st.sampled_from(["valid", "same"]),
    pool_size=st.sampled_from([(2, 2), (2, 1), (1, 2), (3, 2)]),
    use_bias=st.booleans(),
    paired=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_max_pool_inference_is_the_path_it_replaces_bit_for_bit(
    batch, channels, filters, kernel_size, padding, pool_size, use_bias, paired, seed
):
    """fused.conv2d_max_pool_inference along pool-major cols = the max over the blocks of
    conv.im2col's pool-major cols @ the kernel matrix, along paired rows =
    paired_conv2d_max_pool_forward, both bit for bit (and both the spec's); run twice in its
    own arrays, it gives the same again."""
    assume(fits(8, 9, kernel_size, (1, 1), (1, 1), padding))
    (out_h, out_w), _ = window_geometry_2d((8, 9), kernel_size, (1, 1), (1, 1), padding)
    assume(out_h >= pool_size[0] and out_w >= pool_size[1])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 8, 9, channels))
    kernel = rng.standard_normal((*kernel_size, channels, filters))
    bias = rng.standard_normal(filters) if use_bias else None
    window = (kernel_size, (1, 1), padding, (1, 1))
    grid = fused.pooled_grid(x.shape, *window, pool_size)
    if paired:
        assume(conv.pairs_apply(x.shape, *window, out_hw=grid))
        layout = conv.Im2colLayout(
            x.shape, x.dtype, kernel_size, padding=padding, ones_column=use_bias, paired=True,
            out_hw=grid,
        )  # fmt: skip
        expected, _ = fused.paired_conv2d_max_pool_forward(x, kernel, bias, padding, pool_size)
    else:
        layout = conv.Im2colLayout(
            x.shape, x.dtype, *window, pool_size=pool_size, ones_column=use_bias
        )
        cols, grid = conv.im2col(x, kernel_size, *window[1:], use_bias, pool_size)
        z = np.empty((len(cols), filters))
        np.matmul(cols, conv.kernel_matrix(kernel, bias), out=z)
        expected = z.reshape(batch, -1, *grid, filters).max(axis=1)
    best, *arrays = fused.conv2d_max_pool_inference(x, kernel, bias, layout, pool_size)
    np.testing.assert_array_equal(best, expected)
    z = conv_spec.conv2d_forward(x, kernel, bias, padding=padding)
    spec = pool_spec.max_pool2d_forward(z, pool_size, pool_size)
    np.testing.assert_allclose(best, spec, rtol=1e-12, atol=1e-12)
    again, *arrays_again = fused.conv2d_max_pool_inference(
        x, kernel, bias, layout, pool_size, *arrays
    )
    (cols, z, weights), (cols_again, z_again, weights_again) = arrays, arrays_again
    assert cols_again is cols and np.shares_memory(z_again, z)
    assert weights_again is weights if use_bias or paired else np.shares_memory(weights, kernel)
    np.testing.assert_array_equal(again, best)
    assert not np.shares_memory(again, best)  # best is a fresh array each call


def test_paired_rows_run_only_from_enough_images_and_for_few_filters():
    window = ((3, 3), (1, 1), "valid", (1, 1))
    many = (fused.PAIRED_FROM_IMAGES, 14, 14, 32)
    assert fused.pairs_pay(many, *window, (2, 2), filters=fused.PAIRED_UP_TO_FILTERS)
    assert not fused.pairs_pay(many, *window, (2, 2), filters=fused.PAIRED_UP_TO_FILTERS + 1)
    assert not fused.pairs_pay((1, 14, 14, 32), *window, (2, 2), filters=8)
    assert not fused.pairs_pay((64, 14, 14, 1), *window, (2, 2), filters=8)
    layout = fused.inference_layout(many, np.float32, *window, (2, 2), True, 8)
    assert layout.paired
    layout = fused.inference_layout((1, 14, 14, 32), np.float32, *window, (2, 2), True, 8)
    assert not layout.paired and layout.grid == (6, 6)
