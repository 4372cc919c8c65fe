"""The buffered LSTM and GRU step loops (handnet.fast.recurrent) against the specification
(handnet.ops.recurrent_spec): random sizes, masks (none, random, whole sequences, leading
steps), with and without the biases (the fast path adds b step by step), float64 and
float32, forward and backward; and the arrays a layer reuses from batch to batch (its
workspace), never shared with a copy.

The training loops take every product and sum in the specification's order (run with
σ = SigmoidThroughTanh, the form they compute), so their results must agree to the last bit
(which is what keeps tests/golden's twelve steps where they were); the upstream gradient, a
strided view as the layer passes it, is left untouched. The inference loops take their sums
in other products and lay the step out unit-major: they must stay within a bound derived
from the rounding of each operation and propagated through the steps' Jacobians
(lstm_inference_bound, gru_inference_bound), and that bound must catch a swapped gate or a
wrong σ. The LSTM's unit-major training loops (lstm_train_forward, lstm_train_backward):
the forward is lstm_inference's step, bit for bit; the backward sums its products in other
orders, within lstm_backward_bound, which catches a swapped gate too."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handnet import activations
from handnet.fast import recurrent as fast
from handnet.layers import GRU, LSTM, Bidirectional, SimpleRNN
from handnet.ops import recurrent_spec as spec

SIGMOID, TANH = activations.get("sigmoid"), activations.get("tanh")
SIGMOID_TANH = spec.SigmoidThroughTanh()  # the σ of handnet.fast.recurrent's loops


def random_skip(rng, kind, timesteps, batch):
    """(T, N, 1) booleans, True = masked step, as Recurrent.skipped_steps gives them."""
    if kind == "none":
        return None
    if kind == "random":
        skip = rng.random((timesteps, batch)) < 0.4
    elif kind == "whole_sequence":
        skip = np.zeros((timesteps, batch), dtype=bool)
        skip[:, 0] = True
    else:  # "leading": left padding, as Keras pads sequences by default
        lengths = rng.integers(0, timesteps + 1, batch)
        skip = np.arange(timesteps)[:, None] < (timesteps - lengths)[None, :]
    return skip[..., None]


def assert_same(fast_arrays, spec_arrays):
    for key in spec_arrays:
        found = fast_arrays[key]
        if key == "gates" and found.ndim == 4:  # fast keeps them gate-major (T, G, N, U)
            found = found.transpose(0, 2, 1, 3).reshape(spec_arrays[key].shape)
        np.testing.assert_array_equal(found, spec_arrays[key], err_msg=key)


cases = dict(
    batch=st.integers(1, 5),
    timesteps=st.integers(1, 6),
    units=st.integers(1, 5),
    mask_kind=st.sampled_from(["none", "random", "whole_sequence", "leading"]),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=60, deadline=None)
@given(**cases, with_bias=st.booleans())
def test_lstm_fast_equals_spec_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, with_bias
):
    rng = np.random.default_rng(seed)
    products = (rng.standard_normal((timesteps, batch, 4 * units)) * 2).astype(dtype)  # x_t W
    bias = rng.standard_normal(4 * units).astype(dtype) if with_bias else None
    z = products + bias if with_bias else products.copy()  # the specification's input: + b
    recurrent_kernel = rng.normal(0, 0.7, (units, 4 * units)).astype(dtype)
    skip = random_skip(rng, mask_kind, timesteps, batch)
    cache_spec = spec.lstm_forward(z, recurrent_kernel, skip, SIGMOID_TANH, TANH)
    cache_fast = fast.lstm_forward(
        products.copy(), recurrent_kernel, skip, SIGMOID, TANH, input_bias=bias
    )
    assert_same(cache_fast, cache_spec)

    dy = rng.standard_normal((batch, timesteps, units)).astype(dtype)
    saved = dy.copy()
    from_above = dy.transpose(1, 0, 2)  # as Recurrent.upstream_per_step hands it over
    dz_spec = spec.lstm_backward(
        from_above, recurrent_kernel, cache_spec, skip, SIGMOID_TANH, TANH
    )
    dz_fast = fast.lstm_backward(from_above, recurrent_kernel, cache_fast, skip, SIGMOID, TANH)
    np.testing.assert_array_equal(dy, saved)
    np.testing.assert_array_equal(dz_fast, dz_spec)
    if skip is not None:  # a masked step gives nothing to its gates
        assert not dz_fast[np.broadcast_to(skip, dz_fast.shape)].any()


@settings(max_examples=60, deadline=None)
@given(**cases, with_bias=st.booleans())
def test_gru_fast_equals_spec_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, with_bias
):
    rng = np.random.default_rng(seed)
    products = (rng.standard_normal((timesteps, batch, 3 * units)) * 2).astype(dtype)  # x_t W
    recurrent_kernel = rng.normal(0, 0.7, (units, 3 * units)).astype(dtype)
    bias, input_bias = (
        rng.standard_normal((2, 3 * units)).astype(dtype) if with_bias else (None, None)
    )
    pre = products + input_bias if with_bias else products.copy()  # m_t = x_t W + b_in
    skip = random_skip(rng, mask_kind, timesteps, batch)
    cache_spec = spec.gru_forward(pre, recurrent_kernel, bias, skip, SIGMOID_TANH, TANH)
    cache_fast = fast.gru_forward(
        products.copy(), recurrent_kernel, bias, skip, SIGMOID, TANH, input_bias=input_bias
    )
    assert_same(cache_fast, cache_spec)

    dy = rng.standard_normal((batch, timesteps, units)).astype(dtype)
    saved = dy.copy()
    from_above = dy.transpose(1, 0, 2)
    grads_spec = spec.gru_backward(
        from_above, recurrent_kernel, cache_spec, skip, SIGMOID_TANH, TANH
    )
    grads_fast = fast.gru_backward(from_above, recurrent_kernel, cache_fast, skip, SIGMOID, TANH)
    np.testing.assert_array_equal(dy, saved)
    for ours, theirs in zip(grads_fast, grads_spec):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_through_tanh_is_the_sigmoid_within_two_roundoffs(dtype):
    """σ(z) = 1/2 + tanh(z/2)/2: the spec's SigmoidThroughTanh to the last bit, activations'
    Sigmoid within 2u (u = unit roundoff) everywhere, no overflow, 0 and 1 reached exactly
    at the ends and σ(0) = 1/2."""
    z = np.array([-1e4, -100, -88.7, -20, -1, -1e-8, -0.0, 0, 1e-8, 1, 20, 88.7, 100, 1e4])
    z = np.concatenate([z, np.random.default_rng(0).standard_normal(2000) * 10]).astype(dtype)
    out = np.empty_like(z)
    with np.errstate(over="raise", invalid="raise", under="ignore"):
        fast.sigmoid_tanh_into(z, out)
    np.testing.assert_array_equal(out, SIGMOID_TANH.forward(z))
    u = np.finfo(dtype).eps / 2
    assert np.abs(out.astype(np.float64) - SIGMOID.forward(z)).max() <= 2 * u
    assert out[0] == 0 and out[13] == 1 and out[7] == 0.5
    assert ((0 <= out) & (out <= 1)).all()
    twice = z.copy()
    np.testing.assert_array_equal(fast.sigmoid_tanh_into(twice, twice), out)  # out may be z


def test_other_activations_run_the_specification():
    softsign, hard_sigmoid = activations.get("softsign"), activations.get("hard_sigmoid")
    assert not fast.fused_kernels_apply(hard_sigmoid, softsign)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 2, 8))
    recurrent_kernel = rng.standard_normal((2, 8))
    cache_spec = spec.lstm_forward(z.copy(), recurrent_kernel, None, hard_sigmoid, softsign)
    cache_fast = fast.lstm_forward(z.copy(), recurrent_kernel, None, hard_sigmoid, softsign)
    assert_same(cache_fast, cache_spec)


@pytest.mark.parametrize("layer_class", [LSTM, GRU, SimpleRNN], ids=lambda c: c.__name__)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_a_reused_workspace_gives_what_fresh_arrays_give(layer_class, return_sequences):
    """The layer keeps its arrays from batch to batch: a batch after others (masked, another
    size) computes exactly what a layer that never ran computes."""
    rng = np.random.default_rng(3)
    used = layer_class(3, return_sequences=return_sequences)
    used.build((5, 2), rng)
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    for batch, mask in ((4, rng.random((4, 5)) < 0.7), (6, None), (4, None)):
        earlier = rng.standard_normal((batch, 5, 2)).astype(np.float32)
        y = used.forward(earlier, training=True, mask=mask)
        used.backward(np.ones_like(y))
    fresh = copy.deepcopy(used)
    fresh._workspace = None
    for layer in (used, fresh):
        y = layer.forward(x, training=True)
        dx = layer.backward(np.cos(y))
        layer.results = (y, dx, {key: grad.copy() for key, grad in layer.grads.items()})
    np.testing.assert_array_equal(used.results[0], fresh.results[0])
    np.testing.assert_array_equal(used.results[1], fresh.results[1])
    for key in used.grads:
        np.testing.assert_array_equal(used.results[2][key], fresh.results[2][key])


def test_copies_and_replicas_get_their_own_workspace():
    layer = LSTM(3)
    layer.build((4, 2), np.random.default_rng(0))
    layer.forward(np.zeros((2, 4, 2), dtype=np.float32))
    for twin in (copy.copy(layer), layer.replica(), copy.copy(Bidirectional(layer)).forward_layer):
        assert twin.workspace() is not layer.workspace()


# -- the inference loops (no cache): the LSTM's and GRU's within derived rounding bounds --------


inference_cases = dict(
    cases,
    batch=st.sampled_from([1, 2, 5, 40]),  # 40 rows of 4U or 2U ≥ 128 columns: σ's large form
    units=st.sampled_from([1, 3, 32]),
    every_state=st.booleans(),
)


def lstm_inference_bound(x, kernel, recurrent_kernel, bias, skip, sigma=SIGMOID_TANH):
    """The specification's states for x (N, T, D) and a bound on how far lstm_inference's may
    be from them, element by element: both (T + 1, N, U). ``sigma``: the specification's σ,
    SigmoidThroughTanh (the training loop's, by default) or activations.Sigmoid's exponential
    form; the bound holds for either.

    The two compute the same equations and differ by rounding only: lstm_inference takes
    z_t = [h_{t-1}; x_t; 1] · [R; W; b] in one product (the specification: x_t @ W + b, then
    + h_{t-1} @ R) and σ(z) = 1/2 + tanh(z/2)/2 (the specification: 1/(1 + e^{-z})). With u
    the unit roundoff (2⁻²⁴ float32, 2⁻⁵³ float64), K = U + D + 1 terms and γ = K·u/(1 - K·u),
    one step from the same (h_{t-1}, c_{t-1}) gives outputs that differ by at most L_t:

      z:     each side's sum within γ·S of the exact one (any order of summation, FMA or
             not), S = |x_t| @ |W| + |b| + |h_{t-1}| @ |R|:  E_z = 2γ·S
      gates: σ' ≤ 1/4 and tanh' ≤ 1, and each side evaluates a gate within F = 16u of the
             exact function of its input (NumPy's exp and tanh within 4 ulp ≤ 8u relative,
             values ≤ 1, plus the form's two or three roundings):
             E_i, E_f, E_o = E_z/4 + 2F,   E_g = E_z + 2F
      cell:  c_t = f·c_{t-1} + i·g:  L_c = |c_{t-1}|·E_f + i·E_g + |g|·E_i
             + 6u·(f·|c_{t-1}| + i·|g|)   (three roundings a side)
      state: h_t = o·tanh(c_t):  L_h = o·(L_c + 2F) + |tanh(c_t)|·E_o + 2u·|h_t|

    An error δ_{t-1} in the state (h, c) reaches step t's outputs through the step's Jacobian
    J_t (2U × 2U for each sequence, from the equations in handnet.layers.lstm; the identity at
    a masked step, where L_t = 0), so to first order (products of two errors, O(u²), left out)

        |δ_t| ≤ Σ_{s ≤ t} |J_t ⋯ J_{s+1}| · L_s

    — the absolute value of the product, not the product of absolute values (|R| alone would
    grow the bound by its row sums every step, to 1e14 over 28 steps, while the errors shrink
    through the gates). It is a worst case (γ grows as K, the errors seen as √K or less): on
    the shapes here 300-5000 times the largest error seen, up to ~1e-4 in float32 and ~1e-13
    in float64 over 6 steps (4e-3 and 7e-12 over the lstm's 28 steps of 128 units), while a
    swapped gate or a wrong σ moves the states by 1e-2 or more
    (test_the_bound_catches_a_wrong_gate)."""
    dtype = np.result_type(x.dtype, kernel.dtype)
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    x_steps = np.ascontiguousarray(x.transpose(1, 0, 2))
    z = (x_steps.reshape(-1, features) @ kernel).reshape(timesteps, batch, -1)  # as the layer
    if bias is not None:
        z += bias
    cache = spec.lstm_forward(z.astype(dtype), recurrent_kernel, skip, sigma, TANH)
    u = np.finfo(dtype).eps / 2
    depth = units + features + 1
    gamma, slack = depth * u / (1 - depth * u), 16 * u
    wide = np.float64
    gates, cells = cache["gates"].astype(wide), cache["cells"].astype(wide)
    states, tanh_cells = cache["states"].astype(wide), cache["tanh_cells"].astype(wide)
    abs_x, abs_w = np.abs(x_steps.astype(wide)), np.abs(kernel.astype(wide))
    recurrent = recurrent_kernel.astype(wide)
    abs_r = np.abs(recurrent)
    abs_b = 0 if bias is None else np.abs(bias.astype(wide))
    r_i, r_f, r_c, r_o = (block.T for block in spec.gates_of(recurrent, units, 4))  # (U, U)
    identity = np.broadcast_to(np.eye(2 * units), (batch, 2 * units, 2 * units))
    local, jacobians = [], []
    for t in range(timesteps):
        e_i, e_f, e_g, e_o = spec.gates_of(
            2 * gamma * (abs_x[t] @ abs_w + abs_b + np.abs(states[t]) @ abs_r), units, 4
        )
        e_i, e_f, e_o = (e / 4 + 2 * slack for e in (e_i, e_f, e_o))
        e_g = e_g + 2 * slack
        i, f, g, o = spec.gates_of(gates[t], units, 4)
        c_before, tanh_c = cells[t], tanh_cells[t]
        local_c = (np.abs(c_before) * e_f + i * e_g + np.abs(g) * e_i
                   + 6 * u * (f * np.abs(c_before) + i * np.abs(g)))
        local_h = o * (local_c + 2 * slack) + np.abs(tanh_c) * e_o + 2 * u * np.abs(states[t + 1])
        # J_t = ∂(h_t, c_t)/∂(h_{t-1}, c_{t-1}), one (2U, 2U) matrix per sequence
        dc_dh = ((c_before * f * (1 - f))[:, :, None] * r_f + (g * i * (1 - i))[:, :, None] * r_i
                 + (i * (1 - g * g))[:, :, None] * r_c)
        slope = o * (1 - tanh_c * tanh_c)
        dh_dh = (tanh_c * o * (1 - o))[:, :, None] * r_o + slope[:, :, None] * dc_dh
        jacobian = np.block([
            [dh_dh, (slope * f)[:, :, None] * np.eye(units)],
            [dc_dh, f[:, :, None] * np.eye(units)],
        ])
        step_local = np.concatenate([local_h, local_c], axis=1)
        if skip is not None:
            masked = skip[t][:, 0]
            jacobian[masked], step_local[masked] = identity[masked], 0
        local.append(step_local)
        jacobians.append(jacobian)
    return cache["states"], propagated(local, jacobians)[..., :units]


def propagated(local, jacobians):
    """Σ_{s ≤ t} |J_t ⋯ J_{s+1}| L_s for every t, from the local bounds L_s (N, S) and the
    steps' Jacobians J_s (N, S, S): (T + 1, N, S), 0 at t = 0."""
    batch, size = local[0].shape
    bound = [np.zeros((batch, size))]
    for t in range(len(local)):
        product, total = np.broadcast_to(np.eye(size), (batch, size, size)), local[t].copy()
        for s in reversed(range(t)):
            product = product @ jacobians[s + 1]
            total += np.einsum("nij,nj->ni", np.abs(product), local[s])
        bound.append(total)
    return np.stack(bound)


def gru_inference_bound(x, kernel, recurrent_kernel, bias, skip, sigma=SIGMOID_TANH):
    """The specification's GRU states for x (N, T, D) and a bound on how far gru_inference's
    may be from them, element by element: both (T + 1, N, U); bias [b_in; b_rec] or None.

    gru_inference takes m_t = [W; b_in]ᵀ [x_t; 1] and n_t = [b_rec; R]ᵀ [1; h_{t-1}] as one
    product each (the specification: x_t @ W, + b_in, and h_{t-1} @ R, + b_rec) and σ through
    tanh. As in lstm_inference_bound (u, F = 16u, γ_K = K·u/(1 - K·u)), one step from the
    same h_{t-1} gives outputs that differ by at most L_t:

      m, n:  E_m = 2γ_{D+1}·(|x_t| @ |W| + |b_in|),  E_n = 2γ_{U+1}·(|h_{t-1}| @ |R| + |b_rec|)
      z, r:  a = m + n (one rounding a side): E_a = E_m + E_n + 2u·|a|;  E_z, E_r = E_a/4 + 2F
      ĥ:     a_h = m_h + r·n_h: E_ah = E_m,h + r·E_n,h + |n_h|·E_r + 4u·(r·|n_h| + |a_h|);
             E_ĥ = E_ah + 2F
      h_t:   z·h_{t-1} + (1 - z)·ĥ: L = |h_{t-1}|·E_z + |ĥ|·(E_z + 2u) + (1 - z)·E_ĥ
             + 6u·(z·|h_{t-1}| + (1 - z)·|ĥ|)

    and the errors propagate through the step's Jacobian (U × U a sequence)
        ∂h_t/∂h_{t-1} = diag(z) + diag((h_{t-1} - ĥ)·z(1 - z)) R_zᵀ
                        + diag((1 - z)(1 - ĥ²)) (diag(n_h·r(1 - r)) R_rᵀ + diag(r) R_hᵀ)
    as in lstm_inference_bound (the identity, and L = 0, at a masked step)."""
    dtype = np.result_type(x.dtype, kernel.dtype)
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    input_bias, recurrent_bias = (None, None) if bias is None else bias
    x_steps = np.ascontiguousarray(x.transpose(1, 0, 2))
    pre = (x_steps.reshape(-1, features) @ kernel).reshape(timesteps, batch, -1)  # as the layer
    if input_bias is not None:
        pre += input_bias
    cache = spec.gru_forward(pre.astype(dtype), recurrent_kernel, recurrent_bias, skip, sigma,
                             TANH)
    u = np.finfo(dtype).eps / 2
    slack = 16 * u
    gamma_m, gamma_n = ((k * u / (1 - k * u)) for k in (features + 1, units + 1))
    wide = np.float64
    gates, states = cache["gates"].astype(wide), cache["states"].astype(wide)
    sums, recurrent = cache["pre"].astype(wide), cache["recurrent"].astype(wide)
    abs_x, abs_w = np.abs(x_steps.astype(wide)), np.abs(kernel.astype(wide))
    weights = recurrent_kernel.astype(wide)
    abs_r = np.abs(weights)
    abs_bi = 0 if input_bias is None else np.abs(input_bias.astype(wide))
    abs_br = 0 if recurrent_bias is None else np.abs(recurrent_bias.astype(wide))
    r_z, r_r, r_h = (block.T for block in spec.gates_of(weights, units, 3))
    identity = np.broadcast_to(np.eye(units), (batch, units, units))
    local, jacobians = [], []
    for t in range(timesteps):
        e_m = 2 * gamma_m * (abs_x[t] @ abs_w + abs_bi)
        e_n = 2 * gamma_n * (np.abs(states[t]) @ abs_r + abs_br)
        e_a = e_m + e_n + 2 * u * np.abs(sums[t])
        e_z, e_r = (e / 4 + 2 * slack for e in spec.gates_of(e_a, units, 3)[:2])
        z, r, candidate = spec.gates_of(gates[t], units, 3)
        n_h, a_h = recurrent[t][:, 2 * units :], sums[t][:, 2 * units :]
        e_candidate = (e_m[:, 2 * units :] + r * e_n[:, 2 * units :] + np.abs(n_h) * e_r
                       + 4 * u * (r * np.abs(n_h) + np.abs(a_h)) + 2 * slack)
        h = states[t]
        step_local = (np.abs(h) * e_z + np.abs(candidate) * (e_z + 2 * u) + (1 - z) * e_candidate
                      + 6 * u * (z * np.abs(h) + (1 - z) * np.abs(candidate)))
        slope = (1 - z) * (1 - candidate * candidate)
        jacobian = (z[:, :, None] * np.eye(units)
                    + ((h - candidate) * z * (1 - z))[:, :, None] * r_z
                    + slope[:, :, None] * ((n_h * r * (1 - r))[:, :, None] * r_r
                                           + r[:, :, None] * r_h))
        if skip is not None:
            masked = skip[t][:, 0]
            jacobian[masked], step_local[masked] = identity[masked], 0
        local.append(step_local)
        jacobians.append(jacobian)
    return cache["states"], propagated(local, jacobians)


def assert_within(found, expected, bound, what="states"):
    error = np.abs(found.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert (error <= bound).all(), (
        f"{what}: |fast - spec| = {error[worst]:.3g} at {worst} exceeds the bound "
        f"{bound[worst]:.3g} (max error {error.max():.3g}, max bound {bound.max():.3g})"
    )


def lstm_case(rng, batch, timesteps, features, units, dtype, with_bias):
    x = rng.standard_normal((batch, timesteps, features)).astype(dtype)
    kernel = rng.normal(0, 1 / np.sqrt(features), (features, 4 * units)).astype(dtype)
    # the scale of an orthogonal (or a trained) R: |R|'s rows sum to ~0.8 √U
    recurrent_kernel = rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)).astype(dtype)
    bias = rng.standard_normal(4 * units).astype(dtype) if with_bias else None
    return x, kernel, recurrent_kernel, bias


@settings(max_examples=80, deadline=None)
@given(
    **inference_cases, features=st.integers(1, 6), with_bias=st.booleans(),
    sigma=st.sampled_from([SIGMOID_TANH, SIGMOID]),
)
def test_lstm_inference_is_the_spec_within_its_rounding_bound(
    batch, timesteps, units, mask_kind, dtype, seed, every_state, features, with_bias, sigma
):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias = lstm_case(
        rng, batch, timesteps, features, units, dtype, with_bias
    )
    skip = random_skip(rng, mask_kind, timesteps, batch)
    saved = x.copy()
    last, states = fast.lstm_inference(
        x, kernel, recurrent_kernel, bias, skip, every_state=every_state
    )
    np.testing.assert_array_equal(x, saved)  # read only
    assert last.dtype == np.dtype(dtype)
    expected, bound = lstm_inference_bound(x, kernel, recurrent_kernel, bias, skip, sigma)
    assert bound.max() < (1e-3 if dtype == "float32" else 1e-11)  # the bound says something
    assert_within(last, expected[-1], bound[-1])
    if every_state:
        assert_within(states, expected, bound)
        if skip is not None:  # a masked step carries the state exactly
            carried = np.broadcast_to(skip, states[1:].shape)
            np.testing.assert_array_equal(states[1:][carried], states[:-1][carried])
    else:
        assert states is None


RIGHT_WEIGHTS = fast.lstm_inference_weights


def swapped(first, second):
    """lstm_inference_weights with two gates' columns exchanged after it (a wrong order)."""

    def wrong(kernel, recurrent_kernel, bias, out):
        RIGHT_WEIGHTS(kernel, recurrent_kernel, bias, out)
        units = recurrent_kernel.shape[0]
        blocks = out.reshape(len(out), 4, units)  # [o i f c]
        blocks[:, [first, second]] = blocks[:, [second, first]]
        return out

    return wrong


def unhalved(kernel, recurrent_kernel, bias, out):
    """σ's columns not halved: σ(z) = 1/2 + tanh(z)/2, a wrong σ."""
    RIGHT_WEIGHTS(kernel, recurrent_kernel, bias, out)
    units = recurrent_kernel.shape[0]
    out[:, : 3 * units] *= 2
    return out


@pytest.mark.parametrize(
    "wrong",
    [swapped(0, 1), swapped(1, 2), swapped(2, 3), swapped(0, 3), unhalved],
    ids=["o-i", "i-f", "f-g", "o-g", "sigma-unhalved"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_bound_catches_a_wrong_gate(monkeypatch, wrong, dtype):
    """The check above fails when a gate is swapped or σ is wrong (and passes as it is)."""
    rng = np.random.default_rng(7)
    x, kernel, recurrent_kernel, bias = lstm_case(rng, 4, 6, 3, 5, dtype, True)
    expected, bound = lstm_inference_bound(x, kernel, recurrent_kernel, bias, None)
    last, _ = fast.lstm_inference(x, kernel, recurrent_kernel, bias, None)
    assert_within(last, expected[-1], bound[-1])
    monkeypatch.setattr(fast, "lstm_inference_weights", wrong)
    last, _ = fast.lstm_inference(x, kernel, recurrent_kernel, bias, None)
    with pytest.raises(AssertionError, match="exceeds the bound"):
        assert_within(last, expected[-1], bound[-1])


def gru_case(rng, batch, timesteps, features, units, dtype, with_bias):
    x = rng.standard_normal((batch, timesteps, features)).astype(dtype)
    kernel = rng.normal(0, 1 / np.sqrt(features), (features, 3 * units)).astype(dtype)
    recurrent_kernel = rng.normal(0, 1 / np.sqrt(units), (units, 3 * units)).astype(dtype)
    bias = rng.standard_normal((2, 3 * units)).astype(dtype) if with_bias else None
    return x, kernel, recurrent_kernel, bias


@settings(max_examples=80, deadline=None)
@given(
    **inference_cases, features=st.integers(1, 6), with_bias=st.booleans(),
    sigma=st.sampled_from([SIGMOID_TANH, SIGMOID]),
)
def test_gru_inference_is_the_spec_within_its_rounding_bound(
    batch, timesteps, units, mask_kind, dtype, seed, every_state, features, with_bias, sigma
):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias = gru_case(
        rng, batch, timesteps, features, units, dtype, with_bias
    )
    skip = random_skip(rng, mask_kind, timesteps, batch)
    saved = x.copy()
    last, states = fast.gru_inference(
        x, kernel, recurrent_kernel, bias, skip, every_state=every_state
    )
    np.testing.assert_array_equal(x, saved)
    assert last.dtype == np.dtype(dtype)
    expected, bound = gru_inference_bound(x, kernel, recurrent_kernel, bias, skip, sigma)
    assert bound.max() < (1e-3 if dtype == "float32" else 1e-11)
    assert_within(last, expected[-1], bound[-1])
    if every_state:
        assert_within(states, expected, bound)
    else:
        assert states is None


RIGHT_GRU_WEIGHTS = fast.gru_unit_major_weights


def gru_wrong(kind):
    """gru_unit_major_weights with z and r exchanged, or σ's columns not halved."""

    def wrong(source, out, units):
        RIGHT_GRU_WEIGHTS(source, out, units)  # [h r z]
        if kind == "z-r":
            out[:, units:] = out[:, units:][:, np.r_[units : 2 * units, 0:units]]
        else:
            out[:, units:] *= 2

    return wrong


@pytest.mark.parametrize("kind", ["z-r", "sigma-unhalved"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_gru_bound_catches_a_wrong_gate(monkeypatch, kind, dtype):
    rng = np.random.default_rng(8)
    x, kernel, recurrent_kernel, bias = gru_case(rng, 4, 6, 3, 5, dtype, True)
    expected, bound = gru_inference_bound(x, kernel, recurrent_kernel, bias, None)
    last, _ = fast.gru_inference(x, kernel, recurrent_kernel, bias, None)
    assert_within(last, expected[-1], bound[-1])
    monkeypatch.setattr(fast, "gru_unit_major_weights", gru_wrong(kind))
    last, _ = fast.gru_inference(x, kernel, recurrent_kernel, bias, None)
    with pytest.raises(AssertionError, match="exceeds the bound"):
        assert_within(last, expected[-1], bound[-1])


def layer_of(layer_class, return_sequences, rng, **options):
    layer = layer_class(6, return_sequences=return_sequences, **options)
    layer.build((5, 3), rng)
    if layer.use_bias:  # not the zeros they start at, so that the bias terms count
        layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
    return layer


def outputs_bound(layer, x, mask):
    """An LSTM or GRU layer's training outputs for x (the specification's) and the bound on
    how far its predict may be from them (lstm_ or gru_inference_bound), in the layer's output
    shape."""
    params = layer.params
    inference_bound = lstm_inference_bound if isinstance(layer, LSTM) else gru_inference_bound
    states, bound = inference_bound(
        x, params["kernel"], params["recurrent_kernel"], params.get("bias"),
        layer.skipped_steps(mask, x),
    )
    if layer.return_sequences:
        return states[1:].transpose(1, 0, 2), bound[1:].transpose(1, 0, 2)
    return states[-1], bound[-1]


def check_backward_after_inference(layer, x, mask, predicted):
    """A backward after the inference forward gives BPTT's gradients: it reruns the training
    forward first, so they are the training pass's to the last bit."""
    dy = np.cos(predicted)
    dx_after_inference = layer.backward(dy)
    grads_after_inference = {key: grad.copy() for key, grad in layer.grads.items()}
    trained = layer.forward(x, training=True, mask=mask)
    np.testing.assert_array_equal(layer.backward(dy), dx_after_inference)
    for key, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, grads_after_inference[key], err_msg=key)
    return trained


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("batch", [1, 300])
def test_simple_rnn_predicts_its_training_outputs(return_sequences, masked, batch):
    """What SimpleRNN's predict computes (no cache) is what training computes, to the last
    bit; a backward after it still gives BPTT's gradients."""
    rng = np.random.default_rng(batch)
    layer = layer_of(SimpleRNN, return_sequences, rng)
    x = rng.standard_normal((batch, 5, 3)).astype(np.float32)
    mask = rng.random((batch, 5)) < 0.7 if masked else None
    predicted = layer.forward(x, training=False, mask=mask)
    assert layer._inference_input is not None  # the inference loop ran
    trained = check_backward_after_inference(layer, x, mask, predicted)
    np.testing.assert_array_equal(predicted, trained)


layer_cases = dict(
    batch=st.sampled_from([1, 2, 7, 40]),
    timesteps=st.integers(1, 6),
    units=st.integers(1, 8),
    features=st.integers(1, 4),
    return_sequences=st.booleans(),
    masked=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=60, deadline=None)
@given(**layer_cases, use_bias=st.booleans(), layer_class=st.sampled_from([LSTM, GRU]))
def test_lstm_and_gru_predict_their_training_outputs_within_the_bound(
    batch, timesteps, units, features, return_sequences, masked, dtype, seed, use_bias,
    layer_class,
):
    """The LSTM's and GRU's predict (lstm_ and gru_inference) against their training forward
    (the specification's outputs, bit for bit): within the bound; a backward after it still
    gives BPTT's gradients."""
    rng = np.random.default_rng(seed)
    layer = layer_class(units, return_sequences=return_sequences, use_bias=use_bias,
                        dtype=dtype)
    layer.build((timesteps, features), rng)
    if use_bias:
        layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
    x = rng.standard_normal((batch, timesteps, features)).astype(dtype)
    mask = rng.random((batch, timesteps)) < 0.7 if masked else None
    predicted = layer.forward(x, training=False, mask=mask)
    assert layer._inference_input is not None and predicted.dtype == np.dtype(dtype)
    expected, bound = outputs_bound(layer, x, mask)
    assert_within(predicted, expected, bound, "outputs")
    trained = check_backward_after_inference(layer, x, mask, predicted)
    if layer_class is LSTM:  # the training forward is lstm_inference's arithmetic
        np.testing.assert_array_equal(trained, predicted)
    else:  # the GRU's is the specification's
        np.testing.assert_array_equal(trained, expected)


@settings(max_examples=40, deadline=None)
@given(
    **layer_cases, merge_mode=st.sampled_from(["concat", "mul"]),
    layer_class=st.sampled_from([LSTM, GRU]),
)
def test_bidirectional_predicts_within_the_bound(
    batch, timesteps, units, features, return_sequences, masked, dtype, seed, merge_mode,
    layer_class,
):
    """Both directions within their bounds (the backward one read reversed in time, with its
    mask reversed); "mul": |a'b' - ab| ≤ |a|·E_b + |b|·E_a + E_a·E_b + u·|ab|, the product's
    rounding on the last term."""
    rng = np.random.default_rng(seed)
    layer = Bidirectional(layer_class(units, return_sequences=return_sequences, dtype=dtype),
                          merge_mode=merge_mode)
    layer.build((timesteps, features), rng)
    x = rng.standard_normal((batch, timesteps, features)).astype(dtype)
    mask = rng.random((batch, timesteps)) < 0.7 if masked else None
    predicted = layer.forward(x, mask=mask)
    a, bound_a = outputs_bound(layer.forward_layer, x, mask)
    b, bound_b = outputs_bound(
        layer.backward_layer, x[:, ::-1], None if mask is None else mask[:, ::-1]
    )
    if return_sequences:  # step t of both directions lines up
        b, bound_b = b[:, ::-1], bound_b[:, ::-1]
        if mask is not None:  # Keras's zero_output_for_mask: 0 at the masked steps, exactly
            keep = mask[..., None]
            a, b, bound_a, bound_b = (np.where(keep, v, 0) for v in (a, b, bound_a, bound_b))
    if merge_mode == "concat":
        expected = np.concatenate([a, b], axis=-1)
        bound = np.concatenate([bound_a, bound_b], axis=-1)
    else:
        u = np.finfo(dtype).eps / 2
        expected = a * b
        bound = np.abs(a) * bound_b + np.abs(b) * bound_a + bound_a * bound_b + u * np.abs(a * b)
    assert_within(predicted, expected, bound, "outputs")
    trained = check_backward_after_inference(layer, x, mask, predicted)
    if layer_class is LSTM:  # its training forward is lstm_inference's arithmetic
        np.testing.assert_array_equal(trained, predicted)
    elif merge_mode == "concat":  # ("mul" multiplies in the layer's own order)
        np.testing.assert_array_equal(trained, expected)


@pytest.mark.parametrize("layer_class", [LSTM, GRU, SimpleRNN], ids=lambda c: c.__name__)
def test_inference_buffers_follow_the_batch_size(layer_class):
    """A layer predicting batches of changing sizes and layouts (its plan made again each
    time) gives what a layer that never ran gives; a copy gets plans of its own."""
    rng = np.random.default_rng(5)
    used = layer_of(layer_class, False, rng)
    for batch, return_sequences in ((3, False), (1, True), (300, False), (3, True)):
        used.return_sequences = return_sequences
        used.forward(rng.standard_normal((batch, 5, 3)).astype(np.float32))
    used.return_sequences = False
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    fresh = copy.deepcopy(used)
    fresh._workspace = None
    np.testing.assert_array_equal(used.forward(x), fresh.forward(x))
    assert copy.copy(used).workspace().plans == {}


@pytest.mark.parametrize("layer_class", [LSTM, GRU], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["kernel"].__setitem__((0, 1), p["kernel"][0, 1] + 1),
        lambda p: p["recurrent_kernel"].__setitem__((2, 0), 0.5),
        lambda p: p["bias"].__setitem__(..., 0.25),
        lambda p: p["kernel"].__setitem__((1, 1), -p["kernel"][1, 1]),
    ],
    ids=["kernel", "recurrent_kernel", "bias", "sign"],
)
def test_a_weight_changed_in_place_is_the_next_predicts(layer_class, change):
    """The inference plan keeps its reordered weights while the layer's stay the same
    (fast.built_from): a weight changed in place, as an optimizer or a learner does, is
    what the next inference pass computes with, as a layer that never ran computes."""
    rng = np.random.default_rng(8)
    layer = layer_of(layer_class, False, rng)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    before = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(x), before)  # kept: the same bits
    change(layer.params)
    fresh = copy.deepcopy(layer)
    fresh._workspace = None
    after = layer.forward(x)
    np.testing.assert_array_equal(after, fresh.forward(x))
    assert not np.array_equal(after, before)


def test_built_from_compares_bits():
    plan = fast.LSTMInference((2, 1, 3, 2), np.dtype("float32"), False)
    kernel = np.zeros((3, 8), np.float32)
    assert not fast.built_from(plan, (kernel, kernel, None))  # nothing kept yet
    assert fast.built_from(plan, (kernel, kernel, None))
    kernel[0, 0] = -0.0  # equal to 0.0 as a number, not as bits
    assert not fast.built_from(plan, (kernel, kernel, None))
    assert not fast.built_from(plan, (kernel, kernel, np.zeros(8, np.float32)))  # a bias now
    assert not fast.built_from(plan, (kernel.astype(np.float64), kernel, np.zeros(8, np.float32)))


def test_simple_rnn_inference_with_an_activation_that_ignores_out():
    rng = np.random.default_rng(2)
    layer = layer_of(SimpleRNN, True, rng, activation="linear")
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x, training=True))


