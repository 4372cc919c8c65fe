"""Normalization against Keras 3 on the torch backend: adapt gives the same weights (mean,
variance, count, in Keras's order and shapes), and y and ∂L/∂x agree within 1e-5 in float32,
adapted or with given statistics (broadcast as Keras broadcasts them), inverted or not, with
variances under the floor. Keras's adapt on an iterable of batches needs TensorFlow (it
checks for tf.data first), so that path is checked against the whole-array statistics in
tests/layers/test_catalogue_preprocessing.py."""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5


def compare(keras, torch, keras_layer, layer, x, rng):
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = keras_layer(x_torch)
    upstream = rng.standard_normal(tuple(y_torch.shape)).astype(x.dtype)
    (y_torch * torch.tensor(upstream)).sum().backward()
    y = layer(x.copy())
    dx = layer.backward(upstream)
    assert y.dtype == x.dtype and dx.dtype == x.dtype
    assert relative_error(y, y_torch.detach().numpy()) < TOLERANCE
    assert relative_error(dx, x_torch.grad.numpy()) < TOLERANCE


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize(
    "axis, shape",
    [(-1, (5,)), (-1, (3, 4)), (1, (3, 4)), ((1, 2), (3, 4)), (None, (3, 4)), ((1, 3), (2, 3, 4)),
     ([-1, -2], (2, 3, 4))],
    ids=str,
)
def test_adapted_matches_keras(keras, torch, axis, shape, invert):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((20, *shape)) * rng.uniform(0.5, 3, shape) + 2).astype("float32")
    keras_layer = keras.layers.Normalization(axis=axis, invert=invert)
    keras_layer.adapt(data)
    config = keras_layer.get_config()
    layer = hn.layers.Normalization(axis=config["axis"], invert=config["invert"])
    layer.adapt(data)
    theirs = {v.name: np.asarray(v.value.detach()) for v in keras_layer.weights}
    assert list(layer.weights()) == list(theirs) == ["mean", "variance", "count"]
    for name, value in theirs.items():
        assert layer.weights()[name].shape == value.shape
        assert relative_error(layer.weights()[name], value) < 1e-6, name
    assert layer.params == {} and keras_layer.trainable_weights == []
    assert layer.count_params() == keras_layer.count_params()
    compare(keras, torch, keras_layer, layer, rng.standard_normal((4, *shape)).astype("float32"),
            rng)


@pytest.mark.parametrize(
    "axis, mean, variance, shape",
    [
        (-1, 2.0, 3.0, (3, 4)),  # numbers broadcast to every kept position
        (-1, [1.0, -2.0, 0.5, 3.0], [0.5, 2.0, 1.0, 4.0], (3, 4)),
        ((1, 2), [1.0, -2.0, 0.5, 3.0], [0.5, 2.0, 1.0, 4.0], (3, 4)),  # lined up from the right
        ((1, 2), [[1.0], [2.0], [3.0]], [[1.0], [4.0], [9.0]], (3, 4)),
        (None, 1.5, 2.5, (2, 3)),
        (-1, [0.0, 1.0], [1e-16, 0.0], (2,)),  # std under 1e-7: held at 1e-7
    ],
    ids=str,
)
@pytest.mark.parametrize("invert", [False, True])
def test_given_statistics_match_keras(keras, torch, axis, mean, variance, shape, invert):
    rng = np.random.default_rng(1)
    keras_layer = keras.layers.Normalization(
        axis=axis, mean=mean, variance=variance, invert=invert
    )
    keras_layer.build((None, *shape))
    config = keras_layer.get_config()
    layer = hn.layers.Normalization.from_config(
        {k: config[k] for k in ("axis", "mean", "variance", "invert")}
    )
    assert layer.weights() == {} and keras_layer.weights == []
    compare(keras, torch, keras_layer, layer, rng.standard_normal((4, *shape)).astype("float32"),
            rng)
    assert layer.get_config()["mean"] == config["mean"]
