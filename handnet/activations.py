"""Elementwise activations and softmax, each with its derivative.

Every activation is a small object with

    forward(z, out=None) -> a = f(z)          z, a: any shape (N, ...)
    backward(da, z, a)   -> dz = da * f'(z)   (softmax: the Jacobian-vector product)

``backward`` receives both the input ``z`` and the output ``a`` so each derivative is written
in whichever is cheaper (sigmoid' = a(1 - a) needs only ``a``). ``da`` is never modified: it
belongs to the caller. When ``uses_input`` is False the derivative needs only ``a``, so a layer
may compute f in place (``out=z``) and keep no copy of z — one array and one pass fewer.
"""

import numpy as np

from .errors import HandnetError


def softmax(z):
    """Softmax over the last axis; the row max is subtracted so every exponent is ≤ 0."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def log_softmax(z):
    """log softmax(z) = z - m - log Σ_j e^{z_j - m}, m = row max: no overflow, no log(0)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Activation:
    name = "base"
    uses_input = False

    def forward(self, z, out=None):
        raise NotImplementedError

    def backward(self, da, z, a):
        raise NotImplementedError

    def __call__(self, z):
        return self.forward(z)

    def __repr__(self):
        return self.name


class Linear(Activation):
    """a = z;  dz = da."""

    name = "linear"

    def forward(self, z, out=None):
        return z

    def backward(self, da, z, a):
        return da


class ReLU(Activation):
    """a = max(z, 0);  dz = da · [z > 0].

    At the kink z = 0 the derivative is taken as 0 (PyTorch and Keras agree), which is why
    gradient checks use inputs that keep away from 0.
    """

    name = "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def backward(self, da, z, a):
        return da * (a > 0)


class LeakyReLU(Activation):
    """a = z if z > 0 else α·z;  dz = da if z > 0 else α·da.  Keras's default α = 0.2."""

    name = "leaky_relu"
    uses_input = True

    def __init__(self, negative_slope=0.2):
        self.negative_slope = float(negative_slope)

    def forward(self, z, out=None):
        return np.where(z > 0, z, z * z.dtype.type(self.negative_slope))

    def backward(self, da, z, a):
        return np.where(z > 0, da, da * da.dtype.type(self.negative_slope))

    def __repr__(self):
        return f"leaky_relu(negative_slope={self.negative_slope})"


class Sigmoid(Activation):
    """a = 1 / (1 + e^-z);  dz = da · a · (1 - a).

    Computed as e^z / (1 + e^z) for z < 0 so that no exponential of a large positive
    number is ever taken: both branches stay in [0, 1] for any finite z.
    """

    name = "sigmoid"

    def forward(self, z, out=None):
        e = np.exp(-np.abs(z))
        result = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
        if out is not None:
            out[...] = result
            return out
        return result

    def backward(self, da, z, a):
        return da * a * (1 - a)


class Tanh(Activation):
    """a = tanh(z);  dz = da · (1 - a²)."""

    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def backward(self, da, z, a):
        return da * (1 - a * a)


class Softmax(Activation):
    """a_k = e^{z_k - m} / Σ_j e^{z_j - m} over the last axis, m = max_j z_j.

    Subtracting the row maximum leaves the result unchanged (it cancels in the ratio) and keeps
    every exponent ≤ 0, so nothing overflows.  Backward is the Jacobian-vector product
    dz_k = a_k (da_k - Σ_j da_j a_j).  Followed by cross-entropy, the model skips this and uses
    the fused gradient (a - y) / N instead (see ``handnet.losses``).
    """

    name = "softmax"

    def forward(self, z, out=None):
        return softmax(z)

    def backward(self, da, z, a):
        return a * (da - (da * a).sum(axis=-1, keepdims=True))


ACTIVATIONS = {
    "linear": Linear,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def get(identifier):
    """An activation from a name ('relu'), None (linear), a config dict or an Activation."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return ACTIVATIONS[identifier]()
    if isinstance(identifier, dict) and identifier.get("name") in ACTIVATIONS:
        options = {k: v for k, v in identifier.items() if k != "name"}
        return ACTIVATIONS[identifier["name"]](**options)
    raise HandnetError(
        f"unknown activation {identifier!r}; expected one of {sorted(ACTIVATIONS)} or None"
    )


def serialize(activation):
    """The name Keras would write for this activation; a dict when it has non-default options."""
    if isinstance(activation, LeakyReLU) and activation.negative_slope != 0.2:
        return {"name": activation.name, "negative_slope": activation.negative_slope}
    return activation.name
