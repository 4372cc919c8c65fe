"""The fused Conv2D + MaxPooling2D training path in the cell-major row order
(handnet.fast.conv.cell_major_im2col, handnet.fast.fused.cell_major_*) against the loop
specifications (conv_spec, pool_spec).

The cell-major order sums the weight gradient's rows in another order than the spec (and than
the pool-major path), so equality holds to rounding only. Tolerances:

- float64: 1e-12, relative and absolute, as the pool-major path's tests (the sums hold a few
  hundred terms of size ~1: their rounding is ~1e-14).
- float32, derived: every entry of dK, db and dx is a sum of n products, and a sum of n
  rounded products, in any order (any tree, any blocking), is within γ_n·Σ|terms| of the exact
  sum, γ_n = n·u / (1 - n·u), u = 2⁻²⁴ (Higham, Accuracy and Stability, §3.1). Σ|terms| is
  the spec's backward pass run on |dz|, |x|, |K|; n is the number of rows summed (PH·PW·p_h·p_w
  an image, plus one per chunk for the += of the chunks) for dK and db, kh·kw·F for dx. The
  inputs are small integers, so that z is exact in float32 and its winners are the spec's
  (ties included): the bound then holds entry by entry, and a gradient sent to a wrong cell
  breaks it by O(1).
"""

from unittest import mock

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handnet.errors import InvalidInputError
from handnet.fast import conv, fused
from handnet.ops import conv_spec, pool_spec
from handnet.ops.padding import window_geometry_2d

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


def fits(height, width, window, strides, dilation, padding):
    try:
        window_geometry_2d((height, width), window, strides, dilation, padding)
    except InvalidInputError:
        return False
    return True


def _spec(x, kernel, bias, dbest, strides, padding, dilation, pool_size):
    """(best, (dx, dK, db), z) by the specs, in float64."""
    z = conv_spec.conv2d_forward(x, kernel, bias, strides, padding, dilation)
    best = pool_spec.max_pool2d_forward(z, pool_size, pool_size)
    dz = pool_spec.max_pool2d_backward(dbest, z, pool_size, pool_size)
    return best, conv_spec.conv2d_backward(dz, x, kernel, strides, padding, dilation), dz


def _fast(x, kernel, bias, dbest, window, reuse=None, workspace=None, winners=True):
    best, cols, cells, winner = fused.cell_major_conv2d_max_pool_forward(
        x, kernel, bias, *window, **(reuse or {})
    )
    got = fused.cell_major_conv2d_max_pool_backward(
        dbest,
        cols,
        cells,
        winner if winners else None,
        kernel,
        x.shape,
        *window,
        reuse_dz=workspace,
    )
    return best, got, (cols, cells, winner)


