"""Dense, Flatten, Reshape, Activation, Dropout, Input: forward and backward on hand-computed cases.

(Numerical gradient checks of the same layers live in test_gradcheck.py.)
"""

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import Activation, Dense, Dropout, Flatten, Input, Reshape

X = np.array([[1.0, 2.0], [3.0, -1.0]])
W = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
B = np.array([0.5, -1.0, 2.0])
# x @ W = [[1+4, 0+2, -1+0], [3-2, 0-1, -3+0]] = [[5, 2, -1], [1, -1, -3]];  + b:
Z = np.array([[5.5, 1.0, 1.0], [1.5, -2.0, -1.0]])


def dense_with(kernel, bias=None, **kwargs):
    layer = Dense(kernel.shape[1], use_bias=bias is not None, dtype="float64", **kwargs)
    layer.build((kernel.shape[0],), np.random.default_rng(0))
    layer.params["kernel"][...] = kernel
    if bias is not None:
        layer.params["bias"][...] = bias
    return layer


# -- Dense ------------------------------------------------------------------------------------
def test_dense_forward_linear_and_relu():
    np.testing.assert_array_equal(dense_with(W, B).forward(X), Z)
    relu = dense_with(W, B, activation="relu")
    np.testing.assert_array_equal(relu.forward(X), [[5.5, 1, 1], [1.5, 0, 0]])


def test_dense_backward():
    layer = dense_with(W, B)
    layer.forward(X)
    dy = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    dx = layer.backward(dy)
    # dW = xᵀ dy = [[1, 3, 0], [2, -1, 0]];  db = Σ_n dy = [1, 1, 0];
    # dx = dy Wᵀ = [[1, 2], [0, 1]].
    np.testing.assert_array_equal(layer.grads["kernel"], [[1, 3, 0], [2, -1, 0]])
    np.testing.assert_array_equal(layer.grads["bias"], [1, 1, 0])
    np.testing.assert_array_equal(dx, [[1, 2], [0, 1]])


def test_dense_backward_through_relu_masks_the_inactive_units():
    layer = dense_with(W, B, activation="relu")
    layer.forward(X)
    dx = layer.backward(np.ones((2, 3)))
    # z > 0 only at [0, :] and [1, 0]:  dz = [[1, 1, 1], [1, 0, 0]].
    np.testing.assert_array_equal(layer.grads["kernel"], [[4, 1, 1], [1, 2, 2]])
    np.testing.assert_array_equal(layer.grads["bias"], [2, 1, 1])
    np.testing.assert_array_equal(dx, [[0, 3], [1, 2]])


def test_dense_without_bias():
    layer = dense_with(W)
    assert list(layer.params) == ["kernel"] and layer.count_params() == 6
    np.testing.assert_array_equal(layer.forward(X), [[5, 2, -1], [1, -1, -3]])


def test_dense_first_layer_skips_the_input_gradient_but_fills_grads():
    layer = dense_with(W, B)
    layer.needs_input_gradient = False
    layer.forward(X)
    assert layer.backward(np.ones((2, 3))) is None
    np.testing.assert_array_equal(layer.grads["kernel"], [[4, 4, 4], [1, 1, 1]])
    np.testing.assert_array_equal(layer.grads["bias"], [2, 2, 2])


def test_dense_on_higher_rank_input_works_row_by_row():
    layer = Dense(3, dtype="float64")
    layer.build((2, 2), np.random.default_rng(0))  # per sample: a "sequence" of two rows
    layer.params["kernel"][...], layer.params["bias"][...] = W, B
    x = np.stack([X, X[::-1]])
    y = layer.forward(x)
    assert y.shape == (2, 2, 3) and layer.output_shape == (2, 3)
    np.testing.assert_array_equal(y[0], Z)
    np.testing.assert_array_equal(y[1], Z[::-1])
    dx = layer.backward(np.ones((2, 2, 3)))
    assert dx.shape == x.shape


def test_dense_regularization_penalty_and_gradient():
    kernel = np.array([[1.0, -2.0], [3.0, 4.0]])
    bias = np.array([-0.5, 0.5])
    l2 = dense_with(kernel, bias, kernel_regularizer=hn.regularizers.L2(0.01))
    assert l2.regularization_penalty() == pytest.approx(0.01 * 30)  # Σ w² = 1 + 4 + 9 + 16
    l1 = dense_with(kernel, bias, kernel_regularizer="l1", bias_regularizer=hn.regularizers.L1(0.1))
    assert l1.regularization_penalty() == pytest.approx(0.01 * 10 + 0.1 * 1)
    x, dy = np.zeros((1, 2)), np.zeros((1, 2))  # no data gradient: only the penalties' remain
    l2.forward(x), l2.backward(dy)
    np.testing.assert_allclose(l2.grads["kernel"], 2 * 0.01 * kernel)
    np.testing.assert_array_equal(l2.grads["bias"], [0, 0])
    l1.forward(x), l1.backward(dy)
    np.testing.assert_allclose(l1.grads["kernel"], 0.01 * np.sign(kernel))
    np.testing.assert_allclose(l1.grads["bias"], [-0.1, 0.1])


def test_dense_builds_with_keras_defaults_in_float32():
    layer = Dense(5)
    layer.build((3,), np.random.default_rng(0))
    assert layer.params["kernel"].shape == (3, 5) and layer.params["kernel"].dtype == np.float32
    np.testing.assert_array_equal(layer.params["bias"], np.zeros(5, np.float32))
    limit = np.sqrt(6 / (3 + 5))
    assert np.abs(layer.params["kernel"]).max() <= limit
    assert layer.forward(np.ones((2, 3), np.float32)).dtype == np.float32


