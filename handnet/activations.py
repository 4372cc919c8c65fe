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

from . import special
from .errors import HandnetError


#: A batch of at least NARROW_ROWS rows of at most NARROW_COLUMNS values (a classifier's
#: scores) takes its row maxima as a running maximum over the columns: NumPy's max along rows
#: of 10 pays a setup per row (1,000 × 10 float32 scores: 47 µs, the columns' 17 µs; a
#: third of the mlp's softmax). The same numbers: a maximum is exact in any order.
NARROW_ROWS, NARROW_COLUMNS = 256, 16


def row_max(z):
    """max over the last axis, kept as an axis of 1 (NaN where a row holds one)."""
    if z.ndim == 2 and z.shape[0] >= NARROW_ROWS and 1 < z.shape[1] <= NARROW_COLUMNS:
        m = z[:, :1].copy()
        for j in range(1, z.shape[1]):
            np.maximum(m, z[:, j : j + 1], out=m)
        return m
    return z.max(axis=-1, keepdims=True)


def softmax(z):
    """Softmax over the last axis; the row max is subtracted so every exponent is ≤ 0."""
    e = np.exp(z - row_max(z))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def log_softmax(z):
    """log softmax(z) = z - m - log Σ_j e^{z_j - m}, m = row max: no overflow, no log(0)."""
    shifted = z - row_max(z)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Activation:
    name = "base"
    uses_input = False
    #: The derivative, as ``handnet explain --backward`` prints it: dz from dy = ∂L/∂y, with
    #: y = f(z) (the formulas of the docstrings, in a layer's names).
    gradient = "dz = dy · f'(z)"

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
    gradient = "dz = dy"

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
    gradient = "dz = dy · [z > 0]"

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

    @property
    def gradient(self):
        return f"dz = dy if z > 0 else {self.negative_slope:g} · dy"


class Sigmoid(Activation):
    """a = 1 / (1 + e^-z);  dz = da · a · (1 - a).

    Computed as e^z / (1 + e^z) for z < 0 so that no exponential of a large positive
    number is ever taken: both branches stay in [0, 1] for any finite z.
    """

    name = "sigmoid"
    gradient = "dz = dy · y · (1 - y)"

    def forward(self, z, out=None):
        e = np.exp(-np.abs(z))  # e^{-|z|} ≤ 1
        numerator = np.where(z >= 0, 1, e).astype(z.dtype, copy=False)  # 1 if z ≥ 0, else e^z
        # One division by 1 + e^{-|z|} for both branches: the same two operands as 1/(1+e) and
        # e/(1+e), so the same bits, in half the passes.
        return np.divide(numerator, np.add(e, 1, out=e), out=numerator if out is None else out)

    def backward(self, da, z, a):
        return da * a * (1 - a)


class Tanh(Activation):
    """a = tanh(z);  dz = da · (1 - a²)."""

    name = "tanh"
    gradient = "dz = dy · (1 - y²)"

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
    gradient = "dz_k = y_k · (dy_k - Σ_j dy_j · y_j)"

    def forward(self, z, out=None):
        return softmax(z)

    def backward(self, da, z, a):
        return a * (da - (da * a).sum(axis=-1, keepdims=True))


# -- the rest of Keras 3's activations ------------------------------------------------------
# The definitions and default constants of Keras 3.15 (keras.activations, torch backend). Where
# a derivative jumps (a kink), it takes the value PyTorch's autograd gives there; gradient
# checks keep their inputs away from kinks.


class ELU(Activation):
    """a = z if z > 0 else α(e^z - 1);  dz = da if z > 0 else da · α e^z.   Keras's α = 1.

    expm1 keeps e^z - 1 accurate for small |z|, and only e^min(z, 0) is taken: no overflow.
    """

    name = "elu"
    uses_input = True
    alpha = 1.0

    def forward(self, z, out=None):
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def backward(self, da, z, a):
        return da * np.where(z > 0, 1, self.alpha * np.exp(np.minimum(z, 0)))

    @property
    def gradient(self):
        return f"dz = dy if z > 0 else dy · {self.alpha:g} · e^z"


