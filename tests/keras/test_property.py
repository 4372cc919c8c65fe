"""Property: any Keras model built from the supported layers and options, with random weights,
saved as .keras and as .h5, imports into handnet with every layer's output within 1e-5 of
Keras's; exported back, Keras loads it (safe mode) with the same predictions and every weight
bit for bit."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras_models import (
    ACTIVATIONS,
    assert_same_weights_bit_for_bit,
    keras_chain,
    keras_weights,
    randomize_weights,
    uneven_same_padding,
)

import handnet as hn
from handnet.keras_io.compare import compare_keras

keras = pytest.importorskip("keras")
pytestmark = [
    pytest.mark.keras,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:keras"),
    # Random models softmax over axes of size 1 at times: pointless, but both must agree on it.
    pytest.mark.filterwarnings("ignore:You are using a softmax over axis:UserWarning"),
]

TOLERANCE = 1e-5


def _out_length(size, window, stride, dilation, padding):
    extent = dilation * (window - 1) + 1
    if padding == "valid":
        return None if size < extent else (size - extent) // stride + 1
    return -(-size // stride)


def _windowed(shape, window, strides, dilation, padding, channels):
    rows = _out_length(shape[0], window[0], strides[0], dilation, padding)
    cols = _out_length(shape[1], window[1], strides[1], dilation, padding)
    return None if rows is None or cols is None else (rows, cols, channels)


@st.composite
def image_layer(draw, shape):
    """(class name, Keras arguments, output shape) of one layer that takes images ``shape``,
    or None when the drawn window does not fit."""
    kind = draw(
        st.sampled_from(
            [
                "Conv2D",
                "Conv2D",
                "MaxPooling2D",
                "AveragePooling2D",
                "ZeroPadding2D",
                "BatchNormalization",
                "ReLU",
                "LeakyReLU",
                "Rescaling",
                "Activation",
                "Dropout",
                "Softmax",
            ]
        )
    )
    if kind == "Conv2D":
        strides = draw(st.integers(1, 2))
        dilation = 1 if strides > 1 else draw(st.integers(1, 2))
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        padding = draw(st.sampled_from(["valid", "same"]))
        if _windowed(shape, kernel, (strides, strides), dilation, padding, 1) is None:
            padding = "same"  # "valid" does not fit: "same" always does
        filters = draw(st.integers(1, 3))
        args = dict(
            filters=filters,
            kernel_size=kernel,
            strides=strides,
            padding=padding,
            dilation_rate=dilation,
            activation=draw(st.sampled_from(ACTIVATIONS)),
            use_bias=draw(st.booleans()),
            kernel_regularizer=draw(st.sampled_from([None, "l2"])),
        )
        return kind, args, _windowed(shape, kernel, (strides, strides), dilation, padding, filters)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        strides = draw(st.sampled_from([None, 1, 2]))
        steps = (strides, strides) if strides else pool
        padding = draw(st.sampled_from(["valid", "same"]))
        if _windowed(shape, pool, steps, 1, padding, 1) is None:
            padding = "same"
        uneven = uneven_same_padding(shape, pool, steps)
        if kind == "AveragePooling2D" and padding == "same" and uneven:
            # Keras's torch backend averages replicated edge cells there (docs/keras.md).
            padding = "valid"
        return (
            kind,
            dict(pool_size=pool, strides=strides, padding=padding),
            _windowed(shape, pool, steps, 1, padding, shape[2]),
        )
    if kind == "ZeroPadding2D":
        pads = (
            (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
            (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
        )
        return (
            kind,
            dict(padding=pads),
            (shape[0] + sum(pads[0]), shape[1] + sum(pads[1]), shape[2]),
        )
    return (*elementwise_layer(draw, kind, shape, axes=[-1, 1, 2, 3]), shape)


def elementwise_layer(draw, kind, shape, axes):
    """(class name, Keras arguments) of a layer whose output has its input's shape."""
    if kind == "BatchNormalization":
        return kind, dict(
            center=draw(st.booleans()),
            scale=draw(st.booleans()),
            epsilon=draw(st.sampled_from([1e-3, 1e-5, 0.1])),
            momentum=draw(st.sampled_from([0.99, 0.9])),
        )
    if kind == "ReLU":
        return kind, dict(
            max_value=draw(st.sampled_from([None, 0.5, 6.0])),
            negative_slope=draw(st.sampled_from([0.0, 0.1])),
            threshold=draw(st.sampled_from([0.0, 0.3])),
        )
    if kind == "LeakyReLU":
        return kind, dict(negative_slope=draw(st.sampled_from([0.3, 0.01, 0.5])))
    if kind == "Rescaling":
        per_channel = draw(st.booleans())
        scale = (
            [draw(st.floats(-2, 2)) for _ in range(shape[-1])]
            if per_channel
            else draw(st.floats(-2, 2))
        )
        return kind, dict(scale=scale, offset=draw(st.floats(-1, 1)))
    if kind == "Activation":
        return kind, dict(activation=draw(st.sampled_from(ACTIVATIONS[1:])))
    if kind == "Dropout":
        return kind, dict(rate=draw(st.sampled_from([0.0, 0.25, 0.5])))
    if kind == "Softmax":
        return kind, dict(axis=draw(st.sampled_from(axes)))
    raise AssertionError(kind)


