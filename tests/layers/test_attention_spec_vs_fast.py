"""The vectorized attention (handnet.fast.attention) against the loop specification
(handnet.ops.attention_spec): random sizes, heads, masks (with fully masked rows), dropout
keep factors and a returned-weights gradient, forward and backward, in float64 (and float32,
its own route, to float32 accuracy); dy is left untouched."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handnet.fast import attention as fast
from handnet.ops import attention_spec as spec


def draw(rng, batch, t_query, t_key, heads, key_dim, value_dim, mask_kind, dropout):
    """(q, k, v, mask, keep) in float64 for one example."""
    q = rng.standard_normal((batch, t_query, heads, key_dim))
    k = rng.standard_normal((batch, t_key, heads, key_dim))
    v = rng.standard_normal((batch, t_key, heads, value_dim))
    mask = None
    if mask_kind == "random":
        mask = rng.random((batch, heads, t_query, t_key)) < 0.6  # some rows fully masked
    elif mask_kind == "per_sample_broadcast":
        mask = rng.random((batch, 1, t_query, t_key)) < 0.6
    elif mask_kind == "causal":
        mask = (np.arange(t_query)[:, None] >= np.arange(t_key)[None, :])[None, None]
    keep = None
    if dropout:
        keep = (rng.random((batch, heads, t_query, t_key)) < 0.7) / 0.7
    return q, k, v, mask, keep


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    t_query=st.integers(1, 5),
    t_key=st.integers(1, 5),
    heads=st.integers(1, 3),
    key_dim=st.integers(1, 4),
    value_dim=st.integers(1, 4),
    mask_kind=st.sampled_from(["none", "random", "per_sample_broadcast", "causal"]),
    dropout=st.booleans(),
    returned=st.booleans(),
    scale=st.sampled_from([None, 0.7]),
    zero_masked=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_attention_fast_equals_spec(
    batch, t_query, t_key, heads, key_dim, value_dim, mask_kind, dropout, returned, scale,
    zero_masked, seed,
):
    rng = np.random.default_rng(seed)
    q, k, v, mask, keep = draw(
        rng, batch, t_query, t_key, heads, key_dim, value_dim, mask_kind, dropout
    )
    o_spec, p_spec = spec.attention_forward(q, k, v, mask, scale, keep, zero_masked)
    o_fast, p_fast = fast.attention_forward(q, k, v, mask, scale, keep, zero_masked)
    np.testing.assert_allclose(o_fast, o_spec, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p_fast, p_spec, rtol=1e-10, atol=1e-12)

    do = rng.standard_normal(o_spec.shape)
    dp = rng.standard_normal(p_spec.shape) if returned else None
    do_before, dp_before = do.copy(), None if dp is None else dp.copy()
    grads_spec = spec.attention_backward(do, q, k, v, p_spec, mask, scale, keep, dp)
    grads_fast = fast.attention_backward(do, q, k, v, p_fast, mask, scale, keep, dp)
    np.testing.assert_array_equal(do, do_before)
    if dp is not None:
        np.testing.assert_array_equal(dp, dp_before)
    for name, ours, theirs in zip(("dq", "dk", "dv"), grads_fast, grads_spec):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    t_query=st.integers(1, 12),
    t_key=st.integers(1, 12),
    heads=st.integers(1, 3),
    key_dim=st.integers(1, 8),
    value_dim=st.integers(1, 8),
    mask_kind=st.sampled_from(["none", "random", "per_sample_broadcast", "causal"]),
    dropout=st.booleans(),
    returned=st.booleans(),
    zero_masked=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_attention_fast_float32_is_the_spec_to_float32_accuracy(
    batch, t_query, t_key, heads, key_dim, value_dim, mask_kind, dropout, returned,
    zero_masked, seed,
):
    """float32 takes its own route (contiguous copies for the products, sums of rows as
    products with a vector of ones): against the float64 spec, float32 results, every input
    left as it came."""
    rng = np.random.default_rng(seed)
    q, k, v, mask, keep = draw(
        rng, batch, t_query, t_key, heads, key_dim, value_dim, mask_kind, dropout
    )
    o_spec, p_spec = spec.attention_forward(q, k, v, mask, None, keep, zero_masked)
    do = rng.standard_normal(o_spec.shape)
    dp = rng.standard_normal(p_spec.shape) if returned else None
    grads_spec = spec.attention_backward(do, q, k, v, p_spec, mask, None, keep, dp)

    def single(x):
        return None if x is None else x.astype(np.float32)

    q32, k32, v32, keep32, do32, dp32 = map(single, (q, k, v, keep, do, dp))
    before = [x.copy() for x in (q32, k32, v32, do32) + (() if dp32 is None else (dp32,))]
    o, p = fast.attention_forward(q32, k32, v32, mask, None, keep32, zero_masked)
    grads = fast.attention_backward(do32, q32, k32, v32, p, mask, None, keep32, dp32)
    after = [q32, k32, v32, do32] + ([] if dp32 is None else [dp32])
    for old, new in zip(before, after):
        np.testing.assert_array_equal(new, old)
    assert o.dtype == p.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(o, o_spec, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p, p_spec, rtol=1e-5, atol=1e-6)
    for name, ours, theirs in zip(("dq", "dk", "dv"), grads, grads_spec):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_overwrites_only_when_asked(dtype):
    s = np.random.default_rng(3).standard_normal((2, 3, 5)).astype(dtype)
    saved = s.copy()
    p = fast.softmax(s)
    np.testing.assert_array_equal(s, saved)
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-6)
    dp = np.random.default_rng(4).standard_normal(s.shape).astype(dtype)
    dp_saved = dp.copy()
    ds = fast.softmax_backward(dp, p)
    np.testing.assert_array_equal(dp, dp_saved)
    assert fast.softmax(s, overwrite=True) is s
    np.testing.assert_array_equal(s, p)
    assert fast.softmax_backward(dp, p, overwrite=True) is dp
    np.testing.assert_array_equal(dp, ds)


def test_float32_softmax_on_the_block_max_is_every_rows_softmax():
    """fast.softmax in float32 subtracts each (Tq, Tk) block's max: a row far below it (30, 90,
    200: e^-90 is no normal float32), a row of masked scores (-10⁹), a NaN and an infinity each
    come out as that row's own softmax (NaN for the last two, as the float64 path gives), and
    every other row of their blocks as the float64 softmax."""
    rng = np.random.default_rng(5)
    s = (rng.standard_normal((3, 2, 6, 7)) * 4).astype(np.float32)
    s[0, 0, 1] -= 30
    s[0, 0, 2] -= 90
    s[0, 1, 3] -= 200
    s[1, 0, 4] = spec.MASKED_SCORE
    s[1, 1, 0, 3] = np.nan
    s[2, 0, 5, 2] = np.inf
    with np.errstate(invalid="ignore"):
        p = fast.softmax(s.copy())
        exact = fast.softmax(s.astype(np.float64))
    assert p.dtype == np.float32
    finite = np.isfinite(s).all(axis=-1)
    np.testing.assert_allclose(p[finite], exact[finite], rtol=3e-6, atol=0)
    np.testing.assert_allclose(p[1, 0, 4], 1 / 7, rtol=1e-6)  # all masked: uniform
    assert np.isnan(p[~finite]).all() and np.isnan(exact[~finite]).all()
    with np.errstate(invalid="ignore"):
        assert fast.softmax(s, overwrite=True) is s


def test_float32_block_softmax_chunk_by_chunk_is_the_whole_one(monkeypatch):
    """fast.BLOCK_CHUNK_BYTES: blocks a chunk at a time (here one, three and all blocks, a
    short last chunk), the input left alone unless overwritten, the same numbers to the last
    bit or so (BLAS sums the rows of a matrix-vector product of another length in another
    order)."""
    s = (np.random.default_rng(6).standard_normal((5, 2, 4, 6)) * 5).astype(np.float32)
    s[3, 1, 2] -= 50  # a row computed again, in the fourth chunk of three blocks
    saved = s.copy()
    results = []
    for blocks in (1, 3, 10):
        monkeypatch.setattr(fast, "BLOCK_CHUNK_BYTES", blocks * 4 * 6 * 4)
        results.append(fast.softmax(s))
        np.testing.assert_array_equal(s, saved)
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], rtol=5e-7, atol=0)
    np.testing.assert_allclose(results[0], fast.softmax(s.astype(np.float64)), rtol=3e-6)
    transposed = np.ascontiguousarray(s.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    np.testing.assert_allclose(fast.softmax(transposed), results[0], rtol=3e-6)  # not C order


def test_masked_score_gets_no_gradient():
    """With key j masked for every query, neither k_j nor v_j receives any gradient, and the
    weights on the key are 0."""
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 3, 2, 4)) for _ in range(3))
    mask = np.ones((1, 1, 3, 3), dtype=bool)
    mask[..., 1] = False
    o, p = fast.attention_forward(q, k, v, mask)
    assert np.all(p[..., 1] == 0)
    dq, dk, dv = fast.attention_backward(rng.standard_normal(o.shape), q, k, v, p, mask)
    assert np.all(dk[:, 1] == 0) and np.all(dv[:, 1] == 0)
    assert np.abs(dq).max() > 0


def test_softmax_jvp_against_jacobian():
    """ds = p ⊙ (dp - rowsum(dp ⊙ p)) equals Jᵀ dp with J = diag(p) - p pᵀ."""
    rng = np.random.default_rng(2)
    s = rng.standard_normal(6)
    p = fast.softmax(s)
    dp = rng.standard_normal(6)
    jacobian = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(fast.softmax_backward(dp, p), jacobian.T @ dp, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    t_query=st.integers(1, 4),
    t_key=st.integers(1, 4),
    features=st.integers(1, 4),
    mode=st.sampled_from(["dot", "concat", "additive"]),
    scaled=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scores_fast_equal_spec(batch, t_query, t_key, features, mode, scaled, seed):
    """The scores of Attention (dot, concat) and AdditiveAttention, forward and backward."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, t_query, features))
    k = rng.standard_normal((batch, t_key, features))
    weight = float(rng.uniform(0.5, 2))
    scale = None
    if scaled:
        scale = rng.standard_normal(features) if mode == "additive" else float(rng.uniform(0.5, 2))
    if mode == "dot":
        s, cache = fast.dot_scores(q, k, scale)
    elif mode == "concat":
        s, cache = fast.concat_scores(q, k, scale, weight)
    else:
        s, cache = fast.additive_scores(q, k, scale)
    np.testing.assert_allclose(s, spec.scores_forward(q, k, mode, scale, weight), rtol=1e-10,
                               atol=1e-12)
    ds = rng.standard_normal(s.shape)
    before = ds.copy()
    dq_s, dk_s, dscale_s, dweight_s = spec.scores_backward(ds, q, k, mode, scale, weight)
    if mode == "dot":
        dq, dk, dscale = fast.dot_scores_backward(ds, q, k, scale, cache)
        dweight = None
    elif mode == "concat":
        dq, dk, dscale, dweight = fast.concat_scores_backward(ds, scale, weight, cache)
    else:
        dq, dk, dscale = fast.additive_scores_backward(ds, scale, cache)
        dweight = None
    np.testing.assert_array_equal(ds, before)
    for ours, theirs in ((dq, dq_s), (dk, dk_s), (dscale, dscale_s), (dweight, dweight_s)):
        if theirs is None:
            assert ours is None
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 49), (2, 4, 7, 17), (5, 1), (0, 6)])
def test_row_sums_are_the_row_sums(shape):
    """float32 rows summed by a product with a cached vector of ones: within the bound of a
    float32 sum of w terms, w·2⁻²⁴·Σ|x| (w the width), against float64; the cached vector is
    never written (a second width and a second call see fresh ones); float64 is NumPy's sum
    exactly (the gradient checks' order)."""
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    for _ in range(2):
        got = fast.row_sums(x)
        assert got.shape == (*shape[:-1], 1) and got.dtype == np.float32
        exact = x.astype(np.float64).sum(axis=-1, keepdims=True)
        bound = shape[-1] * 2.0**-24 * np.abs(x).astype(np.float64).sum(axis=-1, keepdims=True)
        assert np.all(np.abs(got - exact) <= bound)
        assert np.all(fast._ONES[shape[-1]] == 1) and not fast._ONES[shape[-1]].flags.writeable
    wide = x.astype(np.float64)
    np.testing.assert_array_equal(fast.row_sums(wide), np.add.reduce(wide, axis=-1, keepdims=True))
