"""Optimizers: hand-computed steps, PyTorch and Keras as oracles, clipping, state.

Oracle runs share one small least-squares problem L(W, b) = mean((X W + b - Y)²): PyTorch
computes every gradient at its own weights and takes its step; handnet is fed the very same
gradients. Starting from the same weights, the two trajectories must agree at every step.
"""

import numpy as np
import pytest

from handnet import optimizers, schedules
from handnet.errors import HandnetError

STEPS = 12
ORACLE = dict(rtol=1e-9, atol=1e-12)  # float64 both sides; the brief's bar is 1e-6


def least_squares(target_scale=2.0):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 2)) * target_scale
    w0 = rng.standard_normal((3, 2))
    b0 = rng.standard_normal(2)
    return x, y, w0, b0


def step_once(optimizer, w, g):
    optimizer.apply([("w", w, np.asarray(g, dtype=w.dtype))])


# -- hand-computed steps ---------------------------------------------------------------------
def test_sgd_plain_step():
    w = np.array([1.0])
    step_once(optimizers.SGD(0.1), w, [0.5])
    np.testing.assert_allclose(w, [0.95], rtol=1e-15)


def test_sgd_momentum_two_steps():
    # v₁ = -0.1, w₁ = 0.9;  v₂ = 0.9·(-0.1) - 0.1 = -0.19, w₂ = 0.71.
    w, opt = np.array([1.0]), optimizers.SGD(0.1, momentum=0.9)
    step_once(opt, w, [1.0])
    np.testing.assert_allclose(w, [0.9], rtol=1e-15)
    step_once(opt, w, [1.0])
    np.testing.assert_allclose(w, [0.71], rtol=1e-15)


def test_sgd_nesterov_two_steps():
    # w ← w + μ v - lr g:  w₁ = 1 - 0.09 - 0.1 = 0.81;  w₂ = 0.81 + 0.9·(-0.19) - 0.1 = 0.539.
    w, opt = np.array([1.0]), optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    step_once(opt, w, [1.0])
    np.testing.assert_allclose(w, [0.81], rtol=1e-15)
    step_once(opt, w, [1.0])
    np.testing.assert_allclose(w, [0.539], rtol=1e-15)


def test_rmsprop_first_step():
    # v = (1 - 0.9)·2² = 0.4;  w = 1 - 0.01·2/sqrt(0.4 + ε)
    w, opt = np.array([1.0]), optimizers.RMSprop(0.01, rho=0.9, epsilon=1e-7)
    step_once(opt, w, [2.0])
    np.testing.assert_allclose(w, [1 - 0.02 / np.sqrt(0.4 + 1e-7)], rtol=1e-15)


def test_adam_first_steps_move_by_the_learning_rate():
    # With ε = 0 and a constant g, m̂ = g and v̂ = g², so each step is lr·sign(g).
    w, opt = np.array([1.0, 1.0]), optimizers.Adam(0.1, epsilon=0.0)
    step_once(opt, w, [2.0, -0.001])
    np.testing.assert_allclose(w, [0.9, 1.1], rtol=1e-14)
    step_once(opt, w, [2.0, -0.001])
    np.testing.assert_allclose(w, [0.8, 1.2], rtol=1e-14)


def test_adamw_decays_before_the_adam_step():
    # w ← w - lr·λ·w = 1 - 0.1·0.1 = 0.99, then the Adam step of lr = 0.1.
    w, opt = np.array([1.0]), optimizers.AdamW(0.1, weight_decay=0.1, epsilon=0.0)
    step_once(opt, w, [3.0])
    np.testing.assert_allclose(w, [0.89], rtol=1e-14)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_float32_parameters_stay_float32_in_place(name):
    w = np.ones(4, dtype=np.float32)
    before = w
    opt = optimizers.get(name)
    for _ in range(3):
        step_once(opt, w, np.linspace(-1, 1, 4))
    assert w is before and w.dtype == np.float32 and opt.iterations == 3
    assert all(slot.dtype == np.float32 for table in opt.slots.values() for slot in table.values())


# -- PyTorch as the oracle -------------------------------------------------------------------------
def run_against_torch(
    torch,
    handnet_optimizer,
    make_torch_optimizer,
    clip_torch=None,
    target_scale=2.0,
    tolerance=ORACLE,
):
    x, y, w0, b0 = least_squares(target_scale)
    tx, ty = torch.tensor(x), torch.tensor(y)
    tw = torch.tensor(w0, requires_grad=True)
    tb = torch.tensor(b0, requires_grad=True)
    torch_optimizer = make_torch_optimizer([tw, tb])
    w, b = w0.copy(), b0.copy()
    for _ in range(STEPS):
        torch_optimizer.zero_grad()
        ((tx @ tw + tb - ty) ** 2).mean().backward()
        gw, gb = tw.grad.numpy().copy(), tb.grad.numpy().copy()
        if clip_torch is not None:
            clip_torch(tw, tb)
        torch_optimizer.step()
        handnet_optimizer.apply([("w", w, gw), ("b", b, gb)])
        np.testing.assert_allclose(w, tw.detach().numpy(), **tolerance)
        np.testing.assert_allclose(b, tb.detach().numpy(), **tolerance)
    assert not np.allclose(w, w0)  # the run really moved
    return w, b