def test_dense_config_round_trip():
    layer = Dense(
        7,
        activation=hn.activations.LeakyReLU(0.05),
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=hn.regularizers.L1L2(l1=0.001, l2=0.002),
        name="hidden",
    )
    clone = Dense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.activation.negative_slope == 0.05 and clone.kernel_regularizer.l2 == 0.002


def test_dense_wrong_input_shape_names_expected_and_got():
    layer = dense_with(W, B)
    with pytest.raises(InvalidInputError, match=r"expected input shape \(None, 2\), got \(4, 3\)"):
        layer.forward(np.zeros((4, 3)))


# -- Flatten, Reshape ------------------------------------------------------------------------
def test_flatten_is_row_major_and_backward_restores_the_shape():
    layer = Flatten()
    x = np.arange(12.0).reshape(2, 2, 3)
    y = layer(x)
    assert layer.output_shape == (6,)
    np.testing.assert_array_equal(y, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    dx = layer.backward(y * 10)
    np.testing.assert_array_equal(dx, x * 10)


def test_reshape_with_and_without_inferred_axis():
    x = np.arange(12.0).reshape(2, 6)
    layer = Reshape((2, 3))
    np.testing.assert_array_equal(layer(x)[1], [[6, 7, 8], [9, 10, 11]])
    inferred = Reshape((-1, 2))
    inferred.build((6,))
    assert inferred.output_shape == (3, 2)
    np.testing.assert_array_equal(inferred.backward(np.ones((2, 3, 2))), np.ones((2, 6)))


@pytest.mark.parametrize("target", [(4, 2), (-1, 4), (-1, -1)])
def test_reshape_to_an_impossible_shape_is_an_error(target):
    with pytest.raises(HandnetError, match="cannot reshape per-sample shape"):
        Reshape(target).build((6,))


# -- Activation ------------------------------------------------------------------------------
def test_activation_layer_forward_backward():
    layer = Activation("sigmoid")
    z = np.array([[0.0, np.log(3)]])
    np.testing.assert_allclose(layer(z), [[0.5, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.array([[4.0, 16.0]])), [[1.0, 3.0]], rtol=1e-14)
    dz = np.array([[1.0, 2.0]])
    assert layer.backward_pre_activation(dz) is dz  # the fused softmax + cross-entropy entry point


# -- Dropout ----------------------------------------------------------------------------------
def test_dropout_is_the_identity_at_inference():
    x = np.arange(6.0).reshape(2, 3)
    layer = Dropout(0.5)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(np.ones((2, 3))), np.ones((2, 3)))


def test_dropout_rate_zero_is_the_identity_in_training():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)


def test_dropout_training_zeroes_and_rescales_with_the_same_mask_backward():
    rate = 0.25
    x = np.full((200, 50), 2.0, dtype=np.float32)
    layer = Dropout(rate, seed=3)
    y = layer(x, training=True)
    assert y.dtype == np.float32
    kept = y != 0
    np.testing.assert_array_equal(y[kept], np.float32(2.0 / 0.75))
    assert abs(kept.mean() - 0.75) < 0.01  # 10,000 Bernoulli(0.75): σ ≈ 0.004
    assert abs(y.mean() - 2.0) < 0.03  # inverted dropout: E[y] = x
    dy = np.full_like(x, 3.0)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx != 0, kept)
    np.testing.assert_array_equal(dx[kept], np.float32(3.0 / 0.75))
    np.testing.assert_array_equal(dy, 3.0)  # the upstream gradient is not written into


def test_dropout_seed_gives_the_same_mask():
    x = np.ones((4, 10))
    np.testing.assert_array_equal(
        Dropout(0.5, seed=7)(x, training=True), Dropout(0.5, seed=7)(x, training=True)
    )


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_0_1_is_an_error(rate):
    with pytest.raises(HandnetError, match=r"rate must be in \[0, 1\)"):
        Dropout(rate)


# -- Input --------------------------------------------------------------------------------------
def test_input_declares_the_shape_and_is_not_a_model_layer():
    layer = Input((28, 28, 1))
    assert layer.shape == (28, 28, 1) and layer.get_config()["shape"] == [28, 28, 1]
    x = np.ones((2, 28, 28, 1))
    assert layer(x) is x and layer.backward(x) is x
    model = hn.Sequential([layer, Flatten(), Dense(3)])
    assert model.input_shape == (28, 28, 1) and len(model.layers) == 2


def test_input_must_come_first():
    with pytest.raises(HandnetError, match="Input must come first"):
        hn.Sequential([Dense(3), Input((4,))])


# -- contract shared by every layer ----------------------------------------------------------------
def every_layer():
    return [
        (Dense(3, activation="tanh"), (4,)),
        (Dense(3, activation="softmax"), (4,)),
        (Flatten(), (2, 3)),
        (Reshape((3, 2)), (6,)),
        (Activation("softmax"), (5,)),
        (Activation("relu"), (5,)),
        (Dropout(0.5, seed=0), (5,)),
        (Input((5,)), (5,)),
    ]


@pytest.mark.parametrize("layer, input_shape", every_layer(), ids=lambda v: type(v).__name__)
def test_backward_never_writes_into_dy(layer, input_shape):
    rng = np.random.default_rng(0)
    layer.cast("float64")
    layer.build(input_shape, rng)
    y = layer.forward(rng.standard_normal((3, *input_shape)), training=True)
    dy = rng.standard_normal(y.shape)
    saved = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(dy, saved)


@pytest.mark.parametrize("layer, input_shape", every_layer(), ids=lambda v: type(v).__name__)
def test_config_rebuilds_the_same_layer(layer, input_shape):
    clone = hn.layers.deserialize(
        {"class_name": type(layer).__name__, "config": layer.get_config()}
    )
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
