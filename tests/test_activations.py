"""Activations: forward values and derivatives on hand-computed cases, numerical stability.

Expected numbers come from the math, with inputs chosen so the answers are exact fractions:
sigmoid(ln 3) = 3/4, tanh(ln 2) = (2 - 1/2)/(2 + 1/2) = 3/5, softmax(0, ln 2, ln 3) = (1, 2, 3)/6.
(Gradient checks of every activation live in test_gradcheck.py.)
"""

import math

import numpy as np
import pytest

from handnet import activations
from numerics import strict_numerics
from handnet.errors import HandnetError

LN2, LN3 = math.log(2), math.log(3)


# -- forward values -------------------------------------------------------------------------
def test_linear_is_identity():
    z = np.array([[-2.0, 0.0, 3.5]])
    np.testing.assert_array_equal(activations.get(None).forward(z), z)
    np.testing.assert_array_equal(activations.get("linear").forward(z), z)


def test_relu_forward():
    z = np.array([[-2.0, -0.5, 0.0, 1.5]])
    np.testing.assert_array_equal(activations.ReLU().forward(z), [[0, 0, 0, 1.5]])


def test_leaky_relu_forward_default_slope_is_keras_0_2():
    z = np.array([[-2.0, -0.5, 0.0, 1.5]])
    np.testing.assert_allclose(
        activations.LeakyReLU().forward(z), [[-0.4, -0.1, 0, 1.5]], rtol=1e-15
    )
    np.testing.assert_allclose(
        activations.LeakyReLU(0.1).forward(z), [[-0.2, -0.05, 0, 1.5]], rtol=1e-15
    )


def test_sigmoid_forward():
    z = np.array([[0.0, LN3, -LN3, math.log(9)]])
    np.testing.assert_allclose(
        activations.Sigmoid().forward(z), [[0.5, 0.75, 0.25, 0.9]], rtol=1e-15
    )


def test_tanh_forward():
    z = np.array([[0.0, LN2, -LN2]])
    np.testing.assert_allclose(activations.Tanh().forward(z), [[0, 0.6, -0.6]], atol=1e-15)


def test_softmax_forward_and_shift_invariance():
    z = np.array([[0.0, LN2, LN3], [1000.0, 1000 + LN2, 1000 + LN3]])
    expected = np.array([[1, 2, 3], [1, 2, 3]]) / 6
    np.testing.assert_allclose(activations.Softmax().forward(z), expected, rtol=1e-12)


def test_softmax_is_over_the_last_axis():
    z = np.zeros((2, 3, 4))
    z[1, 2] = [0, LN2, LN3, 0]
    a = activations.softmax(z)
    np.testing.assert_allclose(a.sum(axis=-1), np.ones((2, 3)), rtol=1e-15)
    np.testing.assert_allclose(a[0, 0], [0.25] * 4)
    np.testing.assert_allclose(a[1, 2], np.array([1, 2, 3, 1]) / 7, rtol=1e-12)


def test_log_softmax_forward():
    z = np.array([[0.0, LN2, LN3]])
    np.testing.assert_allclose(
        activations.log_softmax(z), np.log([[1 / 6, 1 / 3, 1 / 2]]), rtol=1e-12
    )


# -- derivatives ----------------------------------------------------------------------------
def backward(activation, da, z):
    return activation.backward(da, z, activation.forward(z))


def test_relu_derivative_is_0_at_and_below_the_kink():
    z = np.array([[-1.0, 0.0, 2.0]])
    da = np.array([[5.0, 7.0, 11.0]])
    np.testing.assert_array_equal(backward(activations.ReLU(), da, z), [[0, 0, 11]])


def test_leaky_relu_derivative():
    z = np.array([[-1.0, 2.0]])
    da = np.array([[5.0, 7.0]])
    np.testing.assert_allclose(
        backward(activations.LeakyReLU(0.3), da, z), [[1.5, 7.0]], rtol=1e-15
    )


def test_sigmoid_derivative():
    # a = 3/4 at z = ln 3: a(1 - a) = 3/16;  at z = 0: 1/4.
    z = np.array([[LN3, 0.0]])
    da = np.array([[2.0, -4.0]])
    np.testing.assert_allclose(backward(activations.Sigmoid(), da, z), [[0.375, -1.0]], rtol=1e-14)


def test_tanh_derivative():
    # a = 3/5 at z = ln 2: 1 - a² = 16/25.
    z = np.array([[LN2, 0.0]])
    da = np.array([[25.0, 3.0]])
    np.testing.assert_allclose(backward(activations.Tanh(), da, z), [[16.0, 3.0]], rtol=1e-14)


def test_softmax_jacobian_vector_product():
    # a = (1, 2, 3)/6, da = e_0:  dz_k = a_k (δ_k0 - a_0) = (5/36, -1/18, -1/12).
    z = np.array([[0.0, LN2, LN3]])
    da = np.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        backward(activations.Softmax(), da, z), [[5 / 36, -1 / 18, -1 / 12]], rtol=1e-12
    )


