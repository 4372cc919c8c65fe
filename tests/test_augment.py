"""Augmentation: exact transforms of known images, seeds, shapes and dtypes, fit(augment=...)."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.augment import (
    RandomAffine,
    affine_transform,
    bilinear_sample,
    gaussian_smoothing_matrix,
    parse_settings,
)
from handnet.errors import HandnetError, InvalidInputError
from cli_run import run as run_cli


@pytest.fixture
def images():
    """Eight random 12×12 "images" in [0, 1): float32 (8, 12, 12)."""
    return np.random.default_rng(0).random((8, 12, 12), dtype=np.float32)


def no_change(**overrides):
    return RandomAffine(**{"rotation": 0, "shift": 0, "scale": None, **overrides})


# -- the deterministic transform ------------------------------------------------------------------
def test_a_one_pixel_shift_moves_the_image_by_one_pixel(images):
    n = len(images)
    down = affine_transform(images, np.zeros(n), np.ones(n), np.tile([1.0, 0.0], (n, 1)))
    np.testing.assert_array_equal(down[:, 1:], images[:, :-1])
    np.testing.assert_array_equal(down[:, 0], 0)  # zero fill where nothing comes from
    left = affine_transform(images, np.zeros(n), np.ones(n), np.tile([0.0, -1.0], (n, 1)))
    np.testing.assert_array_equal(left[:, :, :-1], images[:, :, 1:])
    np.testing.assert_array_equal(left[:, :, -1], 0)


def test_half_a_pixel_shift_averages_neighbours(images):
    half = affine_transform(images[:1], [0.0], [1.0], [[0.0, 0.5]])
    mean_of_neighbours = (images[0, :, 1:] + images[0, :, :-1]) / 2
    np.testing.assert_allclose(half[0, :, 1:], mean_of_neighbours, rtol=1e-6)


def test_rotating_a_square_by_90_degrees_is_rot90(images):
    n = len(images)
    turned = affine_transform(images, np.full(n, 90.0), np.ones(n), np.zeros((n, 2)))
    np.testing.assert_allclose(turned, np.rot90(images, axes=(1, 2)), atol=1e-6)
    back = affine_transform(images, np.full(n, -90.0), np.ones(n), np.zeros((n, 2)))
    np.testing.assert_allclose(back, np.rot90(images, k=-1, axes=(1, 2)), atol=1e-6)


def test_each_image_gets_its_own_transform(images):
    angles = np.array([0, 90, 180, 270, 0, 90, 180, 270], dtype=float)
    turned = affine_transform(images, angles, np.ones(8), np.zeros((8, 2)))
    for k in range(8):
        expected = np.rot90(images[k], k=int(angles[k]) // 90)
        np.testing.assert_allclose(turned[k], expected, atol=1e-6)


def test_a_mirror_reverses_the_columns_and_comes_before_the_shift(images):
    n = len(images)
    mirrors = np.arange(n) % 2 == 0
    flipped = affine_transform(images, np.zeros(n), np.ones(n), np.zeros((n, 2)), mirrors=mirrors)
    np.testing.assert_array_equal(flipped[mirrors], images[mirrors, :, ::-1])
    np.testing.assert_array_equal(flipped[~mirrors], images[~mirrors])
    # Mirrored first, then moved right by one pixel (not mirrored after the move).
    right = affine_transform(images[:1], [0.0], [1.0], [[0.0, 1.0]], mirrors=[True])
    np.testing.assert_array_equal(right[0, :, 1:], images[0, :, :0:-1])


def test_flip_mirrors_about_the_given_fraction_of_images(images):
    batch = np.random.default_rng(1).random((400, 5, 5), dtype=np.float32)
    flipped = no_change(flip=0.5, seed=0)(batch)
    mirrored = np.all(flipped == batch[:, :, ::-1], axis=(1, 2))
    assert np.all(mirrored | np.all(flipped == batch, axis=(1, 2)))
    assert 160 <= mirrored.sum() <= 240
    np.testing.assert_array_equal(no_change(flip=1, seed=0)(images), images[:, :, ::-1])


def test_without_flips_the_random_stream_is_unchanged(images):
    """flip draws after everything else, so recipes without it give the images they gave."""
    augment = dict(rotation=15, shift=0.1, scale=(0.9, 1.1))
    np.testing.assert_array_equal(
        RandomAffine(**augment, seed=3)(images), RandomAffine(**augment, flip=0, seed=3)(images)
    )


def test_scaling_by_two_magnifies_about_the_centre():
    image = np.zeros((1, 9, 9), dtype=np.float32)
    image[0, 4, 4] = 1.0  # the centre pixel
    image[0, 4, 6] = 1.0  # two to the right of it
    big = affine_transform(image, [0.0], [2.0], [[0.0, 0.0]])
    assert big[0, 4, 4] == 1  # the centre stays
    assert big[0, 4, 8] == 1  # twice as far out
    assert big[0, 4, 7] == pytest.approx(0.5)  # halfway between samples: interpolated


def test_bilinear_sampling_reads_zero_outside_and_interpolates_at_the_border():
    image = np.ones((1, 3, 3, 1), dtype=np.float64)
    rows = np.array([[[-0.5, -1.0, -7.0, 2.5, 1.0]]])
    columns = np.array([[[1.0, 1.0, 1.0, 1.0, 3.25]]])
    values = bilinear_sample(image, rows, columns)[0, 0, :, 0]
    np.testing.assert_allclose(values, [0.5, 0.0, 0.0, 0.5, 0.0])


def test_channels_and_integer_images_keep_their_shape_and_dtype():
    rng = np.random.default_rng(1)
    colour = rng.random((3, 10, 10, 3)).astype(np.float64)
    shifted = affine_transform(colour, [0, 0, 0], [1, 1, 1], [[1, 0]] * 3)
    assert shifted.dtype == np.float64 and shifted.shape == colour.shape
    np.testing.assert_array_equal(shifted[:, 1:], colour[:, :-1])
    digits = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    moved = RandomAffine(seed=0)(digits)
    assert moved.dtype == np.uint8 and moved.shape == digits.shape


# -- RandomAffine -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(6, 12, 12), (6, 12, 12, 1), (6, 10, 14, 3)], ids=["NHW", "NHWC", "colour"]
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shape_and_dtype_are_kept(shape, dtype):
    x = np.random.default_rng(0).random(shape).astype(dtype)
    out = RandomAffine(rotation=20, elastic=(8, 3), seed=0)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not np.array_equal(out, x)


def test_flat_rows_with_an_image_shape(images):
    flat = images.reshape(8, 144)
    augment = RandomAffine(seed=3, image_shape=(12, 12))
    out = augment(flat)
    assert out.shape == flat.shape
    np.testing.assert_array_equal(out, RandomAffine(seed=3)(images).reshape(8, 144))
    with pytest.raises(InvalidInputError, match="flat rows need image_shape"):
        RandomAffine()(flat)


def test_identity_when_every_range_is_zero(images):
    np.testing.assert_array_equal(no_change(seed=0)(images), images)
    np.testing.assert_array_equal(no_change(elastic=(0.0, 4.0), seed=0)(images), images)


def test_the_same_seed_gives_the_same_images_and_different_seeds_differ(images):
    augment = dict(rotation=15, shift=0.1, scale=(0.9, 1.1), elastic=(10, 3))
    first = RandomAffine(**augment, seed=7)(images)
    np.testing.assert_array_equal(first, RandomAffine(**augment, seed=7)(images))
    assert not np.allclose(first, RandomAffine(**augment, seed=8)(images))
    # A generator passed in is used when the augmentation has no seed of its own.
    np.testing.assert_array_equal(
        RandomAffine(**augment)(images, np.random.default_rng(5)),
        RandomAffine(**augment)(images, np.random.default_rng(5)),
    )


def test_draws_stay_within_their_ranges():
    """A single bright pixel at the centre of a large image moves by at most the shift range."""
    image = np.zeros((200, 41, 41), dtype=np.float32)
    image[:, 20, 20] = 1
    moved = RandomAffine(rotation=0, shift=0.1, scale=None, seed=0)(image)
    rows, columns = np.nonzero(moved.sum(axis=0))
    assert rows.min() >= 15 and rows.max() <= 25  # 0.1 · 41 = 4.1 pixels, + 1 to interpolate
    assert columns.min() >= 15 and columns.max() <= 25
    assert rows.max() - rows.min() >= 8  # and it did move around


def test_elastic_smoothing_is_a_gaussian_convolution():
    """G u against the naive sum over |d| ≤ ⌊4σ + ½⌋ of normalized Gaussian weights."""
    sigma, size = 1.5, 11
    u = np.random.default_rng(0).standard_normal(size)
    radius = int(4 * sigma + 0.5)
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    naive = [
        sum(weights[d + radius] * u[i - d] for d in range(-radius, radius + 1) if 0 <= i - d < size)
        for i in range(size)
    ]
    np.testing.assert_allclose(gaussian_smoothing_matrix(size, sigma) @ u, naive, rtol=1e-12)


def test_get_config_round_trips():
    augment = RandomAffine(
        rotation=5, shift=(0.1, 0.2), scale=(0.8, 1.0), elastic=(30, 5), flip=0.5, seed=2
    )
    clone = RandomAffine(**augment.get_config())
    assert clone.get_config() == augment.get_config()
    images = np.random.default_rng(0).random((3, 9, 9))
    np.testing.assert_array_equal(clone(images), augment(images))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(rotation=-1), "rotation must be"),
        (dict(shift=1.5), "below 1"),
        (dict(scale=(1.1, 0.9)), "0 < low ≤ high"),
        (dict(scale=1.1), "must be a pair"),
        (dict(elastic=(34, 0)), "sigma > 0"),
        (dict(flip=1.5), "probability"),
        (dict(flip=-0.5), "flip must be"),
    ],
)
def test_bad_settings_are_refused(arguments, message):
    with pytest.raises(HandnetError, match=message):
        RandomAffine(**arguments)


def test_settings_from_the_command_line():
    assert parse_settings("on") == {} and parse_settings("off") is None
    assert parse_settings("rotation=15, scale=0.8:1.2,elastic=34:4,shift=none,flip=0.5") == {
        "rotation": 15.0,
        "scale": [0.8, 1.2],
        "elastic": [34.0, 4.0],
        "shift": None,
        "flip": 0.5,
    }
    with pytest.raises(HandnetError, match="key=value pairs"):
        parse_settings("spin=3")
    with pytest.raises(HandnetError, match="a number or a:b"):
        parse_settings("rotation=lots")


# -- in fit -------------------------------------------------------------------------------------
def tiny_image_model(seed=0):
    return hn.Sequential(
        [
            hn.layers.Input((8, 8, 1)),
            hn.layers.Flatten(),
            hn.layers.Dense(3, activation="softmax"),
        ],
        seed=seed,
    ).compile(hn.optimizers.SGD(0.1))


class Recorder:
    """An augmentation that remembers what it was given and passes it through a RandomAffine."""

    def __init__(self):
        self.inner = RandomAffine(rotation=10, shift=0.1)
        self.batches = []

    def __call__(self, x, rng):
        self.batches.append(x.copy())
        return self.inner(x, rng)


def test_fit_augments_the_training_batches_only():
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 20)
    recorder = Recorder()
    model = tiny_image_model()
    model.fit(
        x, y, epochs=2, batch_size=8, validation_split=0.2, augment=recorder, verbose=0, seed=0
    )
    assert [len(b) for b in recorder.batches] == [8, 8, 8, 8]  # 16 training samples, 2 epochs
    seen = np.concatenate(recorder.batches[:2])
    validation = x[16:]
    assert not any((seen == v).all(axis=(1, 2, 3)).any() for v in validation)


def test_fit_with_augment_is_reproducible_and_differs_from_plain_fit():
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 32)

    def weights(**options):
        model = tiny_image_model()
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=1, **options)
        return model.get_weights()

    augment = RandomAffine(rotation=10, shift=0.1)
    first, again = weights(augment=augment), weights(augment=augment)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    plain = weights()
    assert not np.allclose(first[0], plain[0])
    # An augmentation that changes nothing gives the plain run exactly: the same images meet the
    # same labels in the same order, and its generator leaves shuffling and dropout as they were.
    for a, b in zip(plain, weights(augment=lambda x, rng: x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_refuses_an_augment_that_is_not_callable():
    x, y = np.zeros((4, 8, 8, 1), dtype=np.float32), np.zeros(4, dtype=int)
    with pytest.raises(HandnetError, match="augment must be callable"):
        tiny_image_model().fit(x, y, augment="yes", verbose=0)


# -- handnet train --augment ----------------------------------------------------------------------


@pytest.mark.mnist
def test_train_with_augmentation_label_smoothing_and_one_cycle(tmp_path):
    status, out, err = run_cli(
        [
            "train", "--epochs", 1, "--train-limit", 600, "--out", tmp_path, "-q",
            "--augment", "rotation=8,elastic=20:4", "--label-smoothing", 0.1,
            "--schedule", "onecycle",
        ]
    )  # fmt: skip
    assert status == 0, err
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert settings["augment"] == {"rotation": 8.0, "elastic": [20.0, 4.0]}
    assert settings["label_smoothing"] == 0.1 and settings["schedule"] == "onecycle"
    assert "augmented images; label smoothing 0.1" in out


def test_train_refuses_bad_augmentation_settings(tmp_path):
    status, _, err = run_cli(["train", "--augment", "spin=3", "--out", tmp_path])
    assert status == 2 and "key=value pairs" in err and "Traceback" not in err
