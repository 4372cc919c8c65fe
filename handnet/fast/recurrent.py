"""LSTM and GRU step loops without the per-step allocations: the same equations as
``handnet.ops.recurrent_spec``, in the same order of operations, written into buffers.

Where the time of a step goes (the lstm zoo model: N = 128, U = 128): one (N, U) @ (U, 4U)
product, then the gates — a few dozen elementwise passes over 64 KiB arrays, each of which the
specification allocates afresh. Here every array a step writes is allocated once per call
(per pass, not per step), each nonlinearity runs in place into its slot of the gates array,
and a step's whole product lands in one buffer:

    forward, step t     product = h_{t-1} @ R          one product for all gates
                        z_t += product;  [i f g o] = [σ σ tanh σ](z_t) into gates[t]
                        c_t, tanh(c_t), h_t into their rows of the (T + 1, N, U) arrays
    backward, step t    dz_t in its row of dz, every factor of σ' = a(1 - a) and
                        tanh' = 1 - a² from one pass 1 - [i f g o] (the g block then 1 - g²);
                        dh_{t-1} = dz_t @ Rᵀ straight into its buffer

Every product and every sum is taken in the specification's order (a · b · (1 - b) as
(a · b) · (1 - b), the same BLAS calls on the same operands), so the results are the
specification's to the last bit: tests/golden's twelve training steps do not move.

The upstream gradient (from_above, a view of the layer's dy) is only read. The in-place
kernels are written for the default activations (σ = sigmoid, tanh); with any other pair the
specification's loop runs.

σ(z) is computed as e^{min(z, 0)} / (1 + e^{-|z|}): no exponent is ever positive (no overflow),
and it gives exactly handnet.activations.Sigmoid's values, 1/(1 + e^{-|z|}) for z ≥ 0 and
e^{-|z|}/(1 + e^{-|z|}) for z < 0, without the two divisions and the selection.
"""

import numpy as np

from .. import activations
from ..ops import recurrent_spec


def fused_kernels_apply(sigma, tanh):
    """True when the in-place kernels here compute the layer's activations (the defaults)."""
    return type(sigma) is activations.Sigmoid and type(tanh) is activations.Tanh


def sigmoid_into(z, out, work):
    """out = σ(z), as activations.Sigmoid computes it (see the module docstring); ``work`` is
    scratch of z's shape. z, out, work: arrays (or views) of the same shape."""
    np.minimum(z, 0, out=out)
    np.exp(out, out=out)  # e^{min(z, 0)}: e^z for z < 0, else 1
    np.abs(z, out=work)
    np.negative(work, out=work)
    np.exp(work, out=work)
    np.add(work, 1, out=work)  # 1 + e^{-|z|}
    np.divide(out, work, out=out)
    return out


def _carry(skip_t, keep_t, gradient, carried):
    """Split a gradient at the masked rows: carried = gradient there (0 elsewhere) goes back to
    the state unchanged; gradient becomes 0 there (the skipped step's equations get nothing)."""
    np.copyto(carried, gradient)
    np.copyto(carried, 0, where=keep_t)
    np.copyto(gradient, 0, where=skip_t)


def lstm_forward(z, recurrent_kernel, skip, sigma, tanh):
    """recurrent_spec.lstm_forward's results, with buffers (see the module docstring)."""
    if not fused_kernels_apply(sigma, tanh):
        return recurrent_spec.lstm_forward(z, recurrent_kernel, skip, sigma, tanh)
    timesteps, batch, width = z.shape
    units = recurrent_kernel.shape[0]
    states = np.zeros((timesteps + 1, batch, units), dtype=z.dtype)
    cells = np.zeros_like(states)
    gates = np.empty_like(z)
    tanh_cells = np.empty_like(states[1:])
    product = np.empty((batch, width), dtype=z.dtype)
    work = np.empty((batch, 2 * units), dtype=z.dtype)
    input_part = np.empty((batch, units), dtype=z.dtype)  # i · g
    for t in range(timesteps):
        z_t, a_t = z[t], gates[t]
        np.matmul(states[t], recurrent_kernel, out=product)
        np.add(z_t, product, out=z_t)
        sigmoid_into(z_t[:, : 2 * units], a_t[:, : 2 * units], work)  # i and f
        np.tanh(z_t[:, 2 * units : 3 * units], out=a_t[:, 2 * units : 3 * units])  # g
        sigmoid_into(z_t[:, 3 * units :], a_t[:, 3 * units :], work[:, :units])  # o
        i, f, g, o = recurrent_spec.gates_of(a_t, units, 4)
        cell = cells[t + 1]
        np.multiply(f, cells[t], out=cell)
        np.multiply(i, g, out=input_part)
        np.add(cell, input_part, out=cell)  # c_t = f · c_{t-1} + i · g
        np.tanh(cell, out=tanh_cells[t])
        np.multiply(o, tanh_cells[t], out=states[t + 1])
        if skip is not None:  # a masked step keeps c_{t-1} and h_{t-1}
            np.copyto(cell, cells[t], where=skip[t])
            np.copyto(states[t + 1], states[t], where=skip[t])
    return {"z": z, "gates": gates, "states": states, "cells": cells, "tanh_cells": tanh_cells}


