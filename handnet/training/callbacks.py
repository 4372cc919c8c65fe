"""Callbacks: code that runs at the edges of epochs and batches during ``fit``.

``logs`` at the end of an epoch hold that epoch's figures: loss, accuracy, val_loss,
val_accuracy, learning_rate. A callback stops training by setting ``model.stop_training``.
"""

import inspect
import math

from .. import schedules
from ..errors import HandnetError
from ..model.history import Callback, History  # noqa: F401 (hn.callbacks.History)
from . import checkpoint


class CallbackList:
    """Sends each event of a fit to every callback, in order (Keras's CallbackList): the
    History first, then the user's. Events: train begin/end, epoch begin/end, batch end."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
        self.backups = [c for c in self.callbacks if isinstance(c, BackupAndRestore)]

    def on_train_begin(self):
        for callback in self.callbacks:
            callback.on_train_begin()

    def on_train_end(self):
        for callback in self.callbacks:
            callback.on_train_end()

    def on_epoch_begin(self, epoch):
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_batch_end(self, batch, logs=None):
        for callback in self.callbacks:
            callback.on_batch_end(batch, logs)

    def interrupted(self, interruption, epochs_done, batches):
        """The TrainingInterrupted that ends a fit a signal stopped, once each BackupAndRestore
        has saved the point reached: ``epochs_done`` epochs, then ``batches`` of the next."""
        for backup in self.backups:
            backup.on_interrupt(epochs_done)
        return interruption.stopped(epochs_done, batches)


def _monitor_mode(monitor, mode):
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise HandnetError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class _Monitor:
    """Tracks the best value of one logged quantity."""

    def __init__(self, monitor, mode, min_delta=0.0):
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs):
        if self.monitor not in (logs or {}):
            raise HandnetError(
                f"callback monitors {self.monitor!r} but the logs hold {sorted(logs or {})}; "
                "pass validation data to monitor val_* quantities"
            )
        return logs[self.monitor]

    def improved(self, value):
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs in a row
    (as in Keras, patience 0 and 1 both stop at the first epoch without improvement).
    With ``restore_best_weights`` the weights of the best epoch are put back when training
    ends, stopped early or not (Keras 3)."""

    def __init__(
        self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False
    ):
        self.tracker = _Monitor(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.tracker = _Monitor(self.tracker.monitor, self.tracker.mode, self.tracker.min_delta)
        self.wait = 0
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if self.tracker.improved(self.tracker.value(logs)):
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after each epoch (or only when ``monitor`` improves).

    ``filepath`` may hold ``{epoch}`` and any log key, e.g.
    "ckpt-{epoch:02d}-{val_accuracy:.4f}.npz".
    Each save is atomic (see ``Sequential.save``), so a crash mid-save keeps the previous file.
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        self.filepath = str(filepath)
        self.tracker = _Monitor(monitor, mode)
        self.save_best_only = save_best_only

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only and not self.tracker.improved(self.tracker.value(logs)):
            return
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))


