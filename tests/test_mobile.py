"""The ``mobile`` architecture (depthwise-separable blocks): its layers, its small copy's
gradients, its PyTorch and Keras twins (benchmarks/twins.py), and ``handnet explain``."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from handnet import cli, layers
from handnet.gradcheck import gradcheck
from handnet.zoo import architectures

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import twins  # noqa: E402


def test_the_blocks_are_depthwise_then_pointwise_with_two_strides():
    model = architectures.build("mobile", seed=0)
    assert model.input_shape == (28, 28, 1) and model.output_shape == (10,)
    stem = model.layers[0]
    assert isinstance(stem, layers.Conv2D) and stem.strides == (2, 2)
    assert stem.output_shape == (14, 14, 32)
    depthwise = [layer for layer in model.layers if isinstance(layer, layers.DepthwiseConv2D)]
    assert [layer.strides for layer in depthwise] == [(1, 1), (2, 2), (1, 1)]
    assert [layer.output_shape for layer in depthwise] == [(14, 14, 32), (7, 7, 64), (7, 7, 128)]
    # each depthwise is followed by BN, ReLU, a 1×1 Conv2D, BN, ReLU
    for layer in depthwise:
        index = model.layers.index(layer)
        following = model.layers[index + 1 : index + 6]
        kinds = [type(step).__name__ for step in following]
        assert kinds == [
            "BatchNormalization", "Activation", "Conv2D", "BatchNormalization", "Activation"
        ]
        assert following[2].kernel_size == (1, 1)
    assert isinstance(model.layers[-2], layers.GlobalAveragePooling2D)
    # stem 288 + depthwise 9·(32+64+128) + pointwise 32·64+64·128+128·128 + Dense 128·10+10,
    # + BN γ, β, moving mean and variance over 32+32+64+64+128+128+128 channels (counted as
    # Keras's "Total params" counts them)
    assert model.count_params() == 288 + 2016 + 26624 + 1290 + 4 * 576 == 32_522


def test_the_small_copy_has_every_layer_type_and_its_gradients_check():
    small = architectures.build("mobile", seed=0, small=True)
    full = architectures.build("mobile")
    assert {type(layer) for layer in small.layers} == {type(layer) for layer in full.layers}
    assert any(layer.strides == (2, 2) for layer in small.layers if hasattr(layer, "strides"))
    small.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *small.input_shape))
    y = rng.integers(0, small.output_shape[-1], size=4)
    report = gradcheck(small, x, y, training=True)
    assert report.passed, report


def with_random_statistics(model, rng):
    """BN moving statistics away from 0 and 1, so that a twin that dropped them would differ."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            for name in ("gamma", "beta", "moving_mean"):
                layer.weights()[name][...] = rng.normal(0.5, 0.3, layer.weights()[name].shape)
            variance = layer.weights()["moving_variance"]
            variance[...] = rng.uniform(0.5, 2.0, variance.shape)
    return model


@pytest.mark.torch
@pytest.mark.parametrize("small", [False, True])
def test_the_pytorch_twin_computes_the_same_function(torch, small):
    rng = np.random.default_rng(1)
    model = with_random_statistics(architectures.build("mobile", seed=0, small=small), rng)
    net = twins.torch_twin(model)
    # stride 2 on an even side pads one cell, after (bottom/right), as Keras does
    assert any(isinstance(module, torch.nn.ZeroPad2d) for module in net)
    twins.copy_weights_to_torch(model, net)
    trained = sum(value.size for layer in model.layers for value in layer.params.values())
    assert sum(p.numel() for p in net.parameters()) == trained  # BN statistics are buffers
    x = rng.random((5, *model.input_shape), dtype=np.float32)
    net.eval()
    with torch.no_grad():
        probabilities = net(twins.torch_input(x)).softmax(-1).numpy()
    expected = model.predict(x)
    assert probabilities.shape == expected.shape
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)


def test_same_padding_puts_the_odd_cell_after():
    config = {"kernel_size": [3, 3], "strides": [2, 2], "dilation_rate": [1, 1]}
    assert twins.same_padding_2d(config, (28, 28, 1)) == (0, 1, 0, 1)  # out 14: 27 + 3 - 28
    assert twins.same_padding_2d(config, (7, 7, 1)) == (1, 1, 1, 1)  # out 4: 6 + 3 - 7
    config["strides"] = [1, 1]
    assert twins.same_padding_2d(config, (14, 14, 1)) == (1, 1, 1, 1)


@pytest.mark.keras
def test_the_keras_twin_computes_the_same_function(keras):
    rng = np.random.default_rng(2)
    model = with_random_statistics(architectures.build("mobile", seed=0), rng)
    twin = twins.keras_twin(model)
    assert twin.count_params() == sum(
        np.prod(w.shape) for layer in model.layers for w in layer.weights().values()
    )
    twins.copy_weights_to_keras(model, twin)
    x = rng.random((5, *model.input_shape), dtype=np.float32)
    probabilities = np.asarray(twin.predict(x, verbose=0))
    np.testing.assert_allclose(probabilities, model.predict(x), rtol=1e-4, atol=1e-6)


def test_explain_walks_the_depthwise_blocks(capsys, tmp_path):
    assert cli.main(["explain", "--model", "mobile", "--json", str(tmp_path / "e.json")]) == 0
    text = capsys.readouterr().out
    assert "depthwise 3×3, 1 per channel, stride 2×2, same padding" in text
    assert "depthwise 3×3, 1 per channel, stride 1×1, same padding" in text
    assert "(N, 14, 14, 64) → (N, 7, 7, 64)" in text
    assert "32,522 weights in all" in text
    table = json.loads((tmp_path / "e.json").read_text())["layers"]
    assert [row["class_name"] for row in table][:4] == [
        "Conv2D", "BatchNormalization", "Activation", "DepthwiseConv2D"
    ]
