"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot): hand
cases, gradient checks in float64 against central differences for every input, dy left
untouched, clear errors, configs. Keras on the torch backend is the oracle in
tests/keras/test_merging_keras.py.
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.gradcheck import DEFAULT_TOLERANCE, relative_error
from handnet.layers import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Merge,
    Minimum,
    Multiply,
    Subtract,
)

ELEMENTWISE = [Add, Subtract, Multiply, Average, Maximum, Minimum]
MANY_INPUTS = [Add, Multiply, Average, Maximum, Minimum]  # the ones that take K > 2


def merge_gradcheck(layer, shapes, batch=3, seed=0, h=1e-6, inputs=None):
    """Relative errors of ∂L/∂x_k, one per input, for L = Σ y ⊙ g with a random g: backward
    against central differences (L(x + h e_i) - L(x - h e_i)) / 2h, in float64."""
    rng = np.random.default_rng(seed)
    layer.build(shapes)
    layer.cast("float64")
    xs = inputs or [rng.standard_normal((batch, *shape)) for shape in shapes]
    upstream = rng.standard_normal((batch, *layer.output_shape))
    layer.forward(xs)
    analytic = layer.backward(upstream)
    assert [dx.shape for dx in analytic] == [x.shape for x in xs]
    assert all(dx.dtype == np.float64 for dx in analytic)
    errors = []
    for x, dx in zip(xs, analytic):
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            saved = x[i]
            x[i] = saved + h
            plus = float((layer.forward(xs) * upstream).sum())
            x[i] = saved - h
            minus = float((layer.forward(xs) * upstream).sum())
            x[i] = saved
            numeric[i] = (plus - minus) / (2 * h)
        errors.append(relative_error(dx, numeric))
    return errors


def assert_gradients_pass(layer, shapes, **kwargs):
    errors = merge_gradcheck(layer, shapes, **kwargs)
    assert max(errors) < DEFAULT_TOLERANCE, f"{layer!r} on {shapes}: errors {errors}"


# -- hand-computed cases ---------------------------------------------------------------------------
def test_elementwise_by_hand():
    a, b, c = np.array([[1.0, -2.0, 3.0]]), np.array([[4.0, 5.0, -6.0]]), np.array([[0.5, 2, 1]])
    np.testing.assert_array_equal(Add()([a, b, c]), [[5.5, 5, -2]])
    np.testing.assert_array_equal(Subtract()([a, b]), [[-3, -7, 9]])
    np.testing.assert_array_equal(Multiply()([a, b, c]), [[2, -20, -18]])
    np.testing.assert_array_equal(Average()([a, b]), [[2.5, 1.5, -1.5]])
    np.testing.assert_array_equal(Maximum()([a, b, c]), [[4, 5, 3]])
    np.testing.assert_array_equal(Minimum()([a, b, c]), [[0.5, -2, -6]])


def test_backward_by_hand():
    a, b, c = np.array([[1.0, 0.0, 3.0]]), np.array([[4.0, 5.0, -6.0]]), np.array([[2.0, 2, 1]])
    dy = np.array([[1.0, 10.0, 100.0]])
    add, subtract, average, multiply = Add(), Subtract(), Average(), Multiply()
    add([a, b, c]), subtract([a, b]), average([a, b, c]), multiply([a, b, c])
    for dx in add.backward(dy):
        np.testing.assert_array_equal(dx, dy)
    np.testing.assert_array_equal(np.stack(subtract.backward(dy)), [dy, -dy])
    for dx in average.backward(dy):
        np.testing.assert_array_equal(dx, dy / 3)
    # dx_k = dy ⊙ Π_{j≠k} x_j, exact where another input is 0 (no division by x_k).
    np.testing.assert_array_equal(
        np.stack(multiply.backward(dy))[:, 0], [[8, 100, -600], [2, 0, 300], [4, 0, -1800]]
    )