class BackupAndRestore(Callback):
    """Back up the whole training state at the end of every epoch, and at the step where Ctrl-C
    or SIGTERM stops the fit; a fit that finds a backup in ``backup_dir`` continues from it, as
    Keras's BackupAndRestore.

    The backup (``backup_dir``/checkpoint.npz, see handnet.training.checkpoint) holds the weights,
    the optimizer's slots and step count, the schedule, the history and the state of every random
    generator the fit draws from. So a fit killed at any moment and run again with the same
    arguments (same data, seed, threads) ends with the same weights, bit for bit, as one that
    was never stopped; after a kill the unfinished epoch is done again. With this callback, fit
    defers Ctrl-C and SIGTERM (handnet.training.interrupt): the step under way ends,
    ``on_interrupt`` backs up that very point, inside the epoch, and fit raises
    interrupt.TrainingInterrupted; a fit resumed from it goes on with the next step.
    ``delete_checkpoint`` removes the backup when training ends normally. ``extra``: JSON data
    stored with each backup. Put this callback after any that change the optimizer at an epoch's
    end (ReduceLROnPlateau), so the backup sees the change; the counters of other callbacks
    (EarlyStopping's patience) restart.
    """

    def __init__(self, backup_dir, delete_checkpoint=True, extra=None):
        self.backup_dir = backup_dir
        self.delete_checkpoint = delete_checkpoint
        self.extra = extra
        self.restored_epoch = None

    def on_train_begin(self, logs=None):
        self.path = checkpoint.prepare_folder(self.backup_dir)
        self.restored_epoch = None
        if self.path.exists():
            self.restored_epoch = checkpoint.restore(self.model, self.path).epoch

    def on_epoch_end(self, epoch, logs=None):
        checkpoint.save(self.path, self.model, epoch + 1, self.extra)

    def on_interrupt(self, epochs_done):
        """A signal stops the fit after ``epochs_done`` epochs and ``model.fit_state``'s partial
        epoch: back up this point (handnet's own hook; Keras has none)."""
        checkpoint.save(self.path, self.model, epochs_done, self.extra)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            self.path.unlink(missing_ok=True)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by
    ``min_delta`` for ``patience`` epochs (Keras's rule, at the end of an epoch):

        lr ← max(lr · factor, min_lr)      only while lr > min_lr

    After a cut, ``cooldown`` epochs pass before the count of epochs without improvement
    starts again. An optimizer with a constant rate gets the new constant, as in Keras. One that
    follows a schedule (Keras refuses those) keeps it, multiplied: the schedule becomes
    ``schedules.Scaled(schedule, m)`` with m chosen so that the rate now is the new one; the
    schedule's shape (warm-up, decay) goes on, lower. ``min_lr`` bounds the rate at the cut, not
    where the schedule itself goes afterwards.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        if not 0 < factor < 1:
            raise HandnetError(f"ReduceLROnPlateau factor must be in (0, 1), got {factor}")
        self.tracker = _Monitor(monitor, mode, min_delta)
        self.factor = float(factor)
        self.patience = int(patience)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)

    def on_train_begin(self, logs=None):
        self.tracker = _Monitor(self.tracker.monitor, self.tracker.mode, self.tracker.min_delta)
        self.wait = 0
        self.cooldown_counter = 0
        self.reductions = []  # (epoch, new learning rate)

    def on_epoch_end(self, epoch, logs=None):
        value = self.tracker.value(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.tracker.improved(value):
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and self._reduce(self.model.optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, optimizer, epoch):
        old = float(optimizer.learning_rate)
        if not old > self.min_lr:
            return False
        new = max(old * self.factor, self.min_lr)
        schedule = optimizer.schedule
        if isinstance(schedule, schedules.Constant):
            optimizer.learning_rate = new
        elif isinstance(schedule, schedules.Scaled):
            schedule.multiplier *= new / old
        else:
            optimizer.schedule = schedules.Scaled(schedule, new / old)
        self.reductions.append((epoch, new))
        return True


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)`` (epochs
    counted from 0, lr the current rate), or ``schedule(epoch)`` for a function of one argument,
    as Keras. The rate holds for the whole epoch: it replaces any per-step schedule the optimizer
    had (a handnet schedule object works too, called with the epoch as its step).
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise HandnetError(f"LearningRateScheduler needs a function, got {schedule!r}")
        self.schedule = schedule
        self._takes_rate = _accepts_two_arguments(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if self._takes_rate:
            value = self.schedule(epoch, float(optimizer.learning_rate))
        else:
            value = self.schedule(epoch)
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate >= 0):
            raise HandnetError(
                f"the learning-rate schedule must return a number ≥ 0; for epoch {epoch} it "
                f"returned {value!r}"
            )
        optimizer.learning_rate = rate


def _accepts_two_arguments(function):
    """Whether function(epoch, lr) is a valid call (Keras tries it and falls back on a
    TypeError, which would also hide a TypeError raised inside the schedule)."""
    try:
        inspect.signature(function).bind(0, 0.0)
    except TypeError:
        return False
    except ValueError:  # no signature to read (some built-ins)
        return True
    return True


class LambdaCallback(Callback):
    """A callback from plain functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...)."""

    def __init__(
        self, on_epoch_end=None, on_batch_end=None, on_train_begin=None, on_train_end=None
    ):
        noop = lambda *args, **kwargs: None  # noqa: E731
        self.on_epoch_end = on_epoch_end or noop
        self.on_batch_end = on_batch_end or noop
        self.on_train_begin = on_train_begin or noop
        self.on_train_end = on_train_end or noop
