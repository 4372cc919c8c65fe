"""The step loops of LSTM and GRU as their equations read: the specification that
``handnet.fast.recurrent`` must match.

The equations, their derivatives and the mask rules are in the layers' docstrings
(handnet.layers.lstm, handnet.layers.gru, handnet.layers.recurrent). Here each step is written
once, one NumPy expression per equation, for the whole batch at once; every array is
time-major (T, N, ·), and states[0] = h_0 = 0, states[t + 1] = the state after step t.

What the layer hands in, and what comes back:

    z (T, N, G·U)       x_t @ W + b for every step (the input projection, one product); the
                        forward pass adds h_{t-1} @ R into it, in place
    recurrent_kernel    R (U, G·U)
    skip (T, N, 1)      True where step t of sequence n is masked (padding); None: no mask
    sigma, tanh         the recurrent activation and the activation (handnet.activations)

The forward functions return a dict (the cache backward needs, states included); the backward
functions return ∂L/∂z per step, from which the layer takes dW, dR, db and dx in one product
each (handnet.layers.recurrent.finish_backward). (handnet.fast.recurrent returns the same
arrays, but for the gates, which it keeps gate-major: (T, G, N, U).)
"""

import numpy as np

from .. import activations


class SigmoidThroughTanh(activations.Sigmoid):
    """σ(z) = 1/2 + tanh(z/2)/2, activations.Sigmoid in real arithmetic (within 2u of its
    values: u = 2⁻²⁴ in float32), with its backward a · (1 - a). handnet.fast.recurrent's
    LSTM loops (training and inference) take σ in this form: half the time of the
    exponential's."""

    def forward(self, z, out=None):
        half = z.dtype.type(0.5) if isinstance(z, np.ndarray) else 0.5
        result = np.tanh(z * half) * half + half
        if out is not None:
            out[...] = result
            return out
        return result


def gates_of(array, units, count):
    """The ``count`` blocks of ``units`` columns of a (…, count·U) array, as views."""
    return tuple(array[..., k * units : (k + 1) * units] for k in range(count))


def lstm_forward(z, recurrent_kernel, skip, sigma, tanh):
    """LSTM over all steps. z (T, N, 4U) -> {z, gates [i f g o] (T, N, 4U), states and cells
    (T + 1, N, U), tanh_cells (T, N, U)}; z ends as the full pre-activations."""
    timesteps, batch, _ = z.shape
    units = recurrent_kernel.shape[0]
    states = np.zeros((timesteps + 1, batch, units), dtype=z.dtype)
    cells = np.zeros_like(states)
    gates = np.empty_like(z)  # [i | f | g | o] of every step
    tanh_cells = np.empty_like(states[1:])
    for t in range(timesteps):
        z[t] += states[t] @ recurrent_kernel
        z_c, z_o = gates_of(z[t], units, 4)[2:]
        i, f, g, o = gates_of(gates[t], units, 4)
        gates[t, :, : 2 * units] = sigma.forward(z[t, :, : 2 * units])  # i and f at once
        g[...] = tanh.forward(z_c)
        o[...] = sigma.forward(z_o)
        cells[t + 1] = f * cells[t] + i * g
        tanh_cells[t] = tanh.forward(cells[t + 1])
        states[t + 1] = o * tanh_cells[t]
        if skip is not None:  # a masked step keeps c_{t-1} and h_{t-1}
            np.copyto(cells[t + 1], cells[t], where=skip[t])
            np.copyto(states[t + 1], states[t], where=skip[t])
    return {"z": z, "gates": gates, "states": states, "cells": cells, "tanh_cells": tanh_cells}


