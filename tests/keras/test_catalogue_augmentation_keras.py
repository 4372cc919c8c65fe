"""The augmentation layers against Keras 3 on the torch backend.

Inference: each is exactly the identity, as Keras's (bit for bit), and RandomCrop's
deterministic window equals Keras's (which Keras applies in training to images not larger than
the target; at inference Keras 3 returns the input uncropped, see RandomCrop's docstring).
Training: the random streams differ (NumPy's draws, not Keras's), so the comparison gives both
the same drawn parameters — Keras's ``transform_images`` with a transformation dict built from
them, handnet's ``transform`` with its own — and the images must agree within 1e-5 relative
(float32; the warps differ only in the rounding of the source coordinates; nearest
interpolation, flips, crops and brightness agree exactly)."""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


@pytest.fixture
def images():
    """Three 5 × 7 images with 2 channels, values in [0, 255)."""
    return (np.random.default_rng(0).random((3, 5, 7, 2)) * 255).astype("float32")


def ours(kind, args, x):
    layer = getattr(hn.layers, kind)(**args)
    layer.build(x.shape[1:])
    return layer


def keras_transform(keras, torch, kind, args, x, transformation):
    layer = getattr(keras.layers, kind)(**args)
    return np.asarray(layer.transform_images(torch.tensor(x), transformation, training=True))


def assert_close(y, expected, exact=False):
    assert y.shape == expected.shape and y.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(y, expected)
    else:
        assert relative_error(y, expected) < TOLERANCE


INFERENCE_CASES = [
    ("RandomFlip", {}),
    ("RandomFlip", {"mode": "vertical"}),
    ("RandomRotation", {"factor": 0.2}),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": (-0.1, 0.3)}),
    ("RandomZoom", {"height_factor": 0.2, "width_factor": 0.1}),
    ("RandomContrast", {"factor": 0.5}),
    ("RandomBrightness", {"factor": 0.3}),
]


