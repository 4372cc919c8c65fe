"""Shared by the Keras tests: random weights for a Keras model, and reading them back."""

import numpy as np


def randomize_weights(model, rng):
    """Give every layer random weights of a sensible scale (outputs of order 1 all the way down):
    kernels ~ N(0, 1/fan_in), biases and BN shifts ~ U(-0.5, 0.5), BN scales and variances > 0."""
    for layer in model.layers:
        values = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            name = variable.name
            if name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.standard_normal(shape) / np.sqrt(fan_in))
            elif name in ("gamma", "moving_variance"):
                values.append(rng.uniform(0.5, 2.0, shape))
            elif name == "moving_mean":
                values.append(rng.normal(0, 0.5, shape))
            else:
                values.append(rng.uniform(-0.5, 0.5, shape))
        if values:
            layer.set_weights([v.astype(layer.weights[0].dtype) for v in values])
    return model


def keras_weights(model):
    """{layer name: [arrays]} of a Keras model, in Keras's order."""
    return {
        layer.name: [np.asarray(w) for w in layer.get_weights()]
        for layer in model.layers
        if layer.weights
    }


def assert_same_weights_bit_for_bit(expected, actual):
    assert expected.keys() == actual.keys()
    for name in expected:
        assert len(expected[name]) == len(actual[name]), name
        for a, b in zip(expected[name], actual[name]):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), f"{name}: weights differ"
