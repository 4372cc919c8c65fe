"""Attention written as loops: the specification that ``handnet.fast.attention`` must match.

Multi-head scaled dot-product attention, in the layout of Keras's projections: the heads sit
beside the features, q (N, Tq, H, K), k (N, Tk, H, K), v (N, Tk, H, V). For each sample n,
head h and query i, over the keys j:

    s_j = c · Σ_a q[n, i, h, a] · k[n, j, h, a]              c = 1/√K (the scale)
    s'_j = s_j if m[n, h, i, j] else -10⁹                    masked scores are replaced
    p_j = e^{s'_j - max s'} / Σ_l e^{s'_l - max s'}           softmax over the keys
    p_j = 0 where masked, if zero_masked                     (Keras zeroes them after)
    o[n, i, h, :] = Σ_j p_j · r_j · v[n, j, h, :]            r = dropout's keep/(1 - rate)

Zeroing after the softmax changes nothing in a row with a key left (e^{-10⁹} is already 0),
but a row whose every key is masked gets weights 0, not the uniform 1/Tk the -10⁹ alone would
give. Keras 3 does both: its explicit path (scores returned, or dropout) zeroes (its Softmax's
where(mask, p, 0)), its fused path (torch's scaled_dot_product_attention) leaves the row
uniform; ``zero_masked`` chooses, and MultiHeadAttention follows the path Keras would take.

The mask m is boolean, True = the query may look at that key (Keras's convention); r is 1
without dropout, else 0 or 1/(1 - rate) per weight. The weights returned are p (before the
dropout), as Keras's ``return_attention_scores`` gives them.

Backward, given do = ∂L/∂o (and dP = ∂L/∂p from a returned p, if any), per (n, h, i):

    dp_j = r_j · Σ_b do[n, i, h, b] · v[n, j, h, b]  (+ dP_j)
    ds_j = p_j · (dp_j - Σ_l p_l · dp_l)            the softmax's Jacobian-vector product
    ds_j = 0 where the score was masked              (s'_j does not depend on s_j there)

(A fully masked row's scores are all the constant -10⁹ and get ds = 0, whether p is 0 or
uniform; in any other row the masked p_j are 0 either way, so the plain softmax JVP holds.)
    dq[n, i, h, :] += c · Σ_j ds_j · k[n, j, h, :]
    dk[n, j, h, :] += c · ds_j · q[n, i, h, :]
    dv[n, j, h, :] += p_j · r_j · do[n, i, h, :]

The softmax JVP: ∂p_j/∂s_l = p_j (δ_jl - p_l), so ds_l = Σ_j dp_j p_j (δ_jl - p_l)
= p_l (dp_l - Σ_j p_j dp_j). Far too slow to train with; tests check the fast version
against this one. At the end: the scores of Attention and AdditiveAttention, pair by pair.
"""

import numpy as np

#: What a masked score becomes: Keras's MultiHeadAttention (its Softmax) writes -1e9 there.
MASKED_SCORE = -1e9


def attention_forward(q, k, v, mask=None, scale=None, keep=None, zero_masked=True):
    """(o (N, Tq, H, V), p (N, H, Tq, Tk)) from q (N, Tq, H, K), k (N, Tk, H, K), v (N, Tk, H, V),
    mask (N or 1, H or 1, Tq, Tk) boolean or None, keep (N, H, Tq, Tk) or None."""
    n_samples, t_query, heads, key_dim = q.shape
    t_key, value_dim = k.shape[1], v.shape[3]
    scale = 1 / np.sqrt(key_dim) if scale is None else scale
    dtype = np.result_type(q, k, v)
    o = np.zeros((n_samples, t_query, heads, value_dim), dtype=dtype)
    p = np.zeros((n_samples, heads, t_query, t_key), dtype=dtype)
    for n in range(n_samples):
        for h in range(heads):
            for i in range(t_query):
                s = np.array([scale * (q[n, i, h] @ k[n, j, h]) for j in range(t_key)])
                if mask is not None:
                    allowed = _row(mask, n, h, i)
                    s = np.where(allowed, s, MASKED_SCORE)
                e = np.exp(s - s.max())
                p[n, h, i] = e / e.sum()
                if mask is not None and zero_masked:
                    p[n, h, i] = np.where(allowed, p[n, h, i], 0.0)
                r = np.ones(t_key) if keep is None else keep[n, h, i]
                for j in range(t_key):
                    o[n, i, h] += p[n, h, i, j] * r[j] * v[n, j, h]
    return o, p