@st.composite
def architectures(draw):
    """(input shape, [(class name, Keras arguments), …]) of a small random model."""
    specs = []
    if draw(st.booleans()):
        shape = (draw(st.integers(3, 8)), draw(st.integers(3, 8)), draw(st.integers(1, 3)))
        input_shape = shape
        for _ in range(draw(st.integers(1, 4))):
            kind, args, out = draw(image_layer(shape))
            if out is not None:
                specs.append((kind, args))
                shape = out
        head = draw(st.sampled_from(["Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"]))
        keepdims = head != "Flatten" and draw(st.booleans())
        specs.append((head, {"keepdims": True} if keepdims else {}))
        if keepdims:
            specs.append(("Flatten", {}))
        shape = (int(np.prod(shape)),) if head == "Flatten" else (shape[2],)
    else:
        shape = input_shape = (draw(st.integers(1, 6)),)
    for _ in range(draw(st.integers(0 if specs else 1, 3))):
        kind = draw(
            st.sampled_from(
                [
                    "Dense",
                    "Dense",
                    "Reshape",
                    "BatchNormalization",
                    "ReLU",
                    "LeakyReLU",
                    "Rescaling",
                    "Activation",
                    "Dropout",
                    "Softmax",
                ]
            )
        )
        if kind == "Dense":
            units = draw(st.integers(1, 6))
            specs.append(
                (
                    kind,
                    dict(
                        units=units,
                        activation=draw(st.sampled_from(ACTIVATIONS)),
                        use_bias=draw(st.booleans()),
                    ),
                )
            )
            shape = (units,)
        elif kind == "Reshape":
            specs += [(kind, dict(target_shape=(1, shape[0]))), ("Flatten", {})]
        else:
            specs.append(elementwise_layer(draw, kind, shape, axes=[-1, 1]))
    return input_shape, specs, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


def _clear_winners(predictions):
    top_two = np.sort(predictions.reshape(len(predictions), -1), axis=-1)[:, -2:]
    return predictions.shape[-1] == 1 or bool((top_two[:, 1] - top_two[:, 0] > 1e-4).all())


def build_keras_model(input_shape, specs, functional):
    layers = [getattr(keras.layers, kind)(**args) for kind, args in specs]
    return keras_chain(keras, layers, input_shape, functional)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_models_import_compare_and_export(architecture):
    input_shape, specs, functional, seed = architecture
    rng = np.random.default_rng(seed)
    original = randomize_weights(build_keras_model(input_shape, specs, functional), rng)
    x = rng.standard_normal((5, *input_shape)).astype(np.float32)
    expected = np.asarray(original.predict(x, verbose=0))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name in ("model.keras", "model.h5"):
            original.save(folder / name)
            report = compare_keras(folder / name, x, samples=len(x), tolerance=TOLERANCE)
            assert report.passed, f"{name} {specs}\n{report}"
            assert len(report.rows) == len(specs)
            if _clear_winners(
                expected
            ):  # a tie (softmax over an axis, then averaged) has no argmax to agree on
                assert report.argmax_agreement == 1.0

            model = hn.from_keras(folder / name)
            np.testing.assert_allclose(model.predict(x), expected, rtol=0, atol=TOLERANCE)
            model.to_keras(folder / "back.keras")
            reloaded = keras.models.load_model(folder / "back.keras")  # safe_mode is on by default
            np.testing.assert_allclose(
                np.asarray(reloaded.predict(x, verbose=0)), model.predict(x), rtol=0, atol=TOLERANCE
            )
            assert_same_weights_bit_for_bit(keras_weights(original), keras_weights(reloaded))
