"""SpatialDropout1D/2D, GaussianNoise, GaussianDropout, AlphaDropout and ActivityRegularization:
exactly the identity at inference, statistics of the training noise on large draws (bounds of
about five standard errors, so a correct layer fails about once in a million runs and a wrong
mean, variance or mask shape fails every time), gradient checks in float64 with random upstream
gradients (the drawn noise held fixed), seeds, configs, clear errors, and ActivityRegularization's
penalty in the loss of a model that is gradient-checked and trained. Keras is the oracle in
tests/keras/test_catalogue_noise_keras.py."""

import math

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import (
    ActivityRegularization,
    AlphaDropout,
    Dense,
    GaussianDropout,
    GaussianNoise,
    Input,
    SpatialDropout1D,
    SpatialDropout2D,
)
from handnet.layers.noise import SELU_ALPHA, SELU_SCALE

try:  # main's package stack moved the splitter into handnet.training
    from handnet.training.parallel import BatchSplitter
except ImportError:
    from handnet.parallel import BatchSplitter

CASES = [
    (SpatialDropout1D, {"rate": 0.4}, (5, 3)),
    (SpatialDropout2D, {"rate": 0.3}, (3, 4, 2)),
    (GaussianNoise, {"stddev": 0.5}, (6,)),
    (GaussianDropout, {"rate": 0.3}, (2, 3)),
    (AlphaDropout, {"rate": 0.2}, (6,)),
    (AlphaDropout, {"rate": 0.5, "noise_shape": (None, 1, 3)}, (4, 3)),
    (ActivityRegularization, {"l1": 0.01, "l2": 0.02}, (2, 3)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind.__name__}-{'-'.join(f'{k}={v}' for k, v in args.items())}"


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backward_matches_central_differences(case, training):
    kind, args, shape = case
    report = hn.gradcheck(kind(**args), input_shape=shape, batch_size=3, training=training)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_inference_is_exactly_the_identity(case):
    kind, args, shape = case
    layer = kind(**args, seed=0) if kind is not ActivityRegularization else kind(**args)
    x = np.random.default_rng(0).standard_normal((4, *shape)).astype("float32")
    y = layer(x)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == x.dtype
    if kind is ActivityRegularization:  # its penalty counts in inference too: by hand below
        return
    dy = np.random.default_rng(1).standard_normal(x.shape).astype("float32")
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert layer.regularization_penalty() == 0.0


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_leaves_dy_and_x_untouched(case):
    kind, args, shape = case
    layer = kind(**args, dtype="float64")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, *shape))
    x_before = x.copy()
    y = layer(x, training=True)
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)
    assert dx.shape == x.shape and dx.dtype == np.float64


def within(value, expected, standard_error, sigmas=5):
    assert abs(value - expected) < sigmas * standard_error, (value, expected, standard_error)


@pytest.mark.parametrize(
    "kind, shape", [(SpatialDropout1D, (50, 8)), (SpatialDropout2D, (6, 7, 8))]
)
def test_spatial_dropout_drops_whole_channels(kind, shape):
    rate, n = 0.3, 2000
    layer = kind(rate, seed=0)
    x = np.ones((n, *shape), dtype="float32")
    y = layer(x, training=True)
    per_channel = y.reshape(n, -1, shape[-1])
    # Every step / pixel of a (sample, channel) pair shares its fate: all 0 or all 1/(1-rate).
    np.testing.assert_array_equal(per_channel.min(axis=1), per_channel.max(axis=1))
    values = set(np.unique(per_channel).tolist())
    assert values == {0.0, np.float32(1 / (1 - rate))}
    dropped = (per_channel[:, 0] == 0).mean()
    within(dropped, rate, math.sqrt(rate * (1 - rate) / (n * shape[-1])))
    within(y.mean(), 1.0, math.sqrt(rate / (1 - rate) / (n * shape[-1])))


