"""Every activation string Keras 3 writes, against Keras itself (torch backend) as the oracle.

For each name handnet registers: the forward values and the derivative against
keras.activations.get(name) and torch autograd through it, a float64 gradient check inside a
Dense layer, the name handnet writes against the one Keras writes, and a Keras model saved as
.keras and imported. Keras's strings handnet does not take are refused by the importer
(glu changes the shape, threshold cannot run without arguments, sparsemax is wrong in Keras 3.15).
Also Φ (handnet.special.normal_cdf, which GELU needs) against mpmath.
"""

import os
import warnings

import numpy as np
import pytest

import handnet as hn
from handnet import activations, special
from handnet.errors import HandnetError
from handnet.keras_io.layer_map import layer_from_keras
from handnet.layers import Dense

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported

NAMES = sorted(activations.ACTIVATIONS)
#: Where some activation's derivative jumps; the gradient check keeps clear of them.
KINKS = (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0)
#: e^z is inf beyond this in float32, in Keras as in handnet.
EXP_LIMIT = 88.0



def uses_keras(test):
    """Marks a test keras (the oracle extra); mutes Keras's own NumPy 2 deprecation warnings."""
    test = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")(test)
    return pytest.mark.keras(test)


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only wait on each other
    yield keras
    torch.set_num_threads(threads)


def inputs(name, dtype=np.float32):
    """Rows of 8: a fine grid over [-10, 10] (the kinks included), then tiny and huge |z|."""
    grid = np.linspace(-10, 10, 1601)
    magnitudes = np.array([1e-6, 1e-3, 20, 30, 50, 100, 1e3, 1e4])
    z = np.concatenate([grid, magnitudes, -magnitudes, [7, -7, 0.25, -0.25, 2, -2, 4.5]])  # 203 × 8
    if name == "exponential":
        z = np.minimum(z, EXP_LIMIT)
    return z.astype(dtype).reshape(-1, 8)


GRID_ROWS = slice(0, 200)  # the inputs' rows that hold [-10, 10]


def keras_function(keras, name, z):
    """keras.activations.get(name), what Dense(activation=name) calls, on an array or tensor."""
    import torch

    return keras.activations.get(name)(torch.as_tensor(z))


# -- forward and derivative against Keras ----------------------------------------------------
@uses_keras
@pytest.mark.parametrize("name", NAMES)
def test_forward_float32(keras, name):
    z = inputs(name)
    ours = activations.get(name).forward(z.copy())
    assert ours.dtype == np.float32
    # Against the function itself (Keras in float64) everywhere, and against Keras's float32
    # numbers on [-10, 10]: for large |z| Keras's float32 squareplus cancels (0 at z = -1e4).
    exact = keras_function(keras, name, z.astype(np.float64)).numpy()
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-6)
    theirs = keras_function(keras, name, z[GRID_ROWS]).numpy()
    np.testing.assert_allclose(ours[GRID_ROWS], theirs, rtol=1e-6, atol=1e-6)


