"""RandomFlip, RandomRotation, RandomTranslation, RandomZoom, RandomContrast, RandomBrightness
and RandomCrop: exactly the identity at inference (RandomCrop: its deterministic window),
transforms of known images by hand, the distributions of the drawn parameters on large batches,
the code shared with handnet.augment (same warp, same values), gradient checks of the backward
passes (the exact transposes) in float64, seeds, models that train with them, configs and clear
errors. Keras is the oracle in tests/keras/test_catalogue_augmentation_keras.py."""

import math

import numpy as np
import pytest

import handnet as hn
from handnet import augment
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import (
    Dense,
    Flatten,
    Input,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)

CASES = [
    (RandomFlip, {}, (4, 5, 2)),
    (RandomFlip, {"mode": "horizontal"}, (4, 5, 2)),
    (RandomFlip, {"mode": "vertical"}, (4, 5, 1)),
    (RandomRotation, {"factor": 0.2}, (5, 6, 2)),
    (RandomRotation, {"factor": (-0.1, 0.3), "fill_mode": "constant", "fill_value": 0.5,
                      "interpolation": "nearest"}, (5, 6, 2)),
    (RandomRotation, {"factor": 0.3, "fill_mode": "wrap"}, (5, 6, 1)),
    (RandomTranslation, {"height_factor": 0.3, "width_factor": 0.2, "fill_mode": "nearest"},
     (5, 6, 2)),
    (RandomTranslation, {"height_factor": (-0.2, 0.1), "width_factor": 0.4,
                         "fill_mode": "constant"}, (4, 4, 2)),
    (RandomZoom, {"height_factor": 0.3, "width_factor": (-0.2, 0.4)}, (5, 6, 2)),
    (RandomZoom, {"height_factor": -0.3, "fill_mode": "constant", "fill_value": 1.0},
     (5, 6, 2)),
    (RandomContrast, {"factor": 0.5, "value_range": (-1, 1)}, (4, 4, 2)),
    (RandomBrightness, {"factor": 0.3, "value_range": (-1, 1)}, (4, 4, 2)),
    (RandomCrop, {"height": 3, "width": 4}, (5, 6, 2)),
    (RandomCrop, {"height": 4, "width": 4}, (3, 8, 2)),
    (RandomCrop, {"height": 4, "width": 4}, (6, 8, 1)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind.__name__}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backward_matches_central_differences(case, training):
    kind, args, shape = case
    report = hn.gradcheck(kind(**args), input_shape=shape, batch_size=3, training=training)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("case", [c for c in CASES if c[0] is not RandomCrop], ids=case_id)
def test_inference_is_exactly_the_identity(case):
    kind, args, shape = case
    layer = kind(**args, seed=0)
    x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    np.testing.assert_array_equal(layer(x), x)
    dy = np.random.default_rng(1).standard_normal(x.shape).astype("float32")
    np.testing.assert_array_equal(layer.backward(dy), dy)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dy_untouched_and_shapes(case):
    kind, args, shape = case
    layer = kind(**args, dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, *shape))
    before = x.copy()
    y = layer(x, training=True)
    assert y.shape == (3, *layer.output_shape) and y.dtype == np.float64
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, dy_before)
    np.testing.assert_array_equal(x, before)
    assert dx.shape == x.shape


def test_flips_by_hand_and_their_rate():
    x = np.arange(12.0).reshape(1, 3, 4, 1)
    both = RandomFlip()
    both.build(x.shape[1:])
    np.testing.assert_array_equal(both.transform(x, {"flips": [True]})[0, ..., 0],
                                  np.rot90(x[0, ..., 0], 2))  # one draw flips both ways
    horizontal = RandomFlip("horizontal")
    horizontal.build(x.shape[1:])
    np.testing.assert_array_equal(horizontal.transform(x, {"flips": [True]}), x[:, :, ::-1])
    np.testing.assert_array_equal(horizontal.transform(x, {"flips": [False]}), x)
    n = 20_000
    images = np.zeros((n, 1, 2, 1), dtype="float32")
    images[:, :, 0] = 1
    flipped = RandomFlip("horizontal", seed=0)(images, training=True)[:, 0, 0, 0] == 0
    assert abs(flipped.mean() - 0.5) < 5 * math.sqrt(0.25 / n)


def test_a_quarter_turn_is_rot90():
    x = np.random.default_rng(3).random((2, 5, 5, 1))
    layer = RandomRotation(0.25, fill_mode="constant", dtype="float64")
    layer.build(x.shape[1:])
    y = layer.transform(x, layer.parameters(np.array([90.0, -90.0])))
    np.testing.assert_allclose(y[0], np.rot90(x[0], 1), atol=1e-12)  # counter-clockwise
    np.testing.assert_allclose(y[1], np.rot90(x[1], -1), atol=1e-12)