@pytest.mark.parametrize("kind, args", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_is_keras_identity(keras, torch, images, kind, args):
    expected = np.asarray(getattr(keras.layers, kind)(**args)(images, training=False))
    np.testing.assert_array_equal(expected, images)
    layer = ours(kind, args, images)
    np.testing.assert_array_equal(layer(images), expected)
    dy = np.random.default_rng(1).standard_normal(images.shape).astype("float32")
    np.testing.assert_array_equal(layer.backward(dy), dy)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_rotation_matches_keras(keras, torch, images, fill_mode, interpolation):
    n = len(images)
    args = {"factor": 0.2, "fill_mode": fill_mode, "interpolation": interpolation,
            "fill_value": 7.0}
    angles = np.array([-50.0, 12.5, 71.0], dtype="float32")
    layer = getattr(keras.layers, "RandomRotation")(**args)
    matrix = layer._compute_affine_matrix(
        0.5, 0.5, torch.tensor(angles), torch.zeros(n), torch.zeros(n), torch.ones(n),
        torch.zeros(n), torch.zeros(n), images.shape[1], images.shape[2],
    )
    expected = keras_transform(keras, torch, "RandomRotation", args, images,
                               {"rotation_matrix": matrix})
    handnet_layer = ours("RandomRotation", args, images)
    y = handnet_layer.transform(images, handnet_layer.parameters(angles))
    assert_close(y, expected, exact=interpolation == "nearest")


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_translation_matches_keras(keras, torch, images, fill_mode, interpolation):
    args = {"height_factor": 0.5, "width_factor": 0.5, "fill_mode": fill_mode,
            "interpolation": interpolation, "fill_value": -3.0}
    shifts = np.array([[1.5, -2.25], [-3.0, 4.75], [0.4, 0.0]], dtype="float32")  # down, right
    translations = torch.tensor(shifts[:, ::-1].copy())  # Keras's (width, height) order
    expected = keras_transform(keras, torch, "RandomTranslation", args, images,
                               {"translations": translations, "input_shape": images.shape})
    layer = ours("RandomTranslation", args, images)
    assert_close(layer.transform(images, layer.parameters(shifts)), expected)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_zoom_matches_keras(keras, torch, images, fill_mode, interpolation):
    args = {"height_factor": 0.5, "width_factor": 0.5, "fill_mode": fill_mode,
            "interpolation": interpolation, "fill_value": 2.0}
    zooms = np.array([[0.6, 1.3], [1.45, 1.45], [1.1, 0.75]], dtype="float32")  # (rows, columns)
    transformation = {"height_zoom": torch.tensor(zooms[:, :1]),
                      "width_zoom": torch.tensor(zooms[:, 1:]), "input_shape": images.shape}
    expected = keras_transform(keras, torch, "RandomZoom", args, images, transformation)
    layer = ours("RandomZoom", args, images)
    assert_close(layer.transform(images, layer.parameters(zooms)), expected)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flip_matches_keras(keras, torch, images, mode):
    flips = np.array([True, False, True])
    transformation = {"flips": torch.tensor(flips.reshape(-1, 1, 1, 1)),
                      "input_shape": images.shape}
    expected = keras_transform(keras, torch, "RandomFlip", {"mode": mode}, images,
                               transformation)
    layer = ours("RandomFlip", {"mode": mode}, images)
    assert_close(layer.transform(images, {"flips": flips}), expected, exact=True)


@pytest.mark.parametrize(
    "args", [{"factor": 0.5}, {"factor": (0.3, 0.8), "value_range": (10, 200)}]
)
def test_contrast_matches_keras(keras, torch, images, args):
    contrast = np.array([0.4, 1.0, 1.7], dtype="float32")
    layer = getattr(keras.layers, "RandomContrast")(**args)
    assert tuple(layer.factor) == ours("RandomContrast", args, images).factor
    expected = keras_transform(keras, torch, "RandomContrast", args, images,
                               {"contrast_factor": torch.tensor(contrast.reshape(-1, 1, 1, 1))})
    handnet_layer = ours("RandomContrast", args, images)
    assert_close(handnet_layer.transform(images, {"contrast": contrast}), expected)


@pytest.mark.parametrize("args", [{"factor": 0.3}, {"factor": (-0.2, 0.6), "value_range": (0, 1)}])
def test_brightness_matches_keras(keras, torch, images, args):
    keras_layer = keras.layers.RandomBrightness(**args)
    layer = ours("RandomBrightness", args, images)
    assert tuple(keras_layer.factor) == layer.factor
    assert tuple(keras_layer.value_range) == layer.value_range
    delta = np.array([-40.0, 0.0, 90.5], dtype="float32")
    expected = np.asarray(keras_layer.transform_images(
        torch.tensor(images.copy()), {"rgb_delta": torch.tensor(delta.reshape(-1, 1, 1, 1))},
        training=True))
    assert_close(layer.transform(images, {"delta": delta}), expected, exact=True)


CROP_SIZES = [((5, 7), (3, 4)), ((5, 7), (5, 4)), ((5, 7), (4, 7)), ((3, 8), (4, 4)),
              ((6, 8), (8, 5)), ((5, 7), (5, 7)), ((2, 3), (6, 6))]


@pytest.mark.parametrize("shape, target", CROP_SIZES, ids=[f"{s}->{t}" for s, t in CROP_SIZES])
def test_crop_windows_match_keras(keras, torch, shape, target):
    x = (np.random.default_rng(2).random((2, *shape, 3)) * 255).astype("float32")
    keras_layer = keras.layers.RandomCrop(*target, seed=0)
    layer = ours("RandomCrop", {"height": target[0], "width": target[1]}, x)
    # Keras's deterministic window, where its training mode takes it (images not larger than
    # the target both ways), is handnet's at inference, the very same values.
    centred = keras_layer.get_random_transformation(x, training=False)
    assert tuple(int(v) for v in centred) == layer.centred_corner(*shape)
    # Without a resize (images at least the target's size) the crop is the same values; a
    # resize (torch's bilinear interpolate) agrees within float32 rounding.
    exact = shape[0] >= target[0] and shape[1] >= target[1]
    if not (shape[0] > target[0] and shape[1] > target[1]):
        expected = np.asarray(keras_layer(x, training=True))
        assert_close(layer(x, training=True), expected, exact=exact)
    expected = np.asarray(keras_layer.transform_images(torch.tensor(x), centred, training=True))
    y = layer(x)
    assert y.shape == (2, *target, 3)
    assert_close(y, expected, exact=exact)
    # A random corner, given to both.
    corner = (max(shape[0] - target[0], 0) // 2, max(shape[1] - target[1], 0))
    expected = np.asarray(keras_layer.transform_images(torch.tensor(x), corner, training=True))
    assert_close(layer.transform(x, {"corner": corner}), expected, exact=exact)


def test_keras_crop_at_inference_returns_its_input(keras, torch):
    """The Keras 3 behaviour handnet does not copy (it would break the declared shape)."""
    x = np.random.default_rng(3).random((2, 6, 8, 1)).astype("float32")
    keras_layer = keras.layers.RandomCrop(4, 4)
    assert np.asarray(keras_layer(x, training=False)).shape == x.shape
    assert keras_layer.compute_output_shape((None, 6, 8, 1)) == (None, 4, 4, 1)
    assert ours("RandomCrop", {"height": 4, "width": 4}, x)(x).shape == (2, 4, 4, 1)


@pytest.mark.parametrize("kind, args", [
    ("RandomFlip", {"mode": "vertical", "seed": 3}),
    ("RandomRotation", {"factor": (-0.1, 0.2), "fill_mode": "constant", "fill_value": 1.5,
                        "interpolation": "nearest", "seed": 1}),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": (-0.1, 0.3)}),
    ("RandomZoom", {"height_factor": (-0.3, 0.2), "width_factor": 0.1, "fill_mode": "wrap"}),
    ("RandomZoom", {"height_factor": 0.2}),
    ("RandomContrast", {"factor": (0.1, 0.4), "value_range": (0, 1)}),
    ("RandomBrightness", {"factor": 0.3, "value_range": (-1, 1)}),
    ("RandomCrop", {"height": 3, "width": 2, "seed": 5}),
])
def test_built_from_keras_config(keras, kind, args):
    """handnet's layer from Keras's config, with Keras's argument names; its own config holds
    the parsed ranges, which must be Keras's (Keras keeps a translation's or zoom's factors as
    given and their ranges in height_lower, …)."""
    keras_layer = getattr(keras.layers, kind)(**args)
    config = keras_layer.get_config()
    keys = set(args) | {"name", "seed", "data_format"}
    layer = getattr(hn.layers, kind).from_config(
        {k: v for k, v in config.items() if k in keys})
    mine = layer.get_config()
    for key in keys - {"name"}:
        theirs = config[key]
        if key in ("height_factor", "width_factor") and theirs is not None:
            prefix = key.removesuffix("_factor")
            theirs = [getattr(keras_layer, f"{prefix}_{end}") for end in ("lower", "upper")]
        theirs = list(theirs) if isinstance(theirs, tuple) else theirs
        assert mine[key] == theirs, key
    assert hn.layers.deserialize(hn.layers.serialize(layer)).get_config() == mine