def lstm_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh):
    """recurrent_spec.lstm_backward's dz, with buffers; from_above is only read."""
    if not fused_kernels_apply(sigma, tanh):
        return recurrent_spec.lstm_backward(
            from_above, recurrent_kernel, cache, skip, sigma, tanh
        )
    z, gates, cells, tanh_cells = cache["z"], cache["gates"], cache["cells"], cache["tanh_cells"]
    batch, width = z.shape[1:]
    units = recurrent_kernel.shape[0]
    recurrent_transposed = recurrent_kernel.T
    dz = np.empty_like(z)
    dh, dc, dh_next, dc_next, scratch = (
        np.zeros((batch, units), dtype=z.dtype) for _ in range(5)
    )
    slopes = np.empty((batch, width), dtype=z.dtype)  # σ' / a and tanh' factors of the gates
    if skip is not None:
        keep = ~skip
        carried_h, carried_c = np.empty_like(dh), np.empty_like(dc)
    for t in reversed(range(len(z))):
        i, f, g, o = recurrent_spec.gates_of(gates[t], units, 4)
        tanh_cell = tanh_cells[t]
        np.add(from_above[t], dh_next, out=dh)
        if skip is not None:  # masked rows: dh and dc go back as they are, dz gets 0
            _carry(skip[t], keep[t], dh, carried_h)
        # dc = dc_next + (dh · o) · (1 - tanh(c_t)²)
        np.multiply(dh, o, out=dc)
        np.multiply(tanh_cell, tanh_cell, out=scratch)
        np.subtract(1, scratch, out=scratch)
        np.multiply(dc, scratch, out=dc)
        np.add(dc_next, dc, out=dc)
        if skip is not None:
            _carry(skip[t], keep[t], dc, carried_c)
        dz_t = dz[t]
        dz_i, dz_f, dz_c, dz_o = recurrent_spec.gates_of(dz_t, units, 4)
        np.multiply(dc, g, out=dz_i)
        np.multiply(dz_i, i, out=dz_i)  # (dc · g) · i, then · (1 - i) below
        np.multiply(dc, cells[t], out=dz_f)
        np.multiply(dz_f, f, out=dz_f)
        np.multiply(dc, i, out=dz_c)  # then · (1 - g²)
        np.multiply(dh, tanh_cell, out=dz_o)
        np.multiply(dz_o, o, out=dz_o)
        np.subtract(1, gates[t], out=slopes)  # 1 - i, 1 - f, (1 - g: replaced), 1 - o
        slope_c = slopes[:, 2 * units : 3 * units]
        np.multiply(g, g, out=slope_c)
        np.subtract(1, slope_c, out=slope_c)
        np.multiply(dz_t, slopes, out=dz_t)
        np.multiply(dc, f, out=dc_next)
        np.matmul(dz_t, recurrent_transposed, out=dh_next)
        if skip is not None:
            np.add(dc_next, carried_c, out=dc_next)
            np.add(dh_next, carried_h, out=dh_next)
    return dz