def test_rotation_shares_augments_warp():
    """RandomRotation with zero fill is handnet.augment's RandomAffine at scale 1, shift 0: the
    same handnet.augment warp functions, the same values to the bit."""
    x = np.random.default_rng(4).random((3, 7, 6, 2), dtype=np.float32)
    angles = np.array([-20.0, 5.5, 33.0])
    layer = RandomRotation(0.1, fill_mode="constant")
    layer.build(x.shape[1:])
    expected = augment.affine_transform(x, angles, np.ones(3), np.zeros((3, 2)))
    np.testing.assert_array_equal(layer.transform(x, layer.parameters(angles)), expected)


def test_translation_and_fill_modes_by_hand():
    x = np.arange(5.0).reshape(1, 1, 5, 1)  # one row: 0 1 2 3 4
    expected = {
        "constant": [9, 9, 0, 1, 2],
        "reflect": [1, 0, 0, 1, 2],
        "wrap": [3, 4, 0, 1, 2],
        "nearest": [0, 0, 0, 1, 2],
    }
    for fill_mode, row in expected.items():
        layer = RandomTranslation(0, 0.5, fill_mode=fill_mode, fill_value=9, dtype="float64")
        layer.build(x.shape[1:])
        y = layer.transform(x, layer.parameters([[0.0, 2.0]]))  # two columns to the right
        np.testing.assert_array_equal(y[0, 0, :, 0], row, err_msg=fill_mode)


def test_zoom_by_hand():
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    layer = RandomZoom(0.5, fill_mode="constant", dtype="float64")
    layer.build(x.shape[1:])
    # z = 0.5 reads the middle half stretched: source columns 1, 1.5, 2, 2.5, 3
    y = layer.transform(x, layer.parameters([[1.0, 0.5]]))
    np.testing.assert_allclose(y[0, 0, :, 0], [1, 1.5, 2, 2.5, 3])


@pytest.mark.parametrize("kind, args, low, high", [
    (RandomRotation, {"factor": (-0.1, 0.2)}, -36.0, 72.0),
    (RandomZoom, {"height_factor": (-0.3, 0.2)}, 0.7, 1.2),
    (RandomContrast, {"factor": 0.4}, 1.0, 1.4),
    (RandomContrast, {"factor": (0.2, 0.5)}, 0.8, 1.5),
    (RandomBrightness, {"factor": 0.5, "value_range": (0, 2)}, -1.0, 1.0),
])
def test_drawn_parameters_are_uniform_on_keras_ranges(kind, args, low, high):
    layer = kind(**args, seed=0)
    layer.build((3, 3, 1))
    n = 20_000
    drawn = layer.draw(n)
    if kind is RandomRotation:
        values = np.degrees(np.arctan2(drawn["matrices"][:, 0, 1], drawn["matrices"][:, 0, 0]))
    elif kind is RandomZoom:
        values = drawn["matrices"][:, 0, 0]
        np.testing.assert_array_equal(values, drawn["matrices"][:, 1, 1])  # aspect kept
    else:
        values = next(iter(drawn.values()))
    assert low <= values.min() and values.max() <= high
    width = high - low
    assert abs(values.mean() - (low + high) / 2) < 5 * width / math.sqrt(12 * n)
    assert values.min() < low + 0.01 * width and values.max() > high - 0.01 * width


def test_translation_draws_in_pixels():
    layer = RandomTranslation((-0.5, 0.0), (0.25, 0.5), seed=0)
    layer.build((8, 4, 1))
    shifts = -layer.draw(5000)["offsets"]  # (down, right) pixels
    assert -4 <= shifts[:, 0].min() and shifts[:, 0].max() <= 0
    assert 1 <= shifts[:, 1].min() and shifts[:, 1].max() <= 2


def test_contrast_keeps_the_mean_and_brightness_moves_it():
    x = np.random.default_rng(5).random((4, 6, 6, 3)) * 0.5 + 0.25
    contrast = RandomContrast((0.2, 0.2), value_range=(-10, 10), dtype="float64")
    contrast.build(x.shape[1:])
    y = contrast.transform(x, {"contrast": [0.8, 1.2, 1.0, 0.9]})
    np.testing.assert_allclose(y.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(1, 2)),
                               x.std(axis=(1, 2)) * np.array([0.8, 1.2, 1.0, 0.9])[:, None])
    brightness = RandomBrightness(0.5, value_range=(0, 1), dtype="float64")
    brightness.build(x.shape[1:])
    y = brightness.transform(x, {"delta": [0.1, -0.1, 0.9, 0.0]})
    np.testing.assert_allclose(y[0], x[0] + 0.1)
    np.testing.assert_array_equal(y[2], 1.0)  # clipped to the value range
    dy = np.ones_like(x)
    np.testing.assert_array_equal(brightness.backward(dy)[2], 0.0)


