"""Merge layers against Keras 3 on the torch backend: for random inputs and a random upstream
gradient g, y and ∂L/∂x_k of L = Σ y · g for every input k equal torch autograd's through the
Keras layer within 1e-5 (the gradcheck measure: worst entry / largest entry), in float32 and
float64. Maximum and Minimum on inputs with exact ties (two-, three- and four-way) match Keras's
gradient bit for bit. Shapes Keras refuses, handnet refuses.

Keras 3's type promotion maps 64-bit results to 32 bits (dtypes.BIT64_TO_BIT32_DTYPE, to match
JAX), so its Maximum, Minimum and Dot compute float64 inputs in float32: in float64 Keras is an
oracle to float32 precision only (well inside 1e-5); the float64 gradient checks are in
tests/layers/test_merging.py."""

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
MANY_INPUTS = ["Add", "Multiply", "Average", "Maximum", "Minimum"]

# (Keras class, arguments, per-sample input shapes)
CASES = [
    *[(kind, {}, [(3, 4), (3, 4)]) for kind in ELEMENTWISE],
    *[(kind, {}, [(3, 4), (4,)]) for kind in ELEMENTWISE],  # a lower rank: axes inserted after N
    *[(kind, {}, [(3, 1), (1, 4)]) for kind in ELEMENTWISE],  # sizes of 1 stretch
    *[(kind, {}, [(5,)] * 3) for kind in MANY_INPUTS],
    *[(kind, {}, [(2, 3, 1), (3, 4), (1,), (2, 1, 4)]) for kind in MANY_INPUTS],
    *[(kind, {}, [(5,)]) for kind in [*MANY_INPUTS, "Concatenate"]],  # Keras 3 takes one input
    ("Concatenate", {}, [(3,), (5,)]),
    ("Concatenate", {"axis": 1}, [(3,), (2,), (4,)]),
    ("Concatenate", {"axis": -1}, [(2, 3), (2, 5)]),
    ("Concatenate", {"axis": 1}, [(2, 3), (4, 3)]),
    ("Concatenate", {"axis": -2}, [(2, 3), (1, 3), (3, 3)]),
    ("Concatenate", {"axis": 2}, [(2, 3, 4), (2, 1, 4)]),
    ("Concatenate", {"axis": 3}, [(2, 3, 4), (2, 3, 2)]),
    *[
        ("Dot", {"axes": axes, "normalize": normalize}, shapes)
        for normalize in (False, True)
        for shapes, axes in [
            ([(6,), (6,)], 1),
            ([(6,), (6,)], -1),
            ([(3, 4), (5, 4)], 2),
            ([(3, 4), (5, 4)], -1),
            ([(4, 3), (4, 5)], 1),
            ([(3, 4), (4, 5)], (2, 1)),
            ([(3, 4), (4, 3)], (-1, -2)),
            ([(3, 4), (4,)], (2, 1)),
            ([(4,), (4, 5)], (1, -2)),
            ([(2, 3, 4), (4, 2, 5)], (3, 1)),
            ([(2, 3, 4), (3, 5)], (2, 1)),
        ]
    ],
]


def case_id(case):
    kind, args, shapes = case
    return f"{kind}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shapes}"


def keras_forward_backward(keras, torch, kind, args, xs, dtype, rng):
    """y and [∂L/∂x_k] through the Keras layer, L = Σ y · g, g drawn from rng (returned too)."""
    layer = getattr(keras.layers, kind)(**args, dtype=dtype)
    tensors = [torch.tensor(x, requires_grad=True) for x in xs]
    y = layer(tensors)
    upstream = rng.standard_normal(tuple(y.shape)).astype(dtype)
    (y * torch.tensor(upstream)).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in tensors], upstream, layer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_outputs_and_gradients_match_keras(keras, torch, case, dtype):
    kind, args, shapes = case
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, *shape)).astype(dtype) for shape in shapes]
    y_keras, grads_keras, upstream, keras_layer = keras_forward_backward(
        keras, torch, kind, args, xs, dtype, rng
    )
    # handnet's layer from Keras's own config: the argument names are Keras's.
    config = {
        k: v for k, v in keras_layer.get_config().items() if k in ("axis", "axes", "normalize")
    }
    layer = getattr(hn.layers, kind).from_config({**config, "dtype": dtype})
    y = layer([x.copy() for x in xs])
    grads = layer.backward(upstream)
    assert y.shape == y_keras.shape and y.dtype == dtype
    assert relative_error(y, y_keras) < TOLERANCE
    assert len(grads) == len(grads_keras)
    for k, (dx, dx_keras) in enumerate(zip(grads, grads_keras)):
        assert dx.shape == dx_keras.shape and dx.dtype == dtype
        error = relative_error(dx, dx_keras)
        assert error < TOLERANCE, f"∂L/∂x{k + 1}: {error:.1e}"


def tied_inputs(rng, count, shape, dtype):
    """Inputs drawn from {0, 1, 2}: most columns hold ties, many of them three- and four-way."""
    return [rng.integers(0, 3, (6, *shape)).astype(dtype) for _ in range(count)]


