"""Pooling and ZeroPadding2D layers: hand cases, gradient checks, PyTorch and Keras as oracles."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    ZeroPadding2D,
)


def image(rows):
    """A (1, H, W, 1) batch from a 2-D list."""
    return np.array(rows, dtype=np.float64)[None, :, :, None]


# -- hand-computed cases ---------------------------------------------------------------------------
def test_max_pooling_by_hand_and_the_first_maximum_takes_the_gradient():
    layer = MaxPooling2D(dtype="float64")
    x = image([[1, 5, 2, 2], [5, 3, 2, 2], [0, 0, 7, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(layer(x)[0, :, :, 0], [[5, 2], [0, 7]])
    dx = layer.backward(image([[10, 20], [30, 40]]))
    # Ties (5 twice; 2 four times; 0 four times) go to the first in row-major window order.
    np.testing.assert_array_equal(
        dx[0, :, :, 0], [[0, 10, 20, 0], [0, 0, 0, 0], [30, 0, 40, 0], [0, 0, 0, 0]]
    )


def test_average_pooling_same_does_not_count_the_padding():
    layer = AveragePooling2D(pool_size=2, strides=2, padding="same", dtype="float64")
    x = image([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # 3 -> ceil(3/2) = 2 outputs, pad 1 after: windows [0:2] and [2:3] (one real cell).
    np.testing.assert_array_equal(layer(x)[0, :, :, 0], [[3, 4.5], [7.5, 9]])
    dx = layer.backward(image([[4, 2], [2, 1]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 1], [1, 1, 1], [1, 1, 1]])


def test_max_pooling_same_pads_with_minus_infinity():
    layer = MaxPooling2D(pool_size=2, padding="same", dtype="float64")
    x = -image([[1, 2, 3], [4, 5, 6], [7, 8, 9]])  # all negative: zero padding would win
    np.testing.assert_array_equal(layer(x)[0, :, :, 0], [[-1, -3], [-7, -9]])


def test_overlapping_windows_add_their_gradients():
    layer = MaxPooling2D(pool_size=2, strides=1, dtype="float64")
    x = image([[0, 0, 0], [0, 9, 0], [0, 0, 0]])
    np.testing.assert_array_equal(layer(x)[0, :, :, 0], [[9, 9], [9, 9]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2, 2, 1)))[0, 1, 1, 0], 4)


def test_strides_default_to_pool_size_and_valid_drops_the_remainder():
    layer = MaxPooling2D(pool_size=(3, 2))
    layer.build((11, 11, 4))
    assert layer.strides == (3, 2) and layer.output_shape == (3, 5, 4)
    layer.forward(np.ones((1, 11, 11, 4), dtype=np.float32))
    dx = layer.backward(np.ones((1, 3, 5, 4), dtype=np.float32))
    # Rows 9-10 and column 10 are in no window: they get no gradient.
    assert dx.shape == (1, 11, 11, 4) and dx[:, 9:].sum() == 0 and dx[:, :, 10].sum() == 0
    assert dx.sum() == 3 * 5 * 4


def test_global_pooling_by_hand():
    x = image([[1, 4], [4, 2]])
    average, maximum = GlobalAveragePooling2D(dtype="float64"), GlobalMaxPooling2D(dtype="float64")
    np.testing.assert_array_equal(average(x), [[2.75]])
    np.testing.assert_array_equal(maximum(x), [[4]])
    np.testing.assert_array_equal(average.backward(np.array([[4.0]]))[0, :, :, 0], [[1, 1], [1, 1]])
    np.testing.assert_array_equal(maximum.backward(np.array([[4.0]]))[0, :, :, 0], [[0, 4], [0, 0]])
    assert GlobalMaxPooling2D(keepdims=True)(x.astype(np.float32)).shape == (1, 1, 1, 1)


@pytest.mark.parametrize(
    "padding, pairs",
    [
        (2, ((2, 2), (2, 2))),
        ((1, 3), ((1, 1), (3, 3))),
        (((1, 0), (2, 3)), ((1, 0), (2, 3))),
        ([[0, 1], [1, 0]], ((0, 1), (1, 0))),
    ],
)
def test_zero_padding_forms(padding, pairs):
    layer = ZeroPadding2D(padding, dtype="float64")
    (top, bottom), (left, right) = layer.padding
    assert layer.padding == pairs
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    y = layer(x)
    assert y.shape == (2, top + 3 + bottom, left + 4 + right, 2) == (2, *layer.output_shape)
    np.testing.assert_array_equal(y[:, top : top + 3, left : left + 4], x)
    assert np.abs(y).sum() == pytest.approx(np.abs(x).sum())
    np.testing.assert_array_equal(layer.backward(y), x)


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), ((1, 2), 3.5), "same", True])
def test_zero_padding_refuses_bad_forms(padding):
    with pytest.raises(HandnetError, match="ZeroPadding2D padding"):
        ZeroPadding2D(padding)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D])
def test_image_layers_want_images(cls):
    with pytest.raises(InvalidInputError, match=r"\(height, width, channels\)"):
        cls().build((28, 28))


def test_pool_larger_than_the_input_is_refused_with_valid_padding():
    with pytest.raises(InvalidInputError, match="does not fit"):
        MaxPooling2D(pool_size=3).build((2, 5, 1))


# -- gradient checks -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    "pool_size, strides", [(2, None), (2, 1), ((3, 2), 2), ((2, 3), (1, 2)), (3, 2)]
)
def test_gradcheck_pooling(cls, padding, pool_size, strides):
    layer = cls(pool_size=pool_size, strides=strides, padding=padding)
    report = hn.gradcheck(layer, input_shape=(7, 6, 3), batch_size=1)
    assert report.passed, str(report)


@pytest.mark.parametrize(
    "layer",
    [
        GlobalAveragePooling2D(),
        GlobalMaxPooling2D(),
        GlobalMaxPooling2D(keepdims=True),
        ZeroPadding2D(((1, 2), (0, 1))),
    ],
    ids=["global_average", "global_max", "global_max_keepdims", "zero_padding"],
)
def test_gradcheck_global_pooling_and_zero_padding(layer):
    assert hn.gradcheck(layer, input_shape=(4, 5, 3), batch_size=2).passed


# -- configs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer",
    [
        MaxPooling2D(pool_size=3, strides=(1, 2), padding="same"),
        AveragePooling2D(pool_size=(2, 1)),
        GlobalAveragePooling2D(keepdims=True),
        GlobalMaxPooling2D(),
        ZeroPadding2D((1, 2)),
    ],
)
def test_config_round_trip(layer):
    config = layer.get_config()
    json.dumps(config)
    rebuilt = hn.layers.deserialize(
        {"class_name": type(layer).__name__, "config": json.loads(json.dumps(config))}
    )
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == config


# -- PyTorch as the oracle -------------------------------------------------------------------------
def tensorflow_same_padding(size, window, stride):
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def torch_pool(torch, kind, x, dy, pool_size, strides, padding):
    """(y, dx) from torch.nn.functional in NCHW, "same" padded explicitly the TensorFlow way."""
    F = torch.nn.functional
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    pads = (0, 0, 0, 0)
    if padding == "same":
        top, bottom = tensorflow_same_padding(x.shape[1], pool_size[0], strides[0])
        left, right = tensorflow_same_padding(x.shape[2], pool_size[1], strides[1])
        pads = (left, right, top, bottom)
    if kind == "max":
        yt = F.max_pool2d(F.pad(xt, pads, value=-float("inf")), pool_size, strides)
    elif padding == "valid":
        yt = F.avg_pool2d(xt, pool_size, strides)
    else:
        # Keras averages the real cells only: the window sum over the count of real cells,
        # both from torch (the count as the average pool of a padded image of ones).
        window_sum = F.avg_pool2d(F.pad(xt, pads), pool_size, strides, divisor_override=1)
        ones = F.pad(torch.ones_like(xt[:1, :1]), pads)
        yt = window_sum / F.avg_pool2d(ones, pool_size, strides, divisor_override=1)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    return yt.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1)


@pytest.mark.torch
@pytest.mark.parametrize("kind, cls", [("max", MaxPooling2D), ("average", AveragePooling2D)])
@pytest.mark.parametrize(
    "pool_size, strides, padding",
    [
        ((2, 2), (2, 2), "valid"),
        ((3, 3), (2, 2), "valid"),
        ((3, 2), (1, 2), "same"),
        ((2, 2), (2, 2), "same"),
    ],
)
def test_pooling_matches_torch(torch, kind, cls, pool_size, strides, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 8, 4)).astype(np.float32)
    layer = cls(pool_size=pool_size, strides=strides, padding=padding)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    expected_y, expected_dx = torch_pool(torch, kind, x, dy, pool_size, strides, padding)
    np.testing.assert_allclose(y, expected_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.backward(dy), expected_dx, rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize(
    "window, first_maximum",
    [([[1, 1], [1, 1]], (0, 0)), ([[0, 1], [1, 0]], (0, 1)), ([[0, 0], [1, 1]], (1, 0))],
)
def test_torch_sends_a_tie_to_the_first_maximum_in_row_major_order(torch, window, first_maximum):
    """The rule handnet copies, checked on torch itself (NCHW, one 2x2 window)."""
    x = torch.tensor([[window]], dtype=torch.float32, requires_grad=True)
    torch.nn.functional.max_pool2d(x, 2).backward(torch.ones(1, 1, 1, 1))
    expected = np.zeros((2, 2))
    expected[first_maximum] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)
    layer = MaxPooling2D(dtype="float64")
    layer(image(window))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0], expected)


@pytest.mark.torch
@pytest.mark.parametrize("pool_size, strides", [(2, 2), (2, 1), (3, 2)])
def test_ties_everywhere_route_like_torch(torch, pool_size, strides):
    """After a ReLU, windows of equal zeros are common: every tie must go where torch sends it."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 7, 6, 3)).astype(np.float32)  # 0s and 1s: ties everywhere
    x[0, :4, :4] = 0  # whole windows of equal values
    layer = MaxPooling2D(pool_size=pool_size, strides=strides)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    pair = (pool_size, pool_size), (strides, strides)
    _, expected_dx = torch_pool(torch, "max", x, dy, *pair, "valid")
    # Exact up to the order in which overlapping windows add; a misrouted gradient is off by O(1).
    np.testing.assert_allclose(layer.backward(dy), expected_dx, rtol=1e-6, atol=1e-6)


# -- Keras as the oracle of "same" -----------------------------------------------------------------
@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "kind, cls", [("MaxPooling2D", MaxPooling2D), ("AveragePooling2D", AveragePooling2D)]
)
def test_same_pooling_matches_keras(keras, kind, cls):
    x = np.random.default_rng(0).standard_normal((2, 7, 8, 3)).astype(np.float32)
    for pool_size, strides in [((2, 2), None), ((3, 2), (2, 3))]:
        theirs = getattr(keras.layers, kind)(pool_size=pool_size, strides=strides, padding="same")
        expected = keras.ops.convert_to_numpy(theirs(x))
        ours = cls(pool_size=pool_size, strides=strides, padding="same")
        np.testing.assert_allclose(ours(x), expected, rtol=1e-6, atol=1e-6)