def test_other_activations_predict_through_the_training_loop():
    layer = layer_of(LSTM, False, np.random.default_rng(0), activation="softsign")
    assert not layer.inference_applies()
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x, training=True))
    assert layer._inference_input is None


def test_a_workspace_hands_out_the_front_of_a_larger_array():
    space = fast.Workspace()
    full = space.array("a", (4, 3), np.float32)
    short = space.array("a", (2, 5), np.float32)  # 10 ≤ 12: the same memory, its shape
    assert short.shape == (2, 5) and short.flags.c_contiguous and np.shares_memory(full, short)
    assert space.array("a", (4, 3), np.float32) is full
    assert not np.shares_memory(space.array("a", (4, 3), np.float64), full)
    assert space.array("a", (5, 3), np.float64).shape == (5, 3)  # larger: a new one


def test_a_workspace_keeps_the_latest_plans():
    space = fast.Workspace()
    shapes = [(3, 2, 5, 2), (3, 1, 5, 2), (3, 2, 5, 2), (3, 4, 5, 2)]  # (T, N, D, U)
    plans = [space.plan(fast.LSTMInference, shape, np.dtype("float32"), False) for shape in shapes]
    assert plans[2] is plans[0]  # the full passes' and the short pass's plans both kept
    assert len(space.plans[fast.LSTMInference]) == fast.Workspace.PLANS_KEPT == 2


