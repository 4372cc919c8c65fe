"""Losses: hand-computed values and gradients, log(0) never taken, and PyTorch as the oracle.

Cases chosen for exact answers: softmax(0, ln 2, ln 3) = (1/6, 1/3, 1/2).
"""

import math
import warnings

import numpy as np
import pytest

from handnet import losses
from handnet.errors import HandnetError, InvalidInputError

LN2, LN3 = math.log(2), math.log(3)
P = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
LABELS = np.array([0, 1])
LOGITS = np.array(
    [[0.0, LN2, LN3], [LN3, 0.0, LN2]]
)  # softmax rows: (1/6, 1/3, 1/2), (1/2, 1/6, 1/3)
LOGIT_LABELS = np.array([2, 0])


def sparse(**kwargs):
    return losses.SparseCategoricalCrossentropy(**kwargs)


def categorical(**kwargs):
    return losses.CategoricalCrossentropy(**kwargs)


def one_hot(labels, k=3):
    return np.eye(k)[labels]


# -- hand-computed values and gradients ---------------------------------------------------------
def test_sparse_crossentropy_from_probabilities():
    assert sparse()(LABELS, P) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, rel=1e-15)
    # ∂L/∂p = -t / (N p):  -1/(2·0.5) and -1/(2·0.8).
    np.testing.assert_allclose(
        sparse().gradient(LABELS, P), [[-1, 0, 0], [0, -0.625, 0]], rtol=1e-15
    )


def test_sparse_crossentropy_from_logits():
    loss = sparse(from_logits=True)
    assert loss(LOGIT_LABELS, LOGITS) == pytest.approx(LN2, rel=1e-14)  # both rows: -ln(1/2)
    # (softmax(z) - t) / N with N = 2.
    expected = np.array([[1 / 6, 1 / 3, -1 / 2], [-1 / 2, 1 / 6, 1 / 3]]) / 2
    np.testing.assert_allclose(loss.gradient(LOGIT_LABELS, LOGITS), expected, rtol=1e-13)


def test_categorical_crossentropy_with_soft_targets():
    t = np.array([[0.2, 0.3, 0.5]])
    p = np.array([[0.5, 0.25, 0.25]])
    expected = -(0.2 * math.log(0.5) + 0.3 * math.log(0.25) + 0.5 * math.log(0.25))
    assert categorical()(t, p) == pytest.approx(expected, rel=1e-15)
    np.testing.assert_allclose(categorical().gradient(t, p), [[-0.4, -1.2, -2.0]], rtol=1e-15)


def test_categorical_and_sparse_agree_on_one_hot_targets():
    for from_logits, y_pred in ((False, P), (True, LOGITS)):
        a = sparse(from_logits=from_logits)
        b = categorical(from_logits=from_logits)
        assert a(LABELS, y_pred) == pytest.approx(b(one_hot(LABELS), y_pred), rel=1e-15)
        np.testing.assert_allclose(
            a.gradient(LABELS, y_pred), b.gradient(one_hot(LABELS), y_pred), rtol=1e-15
        )


def test_label_smoothing():
    # ε = 0.3, K = 3, label 2:  t = (0.1, 0.1, 0.8);  p = (1/6, 1/3, 1/2).
    z, y = LOGITS[:1], np.array([2])
    expected = 0.1 * math.log(6) + 0.1 * math.log(3) + 0.8 * math.log(2)
    for loss, target in ((sparse, y), (categorical, one_hot(y))):
        smoothed = loss(from_logits=True, label_smoothing=0.3)
        assert smoothed(target, z) == pytest.approx(expected, rel=1e-14)
        np.testing.assert_allclose(
            smoothed.gradient(target, z), [[1 / 15, 7 / 30, -0.3]], rtol=1e-13
        )
    p = np.array([[1 / 6, 1 / 3, 1 / 2]])
    assert sparse(label_smoothing=0.3)(y, p) == pytest.approx(expected, rel=1e-14)