@pytest.mark.parametrize("kind", [Maximum, Minimum])
def test_ties_split_in_halves_pairwise_left_to_right(kind):
    """The rule of torch.maximum/minimum folded left: a tie at a step gives each side half."""
    sign = 1 if kind is Maximum else -1
    layer = kind(dtype="float64")
    # columns: three-way tie | x₁ = x₂ tie, x₃ loses | x₁ = x₃ tie, x₂ loses | x₂ wins | no tie
    x1 = sign * np.array([[1.0, 3.0, 2.0, 0.0, 5.0]])
    x2 = sign * np.array([[1.0, 3.0, 1.0, 4.0, 4.0]])
    x3 = sign * np.array([[1.0, 0.0, 2.0, 4.0, 6.0]])
    np.testing.assert_array_equal(layer([x1, x2, x3]), sign * np.array([[1, 3, 2, 4, 6]]))
    dx1, dx2, dx3 = layer.backward(np.full((1, 5), 8.0))
    np.testing.assert_array_equal(dx1, [[2, 4, 4, 0, 0]])
    np.testing.assert_array_equal(dx2, [[2, 4, 0, 4, 0]])  # x₂ = x₃ = 4: ½ of x₂'s step, ½ to x₃
    np.testing.assert_array_equal(dx3, [[4, 0, 4, 4, 8]])
    two = kind(dtype="float64")
    two([x1[:, :1], x2[:, :1]])
    np.testing.assert_array_equal(np.concatenate(two.backward(np.array([[6.0]]))), [[3], [3]])


def test_four_way_tie_gives_powers_of_a_half():
    layer = Maximum(dtype="float64")
    x = np.ones((1, 1))
    layer([x, x, x, x])
    shares = [dx.item() for dx in layer.backward(np.array([[16.0]]))]
    assert shares == [2, 2, 4, 8]


def test_broadcasting_follows_keras():
    """A lower-rank input gets axes of size 1 after the batch axis; sizes of 1 stretch."""
    layer = Add(dtype="float64")
    a, b = np.ones((2, 3, 4)), np.arange(8.0).reshape(2, 4)
    y = layer([a, b])
    assert layer.output_shape == (3, 4)
    np.testing.assert_array_equal(y, 1 + b[:, None, :].repeat(3, axis=1))
    da, db = layer.backward(np.ones((2, 3, 4)))
    np.testing.assert_array_equal(db, np.full((2, 4), 3.0))  # used by 3 rows: 3 shares
    assert da.shape == a.shape
    assert Multiply().compute_output_shape([(3, 1), (1, 4)]) == (3, 4)
    assert Maximum().compute_output_shape([(2, 3, 1), (3, 4), ()]) == (2, 3, 4)