# -- the LSTM's training loops, unit-major: forward = lstm_inference, backward within a bound --


def spec_cache(plan):
    """lstm_train_forward's plan as the specification's cache: gates [i f g o] (T, N, 4U),
    states and cells (T + 1, N, U), tanh_cells (T, N, U), time-major."""
    timesteps, batch, _, units = plan.shape
    planes = plan.planes.transpose(0, 2, 1)  # (T + 1, N, 5U)
    o, i, f, g = (planes[:timesteps, :, k * units : (k + 1) * units] for k in range(4))
    gates = np.concatenate([i, f, g, o], axis=-1)
    return {
        "z": np.zeros_like(gates),  # σ's and tanh's backward read only their outputs
        "gates": gates,
        "states": np.ascontiguousarray(plan.states().transpose(1, 2, 0)),
        "cells": np.ascontiguousarray(planes[:, :, 4 * units :]),
        "tanh_cells": np.ascontiguousarray(plan.tanh_cells.transpose(0, 2, 1)),
    }


def keras_dz(d_gates, timesteps, batch):
    """dZ (4U, T·N), rows [o i f g] -> (T, N, 4U), columns [i f c o] as the specification's."""
    rows = d_gates.T.reshape(timesteps, batch, -1)
    return fast.from_unit_major(rows, np.empty_like(rows))