def test_gaussian_noise_statistics():
    stddev, size = 0.7, 400_000
    x = np.full((size // 8, 8), 3.0, dtype="float32")
    noise = GaussianNoise(stddev, seed=1)(x, training=True) - x
    within(noise.mean(), 0.0, stddev / math.sqrt(size))
    # The sample variance of a normal has standard error σ²·sqrt(2 / n).
    within(noise.var(), stddev**2, stddev**2 * math.sqrt(2 / size))


def test_gaussian_dropout_statistics():
    rate, size = 0.25, 400_000
    x = np.full((size // 8, 8), -2.0, dtype="float32")
    layer = GaussianDropout(rate, seed=2)
    factor = layer(x, training=True) / x
    variance = rate / (1 - rate)
    within(factor.mean(), 1.0, math.sqrt(variance / size))
    within(factor.var(), variance, variance * math.sqrt(2 / size))
    dy = np.ones_like(x)
    np.testing.assert_allclose(layer.backward(dy), factor, rtol=1e-6)


def test_alpha_dropout_keeps_mean_and_variance():
    rate, size = 0.2, 400_000
    x = np.random.default_rng(3).standard_normal((size // 10, 10)).astype("float32")
    layer = AlphaDropout(rate, seed=3)
    y = layer(x, training=True)
    within(y.mean(), 0.0, math.sqrt(1 / size))
    within(y.var(), 1.0, math.sqrt(3 / size))  # y is not normal; 3/n bounds its variance's
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    dropped_value = a * alpha_p - a * alpha_p * rate
    dropped = np.isclose(y, dropped_value, rtol=0, atol=1e-6)
    within(dropped.mean(), rate, math.sqrt(rate * (1 - rate) / size))
    kept = ~dropped
    np.testing.assert_allclose(y[kept], a * x[kept] - a * alpha_p * rate, rtol=1e-5, atol=1e-6)


def test_alpha_dropout_noise_shape_broadcasts():
    layer = AlphaDropout(0.5, noise_shape=(None, 1, 4), seed=0)
    x = np.zeros((200, 6, 4), dtype="float32")
    y = layer(x, training=True)
    np.testing.assert_array_equal(y.min(axis=1), y.max(axis=1))  # one draw per (sample, channel)


@pytest.mark.parametrize("case", CASES[:-1], ids=case_id)
def test_seeds_fix_the_draws(case):
    kind, args, shape = case
    x = np.random.default_rng(4).standard_normal((8, *shape)).astype("float32")
    first = kind(**args, seed=5)(x, training=True)
    np.testing.assert_array_equal(kind(**args, seed=5)(x, training=True), first)
    assert not np.array_equal(kind(**args, seed=6)(x, training=True), first)


def noisy_model(seed_of_noise=None):
    return hn.Sequential(
        [
            Input((6,)),
            GaussianNoise(0.3, seed=seed_of_noise),
            Dense(5, activation="tanh"),
            AlphaDropout(0.2),
            Dense(3, activation="softmax"),
        ],
        seed=0,
    ).compile("sgd", loss="sparse_categorical_crossentropy")


def test_fit_seeds_the_noise():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((32, 6)).astype("float32"), rng.integers(0, 3, 32)
    runs = []
    for fit_seed in (0, 0, 1):
        model = noisy_model()
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=fit_seed, threads=1)
        runs.append(model.get_weights())
    for first, again in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(first, again)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_a_layer_seed_takes_precedence_over_fit():
    model = noisy_model(seed_of_noise=7)
    own, other = model.layers[0].rng, model.layers[2].rng
    model.fit(np.zeros((8, 6), "float32"), np.zeros(8, int), epochs=1, verbose=0, seed=3)
    assert model.layers[0].rng is own  # seeded by its own seed: fit leaves it
    assert model.layers[2].rng is not other  # unseeded: fit gave it a child of its generator


def test_activity_penalty_by_hand():
    layer = ActivityRegularization(l1=0.1, l2=0.5)
    x = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], dtype="float32")
    np.testing.assert_array_equal(layer(x, training=True), x)
    # (0.1 · Σ|x| + 0.5 · Σx²) / N with Σ|x| = 7.5, Σx² = 15.25, N = 3
    assert layer.regularization_penalty() == pytest.approx((0.1 * 7.5 + 0.5 * 15.25) / 3)
    dy = np.zeros_like(x)
    np.testing.assert_allclose(layer.backward(dy), (0.1 * np.sign(x) + 1.0 * x) / 3, rtol=1e-6)
    layer(x)  # an inference pass: the same penalty (Keras's evaluate counts it)
    assert layer.regularization_penalty() == pytest.approx((0.1 * 7.5 + 0.5 * 15.25) / 3)


def regularized_model():
    return hn.Sequential(
        [
            Input((4,)),
            Dense(5, activation="tanh"),
            ActivityRegularization(l1=0.05, l2=0.1),
            Dense(3, activation="softmax"),
        ],
        seed=0,
    ).compile("sgd", loss="sparse_categorical_crossentropy")


def test_activity_penalty_gradcheck_in_a_model():
    model = regularized_model()
    x = np.random.default_rng(6).standard_normal((5, 4))
    report = hn.gradcheck(model, x=x, y=np.array([0, 1, 2, 1, 0]), training=True)
    assert report.passed, f"\n{report}"


def test_activity_penalty_enters_the_training_loss():
    model = regularized_model()
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((6, 4)).astype("float32"), rng.integers(0, 3, 6)
    loss, predictions, _ = model.compute_gradients(x, y)
    hidden = model.layers[0](x)
    penalty = (0.05 * np.abs(hidden).sum() + 0.1 * (hidden**2).sum()) / len(x)
    cross_entropy = hn.losses.get("sparse_categorical_crossentropy")(y, predictions)
    assert loss == pytest.approx(cross_entropy + penalty, rel=1e-6)
    history = model.fit(x, y, epochs=1, batch_size=6, verbose=0, shuffle=False, seed=0)
    assert history.history["loss"][0] == pytest.approx(loss, rel=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SpatialDropout1D(1.0), r"rate must be in \[0, 1\)"),
        (lambda: SpatialDropout2D(0.1, data_format="channels_first"), "channels-last"),
        (lambda: GaussianNoise(-0.1), "stddev"),
        (lambda: GaussianNoise("0.1"), "stddev"),
        (lambda: GaussianDropout(-0.5), "rate"),
        (lambda: AlphaDropout(0.1, noise_shape=(None, 0)), "noise_shape"),
        (lambda: AlphaDropout(0.1, seed=1.5), "seed"),
        (lambda: ActivityRegularization(l1=-1), "l1"),
        (lambda: ActivityRegularization(l2=float("inf")), "l2"),
    ],
)
def test_clear_errors(make, message):
    with pytest.raises(HandnetError, match=message):
        make()


def test_wrong_shapes_are_refused():
    with pytest.raises(InvalidInputError, match="sequences"):
        SpatialDropout1D(0.1).build((4, 4, 2))
    with pytest.raises(InvalidInputError, match="images"):
        SpatialDropout2D(0.1).build((4, 2))
    with pytest.raises(InvalidInputError, match="noise_shape"):
        AlphaDropout(0.1, noise_shape=(None, 2, 3)).build((4, 3))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_config_round_trip(case):
    kind, args, shape = case
    layer = kind(**args)
    rebuilt = hn.layers.deserialize(hn.layers.serialize(layer))
    assert rebuilt.get_config() == layer.get_config()
    headline, formula = layer.explain()
    assert headline and formula


def test_a_shared_activity_regularization_counts_every_call():
    """Called twice in one graph, the loss has both calls' penalties, and the gradients are
    those of that loss (central differences on the first Dense's kernel, float64)."""
    inputs = Input((4,))
    regularize = ActivityRegularization(l1=0.05, l2=0.2)
    first, second = Dense(3, activation="tanh"), Dense(3)
    joined = hn.layers.Concatenate()([regularize(first(inputs.tensor)),
                                      regularize(second(inputs.tensor))])
    model = hn.Model(inputs, Dense(2, activation="softmax")(joined), seed=0)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    model.cast("float64")
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 2, 5)
    loss, predictions, _ = model.compute_gradients(x, y)
    penalty = 0.0
    for dense in (first, second):
        h = dense(x)
        penalty += (0.05 * np.abs(h).sum() + 0.2 * (h**2).sum()) / len(x)
    cross_entropy = hn.losses.get("sparse_categorical_crossentropy")(y, predictions)
    assert loss == pytest.approx(cross_entropy + penalty, rel=1e-12)
    analytic = first.grads["kernel"].copy()
    kernel, h = first.params["kernel"], 1e-6
    for index in np.ndindex(kernel.shape):
        saved = kernel[index]
        kernel[index] = saved + h
        plus = model.compute_gradients(x, y)[0]
        kernel[index] = saved - h
        minus = model.compute_gradients(x, y)[0]
        kernel[index] = saved
        assert (plus - minus) / (2 * h) == pytest.approx(analytic[index], rel=1e-6, abs=1e-9)


def test_activity_penalty_of_a_split_batch_is_the_whole_batchs():
    """Each part's replica has its own penalty over its own samples; the parts' weighted mean is
    the whole batch's (handnet.parallel)."""
    model = regularized_model()
    model.cast("float64")
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    loss, _, _ = model.compute_gradients(x, y)
    whole = {key: value.copy() for key, value in model.layers[0].grads.items()}
    with BatchSplitter(model, threads=2, rng=np.random.default_rng(0)) as split:
        split_loss, _ = split.compute_gradients(x, y)
    assert split_loss == pytest.approx(loss, rel=1e-12)
    for key, value in whole.items():
        np.testing.assert_allclose(model.layers[0].grads[key], value, rtol=1e-10, atol=1e-14)