@pytest.mark.torch
def test_sgd_vs_torch(torch):
    run_against_torch(torch, optimizers.SGD(0.05), lambda p: torch.optim.SGD(p, lr=0.05))


@pytest.mark.torch
def test_sgd_momentum_vs_torch(torch):
    run_against_torch(
        torch,
        optimizers.SGD(0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    )


@pytest.mark.torch
def test_sgd_nesterov_vs_torch(torch):
    run_against_torch(
        torch,
        optimizers.SGD(0.05, momentum=0.8, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    )


@pytest.mark.torch
def test_rmsprop_vs_torch_with_epsilon_zero(torch):
    # Keras: g / sqrt(v + ε);  PyTorch: g / (sqrt(v) + ε): the same rule only at ε = 0.
    run_against_torch(
        torch,
        optimizers.RMSprop(0.01, rho=0.8, epsilon=0.0),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.8, eps=0.0),
    )


@pytest.mark.torch
def test_adam_vs_torch_with_epsilon_zero(torch):
    run_against_torch(
        torch,
        optimizers.Adam(0.02, beta_1=0.8, beta_2=0.95, epsilon=0.0),
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.95), eps=0.0),
    )


@pytest.mark.torch
def test_adamw_vs_torch_with_epsilon_zero(torch):
    run_against_torch(
        torch,
        optimizers.AdamW(0.02, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=0.0),
        lambda p: torch.optim.AdamW(p, lr=0.02, betas=(0.8, 0.95), eps=0.0, weight_decay=0.1),
    )


# PyTorch's clip_grad_norm_ divides by (norm + 1e-6), Keras and handnet by the norm. Targets
# scaled so every gradient norm is in the hundreds shrink that to a relative ~1e-8 per step
# (measured: at most 3e-9 absolute after 12 steps), well inside the brief's 1e-6.
LARGE_GRADIENTS = 300.0
CLIP_ORACLE = dict(rtol=1e-7, atol=1e-8)  # weights are O(1)


@pytest.mark.torch
def test_clipnorm_clips_each_gradient_like_clip_grad_norm_per_tensor(torch):
    def clip_each(*params):
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], 0.5)

    run_against_torch(
        torch,
        optimizers.SGD(0.05, momentum=0.5, clipnorm=0.5),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5),
        clip_torch=clip_each,
        target_scale=LARGE_GRADIENTS,
        tolerance=CLIP_ORACLE,
    )


@pytest.mark.torch
def test_global_clipnorm_matches_clip_grad_norm(torch):
    run_against_torch(
        torch,
        optimizers.Adam(0.05, epsilon=0.0, global_clipnorm=0.7),
        lambda p: torch.optim.Adam(p, lr=0.05, eps=0.0),
        clip_torch=lambda *params: torch.nn.utils.clip_grad_norm_(params, 0.7),
        target_scale=LARGE_GRADIENTS,
        tolerance=CLIP_ORACLE,
    )


def test_clipping_scales_to_the_norm_and_leaves_the_callers_gradients_alone():
    g1, g2 = np.array([3.0, 4.0]), np.array([0.0, 12.0])  # norms 5 and 12, together 13
    w1, w2 = np.zeros(2), np.zeros(2)
    optimizers.SGD(1.0, clipnorm=1.0).apply([("a", w1, g1), ("b", w2, g2)])
    np.testing.assert_allclose(w1, [-0.6, -0.8])
    np.testing.assert_allclose(w2, [0.0, -1.0])
    w1, w2 = np.zeros(2), np.zeros(2)
    optimizers.SGD(1.0, global_clipnorm=2.6).apply([("a", w1, g1), ("b", w2, g2)])
    np.testing.assert_allclose(w1, [-0.6, -0.8])  # everything scaled by 2.6 / 13 = 0.2
    np.testing.assert_allclose(w2, [0.0, -2.4])
    np.testing.assert_array_equal(g1, [3, 4]), np.testing.assert_array_equal(g2, [0, 12])
    w = np.zeros(2)
    optimizers.SGD(1.0, clipnorm=10.0).apply([("a", w, g1)])  # under the limit: unchanged
    np.testing.assert_array_equal(w, [-3, -4])


def test_clipnorm_and_global_clipnorm_together_is_an_error():
    with pytest.raises(HandnetError, match="not both"):
        optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0)