def lstm_backward_bound(from_above, recurrent_kernel, cache, skip, timesteps_units):
    """The specification's dz on the same cache, and a bound on how far lstm_train_backward's
    may be from it, element by element (both (T, N, 4U)).

    Given the cache (the forward's values: both loops read the same ones), backward is linear
    in from_above: every dz_t[n, j] is a sum of products along paths through the steps, each
    product one from_above entry times cache values, slopes a(1 - a), 1 - a² and entries of
    R. Both loops compute the slopes the same way from the same values (bit for bit), and
    differ only in the order of the sums (dz_t @ Rᵀ against R' @ dz_t, any order, FMA or
    not). Each path meets at most d = T·(4U + 9) roundings (a step: dh = above + next, dc's
    three, dz's three, the 4U-term sum of the product and its terms, the mask's carry), so
    each loop is within γ_d · M of the exact value (Higham, Accuracy and Stability, §3.1 and
    §3.5: γ_d = d·u/(1 - d·u)), M = the same backward on the absolute values of from_above,
    R, g, c and tanh(c) (every slope is ≥ 0): |fast - spec| ≤ 2γ_d · M. A worst case: on the
    shapes here (T ≤ 6, U ≤ 5) up to ~3e-5 in float32 and ~6e-14 in float64 against dz of
    order 1, ~200 times the largest error seen, while a wrong gate moves dz by its size
    (test_the_backward_bound_catches_a_wrong_gate). Over the lstm's 28 steps of 64-128 units
    M grows with |R|'s row sums every step and the bound says nothing (1e2); the Jacobian
    products of lstm_inference_bound would keep it tight there (not done)."""
    timesteps, units = timesteps_units
    dz = spec.lstm_backward(from_above, recurrent_kernel, cache, skip, SIGMOID_TANH, TANH)
    wide = np.float64
    absolute = {key: np.abs(value.astype(wide)) for key, value in cache.items()}
    absolute["gates"] = cache["gates"].astype(wide)
    absolute["gates"][..., 2 * units : 3 * units] = np.abs(absolute["gates"][..., 2 * units :
                                                                              3 * units])
    magnitude = spec.lstm_backward(
        np.abs(from_above.astype(wide)), np.abs(recurrent_kernel.astype(wide)), absolute, skip,
        SIGMOID_TANH, TANH,
    )
    u = np.finfo(dz.dtype).eps / 2
    depth = timesteps * (4 * units + 9)
    return dz, magnitude, 2 * depth * u / (1 - depth * u)


