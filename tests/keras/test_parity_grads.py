"""Gradients against Keras on the torch backend: for every supported layer (built from the Keras
layer's own config, through the importer's table), ∂L/∂x and ∂L/∂(each weight) of
L = Σ y · g (+ the layer's regularization penalty), g random, equal torch autograd's through the
Keras layer within 1e-5 relative (the gradcheck measure: worst entry / largest entry)."""

import numpy as np
import pytest

from handnet.gradcheck import relative_error
from handnet.keras_io.layer_map import layer_from_keras

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
IMAGE = (6, 5, 3)

# (Keras class, arguments, per-sample input shape, training)
TRAINABLE = [
    *[
        ("Dense", dict(units=4, activation=a), (5,), False)
        for a in ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"]
    ],
    ("Dense", dict(units=3, use_bias=False), (5,), False),
    ("Dense", dict(units=3, activation="tanh"), (2, 5), False),
    (
        "Dense",
        dict(
            units=3,
            kernel_regularizer="l2",
            bias_regularizer={"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}},
        ),
        (5,),
        False,
    ),
    ("Conv2D", dict(filters=4, kernel_size=3), IMAGE, False),
    (
        "Conv2D",
        dict(filters=2, kernel_size=(2, 3), strides=2, padding="same", activation="relu"),
        IMAGE,
        False,
    ),
    (
        "Conv2D",
        dict(filters=3, kernel_size=2, dilation_rate=2, activation="tanh", use_bias=False),
        IMAGE,
        False,
    ),
    (
        "Conv2D",
        dict(filters=2, kernel_size=3, strides=(1, 2), padding="same", kernel_regularizer="l1"),
        IMAGE,
        False,
    ),
    # 3×3, stride 1, 8+ channels, an even output, in training: Winograd's F(2×2, 3×3)
    ("Conv2D", dict(filters=4, kernel_size=3, activation="relu"), (10, 10, 8), True),
    ("Conv2D", dict(filters=3, kernel_size=3, padding="same", use_bias=False), (6, 8, 9), True),
    ("BatchNormalization", dict(), IMAGE, False),
    ("BatchNormalization", dict(), IMAGE, True),
    ("BatchNormalization", dict(epsilon=0.1, center=False), (4,), True),
    ("BatchNormalization", dict(scale=False, momentum=0.9), (4,), True),
]
WEIGHTLESS = [
    ("MaxPooling2D", dict(), IMAGE, False),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), IMAGE, False),
    ("AveragePooling2D", dict(pool_size=2), IMAGE, False),
    # "same" with even padding on both axes: Keras's torch backend averages replicated edge
    # cells when the padding is uneven, unlike TensorFlow, JAX and handnet (docs/keras.md).
    ("AveragePooling2D", dict(pool_size=(3, 3), strides=1, padding="same"), IMAGE, False),
    ("AveragePooling2D", dict(pool_size=2, padding="same"), (6, 4, 3), False),
    ("GlobalAveragePooling2D", dict(), IMAGE, False),
    ("GlobalMaxPooling2D", dict(keepdims=True), IMAGE, False),
    ("ZeroPadding2D", dict(padding=((1, 0), (2, 1))), IMAGE, False),
    ("Flatten", dict(), IMAGE, False),
    ("Reshape", dict(target_shape=(15, 6)), IMAGE, False),
    ("ReLU", dict(), IMAGE, False),
    ("ReLU", dict(max_value=0.8, negative_slope=0.2, threshold=0.1), IMAGE, False),
    ("LeakyReLU", dict(), IMAGE, False),
    ("Softmax", dict(), IMAGE, False),
    ("Softmax", dict(axis=1), IMAGE, False),
    ("Rescaling", dict(scale=[0.5, -2.0, 3.0], offset=0.25), IMAGE, False),
    *[
        ("Activation", dict(activation=a), (5,), False)
        for a in ["relu", "sigmoid", "tanh", "softmax", "leaky_relu"]
    ],
    ("Dropout", dict(rate=0.5), (5,), False),
]


def case_id(case):
    kind, args, shape, training = case
    options = "-".join(f"{k}={v}" for k, v in args.items())
    return f"{kind}-{options}-{shape}{'-training' if training else ''}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", TRAINABLE + WEIGHTLESS, ids=case_id)
def test_gradients_match_keras_autograd(case, dtype):
    kind, args, shape, training = case
    rng = np.random.default_rng(0)
    keras_layer = getattr(keras.layers, kind)(**args, dtype=dtype)
    keras_layer.build((None, *shape))
    weights = [_random_weight(variable, rng, dtype) for variable in keras_layer.weights]
    keras_layer.set_weights(weights)

    layer = layer_from_keras(kind, keras_layer.get_config())
    layer.build(shape)
    for target, value in zip(layer.weights().values(), weights):
        target[...] = value
    x = rng.standard_normal((4, *shape)).astype(dtype)

    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = keras_layer(x_torch, training=training)
    upstream = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
    loss = (y_torch * torch.tensor(upstream)).sum() + sum(
        keras_layer.losses, torch.tensor(0.0, dtype=y_torch.dtype)
    )
    loss.backward()

    y = layer.forward(x, training=training)
    layer.needs_input_gradient = True
    dx = layer.backward(upstream)
    assert relative_error(y, y_torch.detach().numpy()) < TOLERANCE
    assert relative_error(dx, x_torch.grad.numpy()) < TOLERANCE, "∂L/∂x"
    for variable in keras_layer.trainable_weights:
        error = relative_error(layer.grads[variable.name], variable.value.grad.numpy())
        assert error < TOLERANCE, f"∂L/∂{variable.name}: {error:.1e}"
    assert sorted(layer.grads) == sorted(v.name for v in keras_layer.trainable_weights)
    for variable in keras_layer.non_trainable_weights:  # BatchNormalization's moving statistics
        np.testing.assert_allclose(
            layer.state[variable.name], np.asarray(variable.value.detach()), rtol=1e-6
        )


def _random_weight(variable, rng, dtype):
    shape = tuple(variable.shape)
    if variable.name in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