def test_fused_logits_gradient_is_p_minus_t_over_n():
    p = np.array([[1 / 6, 1 / 3, 1 / 2], [1 / 2, 1 / 6, 1 / 3]])
    expected = (p - one_hot(LOGIT_LABELS)) / 2
    np.testing.assert_allclose(sparse().logits_gradient(LOGIT_LABELS, p), expected, rtol=1e-15)


def test_mean_squared_error():
    y_true = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_pred = np.array([[1.0, 0.0], [5.0, 4.0]])
    mse = losses.get("mse")
    assert mse(y_true, y_pred) == 2.0  # (0 + 4 + 4 + 0) / 4
    np.testing.assert_array_equal(mse.gradient(y_true, y_pred), [[0, -1], [1, 0]])  # 2·diff / 4


@pytest.mark.parametrize(
    "loss, y_true, y_pred",
    [
        (sparse(), LABELS, P),
        (sparse(from_logits=True), LOGIT_LABELS, LOGITS),
        (categorical(label_smoothing=0.1), one_hot(LABELS), P),
        (losses.MeanSquaredError(), P[::-1], P),
    ],
    ids=["sparse", "sparse-logits", "categorical-smoothed", "mse"],
)
def test_the_batch_mean_is_taken_once(loss, y_true, y_pred):
    """Batch value = mean of per-sample values; batch gradient row n = per-sample gradient / N."""
    n = len(y_pred)
    singles = [loss(y_true[i : i + 1], y_pred[i : i + 1]) for i in range(n)]
    assert loss(y_true, y_pred) == pytest.approx(np.mean(singles), rel=1e-14)
    batch = loss.gradient(y_true, y_pred)
    for i in range(n):
        np.testing.assert_allclose(
            batch[i] * n, loss.gradient(y_true[i : i + 1], y_pred[i : i + 1])[0], rtol=1e-14
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_keep_the_prediction_dtype(dtype):
    for loss, y in (
        (sparse(), LABELS),
        (sparse(from_logits=True), LABELS),
        (losses.MeanSquaredError(), P),
    ):
        assert loss.gradient(y, P.astype(dtype)).dtype == dtype


# -- never log(0) ------------------------------------------------------------------------------
def test_crossentropy_on_probabilities_0_and_1_is_finite():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = np.array([0, 0])  # row 0 certain and right, row 1 certain and wrong
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss, target in (
            (sparse(), y),
            (categorical(), one_hot(y)),
            (sparse(label_smoothing=0.1), y),
        ):
            value = loss(target, p)
            grad = loss.gradient(target, p)
            assert math.isfinite(value) and np.isfinite(grad).all()
    # clipped to [1e-7, 1 - 1e-7] as Keras does: -(log(1 - 1e-7) + log(1e-7)) / 2
    assert sparse()(y, p) == pytest.approx(-(math.log(1 - 1e-7) + math.log(1e-7)) / 2, rel=1e-12)


def test_crossentropy_from_huge_logits_is_finite():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    y = np.array([1, 2])
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value = sparse(from_logits=True)(y, z)
        grad = sparse(from_logits=True).gradient(y, z)
    assert value == pytest.approx((2e4 + math.log(3)) / 2, rel=1e-12)
    assert np.isfinite(grad).all()


# -- bad targets --------------------------------------------------------------------------------
@pytest.mark.parametrize("labels", [[0, 3], [-1, 0]])
@pytest.mark.parametrize(
    "loss", [sparse(), sparse(from_logits=True), sparse(label_smoothing=0.1)], ids=repr
)
def test_labels_out_of_range_are_refused_not_wrapped(loss, labels):
    with pytest.raises(InvalidInputError, match=r"labels must be integers in \[0, 3\)"):
        loss(np.array(labels), P)
    with pytest.raises(InvalidInputError, match=r"labels must be integers in \[0, 3\)"):
        loss.gradient(np.array(labels), P)


def test_one_hot_targets_with_the_wrong_width():
    with pytest.raises(InvalidInputError, match=r"3 columns, got shape \(2, 4\)"):
        categorical()(np.zeros((2, 4)), P)


def test_get_and_serialize():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get("mean_squared_error"), losses.MeanSquaredError)
    loss = categorical(from_logits=True, label_smoothing=0.2)
    clone = losses.get(losses.serialize(loss))
    assert type(clone) is losses.CategoricalCrossentropy and clone.get_config() == loss.get_config()
    with pytest.raises(HandnetError, match="unknown loss 'hinge'"):
        losses.get("hinge")


