"""What a fit sends a callback, and the record it leaves on the model.

``Callback`` is the interface of fit's events (train begin/end, epoch begin/end, batch end);
``History`` is the callback every fit starts with, and what ``model.history`` holds afterwards.
They sit with the model, below the training engine, because the model keeps its History and
``handnet.saving`` writes and restores it; the callbacks that steer training (EarlyStopping,
checkpoints, schedules) live in ``handnet.training.callbacks``, which re-exports these two.
"""

import json


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
