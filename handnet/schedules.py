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


SCHEDULES = {cls.__name__: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay)}


def get(identifier):
    """A schedule from a number (constant), a schedule object or {"class_name", "config"}."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, (int, float)):
        return Constant(identifier)
    if isinstance(identifier, dict) and identifier.get("class_name") in SCHEDULES:
        return SCHEDULES[identifier["class_name"]](**identifier["config"])
    raise HandnetError(
        f"unknown learning-rate schedule {identifier!r}; expected a number or one of {sorted(SCHEDULES)}"
    )


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