def train_case(rng, batch, timesteps, features, units, dtype, with_bias, mask_kind):
    x, kernel, recurrent_kernel, bias = lstm_case(
        rng, batch, timesteps, features, units, dtype, with_bias
    )
    return x, kernel, recurrent_kernel, bias, random_skip(rng, mask_kind, timesteps, batch)


@settings(max_examples=80, deadline=None)
@given(**inference_cases, features=st.integers(1, 6), with_bias=st.booleans())
def test_lstm_train_forward_is_lstm_inference_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, every_state, features, with_bias
):
    """The training forward is lstm_inference's step, operation for operation: the same
    states to the last bit, so within lstm_inference_bound of the specification's (checked
    here too)."""
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, skip = train_case(
        rng, batch, timesteps, features, units, dtype, with_bias, mask_kind
    )
    saved = x.copy()
    plan = fast.lstm_train_forward(x, kernel, recurrent_kernel, bias, skip)
    np.testing.assert_array_equal(x, saved)
    states = plan.states().transpose(1, 2, 0)  # (T + 1, N, U)
    _, inferred = fast.lstm_inference(x, kernel, recurrent_kernel, bias, skip, every_state=True)
    np.testing.assert_array_equal(states, inferred)
    expected, bound = lstm_inference_bound(x, kernel, recurrent_kernel, bias, skip)
    assert_within(states, expected, bound)