def test_crop_one_window_per_batch_and_all_windows_reached():
    x = np.arange(6 * 7, dtype=np.float64).reshape(1, 6, 7, 1).repeat(3, axis=0)
    layer = RandomCrop(4, 5, seed=0, dtype="float64")
    corners = set()
    for _ in range(200):
        y = layer(x, training=True)
        np.testing.assert_array_equal(y[0], y[1])  # the same window for the whole batch
        corner = (int(y[0, 0, 0, 0]) // 7, int(y[0, 0, 0, 0]) % 7)
        np.testing.assert_array_equal(y[0], x[0, corner[0]:corner[0] + 4, corner[1]:corner[1] + 5])
        corners.add(corner)
    assert corners == {(i, j) for i in range(3) for j in range(3)}
    # Inference: Keras's deterministic window (the aspect window's corner).
    assert layer.centred_corner(6, 7) == (0, 0)
    np.testing.assert_array_equal(layer(x), x[:, :4, :5])


def test_crop_resizes_small_images():
    x = np.random.default_rng(6).random((2, 3, 8, 1))
    layer = RandomCrop(4, 4, dtype="float64")
    y = layer(x)
    assert y.shape == (2, 4, 4, 1)
    # The window x[:, 0:3, 2:6] stretched to 4 rows: the resize's rows sum to one, so a
    # constant image stays constant.
    np.testing.assert_allclose(layer(np.full_like(x, 0.3)), 0.3)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_seeds_fix_the_draws(case):
    kind, args, shape = case
    x = np.random.default_rng(7).random((6, *shape), dtype=np.float32)
    first = kind(**args, seed=5)(x, training=True)
    np.testing.assert_array_equal(kind(**args, seed=5)(x, training=True), first)


def augmenting_model():
    return hn.Sequential(
        [
            Input((8, 8, 1)),
            RandomFlip("horizontal"),
            RandomRotation(0.05),
            RandomTranslation(0.1, 0.1),
            RandomZoom(0.1),
            RandomContrast(0.2, value_range=(0, 1)),
            RandomBrightness(0.1, value_range=(0, 1)),
            RandomCrop(6, 6),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        seed=0,
    ).compile("adam", loss="sparse_categorical_crossentropy")


def test_a_model_trains_with_them_saves_and_loads(tmp_path):
    rng = np.random.default_rng(8)
    x, y = rng.random((32, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 32)
    model = augmenting_model()
    first = model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0, threads=1)
    again = augmenting_model()
    second = again.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0, threads=1)
    assert first.history["loss"] == second.history["loss"]  # fit's seed fixes the draws
    predictions = model.predict(x[:4])
    assert predictions.shape == (4, 3)
    path = tmp_path / "augmenting.npz"
    model.save(path)
    loaded = hn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x[:4]), predictions)
    # Inference runs no augmentation: the prediction is that of the crop alone.
    plain = hn.Sequential([Input((8, 8, 1)), RandomCrop(6, 6), Flatten(), model.layers[-1]])
    np.testing.assert_allclose(plain.predict(x[:4]), predictions, rtol=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RandomFlip("diagonal"), "mode"),
        (lambda: RandomRotation(1.5), "factor"),
        (lambda: RandomRotation(0.1, fill_mode="mirror"), "fill_mode"),
        (lambda: RandomRotation(0.1, interpolation="bicubic"), "interpolation"),
        (lambda: RandomRotation(0.1, data_format="channels_first"), "channels-last"),
        (lambda: RandomTranslation(0.1, (0.1, 0.2, 0.3)), "width_factor"),
        (lambda: RandomZoom(-1.0), "height_factor"),
        (lambda: RandomContrast(-0.1), "factor"),
        (lambda: RandomContrast(0.1, value_range=5), "value_range"),
        (lambda: RandomBrightness("bright"), "factor"),
        (lambda: RandomCrop(0, 3), "height"),
        (lambda: RandomCrop(3, 2.5), "width"),
    ],
)
def test_clear_errors(make, message):
    with pytest.raises(HandnetError, match=message):
        make()


def test_images_are_required():
    with pytest.raises(InvalidInputError, match="images"):
        RandomFlip().build((4, 4))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_config_round_trip_and_explain(case):
    kind, args, shape = case
    layer = kind(**args, seed=3)
    rebuilt = hn.layers.deserialize(hn.layers.serialize(layer))
    assert rebuilt.get_config() == layer.get_config()
    headline, formula = layer.explain()
    assert headline and formula


@pytest.mark.parametrize("kind, args", [(RandomFlip, {}), (RandomRotation, {"factor": 0.1}),
                                        (RandomCrop, {"height": 3, "width": 3})])
def test_integer_images_come_out_as_floats(kind, args):
    x = np.random.default_rng(9).integers(0, 256, (2, 4, 4, 1), dtype=np.uint8)
    layer = kind(**args, seed=0)
    for training in (False, True):
        y = layer(x, training=training)
        assert y.dtype == np.float32
    np.testing.assert_array_equal(RandomFlip()(x), x.astype(np.float32))


def test_factor_pairs_follow_keras_rules():
    """Keras's base layer checks a pair only as a whole (a <= 1, b >= -1: RandomRotation's
    (-2, 0.5) is a legal range of -720° to 180°), translation and zoom each entry."""
    assert RandomRotation((-2.0, 0.5)).factor == (-2.0, 0.5)
    assert RandomContrast((0.5, 0.2)).factor == (0.2, 0.5)
    with pytest.raises(HandnetError, match="factor"):
        RandomRotation((1.5, 2.0))
    with pytest.raises(HandnetError, match="height_factor"):
        RandomTranslation((-2.0, 0.5), 0.1)
