"""Identity, Permute, RepeatVector, Cropping1D/2D, ZeroPadding1D, UpSampling1D/2D, Resizing,
CenterCrop: hand cases, gradient checks in float64 with random upstream gradients, bilinear
UpSampling2D and Resizing against a loop that reads like torch's formula (four neighbours per
output pixel), configs, clear errors. Keras is the oracle in
tests/keras/test_catalogue_reshaping_keras.py."""

import json
import math

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import (
    CenterCrop,
    Cropping1D,
    Cropping2D,
    Identity,
    Permute,
    RepeatVector,
    Resizing,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
)

GRADCHECK_CASES = [
    (Identity, {}, (3, 2)),
    (Permute, {"dims": (2, 1)}, (3, 4)),
    (Permute, {"dims": (3, 1, 2)}, (2, 3, 2)),
    (Permute, {"dims": (1, 2)}, (2, 3)),
    (RepeatVector, {"n": 3}, (4,)),
    (Cropping1D, {"cropping": 1}, (4, 2)),
    (Cropping1D, {"cropping": (0, 2)}, (4, 2)),
    (Cropping2D, {"cropping": 1}, (4, 3, 2)),
    (Cropping2D, {"cropping": (1, 0)}, (3, 3, 2)),
    (Cropping2D, {"cropping": ((0, 1), (2, 0))}, (3, 4, 1)),
    (ZeroPadding1D, {"padding": 2}, (3, 2)),
    (ZeroPadding1D, {"padding": (0, 1)}, (3, 2)),
    (UpSampling1D, {"size": 3}, (3, 2)),
    (UpSampling2D, {"size": 2}, (2, 3, 2)),
    (UpSampling2D, {"size": (1, 3)}, (2, 2, 1)),
    (UpSampling2D, {"size": 2, "interpolation": "bilinear"}, (3, 3, 2)),
    (UpSampling2D, {"size": (3, 2), "interpolation": "bilinear"}, (2, 4, 1)),
    (UpSampling2D, {"size": (1, 4), "interpolation": "bilinear"}, (1, 3, 2)),
    (Resizing, {"height": 5, "width": 2}, (3, 4, 2)),
    (Resizing, {"height": 2, "width": 7, "interpolation": "nearest"}, (3, 4, 1)),
    (Resizing, {"height": 4, "width": 3, "crop_to_aspect_ratio": True}, (3, 5, 1)),
    (Resizing, {"height": 4, "width": 3, "pad_to_aspect_ratio": True, "fill_value": 2.0},
     (3, 5, 1)),
    (CenterCrop, {"height": 2, "width": 3}, (4, 4, 2)),
    (CenterCrop, {"height": 5, "width": 3}, (3, 4, 1)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind.__name__}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=case_id)
def test_backward_matches_central_differences(case):
    kind, args, shape = case
    report = hn.gradcheck(kind(**args), input_shape=shape, batch_size=2)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=case_id)
def test_dy_untouched_and_outputs_owned(case):
    kind, args, shape = case
    rng = np.random.default_rng(0)
    layer = kind(**args, dtype="float64")
    x = rng.standard_normal((2, *shape))
    y = layer(x)
    assert not np.may_share_memory(y, x)
    dy = rng.standard_normal(y.shape)
    before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, before)
    assert dx.shape == x.shape and not np.may_share_memory(dx, dy)


