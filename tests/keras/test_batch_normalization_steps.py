"""BatchNormalization over several training steps against Keras (torch backend), in float32, at
1e-5: outputs, ∂L/∂x, ∂L/∂γ, ∂L/∂β and the moving statistics after every step, for the layer
alone on dense and image inputs; then a tiny network trained five steps, whose weights (moving
statistics included) must agree, and which must come back from a .keras export unchanged.

The measure is the gradcheck's (handnet.gradcheck.relative_error): the worst entry's difference
relative to the largest entry. Keras computes the batch variance as E[x²] - E[x]² in float32,
handnet as E[(x - μ)²]: inputs with a mean of the order of their spread keep the two within
float32's reach of each other.
"""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error
from handnet.keras_io.layer_map import layer_from_keras

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
STEPS = 5
LEARNING_RATE = 0.1


def assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    error = relative_error(ours, theirs)
    assert error < TOLERANCE, f"{what}: relative error {error:.1e}"


@pytest.mark.parametrize(
    "arguments, shape",
    [
        (dict(momentum=0.8), (6,)),
        (dict(momentum=0.9), (5, 4, 3)),
        (dict(momentum=0.5, epsilon=0.01, center=False), (4, 4, 2)),
        (dict(scale=False), (7,)),
    ],
    ids=["dense", "image", "image-no-center", "dense-no-scale"],
)
def test_the_layer_alone_over_several_steps(arguments, shape):
    rng = np.random.default_rng(0)
    keras_layer = keras.layers.BatchNormalization(**arguments, dtype="float32")
    keras_layer.build((None, *shape))
    layer = layer_from_keras("BatchNormalization", keras_layer.get_config())
    layer.build(shape)
    for target, value in zip(layer.weights().values(), keras_layer.get_weights(), strict=True):
        target[...] = value

    for step in range(STEPS):
        x = (rng.standard_normal((8, *shape)) * 1.5 + 0.5).astype(np.float32)
        upstream = rng.standard_normal((8, *shape)).astype(np.float32)
        x_torch = torch.tensor(x, requires_grad=True)
        y_torch = keras_layer(x_torch, training=True)
        (y_torch * torch.tensor(upstream)).sum().backward()

        y = layer.forward(x, training=True)
        layer.needs_input_gradient = True
        dx = layer.backward(upstream)
        assert_close(y, y_torch, f"step {step}: y")
        assert_close(dx, x_torch.grad, f"step {step}: ∂L/∂x")
        for variable in keras_layer.trainable_weights:
            name = variable.name
            assert_close(layer.grads[name], variable.value.grad, f"step {step}: ∂L/∂{name}")
        for variable in keras_layer.non_trainable_weights:  # the moving statistics
            name = variable.name
            assert_close(layer.state[name], variable.value, f"step {step}: {name}")

        # A plain gradient step on γ and β in both, so that the next step starts elsewhere.
        for variable in keras_layer.trainable_weights:
            variable.assign(variable.value.detach() - LEARNING_RATE * variable.value.grad)
            variable.value.grad = None
            layer.params[variable.name] -= np.float32(LEARNING_RATE) * layer.grads[variable.name]

    x = rng.standard_normal((3, *shape)).astype(np.float32)
    assert_close(layer.forward(x), keras_layer(torch.tensor(x), training=False), "inference")


def test_a_tiny_network_trained_five_steps_and_exported(tmp_path):
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, use_bias=False),
            keras.layers.BatchNormalization(momentum=0.8),
            keras.layers.Activation("tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    keras_model.save(tmp_path / "initial.keras")
    model = hn.from_keras(tmp_path / "initial.keras")
    keras_model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    model.compile(hn.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")

    rng = np.random.default_rng(0)
    for step in range(STEPS):
        x = (rng.standard_normal((16, 6)) + 0.5).astype(np.float32)
        y = rng.integers(0, 3, 16)
        keras_loss = float(np.asarray(keras_model.train_on_batch(x, y)))
        loss, _ = model.train_on_batch(x, y)
        assert loss == pytest.approx(keras_loss, rel=TOLERANCE), f"step {step}"
    for ours, theirs, variable in zip(
        model.get_weights(), keras_model.get_weights(), keras_model.weights, strict=True
    ):
        assert_close(ours, theirs, variable.path)

    model.to_keras(tmp_path / "trained.keras")
    reloaded = keras.models.load_model(tmp_path / "trained.keras")
    x = rng.standard_normal((5, 6)).astype(np.float32)
    assert_close(model.predict(x), reloaded.predict(x, verbose=0), "exported model's predictions")
    for ours, theirs in zip(model.get_weights(), reloaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
