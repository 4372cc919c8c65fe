"""The noise layers, ActivityRegularization and TimeDistributed against Keras 3 on the torch
backend.

Noise layers: at inference exactly Keras's identity, and built from Keras's config (their
training draws are NumPy's, not Keras's: tests/layers/test_catalogue_noise.py checks their
statistics). ActivityRegularization: in a small model, one training step's loss (cross-entropy
+ Keras's (l1·Σ|x| + l2·Σx²) / N, as Keras adds it to model.losses) and every weight's gradient
equal torch autograd's through the Keras model, and one SGD step lands on the same weights.
TimeDistributed: Dense and Conv2D inside, weights under the inner layer's names, y, ∂L/∂x and
∂L/∂θ within 1e-5 (catalogue_parity.py)."""

import numpy as np
import pytest
from catalogue_parity import TOLERANCE, check_parity

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

NOISE = [
    ("SpatialDropout1D", {"rate": 0.4, "seed": 3}, (5, 3)),
    ("SpatialDropout2D", {"rate": 0.3, "seed": 1}, (3, 4, 2)),
    ("GaussianNoise", {"stddev": 0.5, "seed": 2}, (6,)),
    ("GaussianDropout", {"rate": 0.3}, (2, 3)),
    ("AlphaDropout", {"rate": 0.2, "seed": 4}, (6,)),
    ("AlphaDropout", {"rate": 0.5, "noise_shape": (None, 1, 3)}, (4, 3)),
    ("ActivityRegularization", {"l1": 0.01, "l2": 0.02}, (2, 3)),
]


@pytest.mark.parametrize("kind, args, shape", NOISE, ids=[f"{c[0]}-{c[1]}" for c in NOISE])
def test_inference_and_config_match_keras(keras, torch, kind, args, shape):
    x = np.random.default_rng(0).standard_normal((4, *shape)).astype("float32")
    keras_layer = getattr(keras.layers, kind)(**args)
    expected = np.asarray(keras_layer(x, training=False))
    config = keras_layer.get_config()
    keys = set(args) | {"name"}
    layer = getattr(hn.layers, kind).from_config({k: config[k] for k in keys if k in config})
    y = layer(x)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(y, x)
    mine = layer.get_config()
    for key in set(args):
        theirs = config[key]
        assert mine[key] == (list(theirs) if isinstance(theirs, tuple) else theirs), key


def regularized_models(keras, l1, l2):
    """The same model in Keras and handnet, Keras's weights copied across."""
    keras_model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(5, activation="tanh"),
        keras.layers.ActivityRegularization(l1=l1, l2=l2),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model = hn.Sequential([
        hn.layers.Input((4,)),
        hn.layers.Dense(5, activation="tanh"),
        hn.layers.ActivityRegularization(l1=l1, l2=l2),
        hn.layers.Dense(3, activation="softmax"),
    ], seed=0)
    model.build()
    theirs = [np.asarray(v.value.detach()) for v in keras_model.weights]
    for target, value in zip([model.layers[0], model.layers[2]], [theirs[:2], theirs[2:]]):
        target.params["kernel"][...] = value[0]
        target.params["bias"][...] = value[1]
    return keras_model, model


@pytest.mark.parametrize("l1, l2", [(0.05, 0.0), (0.0, 0.1), (0.03, 0.2)])
def test_activity_regularization_step_matches_keras(keras, torch, l1, l2):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype("float32")
    labels = rng.integers(0, 3, 6)
    keras_model, model = regularized_models(keras, l1, l2)

    probabilities = keras_model(torch.tensor(x), training=True)
    assert len(keras_model.losses) == 1
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()(torch.tensor(labels),
                                                                 probabilities)
    keras_loss = cross_entropy + keras_model.losses[0]
    keras_loss.backward()

    model.compile(hn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    loss, _, _ = model.compute_gradients(x, labels)
    assert loss == pytest.approx(float(keras_loss.detach()), rel=1e-6)
    ours = [model.layers[0].grads["kernel"], model.layers[0].grads["bias"],
            model.layers[2].grads["kernel"], model.layers[2].grads["bias"]]
    for variable, gradient in zip(keras_model.weights, ours):
        error = relative_error(gradient, variable.value.grad.numpy())
        assert error < TOLERANCE, f"∂L/∂{variable.path}: {error:.1e}"

    # One SGD step on each side: the same weights after it.
    keras_model, model = regularized_models(keras, l1, l2)
    keras_model.compile(keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    keras_step_loss = keras_model.train_on_batch(x, labels)
    model.compile(hn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    step_loss, _ = model.train_on_batch(x, labels)
    assert step_loss == pytest.approx(float(keras_step_loss), rel=1e-5)
    after = [np.asarray(v.value.detach()) for v in keras_model.weights]
    mine = [model.layers[0].params["kernel"], model.layers[0].params["bias"],
            model.layers[2].params["kernel"], model.layers[2].params["bias"]]
    for value, expected in zip(mine, after):
        assert relative_error(value, expected) < TOLERANCE


@pytest.mark.parametrize("inner, shape", [
    (lambda k: k.Dense(3, activation="tanh", kernel_initializer="zeros"), (4, 5)),
    (lambda k: k.Dense(2, kernel_initializer="zeros"), (3, 2, 4)),
    (lambda k: k.Conv2D(2, 3, padding="same", activation="relu", kernel_initializer="zeros"),
     (3, 5, 4, 2)),
    (lambda k: k.Conv2D(3, 2, strides=2, kernel_initializer="zeros"), (2, 4, 6, 1)),
], ids=["dense", "dense-3d", "conv2d-same", "conv2d-strided"])
def test_time_distributed_matches_keras(keras, torch, inner, shape):
    layer = hn.layers.TimeDistributed(inner(hn.layers))
    keras_args = {"layer": inner(keras.layers)}
    check_parity(keras, torch, "TimeDistributed", {"layer": None}, shape, layer=layer,
                 keras_args=keras_args)


def test_time_distributed_from_keras_config(keras):
    config = keras.layers.TimeDistributed(keras.layers.Dense(4, activation="relu")).get_config()
    inner = config["layer"]
    spec = {"class_name": inner["class_name"],
            "config": {k: inner["config"][k] for k in ("name", "units", "activation", "use_bias")}}
    layer = hn.layers.TimeDistributed.from_config({"name": config["name"], "layer": spec})
    layer.build((3, 2))
    assert list(layer.weights()) == ["kernel", "bias"]
    assert layer.output_shape == (3, 4)
