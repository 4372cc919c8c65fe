"""Attention as batched matrix products: what the layers run, tested against the loops of
``handnet.ops.attention_spec`` (tests/layers/test_attention_spec_vs_fast.py).

Layout as in the spec: q (N, Tq, H, K), k (N, Tk, H, K), v (N, Tk, H, V). The heads move
next to the batch axis, (N, H, T, ·), so that each (sample, head) pair is one matrix product:

    S = (c·Q) Kᵀ        (N, H, Tq, Tk)     Keras scales the query before the product
    P = softmax(S')     S' = S where the mask allows, -10⁹ elsewhere; then, with
                        zero_masked, P = 0 where masked (a fully masked row is all zeros,
                        not uniform: see the spec for which Keras does when)
    O = (P ⊙ R) V       (N, H, Tq, V), back to (N, Tq, H, V)

Backward (the spec's per-row formulas, a whole block at a time):

    dV = (P ⊙ R)ᵀ dO           dP = (dO Vᵀ) ⊙ R  (+ ∂L/∂P returned)
    dS = P ⊙ (dP - rowsum(dP ⊙ P)),  0 where masked
    dQ = c · dS K              dK = dSᵀ (c·Q)

At the end, the scores of Attention ("dot", "concat") and AdditiveAttention, whole blocks of
(query, key) pairs at once, each with its backward.
"""

import numpy as np

from ..ops.attention_spec import MASKED_SCORE

#: Keras's Attention and AdditiveAttention subtract this from a masked score (MultiHeadAttention
#: replaces the score with MASKED_SCORE instead).
MASK_OFFSET = 1e9


_ONES = {}  # width -> a read-only float32 vector of ones, for row_sums


def row_sums(x):
    """Σ over the last axis, keepdims. float32 as one matrix-vector product with a vector of
    ones (BLAS adds a row of 49 six times faster than NumPy's reduction, which pays a setup
    per row); other dtypes by NumPy's reduction, so that float64 (the gradient checks) adds in
    the order it always has."""
    if x.dtype != np.float32 or x.ndim < 2:
        return np.add.reduce(x, axis=-1, keepdims=True)
    width = x.shape[-1]
    ones = _ONES.get(width)
    if ones is None:  # made once per width: a fresh vector cost a tenth of a batch-1 softmax
        ones = np.ones(width, np.float32)
        ones.flags.writeable = False
        _ONES[width] = ones
    rows = np.ascontiguousarray(x).reshape(-1, width)
    return (rows @ ones).reshape(*x.shape[:-1], 1)


#: A query row whose exp(s - M) sums below this (M: the max of the row's (Tq, Tk) block) has
#: all its scores more than 20 below M and is normalized on its own max instead.
BLOCK_FLOOR = np.float32(np.exp(-20))
#: The block softmax works through its blocks this many bytes of scores at a time (at least
#: one block), in a work array of that size: the scores stay as they came until a chunk's
#: result is written (for the rows computed again), the extra memory stays small, and a chunk
#: stays in a core's L2 (a vit part, 2.4 MB of scores: 732–762 µs in chunks of 1 MiB, 746–861
#: of 4 MiB, one thread, CPU time).
BLOCK_CHUNK_BYTES = 1 << 20


