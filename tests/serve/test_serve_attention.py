"""Where a vit looks, in the draw-a-digit API: each attention layer's heads from the mean query
and the rollout, as handnet.plots.attention computes them, on the patches' grid."""

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from handnet import layers
from handnet.model import Model
from handnet.plots.attention import attention_weights, mean_query_maps, rollout
from handnet.serve import api
from handnet.serve.models import ServedModel
from handnet.zoo import architectures


def a_digit(seed=0):
    """A 28×28 'digit' in [0, 1]: a bright bar on black, with noise (any input will do)."""
    digit = np.random.default_rng(seed).random((28, 28)).astype(np.float32) * 0.2
    digit[6:22, 12:16] = 1
    return digit


@pytest.fixture
def vit(digit_vit):
    return digit_vit


def test_the_answer_holds_every_layers_heads_and_the_rollout(vit):
    digit = a_digit()
    answer = api.predict(ServedModel("vit.npz", Path("vit.npz"), vit), digit)
    x = digit.reshape(1, 28, 28, 1)
    np.testing.assert_allclose(answer["probabilities"], vit.predict(x)[0], atol=1e-6)
    attention = answer["attention"]
    assert attention["grid"] == [4, 4]  # 7×7 patches of a 28×28 digit
    weights = attention_weights(vit, x)
    assert [layer["name"] for layer in attention["layers"]] == [
        "block1_attention", "block2_attention"
    ] == [name for name, _ in weights]
    for layer, (_, p) in zip(attention["layers"], weights):
        heads = np.array(layer["heads"])
        assert heads.shape == (2, 4, 4)
        # The mean of rows that each sum to 1 sums to 1; sent with 6 decimals.
        np.testing.assert_allclose(heads.sum(axis=(1, 2)), 1, atol=16 * 5e-7)
        np.testing.assert_allclose(heads.reshape(2, 16), p[0].mean(axis=1), atol=5e-7)
    rolled = np.array(attention["rollout"])
    assert rolled.shape == (4, 4)
    assert rolled.sum() == pytest.approx(1, abs=16 * 5e-7)
    expected = rollout([p for _, p in weights])[0].mean(axis=0)
    np.testing.assert_allclose(rolled.reshape(16), expected, atol=5e-7)
    # The maps --plots draws: the last layer's heads and the rollout, the same numbers.
    last_heads, rolled_plot, name = mean_query_maps(vit, x)
    assert name == "block2_attention"
    np.testing.assert_allclose(np.array(attention["layers"][-1]["heads"]).reshape(2, 16),
                               last_heads[0], atol=5e-7)
    np.testing.assert_allclose(rolled.reshape(16), rolled_plot[0], atol=5e-7)


def test_the_maps_follow_the_drawing(vit):
    served = ServedModel("vit.npz", Path("vit.npz"), vit)
    first = api.predict(served, a_digit(0))["attention"]["rollout"]
    other = np.zeros((28, 28), np.float32)
    other[4:8, 2:26] = 1  # a horizontal bar instead
    second = api.predict(served, other)["attention"]["rollout"]
    assert np.abs(np.array(first) - np.array(second)).max() > 1e-3


def test_a_model_without_attention_has_no_maps():
    served = ServedModel("resnet", Path("resnet.npz"), architectures.build("resnet", seed=0))
    assert not served.has_attention
    assert "attention" not in api.predict(served, a_digit())


def test_the_server_sends_the_maps(vit_server_url, vit):
    pixels = np.round(a_digit() * 255).astype(int).tolist()
    request = urllib.request.Request(
        vit_server_url + "/api/predict",
        data=json.dumps({"pixels": pixels, "model": "vit.npz"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    x = (np.array(pixels, np.float32) / 255).reshape(1, 28, 28, 1)
    expected = rollout([p for _, p in attention_weights(vit, x)])[0].mean(axis=0)
    np.testing.assert_allclose(np.array(answer["attention"]["rollout"]).reshape(16), expected,
                               atol=5e-7)


def test_attention_over_tokens_that_are_no_grid_of_patches_is_not_drawn():
    """Rows of the image as 28 tokens: no square grid to lay the maps over, so none is sent
    (and the prediction is still answered)."""
    inputs = layers.Input((28, 28, 1))
    rows = layers.Reshape((28, 28))(inputs)
    mixed = layers.MultiHeadAttention(2, 4)(rows, rows)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling1D()(mixed))
    model = Model(inputs, outputs, seed=0)
    served = ServedModel("rows", Path("rows.npz"), model)
    assert served.has_attention
    answer = api.predict(served, a_digit())
    assert "attention" not in answer
    np.testing.assert_allclose(
        answer["probabilities"], model.predict(a_digit().reshape(1, 28, 28, 1))[0], atol=1e-6
    )
