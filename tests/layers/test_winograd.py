"""Winograd's F(2×2, 3×3) convolution fused with a 2×2 max pooling (handnet.fast.winograd)
against the loop specifications (conv_spec, pool_spec), and its place in Conv2D.

Tolerances:

- float64, 1e-12 relative and absolute: the transforms multiply by 0, ±1 and ½ only, so the
  algorithm's rounding is a few times the direct sum's (~1e-14 for these sizes). With small
  integers as inputs every value is exact (U = G g Gᵀ holds quarters), so the winners, ties
  included, are the spec's.
- float32, derived: each quantity is a sum of products reached through a fixed number of
  roundings (the transforms' additions, the products' sums over C, F or the tiles, the
  chunks' +=), and a computation of at most n roundings along any path from the inputs is
  within γ_n times the same computation on absolute values (every input, every transform
  matrix replaced by its absolute value; Higham, Accuracy and Stability, §3.1 and §3.5),
  γ_n = n·u / (1 - n·u), u = 2⁻²⁴. ``_absolute`` computes that in float64 with einsum, tile
  by tile, independently of the module's NumPy passes. A wrong coefficient in Bᵀ, G or Aᵀ, or
  an entry of M sent to the wrong output, breaks the bound by O(1).
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import handnet as hn
from handnet.fast import fused, winograd
from handnet.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from handnet.ops import conv_spec, pool_spec
from handnet.ops.padding import window_geometry_2d


def _spec(x, kernel, bias, padding):
    """(best, z) by the loops, float64."""
    z = conv_spec.conv2d_forward(x, kernel, bias, padding=padding)
    return pool_spec.max_pool2d_forward(z, (2, 2), (2, 2)), z


def _spec_backward(dbest, z, x, kernel, padding):
    dz = pool_spec.max_pool2d_backward(dbest, z, (2, 2), (2, 2))
    return conv_spec.conv2d_backward(dz, x, kernel, padding=padding), dz


@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 5),
    height=st.integers(3, 11),
    width=st.integers(3, 11),
    channels=st.integers(1, 9),
    filters=st.integers(1, 4),
    padding=st.sampled_from(["valid", "same"]),
    use_bias=st.booleans(),
    few_values=st.booleans(),
    chunk_bytes=st.sampled_from([1, 3000, winograd.CHUNK_BYTES]),  # 1: a chunk an image
    input_gradient=st.booleans(),
    buffers=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_winograd_conv_max_pool_equals_spec(
    batch, height, width, channels, filters, padding, use_bias, few_values, chunk_bytes,
    input_gradient, buffers, seed,
):  # fmt: skip
    """float64: best, the winners' routing (the spec's max pooling backward), dx, dK and db,
    odd and even sizes (an odd conv output leaves its last row or column to no window), short
    last chunks, and with ``buffers`` a first pass on other data whose arrays the second
    reuses."""
    (out_h, out_w), _ = window_geometry_2d((height, width), (3, 3), (1, 1), (1, 1), padding)
    assume(out_h >= 2 and out_w >= 2)
    rng = np.random.default_rng(seed)
    draw = (  # small integers: exact values, ties between the cells of a window
        (lambda shape: rng.integers(-1, 2, shape).astype(float))
        if few_values
        else rng.standard_normal
    )
    x = draw((batch, height, width, channels))
    kernel = draw((3, 3, channels, filters))
    bias = draw(filters) if use_bias else None
    dbest = rng.standard_normal((batch, out_h // 2, out_w // 2, filters))
    dbest_before = dbest.copy()
    with mock.patch.object(winograd, "CHUNK_BYTES", chunk_bytes):
        reuse = {}
        if buffers:
            _, tiles, winner, memory = winograd.conv2d_max_pool_forward(
                draw(x.shape), kernel, bias, padding
            )
            reuse = {"reuse_tiles": tiles, "reuse_winner": winner, "reuse_memory": memory}
        best, tiles, winner, memory = winograd.conv2d_max_pool_forward(
            x, kernel, bias, padding, **reuse
        )
        plain, *_ = winograd.conv2d_max_pool_forward(x, kernel, bias, padding, False)
        dx, dkernel, dbias, memory_after = winograd.conv2d_max_pool_backward(
            dbest, tiles, winner, kernel, x.shape, padding, input_gradient,
            use_bias=use_bias, reuse_memory=memory,
        )  # fmt: skip
    if buffers:
        assert tiles is reuse["reuse_tiles"] and winner is reuse["reuse_winner"]
        assert memory is reuse["reuse_memory"]
    assert memory_after is memory
    want_best, z = _spec(x, kernel, bias, padding)
    np.testing.assert_allclose(best, want_best, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(plain, best)  # without winners: the same max
    (want_dx, want_dk, want_db), _ = _spec_backward(dbest, z, x, kernel, padding)
    np.testing.assert_allclose(dkernel, want_dk, rtol=1e-12, atol=1e-12)
    if use_bias:
        np.testing.assert_allclose(dbias, want_db, rtol=1e-12, atol=1e-12)
    else:
        assert dbias is None
    if input_gradient:
        assert dx.shape == x.shape and dx.flags.c_contiguous
        np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    else:
        assert dx is None
    np.testing.assert_array_equal(dbest, dbest_before)


def test_relu_winners_route_as_the_relu_then_the_pooling():
    """first_cell = 1 with fused.relu_winners (label 0: the ReLU's zero derivative) gives the
    gradient of relu(maxpool(z)) that the spec computes from dy · [y > 0]."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 9, 8))
    kernel = rng.standard_normal((3, 3, 8, 4))
    bias = rng.standard_normal(4)
    best, tiles, winner, memory = winograd.conv2d_max_pool_forward(x, kernel, bias)
    y = np.maximum(best, 0)
    assert 0 < (y > 0).mean() < 1
    dy = rng.standard_normal(y.shape)
    live = fused.relu_winners(y, winner, 4)
    got = winograd.conv2d_max_pool_backward(dy, tiles, live, kernel, x.shape, first_cell=1)
    plain = winograd.conv2d_max_pool_backward(dy * (y > 0), tiles, winner, kernel, x.shape)
    for name, a, b in zip(("dx", "dkernel", "dbias"), got[:3], plain[:3]):
        np.testing.assert_array_equal(a, b, err_msg=name)
    _, z = _spec(x, kernel, bias, "valid")
    want, _ = _spec_backward(dy * (y > 0), z, x, kernel, "valid")
    for name, a, b in zip(("dx", "dkernel", "dbias"), got[:3], want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


def _gamma(n):
    u = 2.0**-24
    return n * u / (1 - n * u)


def _abs_tiles(x):
    """|x|'s 4×4 tiles d[n, i, j, r, s, c] = |x[n, 2i + r, 2j + s, c]|, float64."""
    n, height, width, channels = x.shape
    grid = ((height - 2) // 2, (width - 2) // 2)
    x = np.abs(x.astype(np.float64))
    tiles = np.empty((n, *grid, 4, 4, channels))
    for r in range(4):
        for s in range(4):
            tiles[:, :, :, r, s] = x[:, r : r + 2 * grid[0] : 2, s : s + 2 * grid[1] : 2]
    return tiles


def _absolute(x, kernel, bias, dy):
    """The computation on absolute values, float64: (|best|, |dx|, |dK|, |db|) bounds' sums,
    from |x|, |K|, |b| and |dy| (N, PH, PW, 2, 2, F) (the gradient at each window cell)."""
    b_t, g, a_t = (np.abs(m).astype(np.float64) for m in (winograd.B_T, winograd.G, winograd.A_T))
    d = _abs_tiles(x)  # (n, i, j, r, s, c)
    v = np.einsum("ar,nijrsc,bs->nijabc", b_t, d, b_t)
    u = np.einsum("au,uvcf,bv->abcf", g, np.abs(kernel.astype(np.float64)), g)
    m = np.einsum("nijabc,abcf->nijabf", v, u)
    y = np.einsum("pa,nijabf,qb->nijpqf", a_t, m, a_t)
    if bias is not None:
        y = y + np.abs(bias.astype(np.float64))
    dy = np.abs(dy.astype(np.float64))
    dm = np.einsum("pa,nijpqf,qb->nijabf", a_t, dy, a_t)
    du = np.einsum("nijabc,nijabf->abcf", v, dm)
    dk = np.einsum("au,abcf,bv->uvcf", g, du, g)
    dv = np.einsum("nijabf,abcf->nijabc", dm, u)
    dd = np.einsum("ar,nijabc,bs->nijrsc", b_t, dv, b_t)
    dx = np.zeros(x.shape)
    grid = d.shape[1:3]
    for r in range(4):
        for s in range(4):
            dx[:, r : r + 2 * grid[0] : 2, s : s + 2 * grid[1] : 2] += dd[:, :, :, r, s]
    db = dm[..., 1, 1, :].sum(axis=(0, 1, 2))
    return y, dx, dk, db


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 6),
    size=st.integers(4, 13),
    channels=st.sampled_from([1, 8, 16, 32]),
    filters=st.integers(1, 8),
    use_bias=st.booleans(),
    chunk_bytes=st.sampled_from([1, winograd.CHUNK_BYTES]),
    seed=st.integers(0, 2**16),
)
def test_winograd_float32_within_the_derived_rounding_bound(
    batch, size, channels, filters, use_bias, chunk_bytes, seed
):
    """float32 against the float64 spec, entry by entry within γ_n times the computation on
    absolute values (module docstring). n counts the roundings along the longest path
    (products by G's ½ and 1 are exact):
      best  2 (Bᵀ d B: one addition a side) + 8 (an entry of G g Gᵀ sums up to 9 terms)
            + C (the product's dot product) + 1 (the bias) + 4 (Aᵀ M A: two a side);
      dx    2 (A dy Aᵀ) + 8 (U) + F (dM Uᵀ) + 6 (B dV Bᵀ: two additions a side, then the
            overlapping tiles' one);
      dK    2 (A dy Aᵀ) + 2 (V) + the tiles summed + the chunks' += + 8 (Gᵀ dU G);
      db    2 + the tiles summed + the chunks' +=."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, size, size, channels)).astype(np.float32)
    x[:, : size // 3] = np.abs(x[:, : size // 3])  # positive inputs: the ReLU after a layer
    kernel = rng.standard_normal((3, 3, channels, filters)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32) if use_bias else None
    grid = ((size - 2) // 2, (size - 2) // 2)
    dbest = rng.standard_normal((batch, *grid, filters)).astype(np.float32)
    with mock.patch.object(winograd, "CHUNK_BYTES", chunk_bytes):
        best, tiles, winner, _ = winograd.conv2d_max_pool_forward(x, kernel, bias)
        dx, dk, db, _ = winograd.conv2d_max_pool_backward(
            dbest, tiles, winner, kernel, x.shape, use_bias=use_bias
        )
    as64 = [None if a is None else a.astype(np.float64) for a in (x, kernel, bias)]
    want_best, z = _spec(*as64, "valid")
    # The backward against the spec's, given the winners float32 found (a near-tie may pick
    # another cell than float64's; the max itself is within the bound either way).
    cells = np.stack([winner == t for t in range(4)], axis=3).reshape(*winner.shape[:3], 2, 2, -1)
    dy = dbest.astype(np.float64)[:, :, :, None, None] * cells
    dz = np.zeros(z.shape)
    for p in range(2):
        for q in range(2):
            dz[:, p : 2 * grid[0] : 2, q : 2 * grid[1] : 2] = dy[:, :, :, p, q]
    want_dx, want_dk, want_db = conv_spec.conv2d_backward(dz, as64[0], as64[1])
    abs_y, abs_dx, abs_dk, abs_db = _absolute(x, kernel, bias, dy)
    abs_best = abs_y.max(axis=(3, 4))
    chunks = batch if chunk_bytes == 1 else 1
    tiles_summed = batch * grid[0] * grid[1] + chunks
    checks = [
        ("best", best, want_best, abs_best, 2 + 8 + channels + 1 + 4),
        ("dx", dx, want_dx, abs_dx, 2 + 8 + filters + 6),
        ("dkernel", dk, want_dk, abs_dk, 2 + 2 + tiles_summed + 8),
    ]
    if use_bias:
        checks.append(("dbias", db, want_db, abs_db, 2 + tiles_summed))
    for name, got, want, total, roundings in checks:
        assert got.dtype == np.float32, name
        error = np.abs(got.astype(np.float64) - want)
        bound = _gamma(roundings) * total
        assert (error <= bound).all(), (name, float((error / np.maximum(bound, 1e-300)).max()))


def test_a_wrong_coefficient_breaks_the_float32_bound():
    """The bound test can fail: with one sign of G flipped (a wrong U), the float32 result
    leaves it by far."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 8)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 8, 3)).astype(np.float32)
    wrong = winograd.G.copy()
    wrong[2, 1] = -wrong[2, 1]  # the -1/2 of the point -1 turned into +1/2
    with mock.patch.object(winograd, "G", wrong):
        best, *_ = winograd.conv2d_max_pool_forward(x, kernel)
    want, _ = _spec(x.astype(np.float64), kernel.astype(np.float64), None, "valid")
    dy = np.zeros((*best.shape[:3], 2, 2, 3))
    bound = _gamma(2 + 8 + 8 + 4) * _absolute(x, kernel, None, dy)[0].max(axis=(3, 4))
    assert (np.abs(best - want) > 100 * bound).any()


def test_applies_only_where_f2x2_3x3_computes_the_layer():
    window = ((3, 3), (1, 1), "valid", (1, 1))
    assert winograd.applies((4, 12, 12, 8), *window, (2, 2))
    assert not winograd.applies((4, 12, 12, 7), *window, (2, 2))  # too few channels
    assert not winograd.applies((4, 12, 12, 8), (5, 5), (1, 1), "valid", (1, 1), (2, 2))
    assert not winograd.applies((4, 12, 12, 8), (3, 3), (2, 2), "valid", (1, 1), (2, 2))
    assert not winograd.applies((4, 12, 12, 8), (3, 3), (1, 1), "valid", (2, 2), (2, 2))
    assert not winograd.applies((4, 12, 12, 8), *window, (3, 3))
    assert not winograd.applies((4, 12, 12, 8), *window, (2, 2), groups=2)
    assert not winograd.applies((4, 3, 12, 8), *window, (2, 2))  # one conv row: no window
    assert winograd.applies((4, 2, 2, 8), (3, 3), (1, 1), "same", (1, 1), (2, 2))


@pytest.mark.parametrize("channels", [8, 7])  # Winograd; im2col (cell-major)
def test_conv2d_layer_trains_on_the_path_applies_chooses(channels):
    """In a Sequential, a 3×3 Conv2D (ReLU) with a 2×2 max pooling after it runs Winograd in
    training where ``applies`` says so, im2col otherwise; a step gives the unfused layers'
    gradients (float64, 1e-12), and predict, then a backward pass after it, the training
    forward's results."""

    def make():
        return hn.Sequential(
            [
                Input((11, 10, channels)),
                Conv2D(5, 3, activation="relu", padding="same", dtype="float64"),
                MaxPooling2D(dtype="float64"),
                Flatten(dtype="float64"),
                Dense(3, dtype="float64"),
            ],
            seed=2,
        ).build()

    model = make()
    conv = model.layers[0]
    conv.params["bias"][...] = np.linspace(-0.5, 0.5, 5)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 11, 10, channels))
    y = model.forward(x, training=True)
    assert (conv._tiles is not None) is (channels >= winograd.FROM_CHANNELS)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy, input_gradient=True)
    grads = {key: value.copy() for key, value in conv.grads.items()}

    z = conv_spec.conv2d_forward(x, conv.params["kernel"], conv.params["bias"], padding="same")
    pooled = pool_spec.max_pool2d_forward(np.maximum(z, 0), (2, 2), (2, 2))
    dense = model.layers[-1]
    want_y = pooled.reshape(4, -1) @ dense.params["kernel"] + dense.params["bias"]
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
    dpooled = (dy @ dense.params["kernel"].T).reshape(pooled.shape)
    drelu = pool_spec.max_pool2d_backward(dpooled, np.maximum(z, 0), (2, 2), (2, 2)) * (z > 0)
    want_dx, want_dk, want_db = conv_spec.conv2d_backward(
        drelu, x, conv.params["kernel"], padding="same"
    )
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["kernel"], want_dk, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["bias"], want_db, rtol=1e-12, atol=1e-12)

    model.forward(x, training=False)  # inference: no winners
    dx_after = model.backward(dy, input_gradient=True)  # reruns the training forward first
    np.testing.assert_allclose(dx_after, dx, rtol=1e-12, atol=1e-12)
    for key, value in grads.items():
        np.testing.assert_allclose(conv.grads[key], value, rtol=1e-12, atol=1e-12)