class SELU(ELU):
    """a = λ · elu_α(z);  dz = da · λ if z > 0 else da · λα e^z.

    λ ≈ 1.0507 and α ≈ 1.6733 are Klambauer et al.'s constants (as in PyTorch and Keras): with
    LeCun-normal weights they keep a layer's outputs at mean 0 and variance 1.
    """

    name = "selu"
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, z, out=None):
        return self.scale * super().forward(z)

    def backward(self, da, z, a):
        return self.scale * super().backward(da, z, a)

    @property
    def gradient(self):
        return f"dz = {self.scale:.4f} · dy if z > 0 else dy · {self.scale * self.alpha:.4f} · e^z"


class CELU(ELU):
    """a = max(z, 0) + min(0, α(e^{z/α} - 1));  with Keras's α = 1 this is exactly the ELU."""

    name = "celu"


class GELU(Activation):
    """a = z Φ(z);  dz = da · (Φ(z) + z φ(z)),  with Φ(z) = a / z (z ≠ 0) in the backward pass.

    Φ(z) = (1 + erf(z/√2))/2 is the standard normal CDF and φ = Φ' its density, both from
    ``handnet.special`` (NumPy has no erf). Keras's default approximate=False: this exact form,
    not the tanh approximation. float32 z is computed in float32 throughout (special's float32
    path: a few float32 ulp), float64 z in float64.
    """

    name = "gelu"
    gradient = "dz = dy · (Φ(z) + z · φ(z)),  Φ(z) = y / z"
    uses_input = True

    def forward(self, z, out=None):
        if z.dtype == np.float32:
            # z Φ(z) = max(z, 0) - |z| Φ(-|z|), as Φ(z) = 1 - Φ(-z): three operations on the
            # tail where Φ(z) from it and the product take six (the vit's inference spends a
            # fifth of its time here). Past |z| = 14.5 the tail is 0 in float32, so the
            # clipped |z| that special returns gives the same product; GELU(-∞) = 0.
            tail, magnitude = special.normal_lower_tail_float32(z)
            tail *= magnitude
            a = np.maximum(z, np.float32(0), out=magnitude)
            a -= tail
            return a
        a = special.normal_cdf(z).astype(z.dtype, copy=False)  # a new array: scaled in place
        a *= z
        return a

    def backward(self, da, z, a):
        # Φ(z) is a / z, from the forward pass (one division, where a second Φ would cost a
        # rational approximation: a transformer's step spent a third of its time there); ½ at
        # z = 0, set where it occurs (np.where would select across the whole array).
        with np.errstate(divide="ignore", invalid="ignore"):
            cdf = a / z
        at_zero = z == 0
        if at_zero.any():
            cdf[at_zero] = 0.5
        slope = special.normal_pdf(z).astype(z.dtype, copy=False)  # new arrays from here on
        slope *= z
        slope += cdf
        if slope.dtype != da.dtype:
            return da * slope.astype(da.dtype)
        slope *= da
        return slope


class SiLU(Activation):
    """a = z σ(z);  dz = da · σ(z) (1 + z (1 - σ(z))).

    Keras writes "silu"; "swish" is its alias.
    """

    name = "silu"
    gradient = "dz = dy · σ(z) · (1 + z · (1 - σ(z)))"
    uses_input = True

    def forward(self, z, out=None):
        return z * Sigmoid().forward(z)

    def backward(self, da, z, a):
        s = Sigmoid().forward(z)
        return da * (s * (1 + z * (1 - s)))


class Softplus(Activation):
    """a = log(1 + e^z) = max(z, 0) + log(1 + e^{-|z|});  dz = da · σ(z) = da · (1 - e^{-a}).

    The second form of a never exponentiates a positive number. The derivative needs only a,
    since e^{-a} = 1/(1 + e^z) = 1 - σ(z); -expm1(-a) is 1 - e^{-a} without cancellation.
    """

    name = "softplus"
    gradient = "dz = dy · (1 - e^-y)   (= σ(z))"

    def forward(self, z, out=None):
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))

    def backward(self, da, z, a):
        return da * -np.expm1(-a)


class Softsign(Activation):
    """a = z / (1 + |z|);  dz = da / (1 + |z|)²."""

    name = "softsign"
    gradient = "dz = dy / (1 + |z|)²"
    uses_input = True

    def forward(self, z, out=None):
        return z / (1 + np.abs(z))

    def backward(self, da, z, a):
        return da / (1 + np.abs(z)) ** 2


