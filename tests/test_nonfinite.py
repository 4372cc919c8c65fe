"""Numerical faults in training (handnet.training.nonfinite): a NaN or infinite loss or gradient is
caught at its step, before the update, named (step, quantity, layer) with a remedy; or the batch is
skipped and counted. A checkpointed run keeps its last good checkpoint."""

import numpy as np
import pytest

import handnet as hn
from handnet.training import checkpoint
from handnet.errors import TrainingDivergedError


def data(samples=64):
    rng = np.random.default_rng(0)
    y = np.arange(samples) % 3
    x = rng.standard_normal((samples, 6)).astype(np.float32) + y[:, None].astype(np.float32)
    return x, y


def build(learning_rate=0.01, batch_norm=False):
    layers = [hn.layers.Input((6,)), hn.layers.Dense(8, activation="relu", name="hidden")]
    if batch_norm:
        layers.append(hn.layers.BatchNormalization(name="norm"))
    layers.append(hn.layers.Dense(3, activation="softmax", name="out"))
    model = hn.Sequential(layers, seed=0)
    model.compile(hn.optimizers.SGD(learning_rate), "sparse_categorical_crossentropy", ["accuracy"])
    return model


def poison_gradient(model, layer_name, key, at_call):
    """Make the ``at_call``-th backward pass (from 1) of layer ``layer_name`` leave a NaN in its
    ``key`` gradient, as an overflow inside the layer would."""
    layer = next(layer for layer in model.layers if layer.name == layer_name)
    real_backward, calls = layer.backward, [0]

    def backward(dy):
        dx = real_backward(dy)
        calls[0] += 1
        if calls[0] == at_call:
            layer.grads[key].flat[0] = np.nan
        return dx

    layer.backward = backward


def test_a_nan_gradient_stops_training_at_its_step_before_the_update():
    model = build()
    poison_gradient(model, "hidden", "kernel", at_call=5)
    x, y = data()
    weights_before_step_5 = {}

    class Keep(hn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if model.optimizer.iterations == 4:
                weights_before_step_5["weights"] = model.get_weights()

    with pytest.raises(TrainingDivergedError) as caught:
        model.fit(x, y, epochs=3, batch_size=16, seed=0, threads=1, verbose=0, callbacks=[Keep()])
    error = caught.value
    assert (error.step, error.quantity, error.layer) == (5, "hidden/kernel gradient", None)
    message = str(error)
    assert "step 5 (epoch 2, batch 1)" in message
    assert "the gradient of hidden/kernel holds 1 NaN and 0 infinite values of 48" in message
    assert "lower learning rate" in message and "clipnorm" in message and "skip" in message
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), weights_before_step_5["weights"])
    )
    assert model.optimizer.iterations == 4


def test_a_diverging_learning_rate_names_the_loss_and_where_it_starts():
    model = build(learning_rate=1e30)
    x, y = data()
    with pytest.raises(TrainingDivergedError) as caught:
        model.fit(x, y, epochs=5, batch_size=16, seed=0, threads=1, verbose=0)
    error = caught.value
    assert error.step > 1 and error.quantity in (
        "loss",
        "hidden/kernel gradient",
        "out/kernel gradient",
    )
    assert "learning rate (now 1e+30)" in str(error)


def test_non_finite_weights_are_named_as_the_origin():
    model = build()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, seed=0, verbose=0)
    model.layers[1].params["kernel"][2, 1] = np.inf
    with pytest.raises(TrainingDivergedError) as caught:
        model.fit(x, y, epochs=1, batch_size=16, seed=0, verbose=0)
    assert caught.value.quantity == "loss" and caught.value.layer == "out"
    assert "the weight out/kernel already holds 0 NaN and 1 infinite values of 24" in str(
        caught.value
    )


def test_skipping_counts_the_bad_batches_and_leaves_no_trace():
    """A batch of NaN images (from the augment hook, past fit's input checks) is skipped: no
    update, and BatchNormalization's moving statistics as they were before it."""
    x, y = data()
    calls = [0]

    def spoil_third_batch(batch, rng):
        calls[0] += 1
        return np.full_like(batch, np.nan) if calls[0] == 3 else batch

    model = build(batch_norm=True)
    history = model.fit(
        x, y, epochs=2, batch_size=16, seed=0, threads=1, verbose=0, augment=spoil_third_batch,
        on_nonfinite="skip",
    )  # fmt: skip
    assert history.history["skipped_batches"] == [1, 0]
    assert model.optimizer.iterations == 2 * 4 - 1
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert np.isfinite(history.history["loss"]).all()


def test_skipped_batches_are_the_only_difference():
    """Skipping the spoiled batch equals training on the same order without that batch's step."""
    x, y = data()
    spoiled = build()
    poison_gradient(spoiled, "hidden", "bias", at_call=2)
    spoiled.fit(x, y, epochs=1, batch_size=16, seed=0, threads=1, verbose=0, on_nonfinite="skip")

    clean = build().build()
    order = np.random.default_rng(0).permutation(len(x))  # fit's first shuffle for seed 0
    for batch in range(4):
        if batch != 1:
            index = order[batch * 16 : (batch + 1) * 16]
            clean.train_on_batch(x[index], y[index])
    assert all(np.array_equal(a, b) for a, b in zip(spoiled.get_weights(), clean.get_weights()))


def test_skip_mode_still_stops_when_the_weights_themselves_are_not_finite():
    model = build()
    x, y = data()
    model.build((6,))
    model.layers[0].params["bias"][0] = np.nan
    with pytest.raises(TrainingDivergedError, match="hidden/bias already holds 1 NaN"):
        model.fit(x, y, epochs=1, batch_size=16, seed=0, verbose=0, on_nonfinite="skip")


def test_a_bad_on_nonfinite_is_refused():
    x, y = data()
    with pytest.raises(hn.HandnetError, match="on_nonfinite"):
        build().fit(x, y, on_nonfinite="ignore", verbose=0)


def test_a_fault_keeps_the_last_good_checkpoint(tmp_path):
    model = build()
    poison_gradient(model, "hidden", "kernel", at_call=10)  # epoch 3 (4 batches an epoch)
    x, y = data()
    with pytest.raises(TrainingDivergedError):
        model.fit(
            x,
            y,
            epochs=5,
            batch_size=16,
            seed=0,
            verbose=0,
            callbacks=[hn.callbacks.BackupAndRestore(tmp_path)],
        )
    saved = checkpoint.read(tmp_path / checkpoint.FILENAME)
    assert saved.epoch == 2
    assert all(np.isfinite(w).all() for w in saved.model.get_weights())
