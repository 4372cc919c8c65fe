"""Every backward pass against central differences (handnet.gradcheck), in float64, below 1e-7.

gradcheck draws a random, non-uniform upstream gradient g and checks L = Σ f(x)·g (+ penalties),
or, given y, the model's training loss. Deliberately broken layers must fail: a check that
cannot fail proves nothing.
"""

import numpy as np
import pytest

import handnet as hn
from handnet import activations, losses
from handnet.errors import HandnetError
from handnet.layers import Activation, Dense, Dropout, Flatten, Input, Reshape

TOLERANCE = 1e-7


def random_init(shape, rng, dtype="float32"):
    """Non-zero biases, so L1's kink at 0 and a zero bias's missing gradient cannot hide."""
    return rng.standard_normal(shape).astype(dtype)


def assert_passes(report):
    assert report.passed and report.worst < TOLERANCE, f"\n{report}"


# -- every layer --------------------------------------------------------------------------------
LAYERS = {
    **{
        f"Dense-{name}": (
            lambda name=name: Dense(4, activation=name, bias_initializer=random_init),
            (5,),
        )
        for name in activations.ACTIVATIONS
    },
    "Dense-no-bias": (lambda: Dense(3, use_bias=False), (5,)),
    "Dense-rank-3-input": (
        lambda: Dense(3, activation="tanh", bias_initializer=random_init),
        (2, 5),
    ),
    "Flatten": (lambda: Flatten(), (2, 3, 2)),
    "Reshape": (lambda: Reshape((-1, 2)), (6,)),
    "Input": (lambda: Input((4,)), (4,)),
    **{
        f"Activation-{name}": (lambda name=name: Activation(name), (6,))
        for name in activations.ACTIVATIONS
    },
    "Activation-leaky_relu-0.05": (lambda: Activation(activations.LeakyReLU(0.05)), (6,)),
    "Activation-softmax-rank-3": (lambda: Activation("softmax"), (2, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_backward_matches_central_differences(name):
    make, input_shape = LAYERS[name]
    assert_passes(hn.gradcheck(make(), input_shape=input_shape, batch_size=3))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_in_training_mode(rate):
    report = hn.gradcheck(Dropout(rate), input_shape=(8,), batch_size=4, training=True)
    assert_passes(report)
    assert report.rows[-1].scale > 0  # some units were kept


@pytest.mark.parametrize(
    "regularizers",
    [
        dict(kernel_regularizer=hn.regularizers.L2(0.1)),
        dict(kernel_regularizer=hn.regularizers.L1(0.1), bias_regularizer=hn.regularizers.L1(0.2)),
        dict(kernel_regularizer=hn.regularizers.L1L2(l1=0.05, l2=0.3), bias_regularizer="l2"),
    ],
    ids=["L2", "L1", "L1L2"],
)
def test_dense_with_regularizers(regularizers):
    layer = Dense(4, activation="tanh", bias_initializer=random_init, **regularizers)
    assert_passes(hn.gradcheck(layer, input_shape=(5,)))


# -- models, through the loss ----------------------------------------------------------------------
X = np.random.default_rng(5).standard_normal((6, 5))
LABELS = np.array([0, 2, 1, 2, 0, 1])


def model(layers, loss, seed=0):
    return hn.Sequential([Input((5,)), *layers], seed=seed).compile("sgd", loss=loss)


def test_model_with_softmax_and_crossentropy_uses_the_fused_gradient():
    mlp = model(
        [Dense(7, activation="relu"), Dense(3, activation="softmax")],
        "sparse_categorical_crossentropy",
    )
    assert_passes(hn.gradcheck(mlp, X, LABELS))


def test_model_with_a_separate_softmax_layer():
    mlp = model(
        [Dense(7, activation="tanh"), Dense(3), Activation("softmax")],
        "sparse_categorical_crossentropy",
    )
    assert_passes(hn.gradcheck(mlp, X, LABELS))


def test_model_from_logits():
    mlp = model(
        [Dense(7, activation="sigmoid"), Dense(3)],
        losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    assert_passes(hn.gradcheck(mlp, X, LABELS))


def test_model_with_smoothed_one_hot_targets():
    mlp = model(
        [Dense(7, activation="leaky_relu"), Dense(3, activation="softmax")],
        losses.CategoricalCrossentropy(label_smoothing=0.2),
    )
    assert_passes(hn.gradcheck(mlp, X, np.eye(3)[LABELS]))


def test_model_crossentropy_on_sigmoid_probabilities_goes_through_the_loss_gradient():
    mlp = model(
        [Dense(7, activation="tanh"), Dense(3, activation="sigmoid")], "categorical_crossentropy"
    )
    assert_passes(hn.gradcheck(mlp, X, np.eye(3)[LABELS]))


def test_model_with_mse():
    mlp = model([Dense(7, activation="tanh"), Dense(2)], "mse")
    assert_passes(hn.gradcheck(mlp, X, np.random.default_rng(1).standard_normal((6, 2))))


def test_model_with_dropout_in_training_and_regularizers():
    mlp = model(
        [
            Dense(8, activation="relu", kernel_regularizer="l2", bias_initializer=random_init),
            Dropout(0.3),
            Dense(3, activation="softmax", kernel_regularizer=hn.regularizers.L1(0.01)),
        ],
        "sparse_categorical_crossentropy",
    )
    assert_passes(hn.gradcheck(mlp, X, LABELS, training=True))


def test_model_without_loss_uses_a_random_upstream_gradient():
    stack = hn.Sequential(
        [Input((2, 3)), Flatten(), Dense(4, activation="tanh"), Reshape((2, 2))], seed=0
    )
    assert_passes(hn.gradcheck(stack, input_shape=(2, 3)))


# -- the check can fail ----------------------------------------------------------------------------
class BiasDroppingDense(Dense):
    def backward_pre_activation(self, dz):
        dx = super().backward_pre_activation(dz)
        self.grads["bias"][...] = 0
        return dx


class TransposedKernelGradientDense(Dense):
    def backward_pre_activation(self, dz):
        dx = super().backward_pre_activation(dz)
        self.grads["kernel"][...] = self.grads["kernel"].T.copy()  # square kernel: shapes still fit
        return dx


class ActivationForgettingDense(Dense):
    def backward(self, dy):
        return self.backward_pre_activation(dy)


class UnscaledDropout(Dropout):
    def backward(self, dy):
        return dy * (self._scaled_mask != 0)  # forgets the 1/(1 - rate)


class DoubleMeanSquaredError(losses.MeanSquaredError):
    def gradient(self, y_true, y_pred):
        return super().gradient(y_true, y_pred) / len(y_pred)  # 1/N applied twice


@pytest.mark.parametrize(
    "broken, input_shape, training",
    [
        (lambda: BiasDroppingDense(4, bias_initializer=random_init), (5,), False),
        (lambda: TransposedKernelGradientDense(4), (4,), False),
        (lambda: ActivationForgettingDense(4, activation="tanh"), (5,), False),
        (lambda: UnscaledDropout(0.5), (8,), True),
    ],
    ids=["bias-dropped", "kernel-transposed", "activation-forgotten", "dropout-unscaled"],
)
def test_broken_layers_fail(broken, input_shape, training):
    report = hn.gradcheck(broken(), input_shape=input_shape, training=training)
    assert not report.passed and report.worst > 1e-2
    assert "FAIL" in str(report)


def test_a_loss_that_divides_by_n_twice_fails():
    mlp = model([Dense(4, activation="tanh"), Dense(2)], DoubleMeanSquaredError())
    report = hn.gradcheck(mlp, X, np.zeros((6, 2)))
    assert not report.passed and report.worst > 0.5  # every gradient is 6 times too small


# -- the report and the target ---------------------------------------------------------------------
def test_report_lists_every_parameter_and_the_input():
    layer = Dense(3, name="probe")
    report = hn.gradcheck(layer, input_shape=(2,))
    assert [(row.layer, row.quantity) for row in report.rows] == [
        ("probe", "kernel"),
        ("probe", "bias"),
        ("(input)", "x"),
    ]
    text = str(report)
    assert "PASS" in text and "probe" in text and "tolerance 1e-07" in text
    assert report.as_dict()["passed"] is True and len(report.as_dict()["rows"]) == 3


def test_gradcheck_leaves_the_target_untouched():
    mlp = model(
        [Dense(4, activation="relu"), Dense(3, activation="softmax")],
        "sparse_categorical_crossentropy",
    )
    mlp.build()
    before = mlp.get_weights()
    hn.gradcheck(mlp, X, LABELS)
    after = mlp.get_weights()
    assert all(w.dtype == np.float32 for w in after)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_gradcheck_needs_an_input():
    with pytest.raises(HandnetError, match="needs x or input_shape"):
        hn.gradcheck(Dense(2))
    with pytest.raises(HandnetError, match="needs a compiled Sequential"):
        hn.gradcheck(Dense(2), x=X, y=LABELS)
    uncompiled = hn.Sequential([Input((5,)), Dense(3)])
    with pytest.raises(HandnetError, match="needs a compiled Sequential"):
        hn.gradcheck(uncompiled, x=X, y=LABELS)


def test_a_gradient_zero_for_a_reason_passes_and_a_wrong_small_one_fails():
    """The round-off floor (64·ε·|L|/h) passes noise against an exact 0, nothing above it."""
    from handnet.gradcheck import relative_error

    assert relative_error(np.zeros(3), np.full(3, 1e-11), floor=1e-9) == 0.0
    assert relative_error(np.zeros(3), np.full(3, 1e-6), floor=1e-9) == 1.0
    assert relative_error(np.full(3, 2e-6), np.full(3, 1e-6), floor=1e-9) == 0.5


def test_attention_with_biases_gradchecks_its_key_bias_is_exactly_zero():
    """softmax(s + c·1ᵀ) = softmax(s): the key bias adds a constant per query row, so its
    gradient is 0 exactly, and the check passes on the floor instead of failing on noise."""
    from handnet.gradcheck import gradcheck

    rng = np.random.default_rng(0)
    query = Input((3, 4)).tensor
    value = Input((5, 4)).tensor
    attention = hn.layers.MultiHeadAttention(2, 3, name="mha")
    model = hn.Model([query, value], attention(query, value), seed=0).build()
    report = gradcheck(model, x=[rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))])
    assert report.passed, report
    (row,) = [r for r in report.rows if r.quantity == "key/bias"]
    assert row.error == 0.0
    np.testing.assert_array_equal(attention.grads["key/bias"], 0.0)