def test_by_hand():
    x = np.arange(6.0).reshape(1, 3, 2)  # steps [0 1], [2 3], [4 5]
    np.testing.assert_array_equal(Permute((2, 1))(x)[0], [[0, 2, 4], [1, 3, 5]])
    np.testing.assert_array_equal(Cropping1D((1, 0))(x)[0], [[2, 3], [4, 5]])
    np.testing.assert_array_equal(ZeroPadding1D((1, 2))(x)[0],
                                  [[0, 0], [0, 1], [2, 3], [4, 5], [0, 0], [0, 0]])
    np.testing.assert_array_equal(UpSampling1D(2)(x)[0],
                                  [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [4, 5]])
    up = UpSampling1D(2)
    up(x)
    np.testing.assert_array_equal(up.backward(np.arange(12.0).reshape(1, 6, 2))[0],
                                  [[2, 4], [10, 12], [18, 20]])
    repeat = RepeatVector(3)
    np.testing.assert_array_equal(repeat(np.array([[1.0, 2.0]]))[0], [[1, 2]] * 3)
    np.testing.assert_array_equal(repeat.backward(np.ones((1, 3, 2))), [[3, 3]])
    crop = Cropping2D(((1, 0), (0, 1)))
    image = np.arange(9.0).reshape(1, 3, 3, 1)
    np.testing.assert_array_equal(crop(image)[0, :, :, 0], [[3, 4], [6, 7]])
    np.testing.assert_array_equal(crop.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0],
                                  [[0, 0, 0], [1, 1, 0], [1, 1, 0]])


def bilinear_by_loops(x, size):
    """The specification: torch's upsample_bilinear2d (align_corners=False) pixel by pixel."""
    n, height, width, channels = x.shape
    out = np.zeros((n, height * size[0], width * size[1], channels))

    def source(o, size_in, size_out):
        s = max((o + 0.5) * size_in / size_out - 0.5, 0.0)
        low = int(math.floor(s))
        high = low + 1 if low < size_in - 1 else low
        return low, high, s - low

    for i in range(out.shape[1]):
        p0, p1, a = source(i, height, out.shape[1])
        for j in range(out.shape[2]):
            q0, q1, b = source(j, width, out.shape[2])
            out[:, i, j] = ((1 - a) * (1 - b) * x[:, p0, q0] + (1 - a) * b * x[:, p0, q1]
                            + a * (1 - b) * x[:, p1, q0] + a * b * x[:, p1, q1])
    return out


@pytest.mark.parametrize("size", [(2, 2), (3, 1), (1, 4), (3, 5)], ids=str)
@pytest.mark.parametrize("image", [(1, 1), (2, 3), (4, 4)], ids=str)
def test_bilinear_matches_the_loops(image, size):
    x = np.random.default_rng(1).standard_normal((2, *image, 3))
    layer = UpSampling2D(size, interpolation="bilinear", dtype="float64")
    np.testing.assert_allclose(layer(x), bilinear_by_loops(x, size), rtol=1e-12, atol=1e-12)


def resize_by_loops(x, height, width, nearest=False):
    """The specification of Resizing: torch's upsample_bilinear2d (align_corners=False) or
    upsample_nearest_exact2d, output pixel by output pixel, from the four (or one) input
    pixels around its source point."""
    n, size_h, size_w, channels = x.shape
    out = np.zeros((n, height, width, channels))

    def source(o, size_in, size_out):
        if nearest:
            k = min(int(math.floor((o + 0.5) * size_in / size_out)), size_in - 1)
            return k, k, 0.0
        s = max((o + 0.5) * size_in / size_out - 0.5, 0.0)
        low = int(math.floor(s))
        high = low + 1 if low < size_in - 1 else low
        return low, high, s - low

    for i in range(height):
        p0, p1, a = source(i, size_h, height)
        for j in range(width):
            q0, q1, b = source(j, size_w, width)
            out[:, i, j] = ((1 - a) * (1 - b) * x[:, p0, q0] + (1 - a) * b * x[:, p0, q1]
                            + a * (1 - b) * x[:, p1, q0] + a * b * x[:, p1, q1])
    return out


