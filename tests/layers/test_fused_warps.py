"""Consecutive warp layers run as one resampling in training (handnet.layers.fused.WarpChain):
the composed map, the same draws as the layers one by one, the identity at inference, and a
backward pass that is the transpose of the forward one."""

import numpy as np
import pytest

import handnet as hn
from handnet.layers import fused

L = hn.layers
FILL = {"fill_mode": "constant", "fill_value": 0.0}


def warp_model(fuse=True, fill=None, seed=0, dtype="float32", size=28):
    fill = FILL if fill is None else fill
    inputs = L.Input((size, size, 1))
    # Seeded layers: two models draw the same parameters (fit(seed=…) would seed them too).
    h = L.RandomRotation(10 / 360, seed=seed, dtype=dtype, **fill)(inputs)
    h = L.RandomTranslation(0.1, 0.1, seed=seed + 1, dtype=dtype, **fill)(h)
    h = L.RandomZoom((-0.09, 0.11), seed=seed + 2, dtype=dtype, **fill)(h)
    model = hn.Model(inputs, L.Identity(dtype=dtype)(h), seed=seed)
    return model.compile(optimizer="sgd", loss="mse", fuse=fuse)


def test_three_warps_with_constant_fill_run_as_one_step():
    model = warp_model()
    steps = hn.model.plan.Plan(model).steps
    assert [type(s.layer).__name__ for s in steps] == ["WarpChain", "Identity"]
    assert [type(w).__name__ for w in steps[0].layer.warps] == [
        "RandomRotation", "RandomTranslation", "RandomZoom"
    ]


@pytest.mark.parametrize("fuse, fill", [(False, None), (True, {"fill_mode": "reflect"})])
def test_unfused_when_asked_or_when_the_fill_reads_the_image(fuse, fill):
    model = warp_model(fuse=fuse, fill=fill)
    names = [type(s.layer).__name__ for s in hn.model.plan.Plan(model, fuse=fuse).steps]
    assert "WarpChain" not in names and len(names) == 4


def test_warps_filling_with_the_same_constant_fuse():
    model = warp_model(fill={"fill_mode": "constant", "fill_value": 0.5})
    assert "WarpChain" in [type(s.layer).__name__ for s in hn.model.plan.Plan(model).steps]


def test_a_warp_whose_output_is_read_twice_is_not_fused():
    inputs = L.Input((28, 28, 1))
    h = L.RandomRotation(0.03, **FILL)(inputs)
    g = L.RandomZoom(0.1, **FILL)(h)
    model = hn.Model(inputs, [g, L.Identity()(h)], seed=0)
    assert "WarpChain" not in [type(s.layer).__name__ for s in hn.model.plan.Plan(model).steps]


def test_the_composed_map_is_the_maps_applied_one_after_the_other():
    rng = np.random.default_rng(0)
    parameters = [
        {"matrices": rng.normal(size=(5, 2, 2)), "offsets": rng.normal(size=(5, 2))}
        for _ in range(3)
    ]
    composed = fused.WarpChain([]).composed(parameters)
    p = rng.normal(size=(5, 2))
    q = p
    for step in reversed(parameters):  # the last warp reads first: q = M1(M2(M3(p)))
        q = np.einsum("nij,nj->ni", step["matrices"], q) + step["offsets"]
    np.testing.assert_allclose(
        np.einsum("nij,nj->ni", composed["matrices"], p) + composed["offsets"], q, rtol=1e-12
    )


def test_on_a_linear_image_fused_equals_unfused_away_from_the_border():
    """Bilinear interpolation reproduces an affine image exactly, so sampling it once at the
    composed map equals sampling it three times; the two runs draw the same parameters."""
    rows, columns = np.meshgrid(np.arange(28.0), np.arange(28.0), indexing="ij")
    image = (0.3 * rows - 0.2 * columns + 1.0)[None, :, :, None]
    x = np.repeat(image, 8, axis=0)
    one = warp_model(fuse=True, dtype="float64")(x, training=True)
    three = warp_model(fuse=False, dtype="float64")(x, training=True)
    inner = (slice(None), slice(9, 19), slice(9, 19))  # ±10° ±2.8 px ±11 %: never near the edge
    np.testing.assert_allclose(one[inner], three[inner], rtol=0, atol=1e-9)
    # Unfused, a point that leaves the image between two warps reads 0: the border differs.
    assert np.abs(one - three).max() > 1e-3


def test_on_a_digit_fused_interpolates_once():
    """The same draws, but one interpolation: a sharp stroke keeps more of its contrast."""
    x = np.zeros((16, 28, 28, 1))
    x[:, 6:22, 13:15] = 1.0  # a vertical bar two pixels wide
    one = warp_model(fuse=True, dtype="float64")(x, training=True)
    three = warp_model(fuse=False, dtype="float64")(x, training=True)
    assert np.abs(one - three).max() > 0.05
    # Mass is kept in both (the bar stays inside); the fused image is less smeared: more energy.
    np.testing.assert_allclose(one.sum(), three.sum(), rtol=0.05)
    assert (one**2).sum() > (three**2).sum()


def test_at_inference_the_chain_is_the_identity():
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(warp_model()(x, training=False), x)


def test_the_backward_pass_is_the_transpose_of_the_forward_one():
    rng = np.random.default_rng(2)
    chain = hn.model.plan.Plan(warp_model(dtype="float64", size=12)).steps[0].layer
    x = rng.normal(size=(3, 12, 12, 1))
    y = chain.forward(x, training=True)
    dy = rng.normal(size=y.shape)
    dx = chain.backward(dy)
    assert np.isclose((y * dy).sum(), (x * dx).sum(), rtol=1e-10)
    assert not np.allclose(dx, 0)