@pytest.mark.parametrize("count", [2, 3, 4])
@pytest.mark.parametrize("kind", ["Maximum", "Minimum"])
def test_ties_match_keras_exactly(keras, torch, kind, count):
    """float32 only: Keras's Maximum rounds float64 through float32 (see the module docstring)."""
    dtype = "float32"
    rng = np.random.default_rng(count)
    xs = tied_inputs(rng, count, (8,), dtype)
    stacked = np.stack(xs)
    extreme = stacked.max(axis=0) if kind == "Maximum" else stacked.min(axis=0)
    tie_sizes = (stacked == extreme).sum(axis=0)
    assert (tie_sizes >= 2).any() and (count < 3 or (tie_sizes >= 3).any())
    y_keras, grads_keras, upstream, _ = keras_forward_backward(
        keras, torch, kind, {}, xs, dtype, rng
    )
    layer = getattr(hn.layers, kind)(dtype=dtype)
    np.testing.assert_array_equal(layer(xs), y_keras)
    for dx, dx_keras in zip(layer.backward(upstream), grads_keras):
        np.testing.assert_array_equal(dx, dx_keras)


@pytest.mark.parametrize("kind", ["Maximum", "Minimum"])
def test_ties_with_broadcasting_match_keras(keras, torch, kind):
    """Broadcast inputs with ties: the shares are exact, the sums over the stretched axes may
    add in another order, so here the check is the usual 1e-5 (float32)."""
    rng = np.random.default_rng(7)
    xs = [rng.integers(0, 3, (6, *s)).astype("float32") for s in [(3, 4), (4,), (3, 1)]]
    y_keras, grads_keras, upstream, _ = keras_forward_backward(
        keras, torch, kind, {}, xs, "float32", rng
    )
    layer = getattr(hn.layers, kind)()
    np.testing.assert_array_equal(layer(xs), y_keras)
    for dx, dx_keras in zip(layer.backward(upstream), grads_keras):
        assert relative_error(dx, dx_keras) < TOLERANCE


def test_dot_normalize_below_the_floor_matches_keras_and_zero_is_finite(keras, torch):
    """A slice with ‖x‖ < 1e-7 is divided by 1e-7 in both; an all-zero slice gets NaN from
    Keras's rsqrt on torch, and dx̂ / ε from handnet."""
    rng = np.random.default_rng(3)
    tiny = np.full((4, 5), 1e-9, dtype="float32")
    other = rng.standard_normal((4, 5)).astype("float32")
    y_keras, grads_keras, upstream, _ = keras_forward_backward(
        keras, torch, "Dot", {"axes": 1, "normalize": True}, [tiny, other], "float32", rng
    )
    layer = hn.layers.Dot(axes=1, normalize=True)
    assert relative_error(layer([tiny, other]), y_keras) < TOLERANCE
    for dx, dx_keras in zip(layer.backward(upstream), grads_keras):
        assert relative_error(dx, dx_keras) < TOLERANCE

    zero = np.zeros((4, 5), dtype="float32")
    _, grads_keras, upstream, _ = keras_forward_backward(
        keras, torch, "Dot", {"axes": 1, "normalize": True}, [zero, other], "float32", rng
    )
    assert np.isnan(grads_keras[0]).all()
    layer([zero, other])
    dx1, dx2 = layer.backward(upstream)
    normalized = other / np.linalg.norm(other, axis=1, keepdims=True)
    np.testing.assert_allclose(dx1, upstream * normalized / 1e-7, rtol=1e-5)
    np.testing.assert_allclose(dx2, grads_keras[1], atol=0)  # zero: x̂₁ = 0


@pytest.mark.parametrize(
    "kind, args, shapes",
    [
        ("Add", {}, [(3,), (4,)]),
        ("Maximum", {}, [(2, 3), (3, 2)]),
        ("Subtract", {}, [(3,)] * 3),
        ("Concatenate", {}, [(2, 3), (3, 3)]),
        ("Concatenate", {"axis": 1}, [(3,), (1, 3)]),
        ("Dot", {"axes": 1}, [(3,), (4,)]),
        ("Dot", {"axes": 0}, [(3,), (3,)]),
        ("Dot", {"axes": 2}, [(2, 3), (3, 2)]),
    ],
    ids=str,
)
def test_what_keras_refuses_handnet_refuses(keras, kind, args, shapes):
    xs = [np.zeros((2, *shape), dtype="float32") for shape in shapes]
    with pytest.raises(ValueError):
        getattr(keras.layers, kind)(**args)(xs)
    with pytest.raises(HandnetError, match=kind):
        getattr(hn.layers, kind)(**args)(xs)


def test_concatenate_on_the_batch_axis_is_refused_where_keras_allows_it(keras):
    """Deliberate: Keras joins along the batch (2N samples); a per-sample layer cannot."""
    xs = [np.zeros((2, 3), dtype="float32")] * 2
    assert tuple(keras.layers.Concatenate(axis=0)(xs).shape) == (4, 3)
    with pytest.raises(HandnetError, match="batch axis"):
        hn.layers.Concatenate(axis=0)(xs)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_output_shape_is_keras_compute_output_shape(keras, case):
    kind, args, shapes = case
    keras_shape = getattr(keras.layers, kind)(**args).compute_output_shape(
        [(None, *shape) for shape in shapes]
    )
    layer = getattr(hn.layers, kind)(**args)
    layer.build(shapes)
    assert (None, *layer.output_shape) == tuple(keras_shape)