@pytest.mark.parametrize("nearest", [False, True], ids=["bilinear", "nearest"])
@pytest.mark.parametrize("target", [(5, 3), (2, 2), (8, 1), (3, 7)], ids=str)
@pytest.mark.parametrize("image", [(1, 1), (3, 4), (6, 5)], ids=str)
def test_resizing_matches_the_loops(image, target, nearest):
    x = np.random.default_rng(2).standard_normal((2, *image, 3))
    layer = Resizing(*target, interpolation="nearest" if nearest else "bilinear",
                     dtype="float64")  # fmt: skip
    expected = resize_by_loops(x, *target, nearest)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_resizing_to_an_aspect_ratio_and_center_crop_by_hand():
    """A 4×6 image to 2×2: cropped, the central 4×4 window (columns 1…4) is halved; padded, the
    image sits in a 6×6 frame of the fill value; CenterCrop cuts the central 2×2 cells."""
    x = np.arange(24.0).reshape(1, 4, 6, 1)
    crop = Resizing(2, 2, crop_to_aspect_ratio=True, dtype="float64")
    np.testing.assert_allclose(crop(x), Resizing(2, 2, dtype="float64")(x[:, :, 1:5]))
    dx = crop.backward(np.ones((1, 2, 2, 1)))
    assert np.all(dx[:, :, [0, 5]] == 0) and dx.sum() == 4  # each row of A sums to 1
    frame = Resizing(6, 6, pad_to_aspect_ratio=True, fill_value=-1.0, dtype="float64")
    framed = frame(x)[0, :, :, 0]
    np.testing.assert_array_equal(framed[0], -1)
    np.testing.assert_array_equal(framed[-1], -1)
    np.testing.assert_array_equal(framed[1:5], x[0, :, :, 0])
    np.testing.assert_array_equal(frame.backward(np.arange(36.0).reshape(1, 6, 6, 1))[0, :, :, 0],
                                  np.arange(6.0, 30.0).reshape(4, 6))
    center = CenterCrop(2, 2)
    np.testing.assert_array_equal(center(x)[0, :, :, 0], [[8, 9], [14, 15]])
    np.testing.assert_array_equal(center.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0],
                                  [[0] * 6, [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [0] * 6])


def test_bilinear_by_hand():
    """Factor 2: outputs at input coordinates -¼ (clamped to 0), ¼, ¾, 1¼ (… clamped at the end)."""
    layer = UpSampling2D((1, 2), interpolation="bilinear", dtype="float64")
    y = layer(np.array([0.0, 4.0, 8.0]).reshape(1, 1, 3, 1))
    np.testing.assert_allclose(y.ravel(), [0, 1, 3, 5, 7, 8])
    constant = layer(np.full((1, 1, 3, 1), 2.5))
    np.testing.assert_allclose(constant, 2.5)  # each row of weights sums to 1
    np.testing.assert_allclose(layer.backward(np.ones((1, 1, 6, 1))).ravel(), [2, 2, 2])


