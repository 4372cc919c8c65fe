"""handnet.special's float32 path (Φ and φ in float32, no masks) against its float64 path.

The float64 Φ is checked against mpmath in test_activations_keras.py (relative error < 1e-13):
here it is the oracle, evaluated at the same float32 inputs, so that only the float32
arithmetic is measured. u = 2⁻²⁴ is float32's unit roundoff; the bounds are the module
docstring's: (8 + x²/2)·u for Φ, (4 + x²/2)·u for φ. A coefficient off in its sixth digit
(3e-6 relative) moves Φ by more than the bound somewhere on the grid.
"""


import numpy as np
import pytest

from handnet import activations, special
from numerics import strict_numerics

U = 2.0**-24
#: float32's smallest normal number: below it a float32 result keeps fewer than 24 bits.
TINY = float(np.finfo(np.float32).tiny)
SMALLEST = 2.0**-149  # float32's smallest subnormal number


def grid():
    """A dense float32 grid over [-14, 14] (Φ(-14) ≈ 8e-45, where float32 runs out), and
    float32 neighbours of the points where the formula's behaviour could change."""
    dense = np.linspace(-14, 14, 280001)
    special_points = np.array([0.0, 1e-30, 1e-7, 0.5, 0.67448975, 1.0, 2**0.5, 32**0.5, 13.0])
    around = special_points[:, None] * np.array([1 - 1e-6, 1, 1 + 1e-6])
    points = np.concatenate([dense, around.ravel(), -around.ravel()]).astype(np.float32)
    return points, points.astype(np.float64)


