"""Optimizers: update rules that move each parameter w against its gradient g.

Each rule is Keras 3's, written out in the class docstring, with the PyTorch equivalent where
they differ. ``lr`` is the learning rate at the current step (a number or a schedule), and
``t`` counts updates from 1.

An optimizer keeps its per-parameter state ("slots": momentum, velocity, …) in dicts keyed by
"layer_name/param_name", so a model saved with its optimizer resumes exactly.
"""

import numpy as np

from . import schedules
from .errors import HandnetError


class Optimizer:
    slot_names = ()

    def __init__(self, learning_rate=0.001, clipnorm=None, global_clipnorm=None):
        if clipnorm is not None and global_clipnorm is not None:
            raise HandnetError("set clipnorm or global_clipnorm, not both")
        self.schedule = schedules.get(learning_rate)
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self.slots = {name: {} for name in self.slot_names}
        self._scratch = {}

    @property
    def learning_rate(self):
        """The learning rate the next update will use."""
        return self.schedule(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value):
        self.schedule = schedules.Constant(value)

    def apply(self, variables):
        """One update of every (key, parameter, gradient) triple; parameters change in place."""
        variables = list(variables)
        lr = self.learning_rate
        grads = self._clip([grad for _, _, grad in variables])
        for (key, param, _), grad in zip(variables, grads):
            self.update(key, param, grad, lr)
        self.iterations += 1

    def update(self, key, param, grad, lr):
        raise NotImplementedError

    def slot(self, name, key, like):
        """The state array ``name`` of parameter ``key``, zeros on first use."""
        table = self.slots[name]
        if key not in table:
            table[key] = np.zeros_like(like)
        return table[key]

    def scratch(self, key, like):
        """A work array shaped like parameter ``key``, reused across steps (not saved)."""
        work = self._scratch.get(key)
        if work is None or work.shape != like.shape or work.dtype != like.dtype:
            work = self._scratch[key] = np.empty_like(like)
        return work

    def _clip(self, grads):
        """clipnorm: each g scaled to ‖g‖ ≤ c (Keras).  global_clipnorm: all g scaled together so
        ‖(g₁, g₂, …)‖ ≤ c (Keras, and PyTorch's clip_grad_norm_).  Returns new
        arrays when scaling."""
        if self.clipnorm:
            return [_scaled_to_norm(g, float(np.linalg.norm(g)), self.clipnorm) for g in grads]
        if self.global_clipnorm:
            norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads)))
            return [_scaled_to_norm(g, norm, self.global_clipnorm) for g in grads]
        return grads

    # -- saving -------------------------------------------------------------------------
    def get_config(self):
        return {
            "learning_rate": schedules.serialize(self.schedule),
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
        }

    def get_state(self):
        """Arrays keyed "slot/layer/param", plus the step count."""
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for name, table in self.slots.items():
            for key, value in table.items():
                state[f"{name}/{key}"] = value
        return state

    def set_state(self, state):
        self.iterations = int(state.get("iterations", 0))
        for full_key, value in state.items():
            name, _, key = full_key.partition("/")
            if name in self.slots and key:
                self.slots[name][key] = np.array(value)

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.schedule!r})"


def _scaled_to_norm(grad, norm, max_norm):
    if norm <= max_norm or norm == 0:
        return grad
    return grad * grad.dtype.type(max_norm / norm)


class SGD(Optimizer):
    """Plain:      w ← w - lr · g
    Momentum μ:    v ← μ·v - lr·g;   w ← w + v
    Nesterov:      v ← μ·v - lr·g;   w ← w + μ·v - lr·g

    PyTorch keeps b ← μ·b + g and steps w ← w - lr·b; with a constant lr this is the same
    trajectory (v = -lr·b). With a changing lr they differ slightly: Keras's velocity carries the
    old learning rates, PyTorch's buffer does not.
    """

    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, key, param, grad, lr):
        step = grad * param.dtype.type(lr)
        if not self.momentum:
            param -= step
            return
        velocity = self.slot("momentum", key, param)
        velocity *= param.dtype.type(self.momentum)
        velocity -= step
        if self.nesterov:
            param += velocity * param.dtype.type(self.momentum)
            param -= step
        else:
            param += velocity

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """v ← ρ·v + (1 - ρ)·g²;   w ← w - lr · g / sqrt(v + ε)

    Keras puts ε inside the square root (default 1e-7, ρ = 0.9); PyTorch uses g / (sqrt(v) + ε)
    with ε = 1e-8 and calls ρ ``alpha`` (default 0.99). With ε = 0 the two are identical.
    """

    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def update(self, key, param, grad, lr):
        dtype = param.dtype.type
        velocity = self.slot("velocity", key, param)
        velocity *= dtype(self.rho)
        velocity += dtype(1 - self.rho) * grad * grad
        param -= dtype(lr) * grad / np.sqrt(velocity + dtype(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    """m ← β₁·m + (1 - β₁)·g;   v ← β₂·v + (1 - β₂)·g²
    w ← w - α_t · m / (sqrt(v) + ε),   α_t = lr · sqrt(1 - β₂ᵗ) / (1 - β₁ᵗ)

    This is Keras's form: the bias corrections are folded into the step size, so ε is added to
    sqrt(v) rather than to sqrt(v̂) as in PyTorch (w ← w - lr · m̂ / (sqrt(v̂) + ε)). The two
    agree exactly when ε = 0 and differ by O(ε) otherwise. Keras's default ε is 1e-7,
    PyTorch's 1e-8.
    """

    slot_names = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)

    def update(self, key, param, grad, lr):
        dtype = param.dtype.type
        t = self.iterations + 1
        alpha = lr * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m = self.slot("momentum", key, param)
        v = self.slot("velocity", key, param)
        # Written with out= into one scratch array: the same arithmetic as the formulas above
        # without a temporary per operation (this loop is a third of an MLP's training step).
        scratch = self.scratch(key, param)
        np.multiply(grad, dtype(1 - self.beta_1), out=scratch)
        m *= dtype(self.beta_1)
        m += scratch
        np.multiply(grad, grad, out=scratch)
        scratch *= dtype(1 - self.beta_2)
        v *= dtype(self.beta_2)
        v += scratch
        np.sqrt(v, out=scratch)
        scratch += dtype(self.epsilon)
        np.divide(m, scratch, out=scratch)
        scratch *= dtype(alpha)
        param -= scratch

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay λ:  w ← w - lr·λ·w, then the Adam step.

    Unlike an L2 penalty, the decay does not pass through m and v, so it is not rescaled by
    the adaptive denominator (Loshchilov & Hutter). Same rule as PyTorch's AdamW; Keras's
    default λ is 0.004, PyTorch's 0.01.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.weight_decay = float(weight_decay)

    def update(self, key, param, grad, lr):
        param -= param * param.dtype.type(lr * self.weight_decay)
        super().update(key, param, grad, lr)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier):
    """An optimizer from a name ('adam'), a saved {"class_name", "config"} or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cls = OPTIMIZERS[identifier["class_name"].lower()]
        config = dict(identifier["config"])
        config["learning_rate"] = schedules.get(config["learning_rate"])
        return cls(**config)
    try:
        return OPTIMIZERS[identifier.lower()]()
    except (KeyError, AttributeError):
        raise HandnetError(
            f"unknown optimizer {identifier!r}; expected one of {sorted(OPTIMIZERS)}"
        ) from None


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
