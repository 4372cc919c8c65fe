"""TimeDistributed: the inner layer applied at every step with one set of weights — against a
loop over the steps, gradient checks in float64 with Dense, Conv2D and a regularizer inside,
weights under the inner layer's names, nested configs, replicas (split batches), fit's seed
reaching a Dropout inside, a model that trains, saves and loads, and clear errors. Keras is the
oracle in tests/keras/test_catalogue_noise_keras.py."""

import numpy as np
import pytest

import handnet as hn
from handnet import regularizers
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import Conv2D, Dense, Dropout, Flatten, Input, TimeDistributed

CASES = [
    (lambda: Dense(3, activation="tanh", kernel_regularizer=regularizers.L1L2(l2=0.01)), (4, 2)),
    (lambda: Dense(2), (3, 2, 4)),
    (lambda: Conv2D(2, 3, padding="same", activation="tanh"), (2, 4, 4, 2)),
    (lambda: Conv2D(3, 2, strides=2), (3, 4, 5, 1)),
    (lambda: Flatten(), (3, 2, 2)),
]


@pytest.mark.parametrize("make, shape", CASES, ids=["dense-l2", "dense-3d", "conv", "conv-s2",
                                                    "flatten"])
def test_backward_matches_central_differences(make, shape):
    report = hn.gradcheck(TimeDistributed(make()), input_shape=shape, batch_size=2)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("make, shape", CASES[:4], ids=["dense-l2", "dense-3d", "conv", "conv-s2"])
def test_equals_a_loop_over_the_steps(make, shape):
    rng = np.random.default_rng(0)
    layer = TimeDistributed(make(), dtype="float64")
    layer.build(shape, rng=rng)
    x = rng.standard_normal((3, *shape))
    y = layer(x)
    inner = layer.layer
    for t in range(shape[0]):
        np.testing.assert_allclose(y[:, t], inner(x[:, t]), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    layer.forward(x)  # the loop above overwrote the inner layer's caches
    layer.needs_input_gradient = True
    dx = layer.backward(dy)
    summed = {key: np.zeros_like(value) for key, value in inner.grads.items()}
    for t in range(shape[0]):  # the weights' gradient is the sum over the steps
        inner.forward(x[:, t])
        inner.needs_input_gradient = True
        np.testing.assert_allclose(dx[:, t], inner.backward(dy[:, t]), rtol=1e-12, atol=1e-12)
        for key in summed:
            summed[key] += inner.grads[key]
    regularization = {key: 0.0 for key in summed}
    for key, regularizer in inner.regularized_params():  # added once per backward, not per step
        regularization[key] = regularizer.gradient(inner.params[key])
    layer.forward(x)
    layer.backward(dy)  # the gradients again, after the loop's
    for key in summed:
        expected = summed[key] - (shape[0] - 1) * regularization[key]
        np.testing.assert_allclose(layer.grads[key], expected, rtol=1e-10, atol=1e-12)


def test_weights_are_the_inner_layers():
    dense = Dense(4)
    layer = TimeDistributed(dense)
    layer.build((5, 3))
    assert list(layer.weights()) == ["kernel", "bias"]
    assert layer.params["kernel"] is dense.params["kernel"]
    assert layer.output_shape == (5, 4)
    assert layer.count_params() == 16


def test_config_nests_the_inner_layer():
    layer = TimeDistributed(Conv2D(2, 3, padding="same", activation="relu"), name="frames")
    config = layer.get_config()
    assert config["layer"]["class_name"] == "Conv2D"
    rebuilt = hn.layers.deserialize(hn.layers.serialize(layer))
    assert isinstance(rebuilt.layer, Conv2D) and rebuilt.get_config() == config
    headline, formula = layer.explain()
    assert "Conv2D" in headline and formula


def test_replicas_own_their_gradients_and_share_the_weights():
    layer = TimeDistributed(Conv2D(2, 3))
    layer.build((2, 5, 5, 1), rng=np.random.default_rng(0))
    twin = layer.replica()
    assert twin.params["kernel"] is layer.params["kernel"]
    assert twin.grads["kernel"] is not layer.grads["kernel"]
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5, 1)).astype("float32")
    y = layer(x)
    np.testing.assert_array_equal(twin(x), y)
    dy = np.ones_like(y)
    layer.needs_input_gradient = twin.needs_input_gradient = True
    np.testing.assert_array_equal(twin.backward(dy), layer.backward(dy))
    np.testing.assert_array_equal(twin.grads["kernel"], layer.grads["kernel"])


def sequence_model():
    return hn.Sequential(
        [
            Input((4, 3)),
            TimeDistributed(Dense(5, activation="tanh")),
            TimeDistributed(Dropout(0.3)),
            Flatten(),
            Dense(2, activation="softmax"),
        ],
        seed=0,
    ).compile("adam", loss="sparse_categorical_crossentropy")


def test_in_a_model_gradcheck_fit_save_load(tmp_path):
    rng = np.random.default_rng(2)
    report = hn.gradcheck(sequence_model(), x=rng.standard_normal((3, 4, 3)),
                          y=np.array([0, 1, 1]), training=True)
    assert report.passed, f"\n{report}"
    x, y = rng.standard_normal((24, 4, 3)).astype("float32"), rng.integers(0, 2, 24)
    model, again = sequence_model(), sequence_model()
    first = model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=1, threads=1)
    second = again.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=1, threads=1)
    assert first.history["loss"] == second.history["loss"]  # fit's seed reaches the Dropout
    path = tmp_path / "frames.npz"
    model.save(path)
    loaded = hn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x[:5]), model.predict(x[:5]))


def test_clear_errors():
    with pytest.raises(HandnetError, match="wraps a layer"):
        TimeDistributed("dense")
    with pytest.raises(InvalidInputError, match="sequences"):
        TimeDistributed(Dense(2)).build((3,))
    built = Dense(2)
    built.build((3,))
    with pytest.raises(InvalidInputError, match="built for"):
        TimeDistributed(built).build((4, 5))
    with pytest.raises(HandnetError, match="'layer'"):
        TimeDistributed.from_config({"layer": None})