def test_concatenate_by_hand():
    a, b = np.arange(6.0).reshape(1, 2, 3), 10 + np.arange(3.0).reshape(1, 1, 3)
    layer = Concatenate(axis=1)
    np.testing.assert_array_equal(layer([a, b])[0], [[0, 1, 2], [3, 4, 5], [10, 11, 12]])
    da, db = layer.backward(np.arange(9.0).reshape(1, 3, 3))
    np.testing.assert_array_equal(da[0], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(db[0], [[6, 7, 8]])
    assert Concatenate().compute_output_shape([(2, 3), (2, 5), (2, 1)]) == (2, 9)
    assert Concatenate(axis=-2).compute_output_shape([(2, 3), (4, 3)]) == (6, 3)


def test_dot_by_hand():
    a, b = np.array([[1.0, 2.0, 3.0]]), np.array([[4.0, -5.0, 6.0]])
    layer = Dot(axes=1)
    np.testing.assert_array_equal(layer([a, b]), [[12]])  # (N, d)·(N, d) -> (N, 1)
    da, db = layer.backward(np.array([[2.0]]))
    np.testing.assert_array_equal(da, 2 * b)
    np.testing.assert_array_equal(db, 2 * a)
    cosine = Dot(axes=-1, normalize=True)
    np.testing.assert_allclose(cosine([a, 3 * a]), [[1.0]])
    np.testing.assert_allclose(cosine([a, -a]), [[-1.0]])
    # d cos/dx₁ at x₂ ∥ x₁ is 0: the part of dx̂ along x̂ drops out.
    np.testing.assert_allclose(cosine.backward(np.array([[1.0]]))[0], 0, atol=1e-7)


@pytest.mark.parametrize(
    "shapes, axes, output",
    [
        ([(4,), (4,)], 1, (1,)),
        ([(4,), (4,)], -1, (1,)),
        ([(3, 4), (5, 4)], 2, (3, 5)),
        ([(4, 3), (4, 5)], 1, (3, 5)),
        ([(3, 4), (4, 5)], (2, 1), (3, 5)),
        ([(3, 4), (4, 3)], (1, 2), (4, 4)),
        ([(3, 4), (4, 3)], (-1, -2), (3, 3)),
        ([(3, 4), (4,)], (2, 1), (3,)),
        ([(4,), (4, 5)], (1, 1), (5,)),
        ([(2, 3, 4), (4, 2, 5)], (3, 1), (2, 3, 2, 5)),
    ],
)
def test_dot_shapes_are_keras_batch_dot_and_match_einsum(shapes, axes, output):
    layer = Dot(axes=axes, dtype="float64")
    rng = np.random.default_rng(1)
    x1, x2 = (rng.standard_normal((2, *shape)) for shape in shapes)
    y = layer([x1, x2])
    assert layer.output_shape == output and y.shape == (2, *output)
    a, b = (axes, axes) if isinstance(axes, int) else axes
    a, b = a % x1.ndim, b % x2.ndim
    expected = np.stack([np.tensordot(x1[n], x2[n], axes=(a - 1, b - 1)) for n in range(2)])
    np.testing.assert_allclose(y, expected.reshape(y.shape), rtol=1e-12)


def test_dot_normalize_floor_is_keras_epsilon():
    """Below ‖x‖ = 1e-7 the norm is held at ε: x̂ = x / ε and dx = dx̂ / ε, finite at x = 0."""
    layer = Dot(axes=1, normalize=True, dtype="float64")
    tiny, other = np.full((1, 3), 1e-9), np.array([[1.0, 2.0, 2.0]])
    np.testing.assert_allclose(layer([tiny, other]), [[1e-9 / 1e-7 * 5 / 3]])
    np.testing.assert_allclose(layer.backward(np.array([[1.0]]))[0], other / 3 / 1e-7)
    layer([np.zeros((1, 3)), other])
    dx1, dx2 = layer.backward(np.array([[1.0]]))
    np.testing.assert_allclose(dx1, other / 3 / 1e-7)
    np.testing.assert_array_equal(dx2, 0)


# -- gradient checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ELEMENTWISE, ids=lambda k: k.__name__)
@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 1, 3)], ids=str)
def test_elementwise_gradcheck_two_inputs(kind, shape):
    assert_gradients_pass(kind(), [shape, shape])


@pytest.mark.parametrize("kind", MANY_INPUTS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("count", [1, 3, 4])
def test_elementwise_gradcheck_one_three_and_four_inputs(kind, count):
    assert_gradients_pass(kind(), [(2, 3)] * count)


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(ELEMENTWISE),
    shapes=st.integers(2, 3).flatmap(
        lambda k: mutually_broadcastable_shapes(num_shapes=k, min_dims=0, max_dims=3, max_side=3)
    ),
    seed=st.integers(0, 2**16),
)
def test_elementwise_gradcheck_with_broadcasting(kind, shapes, seed):
    shapes = list(shapes.input_shapes)
    if kind is Subtract:
        shapes = shapes[:2]
    layer = kind()
    assert_gradients_pass(layer, shapes, batch=2, seed=seed)
    assert layer.output_shape == np.broadcast_shapes(*shapes)


