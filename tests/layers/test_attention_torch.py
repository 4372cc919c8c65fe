"""MultiHeadAttention and Attention against PyTorch, in float64, the weights copied across by
the layout table of docs/attention.md: torch.nn.functional.scaled_dot_product_attention (our
projections, a boolean mask) and torch.nn.MultiheadAttention (in_proj_weight, in_proj_bias,
out_proj), y, the returned weights and the gradients."""

import numpy as np
import pytest

from handnet.layers import Attention, MultiHeadAttention

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def test_mha_against_torch_sdpa():
    """Q, K, V projected with our kernels, then torch's scaled_dot_product_attention with the
    same boolean mask (True = attend), then our output kernel: the same y."""
    rng = np.random.default_rng(7)
    layer = MultiHeadAttention(2, 3, name="mha")
    q, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 5))
    mask = rng.random((2, 4, 6)) < 0.7
    mask[..., 0] = True  # no row fully masked (torch's -inf would give NaN there)
    layer.build([(4, 5), (6, 5)], rng=rng)
    layer.cast(np.float64)
    for value in layer.params.values():
        value[...] = rng.standard_normal(value.shape)
    y = layer(q, v, attention_mask=mask)
    p = layer.params
    q_heads = np.einsum("ntd,dhk->nhtk", q, p["query/kernel"]) + p["query/bias"][None, :, None]
    k_heads = np.einsum("ntd,dhk->nhtk", v, p["key/kernel"]) + p["key/bias"][None, :, None]
    v_heads = np.einsum("ntd,dhk->nhtk", v, p["value/kernel"]) + p["value/bias"][None, :, None]
    heads_out = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q_heads), torch.tensor(k_heads), torch.tensor(v_heads),
        attn_mask=torch.tensor(mask[:, None]),
    ).numpy()
    expected = np.einsum("nhtv,hvd->ntd", heads_out, p["attention_output/kernel"])
    expected += p["attention_output/bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def to_torch_multihead(layer):
    """torch.nn.MultiheadAttention with ``layer``'s weights (the layout of docs/attention.md):
    in_proj_weight rows [W_q; W_k; W_v], each (H·K, D) = kernel (D, H, K) reshaped to (D, H·K)
    and transposed; in_proj_bias [b_q; b_k; b_v] flattened; out_proj.weight = W_o (H, V, D)
    reshaped to (H·V, D) and transposed; out_proj.bias = b_o. torch scales by 1/√K as Keras,
    with K = embed_dim / num_heads, so key_dim = value_dim = D / H."""
    p = layer.params
    heads, key_dim = layer.num_heads, layer.key_dim
    embed = heads * key_dim
    module = torch.nn.MultiheadAttention(embed, heads, batch_first=True, dtype=torch.float64)

    def rows(name):
        return p[f"{name}/kernel"].reshape(-1, embed).T

    with torch.no_grad():
        module.in_proj_weight.copy_(torch.tensor(np.concatenate([rows(n) for n in
                                                                  ("query", "key", "value")])))
        module.in_proj_bias.copy_(torch.tensor(np.concatenate(
            [p[f"{n}/bias"].reshape(-1) for n in ("query", "key", "value")])))
        module.out_proj.weight.copy_(torch.tensor(p["attention_output/kernel"].reshape(embed,
                                                                                        -1).T))
        module.out_proj.bias.copy_(torch.tensor(p["attention_output/bias"]))
    return module


@pytest.mark.parametrize("causal", [False, True])
def test_mha_against_torch_multihead_attention(causal):
    rng = np.random.default_rng(8)
    heads, key_dim, t = 2, 4, 5
    embed = heads * key_dim
    layer = MultiHeadAttention(heads, key_dim)
    x = rng.standard_normal((3, t, embed))
    layer.build([(t, embed), (t, embed)], rng=rng)
    layer.cast(np.float64)
    for value in layer.params.values():
        value[...] = rng.standard_normal(value.shape) * 0.5
    y, scores = layer(x, x, use_causal_mask=causal, return_attention_scores=True)
    module = to_torch_multihead(layer)
    xt = torch.tensor(x, requires_grad=True)
    # torch's attn_mask is True where attention is NOT allowed: the complement of Keras's.
    blocked = None if not causal else torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    yt, weights = module(xt, xt, xt, attn_mask=blocked, average_attn_weights=False)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scores, weights.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(y.shape)
    (yt * torch.tensor(upstream)).sum().backward()
    layer.needs_input_gradient = True
    dq, dv = layer.backward([upstream, np.zeros_like(scores)])
    np.testing.assert_allclose(dq + dv, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        layer.grads["query/kernel"].reshape(embed, -1).T,
        module.in_proj_weight.grad[:embed].numpy(), rtol=1e-9, atol=1e-12,
    )


def test_attention_against_torch_sdpa():
    """Attention(dot) without scale is softmax(Q Kᵀ) V: torch's sdpa with scale=1."""
    rng = np.random.default_rng(11)
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    y = Attention()([q, v])
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(v), torch.tensor(v), scale=1.0
    ).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-10)