def gru_forward(pre, recurrent_kernel, recurrent_bias, skip, sigma, tanh):
    """recurrent_spec.gru_forward's results, with buffers (see the module docstring)."""
    if not fused_kernels_apply(sigma, tanh):
        return recurrent_spec.gru_forward(pre, recurrent_kernel, recurrent_bias, skip, sigma, tanh)
    timesteps, batch, _ = pre.shape
    units = recurrent_kernel.shape[0]
    states = np.zeros((timesteps + 1, batch, units), dtype=pre.dtype)
    recurrent = np.empty_like(pre)
    gates = np.empty_like(pre)
    work = np.empty((batch, 2 * units), dtype=pre.dtype)
    scratch = np.empty((batch, units), dtype=pre.dtype)
    for t in range(timesteps):
        pre_t, n_t, a_t = pre[t], recurrent[t], gates[t]
        np.matmul(states[t], recurrent_kernel, out=n_t)
        if recurrent_bias is not None:
            np.add(n_t, recurrent_bias, out=n_t)
        zr = slice(0, 2 * units)
        np.add(pre_t[:, zr], n_t[:, zr], out=pre_t[:, zr])  # m_z + n_z, m_r + n_r
        sigmoid_into(pre_t[:, zr], a_t[:, zr], work)  # z and r
        update, reset, candidate = recurrent_spec.gates_of(a_t, units, 3)
        pre_candidate, n_h = pre_t[:, 2 * units :], n_t[:, 2 * units :]
        np.multiply(reset, n_h, out=scratch)
        np.add(pre_candidate, scratch, out=pre_candidate)
        np.tanh(pre_candidate, out=candidate)
        state = states[t + 1]  # z · h_{t-1} + (1 - z) · ĥ
        np.multiply(update, states[t], out=state)
        np.subtract(1, update, out=scratch)
        np.multiply(scratch, candidate, out=scratch)
        np.add(state, scratch, out=state)
        if skip is not None:  # a masked step keeps h_{t-1}
            np.copyto(state, states[t], where=skip[t])
    return {"pre": pre, "recurrent": recurrent, "gates": gates, "states": states}


def gru_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh):
    """recurrent_spec.gru_backward's (dm, dn), with buffers; from_above is only read."""
    if not fused_kernels_apply(sigma, tanh):
        return recurrent_spec.gru_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh)
    recurrent, gates, states = cache["recurrent"], cache["gates"], cache["states"]
    batch = states.shape[1]
    units = recurrent_kernel.shape[0]
    recurrent_transposed = recurrent_kernel.T
    d_input = np.empty_like(gates)
    d_recurrent = np.empty_like(gates)
    dh, dh_next, scratch, product = (np.zeros((batch, units), dtype=gates.dtype) for _ in range(4))
    if skip is not None:
        keep = ~skip
        carried = np.empty_like(dh)
    for t in reversed(range(len(gates))):
        update, reset, candidate = recurrent_spec.gates_of(gates[t], units, 3)
        d_update, d_reset, d_candidate = recurrent_spec.gates_of(d_input[t], units, 3)
        n_h = recurrent[t][:, 2 * units :]
        np.add(from_above[t], dh_next, out=dh)
        if skip is not None:  # masked rows: dh goes to h_{t-1} as is, the step gets 0
            _carry(skip[t], keep[t], dh, carried)
        # dĥ-side: (dh · (1 - z)) · (1 - ĥ²)
        np.subtract(1, update, out=scratch)
        np.multiply(dh, scratch, out=d_candidate)
        np.multiply(candidate, candidate, out=scratch)
        np.subtract(1, scratch, out=scratch)
        np.multiply(d_candidate, scratch, out=d_candidate)
        # ((dh · (h_{t-1} - ĥ)) · z) · (1 - z)
        np.subtract(states[t], candidate, out=d_update)
        np.multiply(dh, d_update, out=d_update)
        np.multiply(d_update, update, out=d_update)
        np.subtract(1, update, out=scratch)
        np.multiply(d_update, scratch, out=d_update)
        # ((da_h · n_h) · r) · (1 - r)
        np.multiply(d_candidate, n_h, out=d_reset)
        np.multiply(d_reset, reset, out=d_reset)
        np.subtract(1, reset, out=scratch)
        np.multiply(d_reset, scratch, out=d_reset)
        # dn_t = [da_z | da_r | da_h · r]
        np.copyto(d_recurrent[t, :, : 2 * units], d_input[t, :, : 2 * units])
        np.multiply(d_candidate, reset, out=d_recurrent[t, :, 2 * units :])
        np.matmul(d_recurrent[t], recurrent_transposed, out=product)
        np.multiply(dh, update, out=dh_next)
        np.add(dh_next, product, out=dh_next)  # dh · z + dn_t @ Rᵀ
        if skip is not None:
            np.add(dh_next, carried, out=dh_next)
    return d_input, d_recurrent
