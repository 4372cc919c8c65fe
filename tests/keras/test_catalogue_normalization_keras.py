"""LayerNormalization, GroupNormalization and UnitNormalization against Keras 3 on the torch
backend: weights (names, shapes, initial values), y, ∂L/∂x and ∂L/∂(gamma, beta) within 1e-5
in float32 (tests/keras/catalogue_parity.py), and handnet's layer built from Keras's config.

Keras's torch backend computes LayerNormalization over *contiguous* axes with
torch.nn.functional.layer_norm, which normalizes the trailing axes: axis=1 of (N, T, D) then
normalizes D with T's shape (an error, or the wrong axis when T = D). handnet normalizes the
axes it is given; the cases here are the ones Keras gets right (trailing contiguous axes, and
non-contiguous axes, which Keras computes with ops.moments), plus the case Keras gets wrong,
checked against Keras's own non-torch formula.
"""

import warnings

import numpy as np
import pytest
from catalogue_parity import check_parity, config_round_trip

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

CASES = [
    ("LayerNormalization", {}, (6,)),
    ("LayerNormalization", {}, (3, 5)),
    ("LayerNormalization", {"axis": [-2, -1]}, (3, 4)),
    ("LayerNormalization", {"axis": [2, 3]}, (2, 3, 4)),
    ("LayerNormalization", {"axis": [1, 3]}, (2, 3, 4)),  # not contiguous: Keras's moments path
    ("LayerNormalization", {"axis": [1, 2, 3]}, (2, 3, 4)),
    ("LayerNormalization", {"epsilon": 0.5, "center": False}, (5,)),
    ("LayerNormalization", {"scale": False}, (2, 5)),
    ("LayerNormalization", {"scale": False, "center": False}, (2, 5)),
    ("LayerNormalization", {"rms_scaling": True}, (2, 5)),
    ("LayerNormalization", {"rms_scaling": True, "scale": False, "axis": [1, 2]}, (2, 5)),
    ("GroupNormalization", {"groups": 2}, (3, 3, 4)),
    ("GroupNormalization", {"groups": 3, "epsilon": 0.1}, (6,)),
    ("GroupNormalization", {"groups": 1}, (2, 4)),
    ("GroupNormalization", {"groups": -1}, (3, 4)),
    ("GroupNormalization", {"groups": 4, "center": False}, (2, 2, 8)),
    ("GroupNormalization", {"groups": 2, "scale": False}, (5, 4)),
    ("GroupNormalization", {"groups": 2, "axis": 1}, (4, 3)),
    ("GroupNormalization", {"groups": 3, "axis": -2}, (6, 2)),
    ("GroupNormalization", {"groups": 2, "axis": 2}, (3, 4, 2)),
    ("UnitNormalization", {}, (6,)),
    ("UnitNormalization", {}, (3, 5)),
    ("UnitNormalization", {"axis": 1}, (3, 5)),
    ("UnitNormalization", {"axis": [1, 2]}, (3, 5)),
    ("UnitNormalization", {"axis": [-1, 1]}, (2, 3, 4)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(keras, torch, case):
    kind, args, shape = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rms_scaling's deprecation notice
        check_parity(keras, torch, kind, args, shape)


def test_unit_normalization_below_the_floor_matches_keras_in_float64(keras, torch):
    """Below the floor ‖x‖ = 1e-12 the factor is held at 1e12: y and ∂L/∂x as Keras's. In
    float64 only: in float32 Keras's gradient there is 0 · rsqrt'(Σx²) with rsqrt' ∝ (Σx²)^(-3/2)
    beyond float32's range, 0 · ∞ = NaN (next test)."""
    x = np.random.default_rng(1).standard_normal((4, 5))
    x[1] = 1e-14
    x[2, :2] = 1e-15
    check_parity(keras, torch, "UnitNormalization", {}, (5,), x=x, dtype="float64")


def test_unit_normalization_below_the_floor_is_finite_where_keras_gives_nan(keras, torch):
    """At x = 0 (any dtype), and below the floor in float32, Keras's gradient is NaN; the layer
    is y = x · 1e12 there, so handnet gives its derivative dx = dy · 1e12."""
    for x in (np.zeros((1, 3), "float32"), np.full((1, 3), 1e-14, "float32")):
        x_torch = torch.tensor(x, requires_grad=True)
        keras.layers.UnitNormalization()(x_torch).sum().backward()
        assert np.isnan(x_torch.grad.numpy()).all()
        layer = hn.layers.UnitNormalization()
        np.testing.assert_allclose(layer(x), x * 1e12, rtol=1e-6)
        np.testing.assert_allclose(layer.backward(np.ones((1, 3), "float32")), 1e12, rtol=1e-6)


def test_layer_normalization_on_a_contiguous_inner_axis(keras, torch):
    """axis=1 of (N, T, D): handnet normalizes T. Keras's torch backend hands this to
    F.layer_norm, which normalizes the last axis; its moments path (any non-torch backend, and
    torch for non-contiguous axes) is the definition, reproduced here with keras.ops."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5)).astype("float32")
    layer = hn.layers.LayerNormalization(axis=1, epsilon=0.01)
    y = layer(x)
    assert layer.params["gamma"].shape == (3,)
    x_torch = torch.tensor(x)
    mean, variance = keras.ops.moments(x_torch, axes=[1], keepdims=True)
    expected = (x_torch - mean) * keras.ops.rsqrt(variance + 0.01)
    assert relative_error(y, expected.numpy()) < 1e-5


CONFIG_KEYS = {
    "LayerNormalization": ("axis", "epsilon", "center", "scale", "rms_scaling"),
    "GroupNormalization": ("groups", "axis", "epsilon", "center", "scale"),
    "UnitNormalization": ("axis",),
}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_built_from_the_keras_config(keras, case):
    kind, args, _ = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layer = config_round_trip(keras, kind, args, CONFIG_KEYS[kind])
    config = layer.get_config()
    for key, value in args.items():
        assert config[key] == value
