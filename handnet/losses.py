"""Losses: a value averaged over the batch, and its gradient with respect to the prediction.

    loss(y_true, y_pred)      -> float, the mean over the N samples
    gradient(y_true, y_pred)  -> ∂loss/∂y_pred, same shape as y_pred; the 1/N of the mean is
                                 applied here, once, and nowhere else.

Cross-entropy after a softmax has a famously simple gradient with respect to the logits z:
with p = softmax(z) and targets t (one-hot or smoothed, each row summing to 1),

    L = -1/N Σ_n Σ_k t_nk log p_nk      ⇒      ∂L/∂z = (p - t) / N

The model uses this fused form (``logits_gradient``) whenever a softmax ends the network and
the loss is a cross-entropy on probabilities: it is cheaper and avoids dividing by tiny p.
"""

import numpy as np

from .activations import log_softmax, softmax
from .errors import HandnetError, InvalidInputError

#: Probabilities are clipped to [ε, 1 - ε] before the log, as Keras does, so log(0) never happens.
EPSILON = 1e-7


class Loss:
    name = "loss"
    #: Whether targets are integer class labels (N,) rather than arrays shaped like the output.
    sparse_labels = False
    #: Whether, after a softmax, the model may start the backward pass from the fused gradient
    #: ∂L/∂z at the softmax's input (``logits_gradient``) instead of ∂L/∂p.
    fuses_with_softmax = False

    def __call__(self, y_true, y_pred):
        raise NotImplementedError

    def gradient(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Crossentropy(Loss):
    """Shared by the sparse (integer labels) and categorical (one-hot) cross-entropies.

    from_logits=True:  y_pred are logits z; L uses log_softmax(z), ∂L/∂z = (softmax(z) - t) / N.
    from_logits=False: y_pred are probabilities p; L = -1/N Σ t · log clip(p, ε, 1-ε),
                       ∂L/∂p = -t / (N·p) where p is inside the clip range, 0 outside.
    label_smoothing ε_ls: t ← (1 - ε_ls)·t + ε_ls / K.
    """

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    @property
    def fuses_with_softmax(self):
        return not self.from_logits

    def targets(self, y_true, num_classes, dtype):
        """The target distribution t (N, K)."""
        raise NotImplementedError

    def log_probabilities(self, y_pred):
        if self.from_logits:
            return log_softmax(y_pred)
        return np.log(np.clip(y_pred, EPSILON, 1 - EPSILON))

    def __call__(self, y_true, y_pred):
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        return float(-(t * self.log_probabilities(y_pred)).sum() / y_pred.shape[0])

    def gradient(self, y_true, y_pred):
        if self.from_logits:
            return self.logits_gradient(y_true, softmax(y_pred))
        n = y_pred.shape[0]
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return np.where(inside, -t / (n * np.clip(y_pred, EPSILON, 1)), 0).astype(y_pred.dtype)

    def logits_gradient(self, y_true, probabilities):
        """∂L/∂z = (p - t) / N for p = softmax(z): the fused softmax + cross-entropy gradient."""
        n = probabilities.shape[0]
        t = self.targets(y_true, probabilities.shape[-1], probabilities.dtype)
        grad = probabilities - t
        grad *= probabilities.dtype.type(1 / n)
        return grad

    def _smooth(self, t):
        if self.label_smoothing:
            k = t.shape[-1]
            t = t * t.dtype.type(1 - self.label_smoothing) + t.dtype.type(self.label_smoothing / k)
        return t

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Crossentropy):
    """Cross-entropy with integer labels y_true (N,) in [0, K) and predictions (N, K)."""

    name = "sparse_categorical_crossentropy"
    sparse_labels = True

    @staticmethod
    def labels(y_true, num_classes):
        """y_true as (N,) indices; refused outside [0, K), where -1 would quietly pick class K-1."""
        labels = np.asarray(y_true).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise InvalidInputError(
                f"labels must be integers in [0, {num_classes}), got values from "
                f"{labels.min()} to {labels.max()}"
            )
        return labels.astype(np.intp)

    def targets(self, y_true, num_classes, dtype):
        labels = self.labels(y_true, num_classes)
        t = np.zeros((labels.shape[0], num_classes), dtype=dtype)
        t[np.arange(labels.shape[0]), labels] = 1
        return self._smooth(t)

    def __call__(self, y_true, y_pred):
        if self.label_smoothing:
            return super().__call__(y_true, y_pred)
        # Without smoothing only the true class's log-probability counts: gather it.
        labels = self.labels(y_true, y_pred.shape[-1])
        rows = np.arange(y_pred.shape[0])
        if self.from_logits:
            picked = log_softmax(y_pred)[rows, labels]
        else:
            picked = np.log(np.clip(y_pred[rows, labels], EPSILON, 1 - EPSILON))
        return float(-picked.sum() / y_pred.shape[0])


class CategoricalCrossentropy(Crossentropy):
    """Cross-entropy with target distributions y_true (N, K) (usually one-hot) and
    predictions (N, K)."""

    name = "categorical_crossentropy"

    def targets(self, y_true, num_classes, dtype):
        t = np.asarray(y_true, dtype=dtype)
        if t.shape[-1] != num_classes:
            raise InvalidInputError(
                f"one-hot targets must have {num_classes} columns, got shape {t.shape}"
            )
        return self._smooth(t)


class MeanSquaredError(Loss):
    """L = 1/(N·K) Σ (y_pred - y_true)²;   ∂L/∂y_pred = 2 (y_pred - y_true) / (N·K).

    As in Keras: the mean over the last axis, then over the batch.
    """

    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        diff = y_pred - np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        return float((diff * diff).mean())

    def gradient(self, y_true, y_pred):
        diff = y_pred - np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        return diff * y_pred.dtype.type(2 / y_pred.size)


LOSSES = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier):
    """A loss from a name ('sparse_categorical_crossentropy', 'mse', …), a config or a Loss."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return LOSSES[identifier["name"]](**identifier.get("config", {}))
    try:
        return LOSSES[identifier]()
    except (KeyError, TypeError):
        raise HandnetError(
            f"unknown loss {identifier!r}; expected one of {sorted(LOSSES)}"
        ) from None


def serialize(loss):
    return {"name": loss.name, "config": loss.get_config()}