# -- Keras's formulas with ε ≠ 0 -------------------------------------------------------------------
def keras_adam_reference(w, grads, lr, beta_1, beta_2, epsilon):
    """Keras 3's Adam, written out: bias corrections folded into the step, ε added to sqrt(v)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        w = w - alpha * m / (np.sqrt(v) + epsilon)
    return w


def torch_adam_reference(w, grads, lr, beta_1, beta_2, epsilon):
    """PyTorch's Adam: ε added to sqrt(v̂)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        w = w - lr * (m / (1 - beta_1**t)) / (np.sqrt(v / (1 - beta_2**t)) + epsilon)
    return w


def test_adam_follows_the_keras_formula_with_epsilon():
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) * 0.01 for _ in range(STEPS)]  # small g: ε matters
    settings = dict(lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-3)
    w = w0.copy()
    opt = optimizers.Adam(0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-3)
    for g in grads:
        step_once(opt, w, g)
    np.testing.assert_allclose(w, keras_adam_reference(w0, grads, **settings), rtol=1e-13)
    # The check can tell the two ε placements apart:
    assert np.abs(w - torch_adam_reference(w0, grads, **settings)).max() > 1e-6


def run_against_keras(keras, handnet_optimizer, keras_optimizer, steps=STEPS):
    rng = np.random.default_rng(11)
    w0 = rng.standard_normal(6)
    variable = keras.Variable(w0, dtype="float64")
    w = w0.copy()
    for _ in range(steps):
        g = rng.standard_normal(6) * 0.05
        keras_optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
        step_once(handnet_optimizer, w, g)
    # On the torch backend a variable's value is a torch tensor.
    np.testing.assert_allclose(w, variable.value.detach().cpu().numpy(), **ORACLE)


# Keras keeps the learning rate in a float32 variable and computes AdamW's decay factor
# 1 - λ·lr in float32: powers of two keep both exact, so the comparison stays at float64 precision.
LR = 2.0**-7
DECAY = 2.0**-3


@pytest.mark.keras
def test_adam_vs_keras_with_epsilon(keras):
    run_against_keras(
        keras,
        optimizers.Adam(LR, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
        keras.optimizers.Adam(LR, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
    )


@pytest.mark.keras
def test_adamw_vs_keras(keras):
    run_against_keras(
        keras,
        optimizers.AdamW(LR, weight_decay=DECAY, epsilon=1e-3),
        keras.optimizers.AdamW(LR, weight_decay=DECAY, epsilon=1e-3),
    )


@pytest.mark.keras
def test_rmsprop_vs_keras_with_epsilon(keras):
    run_against_keras(
        keras,
        optimizers.RMSprop(LR, rho=0.8, epsilon=1e-3),
        keras.optimizers.RMSprop(LR, rho=0.8, epsilon=1e-3),
    )


@pytest.mark.keras
def test_sgd_nesterov_vs_keras(keras):
    run_against_keras(
        keras,
        optimizers.SGD(LR, momentum=0.9, nesterov=True),
        keras.optimizers.SGD(LR, momentum=0.9, nesterov=True),
    )


# -- learning rate, state, lookup ------------------------------------------------------------------
def test_learning_rate_follows_the_schedule_step_by_step():
    opt = optimizers.SGD(schedules.StepDecay(1.0, step_size=2, gamma=0.5))
    w, seen = np.zeros(1), []
    for _ in range(5):
        seen.append(opt.learning_rate)
        before = w.copy()
        step_once(opt, w, [1.0])
        assert before - w == pytest.approx(seen[-1])
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt.learning_rate = 0.3
    assert opt.learning_rate == 0.3 and isinstance(opt.schedule, schedules.Constant)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_state_round_trip_resumes_identically(name):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3) for _ in range(6)]
    w = np.ones(3)
    opt = optimizers.get(name)
    for g in grads[:3]:
        step_once(opt, w, g)
    resumed = optimizers.get(optimizers.serialize(opt))
    resumed.set_state({k: v.copy() for k, v in opt.get_state().items()})
    assert resumed.iterations == 3
    w_resumed = w.copy()
    for g in grads[3:]:
        step_once(opt, w, g)
        step_once(resumed, w_resumed, g)
    np.testing.assert_array_equal(w_resumed, w)


def test_serialize_round_trips_settings_and_schedules():
    opt = optimizers.AdamW(
        schedules.CosineDecay(0.01, 100, alpha=0.1),
        weight_decay=0.02,
        beta_1=0.8,
        epsilon=1e-6,
        clipnorm=2.0,
    )
    clone = optimizers.get(optimizers.serialize(opt))
    assert type(clone) is optimizers.AdamW
    assert clone.get_config() == opt.get_config()
    assert clone.learning_rate == opt.learning_rate


def test_get_by_name_and_unknown_names():
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    assert isinstance(optimizers.get("sgd"), optimizers.SGD)
    with pytest.raises(HandnetError, match="unknown optimizer 'adagrad'"):
        optimizers.get("adagrad")
