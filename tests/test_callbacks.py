"""Callbacks: History, EarlyStopping (Keras's patience rule), ModelCheckpoint, LambdaCallback,
ReduceLROnPlateau and LearningRateScheduler (against Keras's where it can say)."""

import json
import math

import numpy as np
import pytest

import handnet as hn
from handnet.training.callbacks import (
    EarlyStopping,
    History,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from handnet.errors import HandnetError


class StubModel:
    """What a callback touches: weights (one array: the epoch number) and stop_training."""

    def __init__(self):
        self.weights = [np.zeros(1)]
        self.stop_training = False

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


def drive(callback, values, monitor="val_loss"):
    """Feed one monitored value per epoch; returns the model (its weight: the epoch it is from)."""
    model = StubModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return model


# Each case: patience, monitored values, the epoch training stops at (None: never).
# Keras's rule: stop once `patience` epochs in a row have not improved
# (so patience 0 and 1 both stop at the first epoch without improvement).
SEQUENCES = [
    (0, [1.0, 0.9, 0.95, 0.8], 2),
    (1, [1.0, 0.9, 0.8, 0.85, 0.7], 3),
    (2, [1.0, 0.9, 0.95, 0.97, 0.5, 0.4], 3),
    (3, [1.0, 0.9, 0.95, 0.97, 0.5, 0.6, 0.7], None),
]


@pytest.mark.parametrize("patience, values, stop", SEQUENCES)
def test_early_stopping_waits_patience_epochs_without_improvement(patience, values, stop):
    callback = EarlyStopping(patience=patience, restore_best_weights=True)
    model = drive(callback, values)
    assert callback.stopped_epoch == stop
    assert model.stop_training == (stop is not None)
    best_epoch = int(np.argmin(values[: (stop if stop is not None else len(values) - 1) + 1]))
    np.testing.assert_array_equal(model.weights, [[best_epoch]])


def test_early_stopping_restores_the_best_weights_even_without_stopping():
    # Keras 3 restores at the end of training whenever restore_best_weights is set.
    model = drive(EarlyStopping(patience=10, restore_best_weights=True), [1.0, 0.7, 0.9, 0.95])
    assert not model.stop_training
    np.testing.assert_array_equal(model.weights, [[1]])


def test_early_stopping_keeps_the_last_weights_without_restore():
    model = drive(EarlyStopping(patience=0), [1.0, 0.7, 0.9])
    np.testing.assert_array_equal(model.weights, [[2]])


def test_early_stopping_min_delta_and_accuracy_maximized():
    callback = EarlyStopping(patience=0, min_delta=0.1)
    drive(callback, [1.0, 0.95, 0.85])  # 0.95 is not 0.1 better than 1.0
    assert callback.stopped_epoch == 1
    callback = EarlyStopping(monitor="val_accuracy", patience=2)  # mode "auto": "acc" is maximized
    drive(callback, [0.5, 0.6, 0.55, 0.58, 0.7], monitor="val_accuracy")
    assert callback.stopped_epoch == 3


def test_early_stopping_can_be_reused_for_a_second_fit():
    callback = EarlyStopping(patience=0)
    drive(callback, [1.0, 2.0])
    drive(callback, [5.0, 4.0, 3.0])  # a fresh start: 5.0 is an improvement on nothing
    assert callback.stopped_epoch is None


def test_monitoring_a_missing_quantity_says_what_is_there():
    with pytest.raises(HandnetError, match=r"monitors 'val_loss' but the logs hold \['loss'\]"):
        drive(EarlyStopping(), [1.0], monitor="loss")


def test_unknown_mode_is_an_error():
    with pytest.raises(HandnetError, match="mode must be"):
        EarlyStopping(mode="lowest")


@pytest.mark.keras
@pytest.mark.parametrize("patience, values, stop", SEQUENCES)
def test_early_stopping_matches_keras(keras, patience, values, stop):
    ours = EarlyStopping(patience=patience, restore_best_weights=True)
    theirs = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    our_model, their_model = drive(ours, values), drive(theirs, values)
    assert our_model.stop_training == their_model.stop_training
    assert (ours.stopped_epoch or 0) == theirs.stopped_epoch
    np.testing.assert_array_equal(our_model.weights, their_model.weights)


# -- on a real (tiny) training run -----------------------------------------------------------------
def overfitting_run(callbacks, epochs=60):
    """16 samples with random labels and a wide net: the validation loss soon climbs."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    x_val, y_val = rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    model = hn.Sequential(
        [
            hn.layers.Input((4,)),
            hn.layers.Dense(32, activation="relu"),
            hn.layers.Dense(3, activation="softmax"),
        ],
        seed=0,
    ).compile(hn.optimizers.Adam(0.05))
    weights_by_epoch = []
    record = LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights_by_epoch.append(model.get_weights())
    )
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=8,
        validation_data=(x_val, y_val),
        callbacks=[record, *callbacks],
        verbose=0,
        seed=0,
    )
    return model, history, weights_by_epoch


def test_early_stopping_in_fit_stops_and_restores_the_best_epoch():
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model, history, weights_by_epoch = overfitting_run([stopper])
    val_loss = history.history["val_loss"]
    best = int(np.argmin(val_loss))
    assert len(val_loss) < 60 and stopper.stopped_epoch == len(val_loss) - 1
    assert stopper.stopped_epoch == best + 2
    for restored, recorded in zip(model.get_weights(), weights_by_epoch[best], strict=True):
        np.testing.assert_array_equal(restored, recorded)


def test_model_checkpoint_every_epoch_with_a_formatted_name(tmp_path):
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}.npz")
    model, history, _ = overfitting_run([ModelCheckpoint(pattern)], epochs=3)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [
        f"ckpt-{e + 1:02d}-{v:.3f}.npz" for e, v in enumerate(history.history["val_loss"])
    ]
    last = hn.load_model(tmp_path / names[-1])
    for loaded, current in zip(last.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, current)


def test_model_checkpoint_save_best_only_keeps_the_best_epoch(tmp_path):
    path = tmp_path / "best.npz"
    _, history, weights_by_epoch = overfitting_run(
        [ModelCheckpoint(path, save_best_only=True)], epochs=12
    )
    best = int(np.argmin(history.history["val_loss"]))
    assert best < 11  # the run did get worse afterwards, so "best only" mattered
    for loaded, recorded in zip(
        hn.load_model(path).get_weights(), weights_by_epoch[best], strict=True
    ):
        np.testing.assert_array_equal(loaded, recorded)


def test_model_checkpoint_best_only_needs_the_monitored_value(tmp_path, blobs, make_mlp):
    x, y = blobs
    with pytest.raises(HandnetError, match="pass validation data"):
        make_mlp().fit(
            x, y, callbacks=[ModelCheckpoint(tmp_path / "m.npz", save_best_only=True)], verbose=0
        )


# -- History, LambdaCallback, stop_training --------------------------------------------------------
def test_history_records_each_epoch_and_round_trips_through_json():
    history = History()
    history.on_epoch_end(0, {"loss": 1.5, "accuracy": 0.25})
    history.on_epoch_end(1, {"loss": 1.25, "accuracy": 0.5})
    assert history.epoch == [0, 1] and history.history == {
        "loss": [1.5, 1.25],
        "accuracy": [0.25, 0.5],
    }
    clone = History.from_dict(json.loads(history.to_json()))
    assert clone.epoch == history.epoch and clone.history == history.history


def test_lambda_callback_hooks_and_stop_training(blobs, make_mlp):
    x, y = blobs
    events = []
    model = make_mlp()

    def on_epoch_end(epoch, logs):
        events.append(("epoch", epoch))
        if epoch == 1:
            model.stop_training = True

    callback = LambdaCallback(
        on_train_begin=lambda logs=None: events.append("begin"),
        on_batch_end=lambda batch, logs: events.append(
            ("batch", batch, round(logs["loss"], 6) > 0)
        ),
        on_epoch_end=on_epoch_end,
        on_train_end=lambda logs=None: events.append("end"),
    )
    history = model.fit(x, y, epochs=5, batch_size=25, callbacks=[callback], verbose=0)
    batches = [("batch", b, True) for b in range(3)]  # 60 samples in batches of 25: 3 batches
    assert events == ["begin", *batches, ("epoch", 0), *batches, ("epoch", 1), "end"]
    assert history.epoch == [0, 1]


# -- ReduceLROnPlateau -----------------------------------------------------------------------------
class OptimizerStub:
    """What Keras's ReduceLROnPlateau touches: a settable learning_rate."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


def rates_after_each_epoch(callback, values, optimizer):
    model = StubModel()
    model.optimizer = optimizer
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_loss": value})
        rates.append(float(optimizer.learning_rate))
    return rates


# Each case: arguments, monitored values, the learning rate after each epoch (starting at 1).
PLATEAUS = [
    (
        dict(patience=2, factor=0.5),
        [1.0, 0.9, 0.95, 0.97, 0.96, 0.5, 0.6, 0.7],
        [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25],
    ),
    (
        dict(patience=1, factor=0.1, min_lr=0.05),
        [1.0, 1.1, 1.2, 1.3, 1.4],
        [1, 0.1, 0.05, 0.05, 0.05],
    ),
    # Keras counts the cooldown down before it looks at the value: with cooldown 2 the epoch
    # after a cut is skipped, and the next one may cut again.
    (
        dict(patience=1, factor=0.5, cooldown=2),
        [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6],
        [1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125],
    ),
    (dict(patience=1, factor=0.5, min_delta=0.2), [1.0, 0.9, 0.7, 0.6], [1, 0.5, 0.5, 0.25]),
]


@pytest.mark.parametrize("arguments, values, expected", PLATEAUS)
def test_reduce_lr_on_plateau_by_hand(arguments, values, expected):
    callback = ReduceLROnPlateau(**arguments)
    rates = rates_after_each_epoch(callback, values, hn.optimizers.SGD(1.0))
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


@pytest.mark.keras
@pytest.mark.parametrize("arguments, values, expected", PLATEAUS)
def test_reduce_lr_on_plateau_matches_keras(keras, arguments, values, expected):
    ours = rates_after_each_epoch(ReduceLROnPlateau(**arguments), values, hn.optimizers.SGD(1.0))
    theirs = rates_after_each_epoch(
        keras.callbacks.ReduceLROnPlateau(**arguments), values, OptimizerStub(1.0)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_reduce_lr_on_plateau_scales_a_schedule_and_keeps_its_shape():
    cosine = hn.schedules.CosineDecay(0.1, decay_steps=100)
    optimizer = hn.optimizers.SGD(cosine)
    optimizer.iterations = 40
    rates_after_each_epoch(ReduceLROnPlateau(patience=1, factor=0.5), [1.0, 2.0], optimizer)
    assert isinstance(optimizer.schedule, hn.schedules.Scaled)
    assert optimizer.learning_rate == pytest.approx(0.5 * cosine(40), rel=1e-12)
    assert optimizer.schedule(70) == pytest.approx(0.5 * cosine(70), rel=1e-12)
    # A second cut multiplies the same multiplier, and min_lr bounds the rate at the cut.
    callback = ReduceLROnPlateau(patience=1, factor=0.5, min_lr=0.02)
    rates_after_each_epoch(callback, [1.0, 2.0], optimizer)
    assert optimizer.learning_rate == pytest.approx(0.02, rel=1e-12)
    assert optimizer.schedule.schedule is cosine


def test_reduce_lr_on_plateau_refuses_a_factor_of_one():
    with pytest.raises(HandnetError, match="factor"):
        ReduceLROnPlateau(factor=1.0)


def test_reduce_lr_on_plateau_in_fit():
    callback = ReduceLROnPlateau(monitor="val_loss", patience=2, factor=0.5)
    _, history, _ = overfitting_run([callback], epochs=15)
    rates = history.history["learning_rate"]
    assert callback.reductions, "the validation loss of this run climbs: the rate must drop"
    cut_epochs = [epoch for epoch, _ in callback.reductions]
    # overfitting_run starts at 0.05; an epoch's log holds the rate before that epoch's cut.
    expected = [0.05 * 0.5 ** sum(cut < epoch for cut in cut_epochs) for epoch in range(len(rates))]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


# -- LearningRateScheduler -------------------------------------------------------------------------
def test_learning_rate_scheduler_as_in_the_keras_docstring(blobs, make_mlp):
    """Keras's own example: SGD at 0.01, kept for ten epochs, then × e^-0.1 per epoch."""
    x, y = blobs
    model = make_mlp(optimizer=hn.optimizers.SGD(0.01))

    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * math.exp(-0.1)

    history = model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(scheduler)], verbose=0)
    assert round(model.optimizer.learning_rate, 5) == 0.00607
    expected = [0.01] * 10 + [0.01 * math.exp(-0.1 * k) for k in range(1, 6)]
    np.testing.assert_allclose(history.history["learning_rate"], expected)


def test_learning_rate_scheduler_with_an_epoch_function_or_a_schedule(blobs, make_mlp):
    x, y = blobs
    model = make_mlp(optimizer=hn.optimizers.Adam(hn.schedules.CosineDecay(1.0, 100)))
    halving = LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    history = model.fit(x, y, epochs=3, callbacks=[halving], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.05, 0.1 / 3])
    step_decay = hn.schedules.StepDecay(0.2, step_size=2, gamma=0.5)  # called with the epoch
    history = model.fit(x, y, epochs=5, callbacks=[LearningRateScheduler(step_decay)], verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.2, 0.2, 0.1, 0.1, 0.05])


def test_learning_rate_scheduler_refuses_what_is_not_a_rate(blobs, make_mlp):
    x, y = blobs
    with pytest.raises(HandnetError, match="returned 'fast'"):
        make_mlp().fit(x, y, callbacks=[LearningRateScheduler(lambda e, lr: "fast")], verbose=0)
    with pytest.raises(HandnetError, match="needs a function"):
        LearningRateScheduler(0.1)