@settings(max_examples=80, deadline=None)
@given(
    **cases, features=st.integers(1, 6), with_bias=st.booleans(), last_only=st.booleans()
)
def test_lstm_train_backward_is_the_spec_within_its_bound(
    batch, timesteps, units, mask_kind, dtype, seed, features, with_bias, last_only
):
    """dz of lstm_train_backward against the specification's BPTT on the same cache: within
    lstm_backward_bound; d[R; W; b] from its one product against the specification's
    products of the layer (Xᵀ dZ, H₋ᵀ dZ, Σ dZ) within the bound carried through the sums
    (T·N more roundings, |X|ᵀ M and so on); from_above only read."""
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, skip = train_case(
        rng, batch, timesteps, features, units, dtype, with_bias, mask_kind
    )
    plan = fast.lstm_train_forward(x, kernel, recurrent_kernel, bias, skip)
    cache = spec_cache(plan)
    dy = rng.standard_normal((batch, timesteps, units)).astype(dtype)
    if last_only:
        dy[:, :-1] = 0
    saved = dy.copy()
    from_above = dy.transpose(1, 0, 2)
    stacked, d_gates = fast.lstm_train_backward(
        plan, recurrent_kernel, dy[:, -1] if last_only else from_above, last_only
    )
    np.testing.assert_array_equal(dy, saved)
    found = keras_dz(d_gates, timesteps, batch)
    expected, magnitude, gamma = lstm_backward_bound(
        from_above, recurrent_kernel, cache, skip, (timesteps, units)
    )
    assert (gamma * magnitude).max() < (1e-3 if dtype == "float32" else 1e-11)  # says something
    assert_within(found, expected, gamma * magnitude, "dz")
    if skip is not None:  # a masked step gives nothing to its gates
        assert not found[np.broadcast_to(skip, found.shape)].any()
    # the sums over all steps: S = [H₋; X; 1] (K, T·N) against dZ
    rows = np.concatenate(
        [cache["states"][:-1], x.transpose(1, 0, 2), np.ones((timesteps, batch, 1), dtype)],
        axis=-1,
    ).reshape(timesteps * batch, -1)
    flat, flat_magnitude = expected.reshape(timesteps * batch, -1), magnitude.reshape(
        timesteps * batch, -1)
    gradient = keras_dz(stacked.T, 1, len(stacked))[0]  # (K, 4U), Keras's columns
    u = np.finfo(dtype).eps / 2
    depth = timesteps * batch
    sum_gamma = gamma + 2 * depth * u / (1 - depth * u)
    assert_within(gradient, rows.T @ flat,
                  sum_gamma * (np.abs(rows.T.astype(np.float64)) @ flat_magnitude), "d[R; W; b]")


