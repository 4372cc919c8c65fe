"""Training-step parity: the same network, initial weights and batches, trained 50 steps in
Keras (torch backend) and in handnet, with SGD + momentum and with Adam, ends with every weight
(BatchNormalization's moving statistics included) within 1e-4, and with the same losses on the way.

The definitions matched (docs/keras.md): Keras's SGD velocity v ← μv - lr·g, Keras's Adam with ε
added to sqrt(v) and the bias corrections folded into the step size, Keras's BatchNormalization
momentum (moving ← moving·m + batch·(1 - m)) with the biased batch variance, and the mean
cross-entropy over the batch.
"""

import numpy as np
import pytest

import handnet as hn

keras = pytest.importorskip("keras")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

STEPS = 50
BATCH = 16
TOLERANCE = 1e-4


def smooth_network():
    """BatchNormalization in training mode, with smooth activations. float32 only: Keras 3.15
    computes BatchNormalization in float32 even in a float64 layer."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="tanh"),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.AveragePooling2D(2),
            keras.layers.Conv2D(3, 2, activation="sigmoid"),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )


def kinked_network():
    """ReLU, max pooling, LeakyReLU: their kinks make trajectories chaotic (a rounding difference
    that moves a value across a kink changes that gradient entirely), so this one runs in float64.
    Keras still rounds Dense's product to float32 there (its result_type maps 64-bit types to
    32-bit), so the two differ by ~1e-7 rather than float32's ~1e-5: far from any kink."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Rescaling(0.5, offset=0.1),
            keras.layers.ZeroPadding2D(1),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(3, 2, strides=2, padding="same"),
            keras.layers.LeakyReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.ReLU(max_value=2.0),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )


def winograd_network():
    """3×3 convolutions with 8 input channels, which handnet trains by Winograd's F(2×2, 3×3)
    (handnet.fast.winograd): one alone with an even output, one fused with the max pooling
    after it. float64, as the kinked network (ReLU and max pooling)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(8, 1, activation="tanh"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )


NETWORKS = {
    "smooth-float32": (smooth_network, "float32"),
    "kinked-float64": (kinked_network, "float64"),
    "winograd-float64": (winograd_network, "float64"),
}
OPTIMIZERS = {
    "sgd-momentum": (
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
        lambda: hn.optimizers.SGD(0.05, momentum=0.9),
    ),
    "adam": (lambda: keras.optimizers.Adam(0.01), lambda: hn.optimizers.Adam(0.01)),
}


@pytest.fixture
def floatx():
    """Sets Keras's default float type for one test (its data adapters cast inputs to it)."""
    before = keras.config.floatx()
    yield keras.config.set_floatx
    keras.config.set_floatx(before)


@pytest.mark.parametrize("network", sorted(NETWORKS))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_fifty_training_steps_end_at_the_same_weights(network, optimizer, floatx, tmp_path):
    make_network, dtype = NETWORKS[network]
    floatx(dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 6, 2)).astype(dtype)
    y = rng.integers(0, 4, 64)
    keras_model = make_network()
    keras_model.save(tmp_path / "initial.keras")
    model = hn.from_keras(tmp_path / "initial.keras")
    make_keras_optimizer, make_optimizer = OPTIMIZERS[optimizer]
    keras_model.compile(optimizer=make_keras_optimizer(), loss="sparse_categorical_crossentropy")
    model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy")
    if network.startswith("winograd"):  # the path this network is here for
        x_probe = x[:BATCH]
        model.train_on_batch(x_probe, y[:BATCH])  # then restore: compare from the start
        convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
        assert all(layer._tiles is not None for layer in convs[1:]), "Winograd not taken"
        model = hn.from_keras(tmp_path / "initial.keras")
        model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy")

    for step in range(STEPS):
        index = slice(step * BATCH % len(x), step * BATCH % len(x) + BATCH)
        keras_loss = float(np.asarray(keras_model.train_on_batch(x[index], y[index])))
        loss, _ = model.train_on_batch(x[index], y[index])
        assert loss == pytest.approx(keras_loss, abs=TOLERANCE), f"step {step}"

    final = keras_model.get_weights()
    ours = model.get_weights()
    assert [w.shape for w in ours] == [w.shape for w in final]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(ours, final))
    assert worst < TOLERANCE, f"worst weight difference {worst:.1e}"
    moved = max(
        float(np.abs(a - b).max())
        for a, b in zip(ours, hn.from_keras(tmp_path / "initial.keras").get_weights())
    )
    assert moved > 100 * TOLERANCE  # training changed the weights: the comparison means something
    # and the trained networks predict alike: 64 images at once (Winograd's inference path for
    # the fused layer from 16 images) and one at a time (im2col)
    want = np.asarray(keras_model.predict(x, verbose=0))
    np.testing.assert_allclose(model.predict(x, batch_size=64), want, atol=TOLERANCE)
    np.testing.assert_allclose(model.predict(x[:3], batch_size=1), want[:3], atol=TOLERANCE)