@uses_keras
@pytest.mark.parametrize("name", NAMES)
def test_forward_float64_is_the_same_formula(keras, name):
    z = inputs(name, np.float64)
    theirs = keras_function(keras, name, z).numpy()
    ours = activations.get(name).forward(z.copy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@uses_keras
@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_torch_autograd(keras, name):
    """Kinks included: at each, handnet takes the one-sided value autograd takes."""
    import torch

    z = inputs(name)
    upstream = np.random.default_rng(0).standard_normal(z.shape).astype(np.float32)
    z_torch = torch.from_numpy(z.copy()).requires_grad_(True)
    keras_function(keras, name, z_torch).backward(torch.from_numpy(upstream))
    activation = activations.get(name)
    a = activation.forward(z.copy())
    saved = upstream.copy()
    dz = activation.backward(upstream, z if activation.uses_input else None, a)
    np.testing.assert_array_equal(upstream, saved)  # da belongs to the caller
    assert dz.dtype == np.float32
    np.testing.assert_allclose(dz, z_torch.grad.numpy(), rtol=1e-5, atol=1e-5)


# -- gradient check, names, stability ----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_dense_gradcheck_float64(name):
    """Pre-activations spread over [-7.7, 7.3], each ≥ 0.1 from every kink: x is solved for them."""
    rng = np.random.default_rng(1)
    layer = Dense(6, activation=name, dtype="float64")
    layer.build((6,), rng)
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    bias[...] = rng.standard_normal(6)
    targets = rng.permutation(np.linspace(-7.7, 7.3, 18)).reshape(3, 6)
    assert np.abs(targets[..., None] - np.array(KINKS)).min() > 0.1
    # x @ kernel + bias = targets; C order, since gradcheck perturbs x through x.reshape(-1)
    x = np.ascontiguousarray(np.linalg.solve(kernel.T, (targets - bias).T).T)
    np.testing.assert_allclose(x @ kernel + bias, targets, atol=1e-9)
    report = hn.gradcheck(layer, x=x)
    assert report.passed and report.worst < 1e-7, f"\n{report}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_no_overflow_or_nan_for_huge_inputs(name, dtype):
    z = np.array([[1e4, -1e4, 1e3, -1e3, 0.5, 0.0]], dtype=dtype)
    if name == "exponential":
        z = np.minimum(z, EXP_LIMIT)  # e^1e4 is inf: the true value, unrepresentable
    activation = activations.get(name)
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        a = activation.forward(z.copy())
        dz = activation.backward(np.ones_like(z), z, a)
    assert np.isfinite(a).all() and np.isfinite(dz).all()
    assert a.dtype == dz.dtype == dtype


@uses_keras
@pytest.mark.parametrize("name", NAMES)
def test_serialize_writes_the_name_keras_writes(keras, name):
    keras_name = keras.activations.serialize(keras.activations.get(name))
    ours = activations.get(name)
    assert activations.serialize(ours) == keras_name
    assert type(activations.get(activations.serialize(ours))) is type(ours)


def test_aliases_are_the_same_functions():
    assert type(activations.get("swish")) is activations.SiLU
    assert type(activations.get("hard_swish")) is activations.HardSiLU


# -- Keras models ---------------------------------------------------------------------------------
@uses_keras
@pytest.mark.parametrize("name", NAMES)
def test_keras_model_with_the_activation_imports(keras, name, tmp_path):
    """Dense(activation=name) then Activation(name): both ways Keras writes an activation."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation=name), keras.layers.Activation(name)]
    )
    path = tmp_path / f"{name}.keras"
    model.save(path)
    ours = hn.from_keras(path)
    assert [activations.serialize(layer.activation) for layer in ours.layers] == [
        keras.activations.serialize(keras.activations.get(name))
    ] * 2
    x = np.random.default_rng(0).uniform(-2, 2, (16, 6)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["glu", "threshold", "sparsemax"])
def test_keras_strings_handnet_lacks_are_refused_by_name(name):
    with pytest.raises(HandnetError, match=f"activation={name!r} is not supported"):
        layer_from_keras("Dense", {"name": "d", "units": 4, "activation": name})


# -- the normal CDF behind GELU ------------------------------------------------------------------
def test_normal_cdf_matches_mpmath():
    """Φ to float64 accuracy down to Φ ≈ 1e-300 (x = -37; beyond, float64 has only denormals).

    The oracle is mpmath at 30 digits: math.erfc itself is off by up to 1e-14 in the tail.
    """
    mpmath = pytest.importorskip("mpmath")
    x = np.concatenate([np.linspace(-37, 37, 1481), [0.67448975, 32**0.5, -(32**0.5)]])
    with mpmath.workdps(30):
        exact = np.array([float(mpmath.ncdf(v)) for v in x])
        pdf = np.array([float(mpmath.npdf(v)) for v in x])
    relative = np.abs(special.normal_cdf(x) - exact) / exact
    assert relative.max() < 1e-13  # the rounding of x² in e^{-x²/2}: ~x² · 1e-16 / 2
    assert relative[np.abs(x) <= 10].max() < 1e-14
    np.testing.assert_allclose(special.normal_pdf(x), pdf, rtol=1e-13, atol=0)


def test_normal_cdf_is_finite_and_exact_at_the_extremes():
    x = np.array([-1e300, -1e4, -40.0, 0.0, 40.0, 1e4, 1e300])
    with np.errstate(all="raise", under="ignore"):
        np.testing.assert_array_equal(special.normal_cdf(x), [0, 0, 0, 0.5, 1, 1, 1])
        np.testing.assert_array_equal(special.normal_pdf(x)[[0, 1, 5, 6]], 0)
