"""BatchNormalization: its backward against central differences (with random, non-uniform upstream
gradients), the moving statistics by hand, and why a uniform upstream gradient proves nothing."""

import numpy as np
import pytest

import handnet as hn
from handnet.layers import BatchNormalization

TOLERANCE = 1e-7


def gamma_between(low, high):
    """An initializer for gamma away from 1, so that a missing γ cannot hide."""
    return lambda shape, rng, dtype: rng.uniform(low, high, shape).astype(dtype)


def random_normal(shape, rng, dtype):
    return rng.standard_normal(shape).astype(dtype)


def make_layer(**overrides):
    return BatchNormalization(
        **{
            "gamma_initializer": gamma_between(0.5, 2.0),
            "beta_initializer": random_normal,
            "moving_mean_initializer": random_normal,
            "moving_variance_initializer": gamma_between(0.5, 2.0),
            **overrides,
        }
    )


CASES = {
    "dense": (dict(), (5,)),
    "image": (dict(), (3, 4, 2)),
    "no-center": (dict(center=False, epsilon=0.1), (4,)),
    "no-scale": (dict(scale=False), (2, 2, 3)),
}


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_matches_central_differences(case, training):
    overrides, input_shape = CASES[case]
    layer = make_layer(**overrides)
    report = hn.gradcheck(layer, input_shape=input_shape, batch_size=4, training=training)
    assert report.passed and report.worst < TOLERANCE, f"\n{report}"


def test_in_a_network_with_the_training_loss():
    model = hn.Sequential(
        [
            hn.layers.Input((4, 4, 1)),
            hn.layers.Conv2D(2, 3, use_bias=False),
            make_layer(),
            hn.layers.Activation("tanh"),
            hn.layers.Flatten(),
            hn.layers.Dense(5, use_bias=False),
            make_layer(),
            hn.layers.Dense(3, activation="softmax"),
        ],
        seed=0,
    ).compile("sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((6, 4, 4, 1))
    report = hn.gradcheck(model, x=x, y=np.array([0, 1, 2, 0, 1, 2]), training=True)
    assert report.passed and report.worst < TOLERANCE, f"\n{report}"


def test_a_uniform_upstream_gradient_hides_a_missing_term():
    """Drop the term x̂ · mean(dy · x̂) (the path through the batch variance) from the backward:
    with dy = 1 everywhere mean(dy · x̂) = mean(x̂) = 0, so the broken gradient is still right;
    a random dy exposes it. This is why gradcheck draws a random upstream gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    layer = make_layer()
    layer.build((3,), rng=rng)
    layer.cast(np.float64)
    gamma, epsilon = layer.params["gamma"], layer.epsilon

    def broken_dx(dy):
        return gamma / np.sqrt(x.var(0) + epsilon) * (dy - dy.mean(0))

    def numeric_dx(dy, h=1e-6):
        grad = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            shifted = [x.copy(), x.copy()]
            shifted[0][index] += h
            shifted[1][index] -= h
            plus, minus = (float((layer.forward(s, training=True) * dy).sum()) for s in shifted)
            grad[index] = (plus - minus) / (2 * h)
        return grad

    uniform = np.ones((5, 3))
    np.testing.assert_allclose(broken_dx(uniform), numeric_dx(uniform), atol=1e-8)
    random = rng.standard_normal((5, 3))
    assert np.abs(broken_dx(random) - numeric_dx(random)).max() > 1e-2
    layer.forward(x, training=True)
    layer.needs_input_gradient = True
    np.testing.assert_allclose(layer.backward(random), numeric_dx(random), atol=1e-8)


def test_moving_statistics_follow_the_keras_momentum_rule():
    """moving ← moving · momentum + batch · (1 - momentum), with the biased batch variance,
    over the batch and both image axes."""
    rng = np.random.default_rng(1)
    layer = BatchNormalization(momentum=0.9)
    layer.build((3, 3, 2), rng=rng)
    mean, variance = np.zeros(2), np.ones(2)
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 3, 2)) * 2 + 1).astype(np.float32)
        layer.forward(x, training=True)
        mean = mean * 0.9 + x.mean(axis=(0, 1, 2)) * 0.1
        variance = variance * 0.9 + x.var(axis=(0, 1, 2)) * 0.1
    np.testing.assert_allclose(layer.state["moving_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], variance, rtol=1e-5)
    # Inference uses them; so does training mode in a frozen layer (Keras's rule).
    x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    expected = (x - mean) / np.sqrt(variance + 1e-3)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-5, atol=1e-6)
    layer.trainable = False
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.state["moving_mean"], mean, rtol=1e-5)  # not updated
