"""Learning-rate schedules: ``schedule(step) -> learning rate``, evaluated at every optimizer step.

``step`` counts optimizer updates from 0 (Keras's ``optimizer.iterations``), not epochs.
The definitions follow ``keras.optimizers.schedules``.
"""

import math

from .errors import HandnetError


class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(vars(self))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(LearningRateSchedule):
    """lr(step) = learning_rate."""

    def __init__(self, learning_rate):
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        return self.learning_rate


class StepDecay(LearningRateSchedule):
    """lr(step) = initial · γ^⌊step / step_size⌋  — drop by γ every step_size steps."""

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def __call__(self, step):
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)


class ExponentialDecay(LearningRateSchedule):
    """lr(step) = initial · rate^(step / decay_steps); the exponent is floored when staircase."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate**exponent


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up, then half a cosine down to alpha · peak (Keras 3's CosineDecay).

    step < warmup_steps:  lr = initial + (warmup_target - initial) · step / warmup_steps
    afterwards:           f = min(step - warmup_steps, decay_steps) / decay_steps
                          lr = peak · ((1 - alpha) · ½(1 + cos πf) + alpha)
    where peak = warmup_target if given, else initial. Without a warmup_target there is no
    warm-up (warmup_steps is ignored), as in Keras.
    """

    def __init__(
        self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0
    ):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        if self.warmup_target is None:
            peak, warmup_steps = self.initial_learning_rate, 0
        else:
            peak, warmup_steps = self.warmup_target, self.warmup_steps
        if step < warmup_steps:
            rise = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + rise * step / warmup_steps
        fraction = min(step - warmup_steps, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * fraction))
        return peak * ((1 - self.alpha) * cosine + self.alpha)


class OneCycle(LearningRateSchedule):
    """Smith's one-cycle policy, as PyTorch's OneCycleLR (cosine annealing, two phases) sets the
    learning rate; momentum is not cycled.

    With T = total_steps, peak step p = pct_start · T - 1, lr₀ = max_learning_rate / div_factor
    and lr_min = lr₀ / final_div_factor (PyTorch divides the *initial* rate, not the peak):
        step ≤ p:  half a cosine up from lr₀ to max_learning_rate,  f = step / p
        step > p:  half a cosine down to lr_min,                    f = (step - p) / (T - 1 - p)
        cosine(start, end, f) = end + (start - end) · ½(1 + cos πf)
    and lr_min from step T - 1 on. The low start lets Adam's moment estimates and BatchNorm's
    statistics settle before the large steps; the long fall to a tiny rate settles the weights.
    """

    def __init__(
        self, max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4
    ):
        if not 0 <= pct_start < 1:
            raise HandnetError(f"OneCycle pct_start must be in [0, 1), got {pct_start}")
        if int(total_steps) < 1 or not div_factor > 0 or not final_div_factor > 0:
            raise HandnetError(
                "OneCycle needs total_steps ≥ 1 and positive div_factor and final_div_factor, "
                f"got {total_steps}, {div_factor} and {final_div_factor}"
            )
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step):
        initial = self.max_learning_rate / self.div_factor
        peak_step = self.pct_start * self.total_steps - 1
        if step <= peak_step:  # (a peak at step 0 leaves no rise: fraction 1)
            start, end = initial, self.max_learning_rate
            fraction = step / peak_step if peak_step > 0 else 1.0
        else:
            start, end = self.max_learning_rate, initial / self.final_div_factor
            fraction = min((step - peak_step) / (self.total_steps - 1 - peak_step), 1.0)
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * fraction))


class Scaled(LearningRateSchedule):
    """lr(step) = multiplier · schedule(step): another schedule, scaled.

    ReduceLROnPlateau uses it to cut the learning rate of an optimizer that follows a schedule:
    the schedule keeps its shape (its warm-up, its decay), only lower.
    """

    def __init__(self, schedule, multiplier):
        self.schedule = get(schedule)
        self.multiplier = float(multiplier)

    def __call__(self, step):
        return self.multiplier * self.schedule(step)

    def get_config(self):
        return {"schedule": serialize(self.schedule), "multiplier": self.multiplier}

    def __repr__(self):
        return f"Scaled({self.schedule!r}, multiplier={self.multiplier!r})"


SCHEDULES = {
    cls.__name__: cls
    for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay, OneCycle, Scaled)
}


def get(identifier):
    """A schedule from a number (constant), a schedule object or {"class_name", "config"}."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, (int, float)):
        return Constant(identifier)
    if isinstance(identifier, dict) and identifier.get("class_name") in SCHEDULES:
        return SCHEDULES[identifier["class_name"]](**identifier["config"])
    raise HandnetError(
        f"unknown learning-rate schedule {identifier!r}; "
        f"expected a number or one of {sorted(SCHEDULES)}"
    )


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