def attention_backward(do, q, k, v, p, mask=None, scale=None, keep=None, dp_returned=None):
    """(dq, dk, dv) from do (N, Tq, H, V), the forward pass's inputs and its weights p."""
    n_samples, t_query, heads, key_dim = q.shape
    t_key = k.shape[1]
    scale = 1 / np.sqrt(key_dim) if scale is None else scale
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for n in range(n_samples):
        for h in range(heads):
            for i in range(t_query):
                r = np.ones(t_key) if keep is None else keep[n, h, i]
                row = p[n, h, i]
                dp = np.array([r[j] * (do[n, i, h] @ v[n, j, h]) for j in range(t_key)])
                if dp_returned is not None:
                    dp = dp + dp_returned[n, h, i]
                ds = row * (dp - (row * dp).sum())
                if mask is not None:
                    ds = np.where(_row(mask, n, h, i), ds, 0.0)
                for j in range(t_key):
                    dq[n, i, h] += scale * ds[j] * k[n, j, h]
                    dk[n, j, h] += scale * ds[j] * q[n, i, h]
                    dv[n, j, h] += row[j] * r[j] * do[n, i, h]
    return dq, dk, dv


def _row(mask, n, h, i):
    """Row (n, h, i) of a mask that may be broadcast over samples, heads or queries."""
    return mask[min(n, mask.shape[0] - 1), min(h, mask.shape[1] - 1), min(i, mask.shape[2] - 1)]


# -- the scores of Attention (Luong) and AdditiveAttention (Bahdanau) -------------------------
# q (N, Tq, D), k (N, Tk, D) -> S (N, Tq, Tk), one pair (i, j) at a time:
#     dot       S_ij = s · Σ_a q_ia k_ja
#     concat    S_ij = w · Σ_a tanh(s · (q_ia + k_ja))
#     additive  S_ij = Σ_a c_a · tanh(q_ia + k_ja)          (c: AdditiveAttention's scale)
# and their backward, given dS: each (i, j) term hands dS_ij times its partial derivatives to
# q_i, k_j and the scalars (s, w) or the vector c.


def scores_forward(q, k, mode, scale=None, weight=1.0):
    """S (N, Tq, Tk) for mode "dot", "concat" or "additive" (scale None means 1)."""
    n_samples, t_query, features = q.shape
    t_key = k.shape[1]
    s = np.zeros((n_samples, t_query, t_key), dtype=np.result_type(q, k))
    for n in range(n_samples):
        for i in range(t_query):
            for j in range(t_key):
                if mode == "dot":
                    s[n, i, j] = (1.0 if scale is None else scale) * (q[n, i] @ k[n, j])
                elif mode == "concat":
                    inner = q[n, i] + k[n, j]
                    s[n, i, j] = weight * np.tanh(inner if scale is None else scale * inner).sum()
                else:
                    c = np.ones(features) if scale is None else scale
                    s[n, i, j] = (c * np.tanh(q[n, i] + k[n, j])).sum()
    return s


def scores_backward(ds, q, k, mode, scale=None, weight=1.0):
    """(dq, dk, dscale or None, dweight or None) from ds = ∂L/∂S."""
    n_samples, t_query, features = q.shape
    t_key = k.shape[1]
    dq, dk = np.zeros_like(q), np.zeros_like(k)
    d_scale = None if scale is None else np.zeros_like(np.asarray(scale, dtype=q.dtype))
    d_weight = 0.0 if mode == "concat" else None
    for n in range(n_samples):
        for i in range(t_query):
            for j in range(t_key):
                g = ds[n, i, j]
                if mode == "dot":
                    s = 1.0 if scale is None else scale
                    dq[n, i] += g * s * k[n, j]
                    dk[n, j] += g * s * q[n, i]
                    if scale is not None:
                        d_scale += g * (q[n, i] @ k[n, j])
                elif mode == "concat":
                    s = 1.0 if scale is None else scale
                    inner = q[n, i] + k[n, j]
                    t = np.tanh(s * inner)
                    d_weight += g * t.sum()
                    local = g * weight * (1 - t * t)  # ∂/∂(s · inner)
                    dq[n, i] += s * local
                    dk[n, j] += s * local
                    if scale is not None:
                        d_scale += (local * inner).sum()
                else:
                    c = np.ones(features) if scale is None else scale
                    t = np.tanh(q[n, i] + k[n, j])
                    dq[n, i] += g * c * (1 - t * t)
                    dk[n, j] += g * c * (1 - t * t)
                    if scale is not None:
                        d_scale += g * t
    return dq, dk, d_scale, d_weight
