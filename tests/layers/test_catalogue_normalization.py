"""LayerNormalization, GroupNormalization, UnitNormalization: gradient checks in float64 with
random upstream gradients (every weight and the input), hand cases, configs, clear errors.
Keras is the oracle in tests/keras/test_catalogue_normalization_keras.py."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import GroupNormalization, LayerNormalization, UnitNormalization

TOLERANCE = 1e-7


def uniform(low, high):
    """An initializer away from γ = 1, β = 0, so that a missing γ or β cannot hide."""
    return lambda shape, rng, dtype: rng.uniform(low, high, shape).astype(dtype)


RANDOM_WEIGHTS = {"gamma_initializer": uniform(0.5, 2.0), "beta_initializer": uniform(-1, 1)}

GRADCHECK_CASES = [
    (LayerNormalization, {}, (5,)),
    (LayerNormalization, {}, (3, 4)),
    (LayerNormalization, {"axis": 1}, (3, 4)),
    (LayerNormalization, {"axis": [1, 3]}, (2, 3, 2)),
    (LayerNormalization, {"axis": [-2, -1], "epsilon": 0.5}, (3, 2)),
    (LayerNormalization, {"center": False}, (4,)),
    (LayerNormalization, {"scale": False}, (4,)),
    (LayerNormalization, {"rms_scaling": True}, (2, 4)),
    (LayerNormalization, {"rms_scaling": True, "axis": [1, 2]}, (2, 3)),
    (GroupNormalization, {"groups": 2}, (3, 3, 4)),
    (GroupNormalization, {"groups": 3, "axis": 1}, (6, 2)),
    (GroupNormalization, {"groups": -1}, (3, 2)),
    (GroupNormalization, {"groups": 1, "center": False}, (2, 3)),
    (GroupNormalization, {"groups": 2, "scale": False}, (2, 4)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind.__name__}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=case_id)
def test_backward_matches_central_differences(case):
    kind, args, shape = case
    layer = kind(**args, **RANDOM_WEIGHTS)
    report = hn.gradcheck(layer, input_shape=shape, batch_size=3)
    assert report.passed and report.worst < TOLERANCE, f"\n{report}"
    layer.build(shape)
    assert {row.quantity for row in report.rows} == {"x", *layer.params}


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_normalization_gradcheck(axis):
    report = hn.gradcheck(UnitNormalization(axis=axis), input_shape=(3, 4), batch_size=3)
    assert report.passed and report.worst < TOLERANCE, f"\n{report}"


def test_unit_normalization_gradcheck_below_the_floor():
    """Rows with ‖x‖ < 1e-12: y = x · 1e12, a linear map, and gradcheck sees it (h scaled)."""
    x = np.random.default_rng(0).standard_normal((3, 4)) * 1e-14
    report = hn.gradcheck(UnitNormalization(), x=x, h=1e-16)
    assert report.passed, f"\n{report}"


def test_layer_normalization_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])  # μ = 3, v = (4 + 1 + 0 + 9) / 4 = 3.5
    layer = LayerNormalization(epsilon=0.5, dtype="float64")
    np.testing.assert_allclose(layer(x), (x - 3) / 2)
    rms = LayerNormalization(epsilon=0.5, rms_scaling=True, dtype="float64")
    np.testing.assert_allclose(rms(x), x / 2)  # the mean is not subtracted
    assert sorted(rms.params) == ["gamma"]  # as Keras: rms_scaling keeps γ, drops β
    no_scale = LayerNormalization(rms_scaling=True, scale=False)
    no_scale.build((4,))
    assert sorted(no_scale.params) == ["gamma"]


def test_layer_normalization_weight_shapes_follow_the_axes():
    layer = LayerNormalization(axis=[3, 1])
    layer.build((2, 3, 4))
    assert layer.params["gamma"].shape == (2, 4) and layer.params["beta"].shape == (2, 4)
    assert layer.get_config()["axis"] == [3, 1]  # as given; Keras sorts it at build


def test_each_sample_is_normalized_alone():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4))
    for layer in (LayerNormalization(dtype="float64"), GroupNormalization(2, dtype="float64"),
                  UnitNormalization(dtype="float64")):
        whole = layer(x)
        np.testing.assert_allclose(np.concatenate([layer(x[i:i + 1]) for i in range(5)]), whole)
        np.testing.assert_allclose(layer(x, training=True), whole)


def test_group_normalization_by_hand():
    """Channels 0, 1 form group 0 and channels 2, 3 group 1, each normalized over (L, C/G)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4))
    y = GroupNormalization(groups=2, epsilon=1e-3, dtype="float64")(x)
    for group in (slice(0, 2), slice(2, 4)):
        part = x[:, :, group]
        mean = part.mean(axis=(1, 2), keepdims=True)
        variance = part.var(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(y[:, :, group], (part - mean) / np.sqrt(variance + 1e-3))
    instance = GroupNormalization(groups=-1, dtype="float64")
    instance(x)
    assert instance.groups == 4 and instance.get_config()["groups"] == 4


def test_unit_normalization_by_hand():
    layer = UnitNormalization(dtype="float64")
    np.testing.assert_allclose(layer(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0, 0]])
    np.testing.assert_allclose(layer.backward(np.array([[1.0, 0.0], [1.0, 1.0]])),
                               [[0.64 / 5, -0.48 / 5], [1e12, 1e12]])  # (dy - ŷ(dy·ŷ)) / r


