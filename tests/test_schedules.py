"""Learning-rate schedules, step by step: hand-computed values, keras.optimizers.schedules and
(for the one-cycle policy, which Keras lacks) torch.optim.lr_scheduler.OneCycleLR."""

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
        schedules.OneCycle(0.01, 40, pct_start=0.2, div_factor=10, final_div_factor=100),
        schedules.Scaled(schedules.StepDecay(0.1, 5, 0.3), 0.25),
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


# -- one-cycle -------------------------------------------------------------------------------------
def test_one_cycle_by_hand():
    # T = 10, pct_start 0.3: the peak is at step 0.3·10 - 1 = 2; lr₀ = 1/25, lr_min = lr₀ / 10⁴.
    lr = schedules.OneCycle(1.0, total_steps=10)
    np.testing.assert_allclose(values(lr, [0, 1, 2]), [0.04, 0.52, 1.0], rtol=1e-15)
    # Down over steps 2..9: halfway (step 5.5) is the mean of 1 and lr_min, by symmetry.
    assert lr(5.5) == pytest.approx((1 + 4e-6) / 2, rel=1e-12)
    np.testing.assert_allclose(values(lr, [9, 10, 50]), [4e-6] * 3, rtol=1e-12)


def test_one_cycle_rises_to_the_peak_then_falls():
    lr = schedules.OneCycle(0.1, total_steps=100, pct_start=0.25)
    rates = values(lr, range(100))
    peak = int(np.argmax(rates))
    assert peak == 24 and rates[peak] == pytest.approx(0.1)
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1]))
    assert all(a > b for a, b in zip(rates[peak:], rates[peak + 1 :]))


def test_one_cycle_refuses_bad_settings():
    with pytest.raises(HandnetError, match="pct_start"):
        schedules.OneCycle(0.1, 100, pct_start=1.0)
    with pytest.raises(HandnetError, match="total_steps"):
        schedules.OneCycle(0.1, 0)


@pytest.mark.torch
@pytest.mark.parametrize(
    "arguments",
    [
        dict(total_steps=50),
        dict(total_steps=37, pct_start=0.1, div_factor=10.0, final_div_factor=100.0),
        dict(total_steps=20, pct_start=0.5),
        dict(total_steps=7, pct_start=0.0),
        dict(total_steps=1),
    ],
    ids=["default", "short-warmup", "half", "no-warmup", "one-step"],
)
def test_one_cycle_matches_pytorch(torch, arguments):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.3, cycle_momentum=False, anneal_strategy="cos", **arguments
    )
    theirs = [optimizer.param_groups[0]["lr"]]
    for _ in range(arguments["total_steps"] - 1):
        optimizer.step()
        scheduler.step()
        theirs.append(optimizer.param_groups[0]["lr"])
    ours = values(schedules.OneCycle(0.3, **arguments), range(arguments["total_steps"]))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_the_onecycle_recipe_schedule():
    from handnet.zoo import recipes

    optimizer = recipes.make_optimizer("adam", 0.01, "onecycle", total_steps=100)
    rates = values(optimizer.schedule, range(100))
    assert rates[0] == pytest.approx(0.01 / 25) and int(np.argmax(rates)) == 29
    assert max(rates) == pytest.approx(0.01) and rates[-1] == pytest.approx(0.01 / 25e4)
    warm = recipes.make_optimizer("sgd", 0.1, "onecycle", total_steps=100, warmup_steps=10)
    assert int(np.argmax(values(warm.schedule, range(100)))) == 9


# -- scaled (what ReduceLROnPlateau wraps a schedule in) ------------------------------------------
def test_scaled_multiplies_another_schedule_and_round_trips():
    inner = schedules.CosineDecay(0.1, decay_steps=10)
    scaled = schedules.Scaled(inner, 0.5)
    halved = [0.5 * rate for rate in values(inner, range(12))]
    np.testing.assert_allclose(values(scaled, range(12)), halved)
    clone = schedules.get(schedules.serialize(scaled))
    assert isinstance(clone.schedule, schedules.CosineDecay)
    assert values(clone, range(12)) == values(scaled, range(12))
