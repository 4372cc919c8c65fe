"""Learning-rate schedules, step by step: hand-computed values and keras.optimizers.schedules."""

import math

import numpy as np
import pytest

from handnet import schedules
from handnet.errors import HandnetError


def values(schedule, steps):
    return [schedule(step) for step in steps]


def test_constant():
    assert values(schedules.Constant(0.3), [0, 1, 1000]) == [0.3, 0.3, 0.3]


def test_step_decay():
    lr = schedules.StepDecay(1.0, step_size=3, gamma=0.5)
    assert values(lr, range(8)) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_exponential_decay():
    lr = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    np.testing.assert_allclose(
        values(lr, [0, 5, 10, 20]), [0.1, 0.1 / math.sqrt(2), 0.05, 0.025], rtol=1e-15
    )
    stairs = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    np.testing.assert_allclose(
        values(stairs, [0, 5, 9, 10, 19, 20]), [0.1] * 3 + [0.05] * 2 + [0.025], rtol=1e-15
    )


def test_cosine_decay():
    lr = schedules.CosineDecay(1.0, decay_steps=10)
    np.testing.assert_allclose(values(lr, [0, 5, 10, 15]), [1, 0.5, 0, 0], atol=1e-15)
    floor = schedules.CosineDecay(1.0, decay_steps=10, alpha=0.1)
    # (1 - α)·½(1 + cos πf) + α:  f = ½ → 0.55;  f = 1 → α, and it stays there.
    np.testing.assert_allclose(values(floor, [0, 5, 10, 20]), [1, 0.55, 0.1, 0.1], rtol=1e-15)


def test_cosine_decay_with_linear_warmup():
    lr = schedules.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    np.testing.assert_allclose(values(lr, [0, 2, 4, 9, 14, 20]), [0, 0.5, 1, 0.5, 0, 0], atol=1e-15)


def test_cosine_decay_ignores_warmup_steps_without_a_warmup_target():
    # As Keras: no warmup_target, no warm-up; the decay starts at step 0.
    lr = schedules.CosineDecay(1.0, decay_steps=10, warmup_steps=4)
    np.testing.assert_allclose(values(lr, [0, 5, 10]), [1, 0.5, 0], atol=1e-15)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.Constant(0.5),
        schedules.StepDecay(0.1, 5, 0.3),
        schedules.ExponentialDecay(0.1, 7, 0.9, staircase=True),
        schedules.CosineDecay(0.001, 50, alpha=0.05, warmup_target=0.01, warmup_steps=5),
    ],
    ids=lambda s: type(s).__name__,
)
def test_serialize_round_trip(schedule):
    clone = schedules.get(schedules.serialize(schedule))
    assert type(clone) is type(schedule) and clone.get_config() == schedule.get_config()
    assert values(clone, range(60)) == values(schedule, range(60))


def test_get_numbers_and_unknown():
    assert schedules.get(0.01)(123) == 0.01
    with pytest.raises(HandnetError, match="unknown learning-rate schedule"):
        schedules.get("fast")


# -- Keras as the oracle ---------------------------------------------------------------------------
# Keras evaluates schedules in float32: agreement to float32 precision is all there is to ask.
FLOAT32 = dict(rtol=1e-6, atol=1e-9)


def keras_values(keras, schedule, steps):
    return [float(schedule(step)) for step in steps]  # a 0-d torch tensor on this backend


@pytest.mark.keras
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_vs_keras(keras, staircase):
    steps = range(0, 60)
    ours = schedules.ExponentialDecay(0.05, decay_steps=7, decay_rate=0.8, staircase=staircase)
    theirs = keras.optimizers.schedules.ExponentialDecay(
        0.05, decay_steps=7, decay_rate=0.8, staircase=staircase
    )
    np.testing.assert_allclose(values(ours, steps), keras_values(keras, theirs, steps), **FLOAT32)


@pytest.mark.keras
@pytest.mark.parametrize(
    "arguments",
    [
        dict(initial_learning_rate=0.1, decay_steps=20),
        dict(initial_learning_rate=0.1, decay_steps=20, alpha=0.2),
        dict(
            initial_learning_rate=0.001,
            decay_steps=20,
            alpha=0.1,
            warmup_target=0.01,
            warmup_steps=8,
        ),
        dict(initial_learning_rate=0.1, decay_steps=20, warmup_steps=8),  # no target: no warm-up
    ],
    ids=["plain", "alpha", "warmup", "warmup-steps-without-target"],
)
def test_cosine_decay_vs_keras(keras, arguments):
    steps = range(0, 40)
    ours = schedules.CosineDecay(**arguments)
    theirs = keras.optimizers.schedules.CosineDecay(**arguments)
    np.testing.assert_allclose(values(ours, steps), keras_values(keras, theirs, steps), **FLOAT32)