class Squareplus(Activation):
    """a = (z + √(z² + b)) / 2, Keras's b = 4;  dz = da · (1 + z/√(z² + b))/2 = da · a / √(z² + b).

    For z < 0 the sum z + √(z² + b) cancels. But a(z) · a(-z) = (b + z² - z²)/4 = b/4, so there
    a = b / (4 a(|z|)), from the sum that does not cancel. √(z² + b) is hypot(z, √b): no z² to
    overflow.
    """

    name = "squareplus"
    uses_input = True
    b = 4.0

    def forward(self, z, out=None):
        of_magnitude = (np.abs(z) + np.hypot(z, self.b**0.5)) / 2  # a(|z|) ≥ √b / 2
        return np.where(z >= 0, of_magnitude, self.b / 4 / of_magnitude)

    def backward(self, da, z, a):
        return da * (a / np.hypot(z, self.b**0.5))

    @property
    def gradient(self):
        return f"dz = dy · y / √(z² + {self.b:g})"


class ReLU6(Activation):
    """a = min(max(z, 0), 6);  dz = da · [0 < z < 6] = da · [0 < a < 6]."""

    name = "relu6"
    gradient = "dz = dy · [0 < y < 6]"

    def forward(self, z, out=None):
        return np.clip(z, 0, 6, out=out)

    def backward(self, da, z, a):
        return da * ((a > 0) & (a < 6))


class HardSigmoid(Activation):
    """a = relu6(z + 3) / 6: 0 for z ≤ -3, z/6 + 1/2 between, 1 for z ≥ 3;
    dz = da/6 · [-3 < z < 3].

    Keras 3's definition (PyTorch's hardsigmoid); Keras 2 wrote the same name for
    clip(0.2 z + 0.5, 0, 1).
    """

    name = "hard_sigmoid"
    gradient = "dz = dy / 6 · [-3 < z < 3]"
    uses_input = True

    def forward(self, z, out=None):
        return np.clip(z + 3, 0, 6) / 6

    def backward(self, da, z, a):
        return da * ((z > -3) & (z < 3)) / 6


class HardSiLU(Activation):
    """a = z · relu6(z + 3) / 6;  dz = da · (0 if z ≤ -3, z/3 + 1/2 if -3 < z < 3, 1 if z ≥ 3).

    Keras writes "hard_silu"; "hard_swish" is its alias.
    """

    name = "hard_silu"
    gradient = "dz = dy · (0 if z ≤ -3, z/3 + 1/2 if -3 < z < 3, 1 if z ≥ 3)"
    uses_input = True

    def forward(self, z, out=None):
        return z * np.clip(z + 3, 0, 6) / 6

    def backward(self, da, z, a):
        return da * np.where(z <= -3, 0, np.where(z < 3, z / 3 + 0.5, 1))


class Exponential(Activation):
    """a = e^z;  dz = da · a.

    e^z exceeds the largest float for z > 88.7 in float32 (709.8 in float64) and becomes inf, in
    Keras too: no rewriting can hold a number that large.
    """

    name = "exponential"
    gradient = "dz = dy · y"

    def forward(self, z, out=None):
        return np.exp(z, out=out)

    def backward(self, da, z, a):
        return da * a


class Mish(Activation):
    """a = z t, t = tanh(softplus(z));  dz = da · (t + z (1 - t²) σ(z)), since softplus' = σ."""

    name = "mish"
    gradient = "dz = dy · (t + z · (1 - t²) · σ(z)),  t = tanh(softplus(z))"
    uses_input = True

    def forward(self, z, out=None):
        return z * np.tanh(Softplus().forward(z))

    def backward(self, da, z, a):
        t = np.tanh(Softplus().forward(z))
        return da * (t + z * (1 - t * t) * Sigmoid().forward(z))


class LogSoftmax(Activation):
    """a = log softmax(z) over the last axis (see ``log_softmax``);  dz_k = da_k - e^{a_k} Σ_j da_j,
    since ∂a_j/∂z_k = δ_jk - softmax(z)_k and softmax(z) = e^a."""

    name = "log_softmax"
    gradient = "dz_k = dy_k - e^(y_k) · Σ_j dy_j"

    def forward(self, z, out=None):
        return log_softmax(z)

    def backward(self, da, z, a):
        return da - np.exp(a) * da.sum(axis=-1, keepdims=True)


