"""The vectorized attention (handnet.fast.attention) against the loop specification
(handnet.ops.attention_spec): random sizes, heads, masks (with fully masked rows), dropout
keep factors and a returned-weights gradient, forward and backward, in float64; dy is left
untouched."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from handnet.fast import attention as fast
from handnet.ops import attention_spec as spec


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