@pytest.mark.parametrize("rows", [(1, 2), (0, 3), (2, 3), (0, 1)], ids=["i-f", "o-g", "f-g", "o-i"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_backward_bound_catches_a_wrong_gate(rows, dtype):
    """The check above fails when backward reads two gates swapped (and passes as it is)."""
    rng = np.random.default_rng(11)
    x, kernel, recurrent_kernel, bias, skip = train_case(rng, 4, 6, 3, 5, dtype, True, "none")
    dy = rng.standard_normal((4, 6, 5)).astype(dtype)
    from_above = dy.transpose(1, 0, 2)
    plan = fast.lstm_train_forward(x, kernel, recurrent_kernel, bias, skip)
    expected, magnitude, gamma = lstm_backward_bound(
        from_above, recurrent_kernel, spec_cache(plan), skip, (6, 5)
    )
    _, d_gates = fast.lstm_train_backward(plan, recurrent_kernel, from_above, False)
    assert_within(keras_dz(d_gates, 6, 4), expected, gamma * magnitude, "dz")
    first, second = (slice(k * 5, (k + 1) * 5) for k in rows)
    planes = plan.planes
    planes[:, first], planes[:, second] = planes[:, second].copy(), planes[:, first].copy()
    _, d_gates = fast.lstm_train_backward(plan, recurrent_kernel, from_above, False)
    with pytest.raises(AssertionError, match="exceeds the bound"):
        assert_within(keras_dz(d_gates, 6, 4), expected, gamma * magnitude, "dz")


@pytest.mark.parametrize("order", [(0, 3, 1, 2), (3, 1, 0, 2)], ids=["o-first", "i-f"])
def test_a_wrong_column_order_fails_the_layer_gradients(monkeypatch, order):
    """The layer's gradients (reordered from the unit-major columns) against the
    specification's loop (the layer with σ = SigmoidThroughTanh given explicitly runs it),
    float64: within 1e-12 as they are, far off with the columns in a wrong order."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 2))
    layers = []
    for sigma in ("sigmoid", SIGMOID_TANH):
        layer = LSTM(3, recurrent_activation=sigma, dtype="float64")
        layer.build((4, 2), np.random.default_rng(1))
        layer.needs_input_gradient = True
        layers.append(layer)
    fused, reference = layers
    dy = np.cos(reference.forward(x, training=True))
    reference.backward(dy)

    def differences():
        fused.forward(x, training=True)
        fused.backward(dy)
        return max(np.abs(fused.grads[k] - reference.grads[k]).max() for k in fused.grads)

    assert differences() < 1e-12
    monkeypatch.setattr(fast, "UNIT_MAJOR", order)
    assert differences() > 1e-3