@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(3,), (2,)], -1),
        ([(3,), (2,), (1,)], 1),
        ([(2, 3), (2, 4)], -1),
        ([(2, 3), (2, 4)], 2),
        ([(3, 2), (1, 2), (2, 2)], 1),
        ([(3, 2), (1, 2)], -2),
        ([(2, 3, 2), (1, 3, 2)], 1),
        ([(2, 1, 2), (2, 3, 2)], 2),
        ([(2, 3, 1), (2, 3, 2)], 3),
        ([(2, 3, 1), (2, 3, 2)], -1),
        ([(2, 3, 1), (2, 3, 1)], -2),
        ([(1, 3, 1), (2, 3, 1)], -3),
    ],
)
def test_concatenate_gradcheck(shapes, axis):
    assert_gradients_pass(Concatenate(axis=axis), shapes)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_concatenate_gradcheck_any_axis(data):
    rank = data.draw(st.integers(1, 3), label="rank")
    axis = data.draw(st.sampled_from([*range(1, rank + 1), *range(-rank, 0)]), label="axis")
    base = data.draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank), label="base")
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="sizes")
    shapes = [tuple(base[: axis % (rank + 1) - 1] + [s] + base[axis % (rank + 1) :]) for s in sizes]
    layer = Concatenate(axis=axis)
    assert_gradients_pass(layer, shapes, batch=2)
    assert layer.output_shape[axis % (rank + 1) - 1] == sum(sizes)


DOT_CASES = [
    ([(4,), (4,)], 1),
    ([(4,), (4,)], (-1, -1)),
    ([(3, 4), (2, 4)], 2),
    ([(3, 4), (2, 4)], -1),
    ([(4, 3), (4, 2)], 1),
    ([(3, 4), (4, 2)], (2, 1)),
    ([(3, 4), (4, 3)], (-2, -1)),
    ([(3, 4), (4,)], (2, 1)),
    ([(4,), (4, 2)], (1, 1)),
    ([(2, 3, 2), (2, 2, 3)], (3, 2)),
    ([(2, 3, 2), (3, 2, 2)], (2, 1)),
]


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "normalized"])
@pytest.mark.parametrize("shapes, axes", DOT_CASES, ids=str)
def test_dot_gradcheck(shapes, axes, normalize):
    assert_gradients_pass(Dot(axes=axes, normalize=normalize), shapes)


def test_a_wrong_backward_fails_the_check():
    """The check can fail: Subtract with dx₂ = +dy, Maximum with ties ignored, Dot unnormalized."""

    class WrongSubtract(Subtract):
        def backward(self, dy):
            return [dy.copy(), dy.copy()]

    class DotForgettingTheNormalization(Dot):
        def backward(self, dy):
            self.normalize = False
            grads = super().backward(dy)
            self.normalize = True
            return grads

    assert max(merge_gradcheck(WrongSubtract(), [(3,), (3,)])) > 0.5
    assert (
        max(merge_gradcheck(DotForgettingTheNormalization(1, normalize=True), [(3,), (3,)])) > 0.1
    )


# -- the contract: dy untouched, gradients owned by the caller, outputs fresh ----------------------
CONTRACT_CASES = [
    *[(kind, {}, [(2, 3)] * count) for kind in MANY_INPUTS for count in (1, 2, 3)],
    *[(kind, {}, [(2, 3), (3,)]) for kind in ELEMENTWISE],
    (Subtract, {}, [(2, 3), (2, 3)]),
    *[(Concatenate, {"axis": axis}, [(2, 3), (2, 3)]) for axis in (1, -1)],
    (Concatenate, {}, [(2, 3)]),
    (Dot, {"axes": 1}, [(3,), (3,)]),
    (Dot, {"axes": 2, "normalize": True}, [(2, 3), (4, 3)]),
]


