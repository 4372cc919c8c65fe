"""Initializers: Keras's fans, bounds and variances, on samples big enough for tight statistics."""

import numpy as np
import pytest

from handnet import initializers
from handnet.errors import HandnetError

SHAPE = (400, 600)  # 240,000 draws: the sample std is within ~0.3% of the true one


@pytest.mark.parametrize(
    "shape, fans",
    [((), (1, 1)), ((5,), (5, 5)), ((3, 4), (3, 4)), ((3, 3, 2, 8), (18, 72))],
)
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


@pytest.mark.parametrize(
    "name, limit",
    [
        ("glorot_uniform", np.sqrt(6 / (400 + 600))),
        ("he_uniform", np.sqrt(6 / 400)),
        ("lecun_uniform", np.sqrt(3 / 400)),
    ],
)
def test_uniform_initializers_fill_minus_limit_to_limit(name, limit):
    w = initializers.get(name)(SHAPE, np.random.default_rng(0), "float64")
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)  # std of U(-l, l)
    assert abs(w.mean()) < 0.01 * limit


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", np.sqrt(2 / (400 + 600))),
        ("he_normal", np.sqrt(2 / 400)),
        ("lecun_normal", np.sqrt(1 / 400)),
    ],
)
def test_normal_initializers_are_truncated_at_two_sigma_with_the_intended_variance(name, std):
    # Keras draws N(0, σ/0.8796) truncated at 2 of its σ: the result has std σ.
    w = initializers.get(name)(SHAPE, np.random.default_rng(0), "float64")
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978
    assert w.std() == pytest.approx(std, rel=0.01)
    assert abs(w.mean()) < 0.01 * std


def test_conv_kernels_count_the_receptive_field():
    # (kh, kw, C, F) = (3, 3, 4, 8): fan_in = 36, fan_out = 72.
    w = initializers.get("glorot_uniform")((3, 3, 4, 8), np.random.default_rng(0))
    assert np.abs(w).max() <= np.sqrt(6 / (36 + 72))


def test_zeros_ones_and_dtype():
    assert initializers.zeros((2, 3)).dtype == np.float32
    np.testing.assert_array_equal(initializers.get("ones")((2,), None, "float64"), [1.0, 1.0])
    w = initializers.get("he_normal")((3, 4), np.random.default_rng(0))
    assert w.dtype == np.float32 and w.shape == (3, 4)


def test_same_generator_state_gives_the_same_weights():
    init = initializers.get("glorot_uniform")
    np.testing.assert_array_equal(
        init((5, 5), np.random.default_rng(9)), init((5, 5), np.random.default_rng(9))
    )


def test_get_passes_callables_and_names_unknowns():
    custom = lambda shape, rng, dtype="float32": np.full(shape, 0.5, dtype)  # noqa: E731
    assert initializers.get(custom) is custom
    with pytest.raises(HandnetError, match="unknown initializer 'xavier'.*glorot_uniform"):
        initializers.get("xavier")