def test_softmax_gradient_of_a_constant_shift_is_zero():
    # da = c·1 changes every a_k by c·Σ_j ∂a_j/∂z = 0: softmax's outputs always sum to 1.
    z = np.array([[0.3, -1.2, 2.0]])
    np.testing.assert_allclose(
        backward(activations.Softmax(), np.full((1, 3), 4.0), z), 0, atol=1e-15
    )


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_backward_leaves_the_upstream_gradient_untouched(name):
    activation = activations.get(name)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 5))
    da = rng.standard_normal((3, 5))
    saved = da.copy()
    backward(activation, da, z)
    np.testing.assert_array_equal(da, saved)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_float32_stays_float32(name):
    activation = activations.get(name)
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 6)
    a = activation.forward(z)
    assert a.dtype == np.float32
    assert activation.backward(np.ones_like(z), z, a).dtype == np.float32


# -- stability for |z| ~ 1e4 -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    z = np.array([[1e4, -1e4, 745.0, -745.0, 0.0]], dtype=dtype)
    with strict_numerics():
        a = activations.Sigmoid().forward(z)
        da = activations.Sigmoid().backward(np.ones_like(z), z, a)
    assert np.isfinite(a).all() and np.isfinite(da).all()
    # σ(-745) = e^-745 ≈ 5e-324 is a float64 denormal, hence the absolute tolerance.
    np.testing.assert_allclose(a, [[1, 0, 1, 0, 0.5]], rtol=1e-7, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_are_stable_for_huge_inputs(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    with strict_numerics():
        a = activations.softmax(z)
        log_a = activations.log_softmax(z)
        da = activations.Softmax().backward(np.ones_like(z), z, a)
    assert np.isfinite(a).all() and np.isfinite(log_a).all() and np.isfinite(da).all()
    np.testing.assert_allclose(a, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], rtol=1e-6)
    np.testing.assert_allclose(log_a[0], [0, -2e4, -1e4], rtol=1e-6)
    np.testing.assert_allclose(
        log_a[2], [-math.log(2), -math.log(2), -2e4 - math.log(2)], rtol=1e-6
    )


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "linear"])
def test_other_activations_are_finite_for_huge_inputs(name):
    z = np.array([[1e4, -1e4, 0.5]])
    activation = activations.get(name)
    with strict_numerics():
        a = activation.forward(z)
        da = activation.backward(np.ones_like(z), z, a)
    assert np.isfinite(a).all() and np.isfinite(da).all()


# -- lookup and serialization --------------------------------------------------------------------
def test_get_accepts_names_none_dicts_and_objects():
    assert isinstance(activations.get(None), activations.Linear)
    assert isinstance(activations.get("softmax"), activations.Softmax)
    leaky = activations.get({"name": "leaky_relu", "negative_slope": 0.05})
    assert leaky.negative_slope == 0.05
    assert activations.get(leaky) is leaky


def test_serialize_round_trips():
    for name in activations.ACTIVATIONS:
        assert (
            type(activations.get(activations.serialize(activations.get(name)))).__name__
            == type(activations.get(name)).__name__
        )
    custom = activations.get(activations.serialize(activations.LeakyReLU(0.05)))
    assert custom.negative_slope == 0.05


def test_unknown_activation_names_the_choices():
    with pytest.raises(HandnetError, match="unknown activation 'swishy'.*relu"):
        activations.get("swishy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_equals_its_two_branch_formula_bit_for_bit(dtype):
    """σ(z) = 1/(1 + e^{-z}) for z ≥ 0 and e^z/(1 + e^z) below, the textbook stable form."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 8, 5000), [0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 1e4, -1e4]])
    z = z.astype(dtype)
    e = np.exp(-np.abs(z))
    expected = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    np.testing.assert_array_equal(activations.Sigmoid().forward(z), expected)
    out = np.full_like(z, np.nan)
    assert activations.Sigmoid().forward(z, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("columns", [2, 10, 16, 17])
def test_row_max_of_many_narrow_rows_is_numpys_max(dtype, columns):
    """activations.row_max takes a running maximum over the columns of a batch of narrow rows
    (NARROW_ROWS, NARROW_COLUMNS): the same numbers as NumPy's max, NaN rows and infinities
    too, and so the same softmax and log-softmax bit for bit."""
    z = np.random.default_rng(0).normal(size=(activations.NARROW_ROWS + 3, columns)) * 30
    z = z.astype(dtype)
    z[5, columns - 1] = np.nan
    z[6, 0] = np.inf
    z[7, :] = -np.inf
    z[8, 1] = -np.inf
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(activations.row_max(z), z.max(axis=-1, keepdims=True))
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        np.testing.assert_array_equal(activations.softmax(z), e / e.sum(axis=-1, keepdims=True))
        np.testing.assert_array_equal(
            activations.log_softmax(z),
            shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)),
        )
