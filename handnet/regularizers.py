"""Weight penalties added to the loss, with Keras's definitions.

    L2(λ):   penalty = λ · Σ w²        gradient = 2λ · w
    L1(λ):   penalty = λ · Σ |w|       gradient = λ · sign(w)
    L1L2:    the sum of both

(Keras's λ multiplies Σ w² directly; it is *not* the λ/2 of many textbooks.)
"""

import numpy as np

from .errors import HandnetError


class L1L2:
    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = float(l1)
        self.l2 = float(l2)

    def penalty(self, w):
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w).sum())
        if self.l2:
            total += self.l2 * float((w * w).sum())
        return total

    def gradient(self, w):
        grad = np.zeros_like(w)
        if self.l1:
            grad += w.dtype.type(self.l1) * np.sign(w)
        if self.l2:
            grad += w.dtype.type(2 * self.l2) * w
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"L1L2(l1={self.l1}, l2={self.l2})"


def L1(l1=0.01):
    return L1L2(l1=l1)


def L2(l2=0.01):
    return L1L2(l2=l2)


def get(identifier):
    """A regularizer from None, 'l1' / 'l2' (Keras's default λ = 0.01), a config dict
    or an object."""
    if identifier is None or isinstance(identifier, L1L2):
        return identifier
    if identifier == "l1":
        return L1()
    if identifier == "l2":
        return L2()
    if isinstance(identifier, dict):
        return L1L2(identifier.get("l1", 0.0), identifier.get("l2", 0.0))
    raise HandnetError(
        f"unknown regularizer {identifier!r}; expected None, 'l1', 'l2' or L1L2(...)"
    )


def serialize(regularizer):
    """JSON-ready config of a regularizer, None for none."""
    return None if regularizer is None else regularizer.get_config()
