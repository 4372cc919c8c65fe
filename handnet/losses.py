"""Losses: a value averaged over the batch, and its gradient with respect to the prediction.

    loss(y_true, y_pred)      -> float, the mean over the N samples
    gradient(y_true, y_pred)  -> ∂loss/∂y_pred, same shape as y_pred; the 1/N of the mean is
                                 applied here, once, and nowhere else.

Cross-entropy after a softmax has a famously simple gradient with respect to the logits z:
with p = softmax(z) and targets t (one-hot or smoothed, each row summing to 1),

    L = -1/N Σ_n Σ_k t_nk log p_nk      ⇒      ∂L/∂z = (p - t) / N

The model uses this fused form (``logits_gradient``) whenever a softmax ends the network and
the loss is a cross-entropy on probabilities: it is cheaper and avoids dividing by tiny p.

Outputs with more axes than (N, K), a sequence (N, T, K), have one loss per position i (each
sample and step): ``elementwise`` gives ℓ_i (N, T) — Keras's ``Loss.call`` — and the mean is
over all N·T positions, as Keras's "sum_over_batch_size". When padded steps carry a mask m
(handnet.model.plan), Keras leaves them out (keras.src.losses.loss.apply_mask):

    L = Σ_i m_i ℓ_i / Σ_i m_i  = Σ_i w_i ℓ_i,  w = m / Σ m  (w = 0 when nothing is unmasked)
    ∂L/∂ŷ_i = w_i · ∂ℓ_i/∂ŷ_i                  (``weighted`` and ``weighted_gradient``)

so a masked step adds nothing to the loss and gets no gradient.
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

    def elementwise(self, y_true, y_pred):
        """ℓ_i for each position i of y_pred's leading axes: shape y_pred.shape[:-1]."""
        raise NotImplementedError

    def elementwise_gradient(self, y_true, y_pred):
        """∂ℓ_i/∂ŷ_i for each position i (not divided by any count): shape y_pred.shape."""
        raise NotImplementedError

    def weighted(self, y_true, y_pred, weights):
        """Σ_i w_i ℓ_i for weights w shaped y_pred.shape[:-1] (``mask_weights``: a masked mean)."""
        return float((self.elementwise(y_true, y_pred) * weights).sum())

    def weighted_gradient(self, y_true, y_pred, weights, logits=False):
        """∂(Σ_i w_i ℓ_i)/∂ŷ = w_i · ∂ℓ_i/∂ŷ_i; ``logits``: with respect to the softmax's input
        instead (``fuses_with_softmax``, y_pred then being the probabilities)."""
        if logits:
            gradient = self.elementwise_logits_gradient(y_true, y_pred)
        else:
            gradient = self.elementwise_gradient(y_true, y_pred)
        return (gradient * weights[..., None]).astype(y_pred.dtype, copy=False)

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
        return float(-(t * self.log_probabilities(y_pred)).sum() / _positions(y_pred))

    def gradient(self, y_true, y_pred):
        if self.from_logits:
            return self.logits_gradient(y_true, softmax(y_pred))
        n = _positions(y_pred)
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return np.where(inside, -t / (n * np.clip(y_pred, EPSILON, 1)), 0).astype(y_pred.dtype)

    def logits_gradient(self, y_true, probabilities):
        """∂L/∂z = (p - t) / N for p = softmax(z): the fused softmax + cross-entropy gradient
        (N: the positions, N·T for a sequence)."""
        n = _positions(probabilities)
        t = self.targets(y_true, probabilities.shape[-1], probabilities.dtype)
        grad = probabilities - t
        grad *= probabilities.dtype.type(1 / n)
        return grad

    def elementwise(self, y_true, y_pred):
        """ℓ_i = -Σ_k t_ik log p_ik."""
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        return -(t * self.log_probabilities(y_pred)).sum(axis=-1)

    def elementwise_gradient(self, y_true, y_pred):
        """∂ℓ_i/∂p_i = -t_i / p_i inside the clip range (0 outside); from logits, p_i - t_i."""
        if self.from_logits:
            return self.elementwise_logits_gradient(y_true, softmax(y_pred))
        t = self.targets(y_true, y_pred.shape[-1], y_pred.dtype)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return np.where(inside, -t / np.clip(y_pred, EPSILON, 1), 0).astype(y_pred.dtype)

    def elementwise_logits_gradient(self, y_true, probabilities):
        """∂ℓ_i/∂z_i = p_i - t_i for p = softmax(z)."""
        return probabilities - self.targets(y_true, probabilities.shape[-1], probabilities.dtype)

    def _smooth(self, t):
        if self.label_smoothing:
            k = t.shape[-1]
            t = t * t.dtype.type(1 - self.label_smoothing) + t.dtype.type(self.label_smoothing / k)
        return t

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Crossentropy):
    """Cross-entropy with integer labels y_true (N,) in [0, K) and predictions (N, K); for a
    sequence, labels (N, T) and predictions (N, T, K)."""

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
        """One-hot rows (N, K), or (N, T, K) for labels (N, T)."""
        labels = self.labels(y_true, num_classes)
        t = np.zeros((labels.shape[0], num_classes), dtype=dtype)
        t[np.arange(labels.shape[0]), labels] = 1
        return self._smooth(t.reshape(*np.shape(y_true), num_classes))

    def __call__(self, y_true, y_pred):
        if self.label_smoothing:
            return super().__call__(y_true, y_pred)
        # Without smoothing only the true class's log-probability counts: gather it.
        labels = self.labels(y_true, y_pred.shape[-1])
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])  # (N, K) as it is; a sequence's N·T rows
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

    def elementwise(self, y_true, y_pred):
        """ℓ_i = 1/K Σ_k (ŷ_ik - y_ik)²."""
        diff = y_pred - np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        return (diff * diff).mean(axis=-1)

    def elementwise_gradient(self, y_true, y_pred):
        diff = y_pred - np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        return diff * y_pred.dtype.type(2 / y_pred.shape[-1])


def mask_weights(mask, dtype):
    """w = m / Σ m for a boolean mask m (N, T) of the positions that count; all 0 when none
    does (Keras's divide_no_nan: a batch of padding alone adds 0 to the loss)."""
    valid = int(np.count_nonzero(mask))
    weights = np.asarray(mask, dtype=dtype)
    return weights * dtype.type(1 / valid) if valid else weights


def _positions(y_pred):
    """The positions a loss averages over: N rows, or N·T for a sequence (N, T, K)."""
    return y_pred.size // y_pred.shape[-1] if y_pred.ndim > 2 else y_pred.shape[0]


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
