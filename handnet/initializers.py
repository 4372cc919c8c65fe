"""Weight initializers, with Keras's names and definitions.

For a kernel of shape (..., fan_in, fan_out) — Dense (D, U), Conv2D (kh, kw, C, F) — the
receptive field multiplies both fans: fan_in = kh·kw·C, fan_out = kh·kw·F.

    glorot_uniform  U(-l, l),  l = sqrt(6 / (fan_in + fan_out))     Keras's default kernel
    glorot_normal   truncated N(0, σ), σ = sqrt(2 / (fan_in + fan_out)) / .8796…
    he_normal       truncated N(0, σ), σ = sqrt(2 / fan_in) / .8796…  (for ReLU)
    he_uniform      U(-l, l),  l = sqrt(6 / fan_in)
    orthogonal      rows (or columns) orthonormal: Keras's default recurrent kernel
    lecun_normal    truncated N(0, σ), σ = sqrt(1 / fan_in) / .8796…
    uniform         U(-0.05, 0.05): Keras's "uniform" (RandomUniform), Embedding's default
    zeros, ones

Keras draws "normal" initializers from a normal truncated at 2σ and rescales σ by the standard
deviation of that truncated normal (0.87962566), so that the variance is the intended one.
"""

import contextlib
import contextvars
import functools
import math

import numpy as np

from .errors import HandnetError

# Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def compute_fans(shape):
    """(fan_in, fan_out) of a kernel shape, as Keras computes them."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_normal(rng, shape, stddev):
    """N(0, stddev) redrawn outside ±2·stddev (rejection sampling, vectorized)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


def _variance_scaling(scale, mode, distribution):
    def init(shape, rng, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "uniform":
            limit = np.sqrt(3 * variance)
            values = rng.uniform(-limit, limit, size=shape)
        else:
            values = _truncated_normal(rng, shape, np.sqrt(variance) / _TRUNCATED_NORMAL_STD)
        return values.astype(dtype)

    return init


def orthogonal(shape, rng, dtype="float32"):
    """Q of the QR decomposition of a normal matrix, as Keras draws it: for (rows, columns) the
    shorter side is orthonormal. Multiplying a state by it preserves its norm, so a recurrent
    state neither explodes nor vanishes at the start of training."""
    columns = shape[-1]
    rows = int(np.prod(shape[:-1]))
    q, r = np.linalg.qr(rng.standard_normal((max(rows, columns), min(rows, columns))))
    q *= np.sign(np.diag(r))  # makes Q unique, so it is uniformly distributed
    if rows < columns:
        q = q.T
    # C order: weights are nudged and updated through flat views, which a transposed Q would copy.
    return q.reshape(shape).astype(dtype, order="C")


def random_uniform(shape, rng, dtype="float32"):
    """U(-0.05, 0.05), Keras's RandomUniform defaults."""
    return rng.uniform(-0.05, 0.05, size=shape).astype(dtype)


def zeros(shape, rng=None, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng=None, dtype="float32"):
    return np.ones(shape, dtype=dtype)


INITIALIZERS = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "orthogonal": orthogonal,
    "uniform": random_uniform,
    "random_uniform": random_uniform,
    "zeros": zeros,
    "ones": ones,
}


def get(name):
    """The initializer function ``init(shape, rng, dtype) -> array`` called ``name``."""
    if callable(name):
        return _within_budget(name)
    try:
        return _within_budget(INITIALIZERS[name])
    except (KeyError, TypeError):
        raise HandnetError(
            f"unknown initializer {name!r}; expected one of {sorted(INITIALIZERS)}"
        ) from None


_budget = contextvars.ContextVar("initializer_budget", default=None)


@contextlib.contextmanager
def allocation_budget(max_bytes):
    """Inside the block, initializers together create at most ``max_bytes``, or raise.

    Loaders rebuild a model from a file's description before they copy its weights in; a model
    cannot need more weight bytes than the file holds, so a forged size (units=10**9) is refused
    before its memory is asked for.
    """
    token = _budget.set([max_bytes])
    try:
        yield
    finally:
        _budget.reset(token)


def _within_budget(init):
    if _budget.get() is None:
        return init

    @functools.wraps(init)
    def charged(shape, rng=None, dtype="float32"):
        budget = _budget.get()
        if budget is not None:
            # Python ints: a forged shape must not wrap around as int64 would.
            budget[0] -= math.prod(max(int(d), 0) for d in shape) * np.dtype(dtype).itemsize
            if budget[0] < 0:
                raise HandnetError(
                    f"a weight of shape {tuple(shape)} takes the model past the weight bytes "
                    "its file holds"
                )
        return init(shape, rng, dtype)

    return charged
