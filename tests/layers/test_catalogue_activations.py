"""PReLU and ELU as layers: hand cases, gradient checks in float64 (input and alpha), configs,
clear errors. Keras is the oracle in tests/keras/test_catalogue_activations_keras.py."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError
from handnet.layers import ELU, PReLU


def slopes(low, high):
    return lambda shape, rng, dtype: rng.uniform(low, high, shape).astype(dtype)


@pytest.mark.parametrize(
    "shared_axes, shape, alpha_shape",
    [(None, (4,), (4,)), (None, (2, 3), (2, 3)), ([1], (2, 3), (1, 3)), (2, (2, 3), (2, 1)),
     ([1, 2], (2, 3, 2), (1, 1, 2)), ([1, 2, 3], (2, 2, 2), (1, 1, 1))],
    ids=str,
)
def test_prelu_gradcheck(shared_axes, shape, alpha_shape):
    layer = PReLU(slopes(-0.5, 0.8), shared_axes=shared_axes)
    report = hn.gradcheck(layer, input_shape=shape, batch_size=4)
    assert report.passed, f"\n{report}"
    assert {row.quantity: row.shape for row in report.rows}["alpha"] == alpha_shape


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_elu_gradcheck(alpha):
    report = hn.gradcheck(ELU(alpha), input_shape=(3, 4))
    assert report.passed, f"\n{report}"


def test_prelu_by_hand():
    layer = PReLU(shared_axes=[1], dtype="float64")
    x = np.array([[[-2.0, 3.0], [1.0, -4.0]]])  # (1, 2, 2): α (1, 2), shared along axis 1
    layer.build((2, 2))
    assert np.all(layer.params["alpha"] == 0)  # Keras's default: a plain ReLU to begin with
    layer.params["alpha"][...] = [[0.5, 0.25]]
    np.testing.assert_array_equal(layer(x), [[[-1.0, 3.0], [1.0, -1.0]]])
    dx = layer.backward(np.ones((1, 2, 2)))
    np.testing.assert_array_equal(dx, [[[0.5, 1.0], [1.0, 0.25]]])
    np.testing.assert_array_equal(layer.grads["alpha"], [[-2.0, -4.0]])  # Σ dy · min(x, 0)
    layer(np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2, 2))), 0)  # torch's slope at 0


def test_elu_by_hand():
    layer = ELU(alpha=2.0, dtype="float64")
    y = layer(np.array([[1.5, 0.0, -1.0]]))
    np.testing.assert_allclose(y, [[1.5, 0.0, 2 * (np.exp(-1) - 1)]])
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[1.0, 2.0, 2 * np.exp(-1)]])
    assert np.isfinite(layer(np.array([[-1e4, 1e4, 0.0]]))).all()


def test_dy_untouched():
    rng = np.random.default_rng(0)
    for layer in (PReLU(slopes(0.1, 0.2)), ELU()):
        layer(rng.standard_normal((2, 3)).astype("float32"))
        dy = rng.standard_normal((2, 3)).astype("float32")
        before = dy.copy()
        layer.backward(dy)
        np.testing.assert_array_equal(dy, before)


def test_configs_and_explain():
    for layer in (PReLU(shared_axes=[1, 2]), PReLU(shared_axes=3), ELU(0.5)):
        config = json.loads(json.dumps(layer.get_config()))
        assert type(layer).from_config(config).get_config() == layer.get_config()
        headline, formula = layer.explain()
        assert formula.startswith("y =")
    assert PReLU(shared_axes=3).get_config()["shared_axes"] == [3]  # Keras's list form


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PReLU(shared_axes=0), "shared_axes must be None, an int or a list of ints >= 1"),
        (lambda: PReLU(shared_axes=[1, "2"]), "shared_axes must be"),
        (lambda: PReLU(shared_axes=[3]).build((2, 2)), "must name axes 1…2"),
        (lambda: PReLU(alpha_initializer="nope").build((2,)), "unknown initializer"),
        (lambda: ELU(alpha="one"), "alpha must be a finite number"),
        (lambda: ELU(alpha=float("nan")), "alpha must be a finite number"),
    ],
)
def test_clear_errors(make, message):
    with pytest.raises(HandnetError, match=message):
        make()