# -- PyTorch as the oracle -------------------------------------------------------------------------
RNG = np.random.default_rng(42)
Z_RANDOM = RNG.standard_normal((6, 5)) * 3
Y_RANDOM = np.array([0, 4, 2, 2, 1, 3])
T_RANDOM = RNG.dirichlet(np.ones(5), size=6)  # soft targets
P_RANDOM = RNG.dirichlet(np.ones(5) * 2, size=6)
TIGHT = dict(rtol=1e-10, atol=1e-13)  # float64 on both sides; the brief's bar is 1e-6


def torch_value_and_grad(torch, function, y_pred):
    y_pred = torch.tensor(y_pred, dtype=torch.float64, requires_grad=True)
    value = function(y_pred)
    value.backward()
    return value.item(), y_pred.grad.numpy()


def check_against_torch(torch, loss, y_true, y_pred, torch_function):
    value, grad = torch_value_and_grad(torch, torch_function, y_pred)
    assert loss(y_true, y_pred) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred), grad, **TIGHT)


@pytest.mark.torch
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_sparse_from_logits_vs_torch(torch, smoothing):
    labels = torch.tensor(Y_RANDOM)
    check_against_torch(
        torch,
        sparse(from_logits=True, label_smoothing=smoothing),
        Y_RANDOM,
        Z_RANDOM,
        lambda z: torch.nn.functional.cross_entropy(z, labels, label_smoothing=smoothing),
    )


@pytest.mark.torch
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_categorical_from_logits_vs_torch(torch, smoothing):
    targets = torch.tensor(T_RANDOM)
    check_against_torch(
        torch,
        categorical(from_logits=True, label_smoothing=smoothing),
        T_RANDOM,
        Z_RANDOM,
        lambda z: torch.nn.functional.cross_entropy(z, targets, label_smoothing=smoothing),
    )


@pytest.mark.torch
def test_sparse_from_probabilities_vs_torch(torch):
    labels = torch.tensor(Y_RANDOM)
    check_against_torch(
        torch,
        sparse(),
        Y_RANDOM,
        P_RANDOM,
        lambda p: torch.nn.functional.nll_loss(torch.log(p), labels),
    )


@pytest.mark.torch
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_categorical_from_probabilities_vs_torch(torch, smoothing):
    k = T_RANDOM.shape[1]
    targets = torch.tensor(T_RANDOM * (1 - smoothing) + smoothing / k)
    check_against_torch(
        torch,
        categorical(label_smoothing=smoothing),
        T_RANDOM,
        P_RANDOM,
        lambda p: -(targets * torch.log(p)).sum(dim=1).mean(),
    )


@pytest.mark.torch
def test_fused_gradient_vs_torch_softmax_then_crossentropy(torch):
    """(softmax(z) - t)/N = ∂/∂z cross-entropy(softmax(z)): what the model feeds the last layer."""
    labels = torch.tensor(Y_RANDOM)
    _, grad = torch_value_and_grad(
        torch,
        lambda z: torch.nn.functional.nll_loss(torch.log(torch.softmax(z, dim=1)), labels),
        Z_RANDOM,
    )
    p = np.exp(Z_RANDOM) / np.exp(Z_RANDOM).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(sparse().logits_gradient(Y_RANDOM, p), grad, **TIGHT)


@pytest.mark.torch
def test_mean_squared_error_vs_torch(torch):
    target = torch.tensor(T_RANDOM)
    check_against_torch(
        torch,
        losses.MeanSquaredError(),
        T_RANDOM,
        Z_RANDOM,
        lambda z: torch.nn.functional.mse_loss(z, target),
    )
