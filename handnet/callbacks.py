"""Callbacks: code that runs at the edges of epochs and batches during ``fit``.

``logs`` at the end of an epoch hold that epoch's figures: loss, accuracy, val_loss,
val_accuracy, learning_rate. A callback stops training by setting ``model.stop_training``.
"""

import json
import math

from .errors import HandnetError


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Records every epoch's logs: ``history.history["val_accuracy"][epoch]``."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def to_json(self):
        return json.dumps({"epoch": self.epoch, "history": self.history}, indent=1)

    @classmethod
    def from_dict(cls, data):
        history = cls()
        history.epoch = list(data.get("epoch", []))
        history.history = {k: list(v) for k, v in data.get("history", {}).items()}
        return history


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

    ``filepath`` may hold ``{epoch}`` and any log key, e.g. "ckpt-{epoch:02d}-{val_accuracy:.4f}.npz".
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


class LambdaCallback(Callback):
    """A callback from plain functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...)."""

    def __init__(self, on_epoch_end=None, on_batch_end=None, on_train_begin=None, on_train_end=None):
        noop = lambda *args, **kwargs: None  # noqa: E731
        self.on_epoch_end = on_epoch_end or noop
        self.on_batch_end = on_batch_end or noop
        self.on_train_begin = on_train_begin or noop
        self.on_train_end = on_train_end or noop
