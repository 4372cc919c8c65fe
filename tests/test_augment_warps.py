"""The warp functions of handnet.augment that the augmentation layers share: ``sample`` against
a loop over the output pixels that reads like keras.ops.image.map_coordinates (each corner's
index folded back by the fill mode, a constant fill per corner), ``sample_adjoint`` against the
transpose of the sampling matrix built column by column, and ``resize`` against its matrix form.
float64 throughout, points far outside the image included."""

import itertools
import math

import numpy as np
import pytest

from handnet import augment


def fold(index, size, fill_mode):
    """The pixel a whole-numbered index reads, as the fill modes are defined: one step at a
    time, mirrored at the edges for reflect (d c b a | a b c d | d c b a)."""
    if fill_mode == "wrap":
        return index % size
    if fill_mode in ("nearest", "constant"):
        return min(max(index, 0), size - 1)
    while not 0 <= index < size:
        index = -index - 1 if index < 0 else 2 * size - 1 - index
    return index


def sample_loop(images, rows, columns, interpolation, fill_mode, fill_value):
    n, height, width, channels = images.shape
    out = np.zeros((*rows.shape, channels))
    for b, i, j in itertools.product(*map(range, rows.shape)):
        r, c = rows[b, i, j], columns[b, i, j]
        if interpolation == "nearest":
            corners = [(round(r), round(c), 1.0)]  # Python rounds halves to even, as torch
        else:
            r0, c0 = math.floor(r), math.floor(c)
            a, d = r - r0, c - c0
            corners = [(r0, c0, (1 - a) * (1 - d)), (r0, c0 + 1, (1 - a) * d),
                       (r0 + 1, c0, a * (1 - d)), (r0 + 1, c0 + 1, a * d)]
        for ri, ci, weight in corners:
            inside = 0 <= ri < height and 0 <= ci < width
            if fill_mode == "constant" and not inside:
                value = np.full(channels, fill_value)
            else:
                value = images[b, fold(ri, height, fill_mode), fold(ci, width, fill_mode)]
            out[b, i, j] += weight * value
    return out


def points(rng, shape, height, width, whole=False):
    rows = rng.uniform(-2 * height, 3 * height, shape)
    columns = rng.uniform(-2 * width, 3 * width, shape)
    if whole:  # exact halves and whole numbers: the ties of rounding and floor
        rows, columns = np.round(rows * 2) / 2, np.round(columns * 2) / 2
    return rows, columns


@pytest.mark.parametrize("fill_mode", augment.FILL_MODES)
@pytest.mark.parametrize("interpolation", augment.INTERPOLATIONS)
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (4, 5)])
@pytest.mark.parametrize("whole", [False, True])
def test_sample_matches_the_loop(fill_mode, interpolation, size, whole):
    rng = np.random.default_rng(sum(size))
    images = rng.standard_normal((2, *size, 2))
    rows, columns = points(rng, (2, 3, 4), *size, whole)
    for fill_value in (0.0, 2.5):
        expected = sample_loop(images, rows, columns, interpolation, fill_mode, fill_value)
        got = augment.sample(images, rows, columns, interpolation, fill_mode, fill_value)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fill_mode", augment.FILL_MODES)
@pytest.mark.parametrize("interpolation", augment.INTERPOLATIONS)
def test_sample_adjoint_is_the_transpose(fill_mode, interpolation):
    """S (outputs × pixels) column by column: sample a unit image for each pixel (fill 0, so
    that S is the linear part); the adjoint must be Sᵀ dy."""
    rng = np.random.default_rng(1)
    n, height, width = 2, 3, 4
    rows, columns = points(rng, (n, 2, 5), height, width)
    columns_of_s = []
    for pixel in range(n * height * width):
        unit = np.zeros(n * height * width)
        unit[pixel] = 1
        unit = unit.reshape(n, height, width, 1)
        columns_of_s.append(augment.sample(unit, rows, columns, interpolation, fill_mode, 0.0)
                            .reshape(-1))
    matrix = np.stack(columns_of_s, axis=1)
    dy = rng.standard_normal((n, 2, 5, 1))
    dx = augment.sample_adjoint(dy, (n, height, width, 1), rows, columns, interpolation,
                                fill_mode)
    np.testing.assert_allclose(dx.reshape(-1), matrix.T @ dy.reshape(-1), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("size_in, size_out", [(1, 4), (3, 7), (5, 5), (7, 3), (2, 9)])
def test_resize_is_its_matrix(size_in, size_out):
    rng = np.random.default_rng(2)
    images = rng.standard_normal((2, size_in, size_in + 1, 3))
    rows = augment.resize_matrix(size_in, size_out)
    columns = augment.resize_matrix(size_in + 1, size_out + 2)
    expected = np.einsum("ip,jq,npqc->nijc", rows, columns, images)
    got = augment.resize(images, size_out, size_out + 2)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rows.sum(axis=1), 1)


def test_zero_fill_bilinear_is_the_fast_path():
    rng = np.random.default_rng(3)
    images = rng.standard_normal((2, 4, 5, 2))
    rows, columns = points(rng, (2, 4, 5), 4, 5)
    expected = sample_loop(images, rows, columns, "bilinear", "constant", 0.0)
    np.testing.assert_allclose(augment.bilinear_sample(images, rows, columns), expected,
                               rtol=1e-12, atol=1e-12)
