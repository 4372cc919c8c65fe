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
"""

import numpy as np

from ..ops.attention_spec import MASKED_SCORE

#: Keras's Attention and AdditiveAttention subtract this from a masked score (MultiHeadAttention
#: replaces the score with MASKED_SCORE instead).
MASK_OFFSET = 1e9


def softmax(s):
    """Softmax over the last axis, the row max subtracted so that no exponent is positive."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_backward(dp, p):
    """ds = p ⊙ (dp - Σ_j dp_j p_j): the Jacobian-vector product of the softmax, row by row."""
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))


def masked_scores(s, mask, mode="replace"):
    """The scores the softmax sees: "replace" puts -10⁹ where mask is False (MultiHeadAttention,
    so the masked score gets no gradient), "subtract" takes 10⁹ off (Attention's rule)."""
    if mask is None:
        return s
    if mode == "replace":
        return np.where(mask, s, s.dtype.type(MASKED_SCORE))
    return np.where(mask, s, s - s.dtype.type(MASK_OFFSET))


def heads_first(x):
    """(N, T, H, D) -> (N, H, T, D)."""
    return x.transpose(0, 2, 1, 3)


def attention_forward(q, k, v, mask=None, scale=None, keep=None, zero_masked=True):
    """(o (N, Tq, H, V), p (N, H, Tq, Tk)): see the module docstring and the spec."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    qs = heads_first(q) * q.dtype.type(scale)
    s = qs @ heads_first(k).transpose(0, 1, 3, 2)
    p = softmax(masked_scores(s, mask))
    if mask is not None and zero_masked:
        p = np.where(mask, p, p.dtype.type(0))
    weights = p if keep is None else p * keep
    o = weights @ heads_first(v)
    return heads_first(o), p


def attention_backward(do, q, k, v, p, mask=None, scale=None, keep=None, dp_returned=None):
    """(dq, dk, dv) of the spec's shapes, given do (N, Tq, H, V) and the forward's p."""
    scale = q.dtype.type(1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    do_h, v_h = heads_first(do), heads_first(v)
    weights = p if keep is None else p * keep
    dv = weights.transpose(0, 1, 3, 2) @ do_h
    dp = do_h @ v_h.transpose(0, 1, 3, 2)
    if keep is not None:
        dp *= keep  # dp is a new array: nothing upstream changes
    if dp_returned is not None:
        dp += dp_returned
    ds = softmax_backward(dp, p)
    if mask is not None:
        ds = np.where(mask, ds, ds.dtype.type(0))
    dq = (ds @ heads_first(k)) * scale
    dk = ds.transpose(0, 1, 3, 2) @ (heads_first(q) * scale)
    return heads_first(dq), heads_first(dk), heads_first(dv)