@pytest.mark.parametrize("layer", [LayerNormalization(), GroupNormalization(2),
                                   UnitNormalization()], ids=lambda layer: type(layer).__name__)
def test_backward_leaves_dy_untouched(layer):
    rng = np.random.default_rng(0)
    layer(rng.standard_normal((3, 2, 4)).astype("float32"))
    dy = rng.standard_normal((3, 2, 4)).astype("float32")
    before = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(dy, before)


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=case_id)
def test_float32_is_the_float64_layer_to_float32_accuracy(case):
    """float32 sums its groups over trailing axes as products with a vector of ones (float64
    with NumPy's reduction): the two layers, given the same weights, agree to float32's
    accuracy, forward and backward, and neither x nor dy changes."""
    kind, args, shape = case
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, *shape)) * 3 + 2).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    single = kind(**args, **RANDOM_WEIGHTS)
    double = kind(**args, **RANDOM_WEIGHTS, dtype="float64")
    single.build(shape, np.random.default_rng(6))
    double.build(shape, np.random.default_rng(6))
    x_before, dy_before = x.copy(), dy.copy()
    y, dx = single.forward(x), single.backward(dy)
    y64, dx64 = double.forward(x.astype(np.float64)), double.backward(dy.astype(np.float64))
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, y64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, dx64, rtol=1e-4, atol=1e-5)
    for name in single.grads:
        np.testing.assert_allclose(single.grads[name], double.grads[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        LayerNormalization(axis=[1, 2], epsilon=0.01, center=False, rms_scaling=True),
        GroupNormalization(groups=4, axis=1, epsilon=0.1, scale=False),
        UnitNormalization(axis=[1, -1]),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    twin = type(layer).from_config(config)
    assert twin.get_config() == layer.get_config()
    assert hn.layers.deserialize(hn.layers.serialize(layer)).get_config() == layer.get_config()


def test_explain():
    for layer in (LayerNormalization(), LayerNormalization(rms_scaling=True),
                  GroupNormalization(4), UnitNormalization()):
        headline, formula = layer.explain()
        assert headline and formula.startswith("y")
    assert "mean" not in LayerNormalization(rms_scaling=True).explain()[1]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LayerNormalization(axis="last"), "axis must be an int or a list"),
        (lambda: LayerNormalization(axis=[]), "axis must be an int or a list"),
        (lambda: LayerNormalization(epsilon=0), "epsilon must be a number > 0"),
        (lambda: LayerNormalization(axis=0).build((3,)), "batch axis 0 is not allowed"),
        (lambda: LayerNormalization(axis=3).build((3, 4)), "axis 3 must name axes 1…2"),
        (lambda: LayerNormalization(axis=[1, -2]).build((3, 4)), "names an axis twice"),
        (lambda: GroupNormalization(groups=0), "groups must be an int >= 1"),
        (lambda: GroupNormalization(axis=[1]), "axis must be one int"),
        (lambda: GroupNormalization(groups=3).build((4,)), "cannot be split into 3"),
        (lambda: GroupNormalization().build((8,)), "cannot be split into 32"),
        (lambda: UnitNormalization(axis=1.5), "axis must be an int or a list"),
        (lambda: UnitNormalization(axis=-3).build((4,)), "the batch axis 0 is not allowed"),
    ],
)
def test_clear_errors(make, message):
    with pytest.raises(HandnetError, match=message):
        make()


def test_wrong_input_shape_is_refused():
    layer = LayerNormalization()
    layer.build((4,))
    with pytest.raises(InvalidInputError, match=r"expected input shape \(None, 4\)"):
        layer(np.zeros((2, 5), "float32"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_last_axis_shortcut_is_the_broadcast_path_bit_for_bit(dtype):
    """axis=-1 hands γ and β (D,) to NumPy as they are; the same layer made to reshape them
    to (1, 1, D) (the path every other axis takes) gives the same bits, forward and backward,
    and a second call (the cached vector of ones) the same as the first."""
    rng = np.random.default_rng(0)
    layer = LayerNormalization(**RANDOM_WEIGHTS)
    layer.build((7, 6), rng=rng)
    layer.cast(np.dtype(dtype).name)
    assert layer._last_only
    x = rng.standard_normal((3, 7, 6)).astype(dtype)
    dy = rng.standard_normal((3, 7, 6)).astype(dtype)
    fast = layer.forward(x).copy()
    dx_fast = layer.backward(dy)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer._last_only = False
    np.testing.assert_array_equal(layer.forward(x), fast)
    np.testing.assert_array_equal(layer.backward(dy), dx_fast)
    for key, grad in grads.items():
        np.testing.assert_array_equal(layer.grads[key], grad)
    layer._last_only = True
    np.testing.assert_array_equal(layer.forward(x), fast)
    mean = x.mean(axis=-1, keepdims=True)
    expected = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + 1e-3)
    gamma, beta = layer.params["gamma"], layer.params["beta"]
    np.testing.assert_allclose(fast, expected * gamma + beta, rtol=1e-5, atol=1e-5)