@pytest.mark.parametrize("kind, args, shapes", CONTRACT_CASES, ids=str)
def test_dy_is_untouched_and_every_gradient_is_a_separate_array(kind, args, shapes):
    rng = np.random.default_rng(0)
    layer = kind(**args, dtype="float64")
    xs = [rng.standard_normal((4, *shape)) for shape in shapes]
    saved = [x.copy() for x in xs]
    y = layer(xs)
    assert not any(np.shares_memory(y, x) for x in xs)  # even for a single input
    dy = rng.standard_normal(y.shape)
    before = dy.copy()
    grads = layer.backward(dy)
    np.testing.assert_array_equal(dy, before)
    for x, x0 in zip(xs, saved):
        np.testing.assert_array_equal(x, x0)
    for k, grad in enumerate(grads):
        assert not np.shares_memory(grad, dy), f"dx{k + 1} is a view of dy"
        assert not any(np.shares_memory(grad, x) for x in xs)
        for j in range(k):
            assert not np.shares_memory(grad, grads[j]), f"dx{j + 1} and dx{k + 1} are one array"
    # An engine summing into one gradient in place changes nothing else.
    expected = [grad.copy() for grad in grads]
    grads[0] += 1.0
    for grad, value in zip(grads[1:], expected[1:]):
        np.testing.assert_array_equal(grad, value)
    np.testing.assert_array_equal(dy, before)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    for layer, shapes in [(Maximum(), [(3,), (3,)]), (Dot(1, normalize=True), [(3,), (3,)])]:
        xs = [rng.standard_normal((2, *s)).astype(np.float32) for s in shapes]
        y = layer(xs)
        grads = layer.backward(np.ones_like(y))
        assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


# -- errors ----------------------------------------------------------------------------------------
def test_shapes_that_do_not_broadcast_are_refused_naming_the_layer_and_shapes():
    with pytest.raises(HandnetError, match=r"Add 'sum'.*\(3,\) and \(4,\)"):
        Add(name="sum").build([(3,), (4,)])
    with pytest.raises(HandnetError, match=r"\(2, 3\), \(3,\) and \(2,\)"):
        Maximum().build([(2, 3), (3,), (2,)])
    with pytest.raises(HandnetError, match="Multiply"):
        Multiply()([np.ones((2, 3)), np.ones((2, 4))])


@pytest.mark.parametrize(
    "layer, count",
    [(Subtract(), 1), (Subtract(), 3), (Dot(1), 1), (Dot(1), 3), (Add(), 0), (Concatenate(), 0)],
    ids=str,
)
def test_arity(layer, count):
    with pytest.raises(HandnetError, match=rf"{type(layer).__name__} .*got {count}"):
        layer.build([(3,)] * count)


@pytest.mark.parametrize("shapes", [(3,), (3, 4), 3, [(3,), 4], [(3,), (2.5,)], "ab"], ids=str)
def test_build_takes_a_list_of_shapes(shapes):
    with pytest.raises(HandnetError, match="list of per-sample shapes"):
        Add().build(shapes)


@pytest.mark.parametrize(
    "axis, shapes, message",
    [
        (0, [(3,), (3,)], "batch axis"),
        (-2, [(3,), (3,)], "batch axis"),
        (2, [(3,), (3,)], "out of range"),
        (-3, [(3,), (3,)], "out of range"),
        (-1, [(2, 3), (3, 3)], "match on every axis but"),
        (1, [(2, 3), (2, 4)], "match on every axis but"),
        (1, [(3,), (1, 3)], "different ranks"),
    ],
)
def test_concatenate_errors(axis, shapes, message):
    with pytest.raises(HandnetError, match=message):
        Concatenate(axis=axis).build(shapes)