def test_float32_cdf_is_float32_and_within_its_bound_of_the_float64_cdf():
    x, x64 = grid()
    with strict_numerics():
        got = special.normal_cdf(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    exact = special.normal_cdf(x64)
    error = np.abs(got.astype(np.float64) - exact)
    normal = exact >= TINY
    relative = error[normal] / exact[normal] / U
    assert (relative <= 8 + x64[normal] ** 2 / 2).all(), relative.max()
    assert relative[np.abs(x64[normal]) <= 1].max() < 8
    # Below float32's normal range (x < -13.1) NumPy's float32 exp keeps few bits of its
    # subnormal results: tens of float32's smallest steps 2⁻¹⁴⁹, absolutely.
    assert error[~normal].max() <= 64 * SMALLEST
    # Where x > 0, Φ = 1 - Φ(-x) has one rounding: within 3 u of 1/2 … 1 absolutely.
    assert error[x64 > 0].max() <= 3 * U


def test_float32_pdf_is_float32_and_within_its_bound_of_the_float64_pdf():
    x, x64 = grid()
    with strict_numerics():
        got = special.normal_pdf(x)
    assert got.dtype == np.float32
    exact = special.normal_pdf(x64)
    normal = exact >= TINY
    relative = np.abs(got[normal] - exact[normal]) / exact[normal] / U
    assert (relative <= 4 + x64[normal] ** 2 / 2).all(), relative.max()
    assert np.abs(got[~normal] - exact[~normal]).max() <= 64 * SMALLEST


def test_float32_cdf_and_pdf_at_the_extremes():
    big = float(np.finfo(np.float32).max)
    x = np.array([-np.inf, -big, -1e4, -20, -14.5, -0.0, 0.0, 1e-45, 14.5, 20, 1e4, big, np.inf],
                 dtype=np.float32)
    with strict_numerics():
        cdf, pdf = special.normal_cdf(x), special.normal_pdf(x)
    np.testing.assert_array_equal(cdf, [0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(pdf[[0, 1, 2, 3, 4, 8, 9, 10, 11, 12]], 0)
    np.testing.assert_array_equal(pdf[5:8], np.float32(1 / np.sqrt(2 * np.pi)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates_and_the_input_is_left_alone(dtype):
    x = np.array([np.nan, -1.0, np.nan, 2.0], dtype=dtype)
    saved = x.copy()
    cdf, pdf = special.normal_cdf(x), special.normal_pdf(x)
    assert np.isnan(cdf[[0, 2]]).all() and np.isnan(pdf[[0, 2]]).all()
    assert np.isfinite(cdf[[1, 3]]).all() and np.isfinite(pdf[[1, 3]]).all()
    assert cdf.dtype == pdf.dtype == dtype
    np.testing.assert_array_equal(x, saved)


def test_float32_scalars_and_shapes_keep_their_shape():
    for x in (np.float32(-1.5), np.array(0.25, np.float32), np.ones((2, 0, 3), np.float32),
              np.arange(12, dtype=np.float32).reshape(3, 4).T):
        x = np.asarray(x)
        cdf, pdf = special.normal_cdf(x), special.normal_pdf(x)
        assert cdf.shape == pdf.shape == x.shape and cdf.dtype == pdf.dtype == np.float32
        np.testing.assert_allclose(cdf, special.normal_cdf(x.astype(np.float64)), rtol=1e-6)
        np.testing.assert_allclose(pdf, special.normal_pdf(x.astype(np.float64)), rtol=1e-6)


def test_other_inputs_take_the_float64_path():
    for x in (0.5, [0.5, -1.0], np.array([0.5, -1.0], dtype=np.float16)):
        assert special.normal_cdf(x).dtype == np.float64
        assert special.normal_pdf(x).dtype == np.float64
    np.testing.assert_array_equal(special.normal_cdf([-1.0, 2.0]),
                                  special.normal_cdf(np.array([-1.0, 2.0])))


def test_the_float32_coefficients_are_all_positive_float32_numbers():
    """The docstring's two claims that the error bound leans on: no cancellation in Horner's
    rule, and no rounding of the coefficients themselves at run time; Φ(0) = 1/2 exactly."""
    for coefficients in (special.MILLS_P, special.MILLS_Q):
        assert all(c > 0 and float(np.float32(c)) == c for c in coefficients)
    assert special.MILLS_P[-1] == special.MILLS_Q[-1] / 2
    assert special.MILLS_Q[0] == 1


def test_gelu_float32_forward_and_backward_match_the_float64_gelu():
    """z Φ(z) and da (Φ(z) + z φ(z)) in float32, against the same in float64, on [-14, 14]."""
    gelu = activations.GELU()
    z, z64 = grid()
    da = np.random.default_rng(0).standard_normal(z.shape).astype(np.float32)
    saved_z, saved_da = z.copy(), da.copy()
    with strict_numerics():
        a = gelu.forward(z)
        dz = gelu.backward(da, z, a)
    assert a.dtype == dz.dtype == np.float32
    np.testing.assert_array_equal(z, saved_z)
    np.testing.assert_array_equal(da, saved_da)
    a64 = gelu.forward(z64)
    dz64 = gelu.backward(da.astype(np.float64), z64, a64)
    normal = np.abs(a64) >= TINY
    relative = np.abs(a[normal] - a64[normal]) / np.abs(a64[normal]) / U
    assert (relative <= 9 + z64[normal] ** 2 / 2).all(), relative.max()
    # The slope Φ + zφ lies in [-0.17, 1.13]; Φ = a/z adds the forward's error (relative to Φ),
    # zφ's is relative to itself: absolutely, a few u of the slope's scale.
    slope, slope64 = dz / da, dz64 / da
    assert np.abs(slope - slope64).max() <= 16 * U
    # At z = 0 the slope is Φ(0) = 1/2.
    np.testing.assert_array_equal(gelu.backward(np.ones(2, np.float32), np.zeros(2, np.float32),
                                                np.zeros(2, np.float32)), [0.5, 0.5])
    # The limits: GELU(-∞) = 0 (not -∞ · 0), GELU(∞) = ∞, NaN stays NaN.
    with strict_numerics():
        ends = gelu.forward(np.array([-np.inf, np.inf, -1e30, 1e30], np.float32))
    np.testing.assert_array_equal(ends, np.array([0, np.inf, 0, 1e30], np.float32))
    assert np.isnan(gelu.forward(np.array([np.nan], np.float32))).all()