@pytest.mark.parametrize(
    "layer",
    [Identity(), Permute((2, 3, 1)), RepeatVector(4), Cropping1D(3), Cropping2D(((1, 2), (3, 4))),
     ZeroPadding1D((0, 2)), UpSampling1D(3), UpSampling2D((2, 3), interpolation="bilinear"),
     Resizing(4, 5, interpolation="nearest", pad_to_aspect_ratio=True, fill_value=0.5),
     CenterCrop(3, 2)],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip_and_explain(layer):
    config = json.loads(json.dumps(layer.get_config()))
    twin = type(layer).from_config(config)
    assert twin.get_config() == layer.get_config()
    assert hn.layers.deserialize(hn.layers.serialize(layer)).get_config() == layer.get_config()
    headline, formula = layer.explain()
    assert headline and formula.startswith("y")


def test_keras_argument_forms():
    assert Cropping2D(2).cropping == ((2, 2), (2, 2))
    assert Cropping2D((1, 3)).cropping == ((1, 1), (3, 3))
    assert Cropping1D(2).cropping == (2, 2)
    assert ZeroPadding1D(3).padding == (3, 3)
    assert UpSampling2D(3).size == (3, 3)
    assert UpSampling2D(interpolation="BILINEAR").interpolation == "bilinear"
    assert UpSampling2D(data_format="channels_last").get_config()["data_format"] == "channels_last"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Permute((1, 3)), "must reorder 1…2"),
        (lambda: Permute((0, 1)), "dims must be a list of ints >= 1"),
        (lambda: Permute((2, 1)).build((3,)), "expects 2 axes per sample"),
        (lambda: RepeatVector(0), "n must be an int >= 1"),
        (lambda: RepeatVector(2.0), "n must be an int >= 1"),
        (lambda: RepeatVector(2).build((3, 4)), "expects vectors"),
        (lambda: Cropping1D(-1), "cropping must be an int or a pair of ints >= 0"),
        (lambda: Cropping1D((2, 2)).build((4, 1)), "leaves no steps of 4"),
        (lambda: Cropping1D().build((4,)), "expects sequences"),
        (lambda: Cropping2D((1, 2, 3)), "cropping must be an int, \\(rows, columns\\)"),
        (lambda: Cropping2D(((1, 2), (3, -1))), "cropping's columns must be"),
        (lambda: Cropping2D(2).build((4, 5, 1)), "leaves nothing of images 4×5"),
        (lambda: Cropping2D(1).build((4, 5)), "expects images"),
        (lambda: Cropping2D(data_format="channels_first"), "handnet is channels-last"),
        (lambda: ZeroPadding1D(data_format="channels_first"), "handnet is channels-last"),
        (lambda: UpSampling2D(data_format="channels_first"), "handnet is channels-last"),
        (lambda: UpSampling2D(interpolation="bicubic"), "interpolation must be one of"),
        (lambda: UpSampling2D(size=0), "size must be an int or a pair of ints >= 1"),
        (lambda: UpSampling1D(size=(2,)), "size must be an int >= 1"),
        (lambda: UpSampling1D().build((2, 3, 4)), "expects sequences"),
        (lambda: Resizing(0, 3), "Resizing height must be an int >= 1, got 0"),
        (lambda: Resizing(3, 2.5), "Resizing width must be an int >= 1, got 2.5"),
        (lambda: Resizing(3, 3, interpolation="bicubic"), "interpolation must be one of"),
        (lambda: Resizing(3, 3, antialias=True), "antialias=True .* is not implemented"),
        (lambda: Resizing(3, 3, fill_mode="reflect"), "fill_mode must be 'constant'"),
        (lambda: Resizing(3, 3, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True),
         "only one of crop_to_aspect_ratio and pad_to_aspect_ratio"),
        (lambda: Resizing(3, 3, data_format="channels_first"), "handnet is channels-last"),
        (lambda: Resizing(3, 3).build((4, 5)), "expects images"),
        (lambda: CenterCrop(3, 0), "CenterCrop width must be an int >= 1"),
        (lambda: CenterCrop(3, 3, data_format="channels_first"), "handnet is channels-last"),
    ],
)
def test_clear_errors(make, message):
    with pytest.raises(HandnetError, match=message):
        make()


def test_wrong_input_shape_is_refused():
    layer = UpSampling2D()
    layer.build((2, 2, 1))
    with pytest.raises(InvalidInputError, match=r"expected input shape \(None, 2, 2, 1\)"):
        layer(np.zeros((1, 3, 2, 1)))


# -- Flatten's data_format (handnet/layers/core.py) ------------------------------------------------
@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 2)], ids=str)
def test_flatten_gradcheck(data_format, shape):
    report = hn.gradcheck(hn.layers.Flatten(data_format=data_format), input_shape=shape)
    assert report.passed, f"\n{report}"


def test_flatten_channels_first_moves_the_channel_axis_last():
    x = np.arange(12.0).reshape(1, 2, 3, 2)  # read as (C=2, H=3, W=2)
    layer = hn.layers.Flatten(data_format="channels_first")
    np.testing.assert_array_equal(layer(x)[0], x[0].transpose(1, 2, 0).ravel())
    np.testing.assert_array_equal(layer.backward(layer(x)), x)
    assert layer.get_config()["data_format"] == "channels_first"
    assert hn.layers.Flatten().get_config()["data_format"] == "channels_last"
    assert hn.layers.Flatten.from_config({"name": "f"}).data_format == "channels_last"  # old files
    with pytest.raises(HandnetError, match="Flatten data_format must be"):
        hn.layers.Flatten(data_format="NHWC")