class LogSigmoid(Activation):
    """a = log σ(z) = min(z, 0) - log(1 + e^{-|z|});  dz = da · σ(-z) = da · (1 - e^a).

    Like softplus (log σ(z) = -softplus(-z)) nothing positive is exponentiated; 1 - e^a is
    computed as -expm1(a), exact where a ≈ 0 (z ≫ 0).
    """

    name = "log_sigmoid"
    gradient = "dz = dy · (1 - e^y)   (= σ(-z))"

    def forward(self, z, out=None):
        return np.minimum(z, 0) - np.log1p(np.exp(-np.abs(z)))

    def backward(self, da, z, a):
        return da * -np.expm1(a)


class TanhShrink(Activation):
    """a = z - tanh z;  dz = da · tanh² z."""

    name = "tanh_shrink"
    gradient = "dz = dy · tanh²(z)"
    uses_input = True

    def forward(self, z, out=None):
        return z - np.tanh(z)

    def backward(self, da, z, a):
        return da * np.tanh(z) ** 2


class SoftShrink(Activation):
    """a = z - λ if z > λ, z + λ if z < -λ, else 0 (Keras's λ = 0.5);  dz = da · [a ≠ 0]."""

    name = "soft_shrink"
    gradient = "dz = dy · [y ≠ 0]"
    threshold = 0.5

    def forward(self, z, out=None):
        t = self.threshold
        return np.where(z > t, z - t, np.where(z < -t, z + t, 0))

    def backward(self, da, z, a):
        return da * (a != 0)


class HardShrink(Activation):
    """a = z if |z| > λ else 0 (Keras's λ = 0.5);  dz = da · [|z| > λ] = da · [a ≠ 0]."""

    name = "hard_shrink"
    gradient = "dz = dy · [y ≠ 0]"
    threshold = 0.5

    def forward(self, z, out=None):
        return np.where(np.abs(z) > self.threshold, z, 0)

    def backward(self, da, z, a):
        return da * (a != 0)


class HardTanh(Activation):
    """a = min(max(z, -1), 1);  dz = da · [-1 < z < 1] = da · [|a| < 1]."""

    name = "hard_tanh"
    gradient = "dz = dy · [|y| < 1]"

    def forward(self, z, out=None):
        return np.clip(z, -1, 1, out=out)

    def backward(self, da, z, a):
        return da * (np.abs(a) < 1)


class SparsePlus(Activation):
    """a = 0 for z ≤ -1, (z + 1)²/4 for -1 < z < 1, z for z ≥ 1;  dz = da · (0, (z + 1)/2, 1).

    Softplus made piecewise: a and its slope are continuous at both joints.
    """

    name = "sparse_plus"
    gradient = "dz = dy · (0 if z ≤ -1, (z + 1)/2 if -1 < z < 1, 1 if z ≥ 1)"
    uses_input = True

    def forward(self, z, out=None):
        inner = np.clip(z, -1, 1)  # clipped so (z + 1)² is never taken of a huge z
        return np.where(z < 1, (inner + 1) ** 2 / 4, z)

    def backward(self, da, z, a):
        return da * np.where(z < 1, (np.clip(z, -1, 1) + 1) / 2, 1)


class SparseSigmoid(Activation):
    """a = 0 for z ≤ -1, (z + 1)/2 for -1 < z < 1, 1 for z ≥ 1;  dz = da/2 · [-1 < z < 1]."""

    name = "sparse_sigmoid"
    gradient = "dz = dy / 2 · [-1 < z < 1]"
    uses_input = True

    def forward(self, z, out=None):
        return np.clip((z + 1) / 2, 0, 1)

    def backward(self, da, z, a):
        return da * ((z > -1) & (z < 1)) / 2


ACTIVATIONS = {
    "linear": Linear,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
    "elu": ELU,
    "selu": SELU,
    "celu": CELU,
    "gelu": GELU,
    "silu": SiLU,
    "softplus": Softplus,
    "softsign": Softsign,
    "squareplus": Squareplus,
    "relu6": ReLU6,
    "hard_sigmoid": HardSigmoid,
    "hard_silu": HardSiLU,
    "exponential": Exponential,
    "mish": Mish,
    "log_softmax": LogSoftmax,
    "log_sigmoid": LogSigmoid,
    "tanh_shrink": TanhShrink,
    "soft_shrink": SoftShrink,
    "hard_shrink": HardShrink,
    "hard_tanh": HardTanh,
    "sparse_plus": SparsePlus,
    "sparse_sigmoid": SparseSigmoid,
    # Aliases Keras reads; it writes the function's own name ("silu", "hard_silu").
    "swish": SiLU,
    "hard_swish": HardSiLU,
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