def test_padded_input_is_not_written():
    """Padding ("same") works on a copy: the caller's x stays as it was."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 6, 8))
    kept = x.copy()
    kernel = rng.standard_normal((3, 3, 8, 2))
    best, tiles, winner, _ = winograd.conv2d_max_pool_forward(x, kernel, None, "same")
    winograd.conv2d_max_pool_backward(np.ones_like(best), tiles, winner, kernel, x.shape, "same")
    np.testing.assert_array_equal(x, kept)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 4),
    half_height=st.integers(1, 5),
    half_width=st.integers(1, 5),
    channels=st.integers(1, 9),
    filters=st.integers(1, 4),
    padding=st.sampled_from(["valid", "same"]),
    use_bias=st.booleans(),
    chunk_bytes=st.sampled_from([1, 3000, winograd.CHUNK_BYTES]),
    input_gradient=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_winograd_conv_without_pooling_equals_spec(
    batch, half_height, half_width, channels, filters, padding, use_bias, chunk_bytes,
    input_gradient, dtype, seed,
):  # fmt: skip
    """conv2d_forward / conv2d_backward (an even output, no pooling: z written in the plain
    order straight from Aᵀ M A, dz read from it) against the spec: float64 to 1e-12, float32
    within the bound of the fused test (the same roundings, without the max)."""
    extra = 2 if padding == "valid" else 0
    height, width = 2 * half_height + extra, 2 * half_width + extra
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, height, width, channels)).astype(dtype)
    kernel = rng.standard_normal((3, 3, channels, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype) if use_bias else None
    dz = rng.standard_normal((batch, 2 * half_height, 2 * half_width, filters)).astype(dtype)
    with mock.patch.object(winograd, "CHUNK_BYTES", chunk_bytes):
        z, tiles, memory = winograd.conv2d_forward(x, kernel, bias, padding)
        dx, dk, db, _ = winograd.conv2d_backward(
            dz, tiles, kernel, x.shape, padding, input_gradient, use_bias, memory
        )
    as64 = [None if a is None else a.astype(np.float64) for a in (x, kernel, bias, dz)]
    want_z = conv_spec.conv2d_forward(*as64[:3], padding=padding)
    want_dx, want_dk, want_db = conv_spec.conv2d_backward(
        as64[3], as64[0], as64[1], padding=padding
    )
    assert z.dtype == dtype and z.shape == want_z.shape
    if dtype == np.float64:
        bounds = {name: 1e-12 * (1 + np.abs(want)) for name, want in
                  (("z", want_z), ("dx", want_dx), ("dk", want_dk), ("db", want_db))}  # fmt: skip
    else:
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))) if padding == "same" else x
        dy = _tile_cells(as64[3])
        abs_y, abs_dx, abs_dk, abs_db = _absolute(xp, kernel, bias, dy)
        if padding == "same":
            abs_dx = abs_dx[:, 1:-1, 1:-1]
        chunks = batch if chunk_bytes == 1 else 1
        tiles_summed = batch * half_height * half_width + chunks
        bounds = {
            "z": _gamma(2 + 8 + channels + 1 + 4) * _untile(abs_y),
            "dx": _gamma(2 + 8 + filters + 6) * abs_dx,
            "dk": _gamma(2 + 2 + tiles_summed + 8) * abs_dk,
            "db": _gamma(2 + tiles_summed) * abs_db,
        }
    checks = [("z", z, want_z), ("dk", dk, want_dk)]
    checks += [("db", db, want_db)] if use_bias else []
    checks += [("dx", dx, want_dx)] if input_gradient else []
    assert (db is None) is not use_bias and (dx is None) is not input_gradient
    for name, got, want in checks:
        error = np.abs(got.astype(np.float64) - want)
        assert (error <= bounds[name]).all(), (name, float((error / bounds[name]).max()))


def _tile_cells(z):
    """z (N, 2·PH, 2·PW, F) as (N, PH, PW, 2, 2, F): [n, i, j, p, q] = z[n, 2i + p, 2j + q]."""
    n, height, width, filters = z.shape
    return z.reshape(n, height // 2, 2, width // 2, 2, filters).transpose(0, 1, 3, 2, 4, 5)


def _untile(y):
    """The inverse of ``_tile_cells``."""
    n, grid_h, grid_w, _, _, filters = y.shape
    return y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * grid_h, 2 * grid_w, filters)


def test_applies_plain_only_to_an_even_output():
    window = ((3, 3), (1, 1), "valid", (1, 1))
    assert winograd.applies_plain((2, 12, 12, 8), *window)
    assert not winograd.applies_plain((2, 11, 12, 8), *window)  # 9 rows: a tile would hang out
    assert not winograd.applies_plain((2, 12, 12, 4), *window)  # too few channels
    assert winograd.applies_plain((2, 6, 8, 8), (3, 3), (1, 1), "same", (1, 1))
    assert not winograd.applies_plain((2, 7, 8, 8), (3, 3), (1, 1), "same", (1, 1))


@pytest.mark.parametrize("height", [10, 9])  # an even output: Winograd; odd: im2col
def test_a_conv2d_alone_trains_on_the_path_applies_plain_chooses(height):
    """A 3×3 Conv2D (ReLU) with nothing fused after it: Winograd in training where the output
    is even (float64: the spec's gradients), im2col otherwise; after an inference forward a
    backward pass runs on the inference's im2col cols."""
    conv = Conv2D(4, 3, activation="relu", dtype="float64")
    model = hn.Sequential([Input((height, 10, 8)), conv], seed=1).build()
    conv.params["bias"][...] = np.linspace(-0.3, 0.3, 4)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, height, 10, 8))
    dy = rng.standard_normal((3, height - 2, 8, 4))
    z = conv_spec.conv2d_forward(x, conv.params["kernel"], conv.params["bias"])
    want = conv_spec.conv2d_backward(dy * (z > 0), x, conv.params["kernel"])
    for training in (True, False):
        y = model.forward(x, training=training)
        assert (conv._tiles is not None) is (training and height % 2 == 0)
        np.testing.assert_allclose(y, np.maximum(z, 0), rtol=1e-12, atol=1e-12)
        dx = model.backward(dy, input_gradient=True)
        got = (dx, conv.grads["kernel"], conv.grads["bias"])
        for name, a, b in zip(("dx", "dkernel", "dbias"), got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)
