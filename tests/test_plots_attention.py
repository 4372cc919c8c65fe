"""Attention pictures (handnet.plots.attention): the weights the layers use, the rollout's
algebra, and attention.png for a vit."""

import numpy as np
import pytest

from handnet import plots
from handnet.plots.attention import mean_query_maps
from handnet.zoo import architectures


@pytest.fixture(scope="module")
def vit_and_images():
    model = architectures.build("vit", seed=0)
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    return model, x


def test_the_weights_are_those_the_layers_mix_with(vit_and_images):
    model, x = vit_and_images
    weights = plots.attention_weights(model, x)
    assert [name for name, _ in weights] == [f"block{b}_attention" for b in range(1, 5)]
    for _, p in weights:
        assert p.shape == (3, 4, 49, 49)
        np.testing.assert_allclose(p.sum(axis=-1), 1, atol=1e-5)
    # The first block's weights, recomputed by hand from its query and key projections.
    layer = model.get_layer("block1_attention")
    ln1 = next(out for node, out in model.trace(x) if node.layer.name == "block1_ln1")
    q = np.einsum("ntd,dhk->nthk", ln1, layer.params["query/kernel"]) + layer.params["query/bias"]
    k = np.einsum("ntd,dhk->nthk", ln1, layer.params["key/kernel"]) + layer.params["key/bias"]
    s = np.einsum("nqhk,nthk->nhqt", q, k) / np.sqrt(16)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(weights[0][1], p, atol=1e-5)


def test_rollout_is_the_product_of_the_half_identity_mixtures():
    rng = np.random.default_rng(1)
    layers_p = [rng.dirichlet(np.ones(5), size=(2, 3, 5)) for _ in range(3)]  # (N, heads, T, T)
    mixed = [0.5 * p.mean(axis=1) + 0.5 * np.eye(5) for p in layers_p]  # rows already sum to 1
    expected = mixed[2] @ mixed[1] @ mixed[0]
    np.testing.assert_allclose(plots.rollout(layers_p), expected, atol=1e-12)
    np.testing.assert_allclose(plots.rollout(layers_p).sum(axis=-1), 1, atol=1e-12)
    uniform = [np.full((1, 2, 4, 4), 0.25)]  # attention that mixes evenly keeps half on itself
    np.testing.assert_allclose(plots.rollout(uniform)[0], 0.5 * np.eye(4) + 0.125)


def test_attention_png_is_drawn_for_a_vit(vit_and_images, tmp_path):
    model, x = vit_and_images
    heads, rolled, name = mean_query_maps(model, x)
    assert heads.shape == (3, 4, 49) and rolled.shape == (3, 49) and name == "block4_attention"
    plots.plot_attention(model, x, tmp_path / "attention.png", labels=[1, 2, 3])
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_without_attention_is_refused():
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        mean_query_maps(architectures.build("cnn", seed=0), np.zeros((1, 28, 28, 1), np.float32))