def softmax(s, overwrite=False):
    """Softmax over the last axis, a max subtracted so that no exponent is positive.
    ``overwrite=True`` leaves the result in s's own memory: for an s the caller has just made.

    float32 scores (N, …, Tq, Tk) subtract the max M of each (Tq, Tk) block, not of each row:
    softmax is the same for any number subtracted from a row, and NumPy's max along rows of
    49 pays a setup per row (a vit part of 64 images, (64, 4, 49, 49): 537 µs for the rows'
    maxima, 47 for the blocks', of a softmax of 1,290 µs; 732–762 µs in all now). A row whose
    sum is under BLOCK_FLOOR (its scores all lie more than 20 below M, as e^(max - M) ≤ Σ_j
    e^(s_j - M)), or that holds a NaN or an infinity, is computed again on its own max. Every
    other row's largest term is at least e^-20 / Tk, so that its terms stay normal float32
    numbers for probabilities down to about e^-63 (Tk = 49), and subtracting M rather than the
    row's max rounds its exponents by at most ulp(20 + their distance to the row's max): on
    random scores of the vit's size (σ = 3), 1.3e-6 relative against float64 at most, 8.4e-7
    with each row's max. (In the vit after 200 steps on MNIST no row lay more than 13.4 below
    its block's max.) float64 (the gradient checks) subtracts each row's max, as it always
    has, and so do scores not in C order."""
    if (s.dtype != np.float32 or s.ndim < 3 or s.shape[-2] < 2 or s.size == 0
            or not s.flags.c_contiguous):  # fmt: skip
        e = np.subtract(s, s.max(axis=-1, keepdims=True), out=s if overwrite else None)
        np.exp(e, out=e)
        e /= row_sums(e)
        return e
    blocks = s.reshape(-1, *s.shape[-2:])  # views: s is in C order
    out = s if overwrite else np.empty_like(s)
    results = out.reshape(blocks.shape)
    step = max(1, BLOCK_CHUNK_BYTES // blocks[0].nbytes)
    work = np.empty((min(step, len(blocks)), *blocks.shape[1:]), np.float32)
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        e = np.subtract(chunk, chunk.reshape(len(chunk), -1).max(axis=-1)[:, None, None],
                        out=work[: len(chunk)])  # fmt: skip
        np.exp(e, out=e)
        sums = row_sums(e)
        low = ~(sums >= BLOCK_FLOOR)  # NaN too
        if low.any():
            rows = low[..., 0]
            e[rows] = softmax(chunk[rows], overwrite=True)  # (rows, Tk): each on its own max
            sums[rows] = 1
        np.divide(e, sums, out=results[start : start + step])
    return out


def softmax_backward(dp, p, overwrite=False):
    """ds = p ⊙ (dp - Σ_j dp_j p_j): the Jacobian-vector product of the softmax, row by row.
    ``overwrite=True`` computes in dp's own memory: for a dp the caller has just made."""
    ds = np.subtract(dp, row_sums(dp * p), out=dp if overwrite else None)
    ds *= p
    return ds


def masked_scores(s, mask, mode="replace"):
    """The scores the softmax sees: "replace" puts -10⁹ where mask is False (MultiHeadAttention,
    so the masked score gets no gradient), "subtract" takes 10⁹ off (Attention's rule)."""
    if mask is None:
        return s
    if mode == "replace":
        return np.where(mask, s, s.dtype.type(MASKED_SCORE))
    return np.where(mask, s, s - s.dtype.type(MASK_OFFSET))


def heads_first(x):
    """(N, T, H, D) -> (N, H, T, D), a view."""
    return x.transpose(0, 2, 1, 3)


def _packed(x, axes):
    """x.transpose(axes), copied into its own C-ordered memory when x is float32: a batched
    product reads each (sample, head) matrix faster from contiguous rows than from a view that
    strides across the heads (twice as fast for vit's 49 × 16 blocks), and the copy costs less
    than it saves. float64 (the gradient checks) keeps the view: OpenBLAS adds in another order
    for another layout, and float64 results stay bit for bit what they were."""
    view = x.transpose(axes)
    return np.ascontiguousarray(view) if x.dtype == np.float32 else view


def _scaled_heads_first(x, scale):
    """heads_first(x) · scale, a new array (C-ordered when float32, as ``_packed``)."""
    return np.multiply(heads_first(x), scale, order="C" if x.dtype == np.float32 else "K")


def attention_forward(q, k, v, mask=None, scale=None, keep=None, zero_masked=True):
    """(o (N, Tq, H, V), p (N, H, Tq, Tk)): see the module docstring and the spec."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    qs = _scaled_heads_first(q, q.dtype.type(scale))  # (N, H, Tq, K)
    s = qs @ _packed(k, (0, 2, 3, 1))  # · Kᵀ (N, H, K, Tk)
    p = softmax(masked_scores(s, mask), overwrite=True)  # s, or a masked copy: ours either way
    if mask is not None and zero_masked:
        p = np.where(mask, p, p.dtype.type(0))
    weights = p if keep is None else p * keep
    o = weights @ _packed(v, (0, 2, 1, 3))
    return heads_first(o), p


def attention_backward(do, q, k, v, p, mask=None, scale=None, keep=None, dp_returned=None):
    """(dq, dk, dv) of the spec's shapes, given do (N, Tq, H, V) and the forward's p."""
    scale = q.dtype.type(1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    do_h = _packed(do, (0, 2, 1, 3))  # read by two products
    weights = p if keep is None else p * keep
    dv = weights.transpose(0, 1, 3, 2) @ do_h
    dp = do_h @ _packed(v, (0, 2, 3, 1))  # · Vᵀ
    if keep is not None:
        dp *= keep  # dp is a new array: nothing upstream changes
    if dp_returned is not None:
        dp += dp_returned
    ds = softmax_backward(dp, p, overwrite=True)  # in dp's memory
    if mask is not None:
        ds = np.where(mask, ds, ds.dtype.type(0))
    dq = ds @ _packed(k, (0, 2, 1, 3))
    dq *= scale
    dk = ds.transpose(0, 1, 3, 2) @ _scaled_heads_first(q, scale)
    return heads_first(dq), heads_first(dk), heads_first(dv)


# -- the scores of Attention (Luong) and AdditiveAttention (Bahdanau): (N, Tq, D), (N, Tk, D) ----
def dot_scores(q, k, scale=None):
    """(S = s · Q Kᵀ (N, Tq, Tk), Q Kᵀ for the backward pass); s = None means 1."""
    raw = q @ k.transpose(0, 2, 1)
    return (raw if scale is None else raw * scale), raw


def dot_scores_backward(ds, q, k, scale, raw):
    """(dq, dk, dscale or None):  dQ = s·dS K,  dK = s·dSᵀ Q,  ds = Σ dS ⊙ Q Kᵀ."""
    d_scale = None
    if scale is not None:
        d_scale = (ds * raw).sum()
        ds = ds * scale
    return ds @ k, ds.transpose(0, 2, 1) @ q, d_scale


def concat_scores(q, k, scale=None, weight=1.0):
    """(S_ij = w · Σ_a tanh(s · (q_ia + k_ja)), (q_i + k_j, t)): Attention(score_mode="concat")."""
    pairs = q[:, :, None, :] + k[:, None, :, :]  # (N, Tq, Tk, D): every (query, key) pair
    t = np.tanh(pairs if scale is None else scale * pairs)
    return weight * t.sum(axis=-1), (pairs, t)


def concat_scores_backward(ds, scale, weight, cache):
    """(dq, dk, dscale or None, dweight), with g = w·dS·(1 - t²) = ∂L/∂(s(q_i + k_j)):
    dq_i = s Σ_j g,  dk_j = s Σ_i g,  ds = Σ g ⊙ (q_i + k_j),  dw = Σ dS ⊙ Σ_a t."""
    pairs, t = cache
    d_weight = (ds * t.sum(axis=-1)).sum()
    g = (weight * ds)[..., None] * (1 - t * t)
    d_scale = None
    if scale is not None:
        d_scale = (g * pairs).sum()
        g = g * scale
    return g.sum(axis=2), g.sum(axis=1), d_scale, d_weight


def additive_scores(q, k, scale=None):
    """(S_ij = Σ_a scale_a · tanh(q_ia + k_ja), t): AdditiveAttention; scale (D,) or None."""
    t = np.tanh(q[:, :, None, :] + k[:, None, :, :])
    return (t if scale is None else scale * t).sum(axis=-1), t


def additive_scores_backward(ds, scale, t):
    """(dq, dk, dscale or None), g = dS · scale ⊙ (1 - t²):  dq_i = Σ_j g,  dk_j = Σ_i g,
    dscale = Σ_{n,i,j} dS_ij t_ij."""
    d_scale = None
    if scale is not None:
        d_scale = np.einsum("nij,nija->a", ds, t)
        g = ds[..., None] * (scale * (1 - t * t))
    else:
        g = ds[..., None] * (1 - t * t)
    return g.sum(axis=2), g.sum(axis=1), d_scale
