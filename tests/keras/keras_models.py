"""Shared by the Keras tests: random weights for a Keras model, and reading them back."""

import numpy as np

#: The activation arguments the random models draw from.
ACTIVATIONS = [None, "linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"]


def uneven_same_padding(shape, window, strides):
    """Whether "same" padding is uneven (one more cell after than before) along an axis of the
    spatial ``shape``."""
    totals = [max((-(-n // s) - 1) * s + k - n, 0) for n, k, s in zip(shape, window, strides)]
    return any(total % 2 for total in totals)


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


def keras_chain(keras, layers, input_shape, functional=False):
    """The layers as a keras.Sequential, or (``functional``) the same chain as a keras.Model."""
    if not functional:
        return keras.Sequential([keras.Input(input_shape), *layers])
    inputs = x = keras.Input(input_shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def assert_files_round_trip(keras, original, x, folder, tolerance):
    """Saved as .keras and as legacy .h5, ``original`` imports into handnet layer by layer within
    ``tolerance`` of Keras (compare_keras) with Keras's predictions, and each import exports back
    to a .keras that Keras opens (safe mode) with the same predictions and the same weights, bit
    for bit. Returns the two handnet models."""
    import handnet as hn
    from handnet.keras_io.compare import compare_keras

    expected = np.asarray(original.predict(x, verbose=0))
    imported = []
    for name in ("model.keras", "model.h5"):
        original.save(folder / name)
        report = compare_keras(folder / name, x, samples=len(x), tolerance=tolerance)
        assert report.passed, f"{name}\n{report}"
        model = hn.from_keras(folder / name)
        np.testing.assert_allclose(model.predict(x), expected, rtol=0, atol=tolerance)
        model.to_keras(folder / "back.keras")
        reloaded = keras.models.load_model(folder / "back.keras")  # safe mode
        np.testing.assert_allclose(
            np.asarray(reloaded.predict(x, verbose=0)), expected, rtol=0, atol=tolerance
        )
        assert_same_weights_bit_for_bit(keras_weights(original), keras_weights(reloaded))
        imported.append(model)
    return imported