@pytest.mark.parametrize(
    "axes, shapes, message",
    [
        (0, [(3,), (3,)], "batch axis"),
        ((1, 0), [(3,), (3,)], "batch axis"),
        (-2, [(3,), (3,)], "batch axis"),
        (2, [(3,), (3,)], "out of range"),
        (-3, [(3,), (3,)], "out of range"),  # Keras would wrap it to 1 (-3 % 2)
        (1, [(3,), (4,)], "sizes 3 and 4"),
        (2, [(2, 3), (3, 2)], "sizes 3 and 2"),
    ],
)
def test_dot_errors(axes, shapes, message):
    with pytest.raises(HandnetError, match=message):
        Dot(axes=axes).build(shapes)


@pytest.mark.parametrize("axes", ["1", 1.0, True, (1,), (1, 2, 3), (1, "2"), None])
def test_dot_axes_must_be_an_int_or_a_pair(axes):
    with pytest.raises(HandnetError, match="axes must be an int or a pair"):
        Dot(axes=axes)


def test_concatenate_axis_must_be_an_int():
    with pytest.raises(HandnetError, match="axis must be an integer"):
        Concatenate(axis=1.5)


def test_forward_checks_its_inputs():
    layer = Add(name="plus")
    layer.build([(3,), (3,)])
    with pytest.raises(InvalidInputError, match="expected a list of 2 arrays, got 3"):
        layer.forward([np.ones((2, 3))] * 3)
    with pytest.raises(InvalidInputError, match=r"inputs\[1\] of shape \(None, 3\), got \(2, 4\)"):
        layer.forward([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(InvalidInputError, match="different batch sizes"):
        layer.forward([np.ones((2, 3)), np.ones((5, 3))])
    with pytest.raises(InvalidInputError, match="got ndarray"):
        layer.forward(np.ones((2, 2, 3)))
    with pytest.raises(InvalidInputError, match="called on a list of arrays"):
        Add()(np.ones((2, 3)))
    with pytest.raises(InvalidInputError, match="batch axis"):
        Add()([np.float64(1.0), np.float64(2.0)])


# -- description and configs -----------------------------------------------------------------------
def built(layer, shapes):
    layer.build(shapes)
    return layer


@pytest.mark.parametrize(
    "layer, headline, formula",
    [
        (built(Add(), [(3,)] * 2), "sum of 2 inputs", "y = x₁ + x₂"),
        (built(Add(), [(2, 3), (3,)]), "sum of 2 inputs, broadcast to (2, 3)", "y = x₁ + x₂"),
        (built(Subtract(), [(3,)] * 2), "difference of 2 inputs", "y = x₁ - x₂"),
        (built(Multiply(), [(3,)] * 3), "elementwise product of 3 inputs", "y = x₁ ⊙ x₂ ⊙ x₃"),
        (built(Average(), [(3,)] * 3), "mean of 3 inputs", "y = (x₁ + x₂ + x₃) / 3"),
        (built(Maximum(), [(3,)] * 2), "elementwise maximum of 2 inputs", "y = max(x₁, x₂)"),
        (built(Minimum(), [(3,)] * 3), "elementwise minimum of 3 inputs", "y = min(x₁, x₂, x₃)"),
        (Add(), "sum of the inputs", "y = x₁ + x₂ + …"),
        (
            built(Concatenate(axis=1), [(3, 2)] * 2),
            "2 inputs joined along axis 1",
            "y = concatenate([x₁, x₂], axis=1)",
        ),
        (
            built(Dot(axes=1), [(4,)] * 2),
            "dot product over axes (1, 1)",
            "y[n, 0] = Σ_i x₁[n, i] · x₂[n, i]",
        ),
        (
            built(Dot(axes=-1), [(3, 4), (5, 4)]),
            "dot product over axes (2, 2)",
            "y[n, p, q] = Σ_i x₁[n, p, i] · x₂[n, q, i]",
        ),
        (
            built(Dot(axes=(1, 2), normalize=True), [(4, 3), (5, 4)]),
            "cosine similarity over axes (1, 2)",
            "y[n, p, q] = Σ_i x̂₁[n, i, p] · x̂₂[n, q, i],"
            "  x̂ = x / max(‖x‖₂, 1e-7) along the dot axis",
        ),
        (
            Dot(axes=(1, -1)),
            "dot product over axes=(1, -1)",
            "y = Σ_i x₁[i on axis 1] · x₂[i on axis -1]",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v),
)
def test_explain(layer, headline, formula):
    assert layer.explain() == (headline, formula)


def test_explain_names_ten_and_more_inputs():
    assert built(Add(), [(1,)] * 11).explain()[1].endswith("x₁₀ + x₁₁")


LAYERS = [
    Add(),
    Subtract(),
    Multiply(),
    Average(),
    Maximum(),
    Minimum(),
    Concatenate(),
    Concatenate(axis=2, name="join", dtype="float64"),
    Dot(axes=1),
    Dot(axes=(2, -1), normalize=True, trainable=False),
]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_config_round_trip(layer):
    config = layer.get_config()
    again = type(layer).from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config
    assert isinstance(again, Merge) and type(again) is type(layer)
    rebuilt = hn.layers.deserialize(json.loads(json.dumps(hn.layers.serialize(layer))))
    assert rebuilt.get_config() == config


def test_configs_use_keras_argument_names():
    assert Concatenate(axis=1).get_config()["axis"] == 1
    config = Dot(axes=(1, 2), normalize=True).get_config()
    assert config["axes"] == [1, 2] and config["normalize"] is True
    assert Dot(axes=-1).get_config()["axes"] == -1
    assert set(Add().get_config()) == {"name", "trainable", "dtype"}
    assert repr(Dot(axes=(1, 2))) == "Dot(axes=[1, 2], normalize=False)"


def test_names_are_keras_names():
    for kind in [Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate]:
        assert kind().name.split("_")[0] == kind.__name__.lower()
    assert Dot(1).name.startswith("dot")


# -- Add's hot path (inputs of one shape and dtype: a residual connection) -------------------------
def general_add(layer, inputs):
    """Add's general path (alignment, a broadcast copy, in-place sums), for comparison."""
    aligned = [layer._aligned(np.asarray(x), k) for k, x in enumerate(inputs)]
    y = layer._full(aligned)
    for x in aligned[1:]:
        y += x
    return y


@pytest.mark.parametrize("count", [2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_hot_path_is_the_general_sum_bit_for_bit(count, dtype):
    rng = np.random.default_rng(count)
    layer = Add()
    layer.build([(7, 5)] * count)
    inputs = [(rng.standard_normal((4, 7, 5)) * 10.0 ** rng.integers(-3, 4)).astype(dtype)
              for _ in range(count)]
    before = [x.copy() for x in inputs]
    y = layer.forward(inputs)
    assert y.dtype == dtype and y.shape == (4, 7, 5)
    np.testing.assert_array_equal(y, general_add(layer, inputs))
    assert not any(np.may_share_memory(y, x) for x in inputs)  # a new array
    for x, saved in zip(inputs, before):
        np.testing.assert_array_equal(x, saved)  # inputs untouched


def test_add_hot_path_keeps_the_general_rules():
    rng = np.random.default_rng(0)
    mixed = [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3))]
    layer = Add()
    layer.build([(3,), (3,)])
    y = layer.forward(mixed)  # two dtypes: the general path promotes as NumPy does
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, general_add(layer, mixed))
    broadcast = Add(name="wide")
    broadcast.build([(2, 3), (3,)])
    with pytest.raises(InvalidInputError, match=r"inputs\[1\] of shape \(None, 3\)"):
        broadcast.forward([np.ones((4, 2, 3)), np.ones((4, 2, 3))])  # full-sized: still refused
    with pytest.raises(InvalidInputError, match="different batch sizes"):
        layer.forward([np.ones((2, 3)), np.ones((5, 3))])
    y = layer.forward((np.ones((2, 3)), [[1.0, 2.0, 3.0]] * 2))  # a tuple with a list in it
    np.testing.assert_array_equal(y, [[2.0, 3.0, 4.0]] * 2)