@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 3),
    height=st.integers(2, 9),
    width=st.integers(2, 9),
    channels=st.sampled_from([1, 2, 8, 9]),  # both copies of cell_major_im2col
    filters=st.integers(1, 3),
    kernel_size=pairs,
    strides=pairs,
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["valid", "same"]),
    pool_size=pairs,
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
    few_values=st.booleans(),
    small_chunks=st.booleans(),
    winners=st.booleans(),
    buffers=st.booleans(),
)
def test_cell_major_fused_conv_max_pool_equals_spec(
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
    small_chunks,
    winners,
    buffers,
):
    """float64, 1e-12: forward (best) and backward (dx, dK, db), chunks of one image or the
    whole batch (``small_chunks`` also runs the forward's product chunk by chunk), winners
    from the forward or found in the backward, and with ``buffers`` a first pass on other data
    whose arrays the second is written into."""
    assume(fits(height, width, kernel_size, strides, dilation, padding))
    (out_h, out_w), _ = window_geometry_2d((height, width), kernel_size, strides, dilation, padding)
    assume(fits(out_h, out_w, pool_size, pool_size, (1, 1), "valid"))
    rng = np.random.default_rng(seed)
    draw = (  # small integers: ties between the cells of a window are common
        (lambda shape: rng.integers(-1, 2, shape).astype(float))
        if few_values
        else rng.standard_normal
    )
    x = draw((batch, height, width, channels))
    kernel = draw((*kernel_size, channels, filters))
    bias = draw(filters) if use_bias else None
    window = (strides, padding, dilation, pool_size)
    patches = {"FORWARD_CHUNKED_ABOVE_BYTES": fused.FORWARD_CHUNKED_ABOVE_BYTES}
    if small_chunks:
        patches = {"FORWARD_CHUNKED_ABOVE_BYTES": 0}
    with (
        mock.patch.multiple(fused, **patches),
        mock.patch.object(conv, "CHUNK_BYTES", 1 if small_chunks else conv.CHUNK_BYTES),
    ):
        reuse, workspace = None, None
        if buffers:
            _, cols, cells, winner = fused.cell_major_conv2d_max_pool_forward(
                draw(x.shape), kernel, bias, *window
            )
            reuse = {"reuse_cols": cols, "reuse_cells": cells, "reuse_winner": winner}
            workspace = fused.cell_major_dz_workspace(winner, cols, filters, x.dtype)
        dbest_shape = (batch, out_h // pool_size[0], out_w // pool_size[1], filters)
        dbest = rng.standard_normal(dbest_shape)
        dbest_before = dbest.copy()
        best, got, kept = _fast(x, kernel, bias, dbest, window, reuse, workspace, winners)
    if buffers:
        assert kept[0] is reuse["reuse_cols"] and kept[1] is reuse["reuse_cells"]
        assert kept[2] is reuse["reuse_winner"]
        assert not np.shares_memory(best, kept[1])  # best goes on to the next layer: fresh
    want_best, want, _ = _spec(x, kernel, bias, dbest, *window)
    np.testing.assert_allclose(best, want_best, rtol=1e-12, atol=1e-12)
    if not use_bias:
        assert got[2] is None
        got, want = got[:2], want[:2]
    for name, fast, spec in zip(("dx", "dkernel", "dbias"), got, want):
        np.testing.assert_allclose(fast, spec, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(dbest, dbest_before)


def _gamma(n):
    u = 2.0**-24
    return n * u / (1 - n * u)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 6),
    size=st.integers(6, 14),
    channels=st.sampled_from([1, 3, 8, 16]),
    filters=st.integers(1, 8),
    kernel=st.sampled_from([1, 3, 5]),
    pool_size=st.sampled_from([(2, 2), (2, 3), (3, 3)]),
    use_bias=st.booleans(),
    small_chunks=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_cell_major_float32_within_the_derived_rounding_bound(
    batch, size, channels, filters, kernel, pool_size, use_bias, small_chunks, seed
):
    """float32 against the float64 spec, entry by entry within γ_n·Σ|terms| (module
    docstring); z exact (small integers), so the winners are the spec's."""
    assume(size - kernel + 1 >= max(pool_size))
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (batch, size, size, channels)).astype(np.float32)
    x[:, : size // 3] = 0  # a blank band: windows of equal cells
    weights = rng.integers(-2, 3, (kernel, kernel, channels, filters)).astype(np.float32)
    bias = rng.integers(-2, 3, filters).astype(np.float32) if use_bias else None
    window = ((1, 1), "valid", (1, 1), pool_size)
    grid = ((size - kernel + 1) // pool_size[0], (size - kernel + 1) // pool_size[1])
    dbest = rng.standard_normal((batch, *grid, filters)).astype(np.float32)
    with mock.patch.object(conv, "CHUNK_BYTES", 1 if small_chunks else conv.CHUNK_BYTES):
        best, got, _ = _fast(x, weights, bias, dbest, window)
    as64 = [None if a is None else a.astype(np.float64) for a in (x, weights, bias, dbest)]
    want_best, want, dz = _spec(*as64, *window)
    np.testing.assert_array_equal(best, want_best)  # exact: integers
    absolute = conv_spec.conv2d_backward(np.abs(dz), np.abs(as64[0]), np.abs(as64[1]), *window[:3])
    chunks = batch if small_chunks else 1
    rows = batch * grid[0] * grid[1] * pool_size[0] * pool_size[1] + chunks
    bounds = (_gamma(kernel * kernel * filters), _gamma(rows), _gamma(rows))
    for name, fast, spec, total, gamma in zip(
        ("dx", "dkernel", "dbias"), got, want, absolute, bounds
    ):
        if name == "dbias" and not use_bias:
            assert fast is None
            continue
        assert fast.dtype == np.float32
        error = np.abs(fast.astype(np.float64) - spec)
        assert (error <= gamma * total).all(), (name, float((error - gamma * total).max()))


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 5),
    channels=st.sampled_from([1, 9]),
    pool_size=pairs,
    chunk=st.integers(1, 5),
    copy_bytes=st.sampled_from([1, 1 << 20]),
    seed=st.integers(0, 2**16),
)
def test_cell_major_rows_are_the_pool_major_rows_reordered(
    batch, channels, pool_size, chunk, copy_bytes, seed
):
    """Row (g, t, b, i, j) of cell_major_im2col is row (g·chunk + b, t, i, j) of the
    pool-major im2col: the same copies, in chunks of ``chunk`` images, cell-major within
    (row-major cols: several chunks a copy, or one with ``copy_bytes`` = 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 9, 8, channels))
    old, grid = conv.im2col(x, (2, 3), ones_column=True, pool_size=pool_size)
    with mock.patch.object(conv, "_IM2COL_CHUNK_BYTES", copy_bytes):
        new, new_grid = conv.cell_major_im2col(
            x, (2, 3), ones_column=True, pool_size=pool_size, chunk=chunk
        )
    assert new_grid == grid and new.shape == old.shape
    cells = pool_size[0] * pool_size[1]
    per_image = old.reshape(batch, cells, grid[0] * grid[1], -1)
    for start in range(0, batch, chunk):
        part = per_image[start : start + chunk]
        rows = slice(start * len(old) // batch, (start + len(part)) * len(old) // batch)
        np.testing.assert_array_equal(new[rows], part.swapaxes(0, 1).reshape(-1, old.shape[1]))