def lstm_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh):
    """BPTT through the LSTM. from_above (T, N, U) = ∂L/∂h_t from the layer above (read only)
    -> dz (T, N, 4U) = ∂L/∂z_t, the same for x_t @ W + b and for h_{t-1} @ R."""
    z, gates, cells, tanh_cells = cache["z"], cache["gates"], cache["cells"], cache["tanh_cells"]
    units = recurrent_kernel.shape[0]
    dz = np.empty_like(z)
    dh_next = np.zeros_like(cells[0])
    dc_next = np.zeros_like(cells[0])
    for t in reversed(range(len(z))):
        i, f, g, o = gates_of(gates[t], units, 4)
        z_i, z_f, z_c, z_o = gates_of(z[t], units, 4)
        dh = from_above[t] + dh_next
        if skip is not None:  # masked rows: dh and dc go back as they are, dz gets 0
            carried_h, dh = np.where(skip[t], dh, 0), np.where(skip[t], 0, dh)
        # (at a masked row cells[t + 1] is the carried c_t, but dh is 0 there)
        dc = dc_next + tanh.backward(dh * o, cells[t + 1], tanh_cells[t])
        if skip is not None:
            carried_c, dc = np.where(skip[t], dc, 0), np.where(skip[t], 0, dc)
        dz_i, dz_f, dz_c, dz_o = gates_of(dz[t], units, 4)
        dz_i[...] = sigma.backward(dc * g, z_i, i)
        dz_f[...] = sigma.backward(dc * cells[t], z_f, f)
        dz_c[...] = tanh.backward(dc * i, z_c, g)
        dz_o[...] = sigma.backward(dh * tanh_cells[t], z_o, o)
        dc_next = dc * f
        dh_next = dz[t] @ recurrent_kernel.T
        if skip is not None:
            dc_next += carried_c
            dh_next += carried_h
    return dz


def gru_forward(pre, recurrent_kernel, recurrent_bias, skip, sigma, tanh):
    """GRU (reset_after=True) over all steps. pre (T, N, 3U) = m_t = x_t @ W + b_in; it ends as
    the pre-activations [m_z + n_z | m_r + n_r | m_h + r · n_h]. recurrent_bias: b_rec (3U,)
    or None. -> {pre, recurrent n_t (T, N, 3U), gates [z r ĥ] (T, N, 3U), states (T + 1, N, U)}."""
    timesteps, batch, _ = pre.shape
    units = recurrent_kernel.shape[0]
    states = np.zeros((timesteps + 1, batch, units), dtype=pre.dtype)
    recurrent = np.empty_like(pre)  # n_t of every step: backward needs n_h
    gates = np.empty_like(pre)  # [z | r | ĥ] of every step
    for t in range(timesteps):
        np.matmul(states[t], recurrent_kernel, out=recurrent[t])
        if recurrent_bias is not None:
            recurrent[t] += recurrent_bias
        n_z, n_r, n_h = gates_of(recurrent[t], units, 3)
        pre_update, pre_reset, pre_candidate = gates_of(pre[t], units, 3)
        update, reset, candidate = gates_of(gates[t], units, 3)
        pre_update += n_z
        pre_reset += n_r
        update[...] = sigma.forward(pre_update)
        reset[...] = sigma.forward(pre_reset)
        pre_candidate += reset * n_h
        candidate[...] = tanh.forward(pre_candidate)
        states[t + 1] = update * states[t] + (1 - update) * candidate
        if skip is not None:  # a masked step keeps h_{t-1}
            np.copyto(states[t + 1], states[t], where=skip[t])
    return {"pre": pre, "recurrent": recurrent, "gates": gates, "states": states}


def gru_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh):
    """BPTT through the GRU. from_above (T, N, U) = ∂L/∂h_t from above (read only) ->
    (dm (T, N, 3U) = ∂L/∂(x_t @ W + b_in), dn (T, N, 3U) = ∂L/∂(h_{t-1} @ R + b_rec))."""
    pre, recurrent, gates = cache["pre"], cache["recurrent"], cache["gates"]
    states = cache["states"]
    units = recurrent_kernel.shape[0]
    d_input = np.empty_like(pre)  # dm_t
    d_recurrent = np.empty_like(pre)  # dn_t
    dh_next = np.zeros_like(states[0])
    for t in reversed(range(len(pre))):
        update, reset, candidate = gates_of(gates[t], units, 3)
        pre_update, pre_reset, pre_candidate = gates_of(pre[t], units, 3)
        d_update, d_reset, d_candidate = gates_of(d_input[t], units, 3)
        dh = from_above[t] + dh_next
        if skip is not None:  # masked rows: dh goes to h_{t-1} as is, the step gets 0
            carried, dh = np.where(skip[t], dh, 0), np.where(skip[t], 0, dh)
        d_candidate[...] = tanh.backward(dh * (1 - update), pre_candidate, candidate)
        d_update[...] = sigma.backward(dh * (states[t] - candidate), pre_update, update)
        n_h = gates_of(recurrent[t], units, 3)[2]
        d_reset[...] = sigma.backward(d_candidate * n_h, pre_reset, reset)
        d_recurrent[t] = d_input[t]
        gates_of(d_recurrent[t], units, 3)[2][...] *= reset
        dh_next = dh * update + d_recurrent[t] @ recurrent_kernel.T
        if skip is not None:
            dh_next += carried
    return d_input, d_recurrent
