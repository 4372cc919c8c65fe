"""LSTM and GRU step loops without the per-step allocations: the same equations as
``handnet.ops.recurrent_spec``, in the same order of operations, written into buffers.

Where the time of a step goes (the lstm zoo model: N = 128, U = 128): one (N, U) @ (U, 4U)
product, then the gates — a few dozen elementwise passes over 64 KiB arrays, each of which the
specification allocates afresh. Here every array is taken from a Workspace that the layer keeps
from batch to batch (no allocation, no page fault), each nonlinearity runs in place, and a
step's whole product lands in one buffer:

    forward, step t     product = h_{t-1} @ R          one product for all gates
                        z_t += product;  [i f g o] = [σ σ tanh σ](z_t), one row (N, 4U)
                        copied gate-major into gates[t] (4, N, U)
                        c_t, tanh(c_t), h_t into their rows of the (T + 1, N, U) arrays
    backward, step t    dz_t gate-major (4, N, U), every factor of σ' = a(1 - a) and
                        tanh' = 1 - a² from one pass 1 - gates[t] (the g block then 1 - g²),
                        then copied into its row of dz (T, N, 4U), the layout the products of
                        BPTT take;  dh_{t-1} = dz_t @ Rᵀ straight into its buffer

Gate-major: the LSTM keeps its gates as (T, 4, N, U), the GRU as (T, 3, N, U), so that each
gate is one contiguous (N, U) block. The specification's (N, G·U) rows make them strided column
blocks, and NumPy's elementwise passes over such a block cost two to four times a contiguous
one (one inner loop per row); one strided copy per step in each direction is cheaper than a
dozen strided passes.

Every product and every sum is taken in the specification's order (a · b · (1 - b) as
(a · b) · (1 - b), the same BLAS calls on the same operands), so the results are the
specification's to the last bit: tests/golden's twelve training steps do not move.

The upstream gradient (from_above, a view of the layer's dy) is only read. The in-place
kernels are written for the default activations (σ = sigmoid, tanh); with any other pair the
specification's loop runs.

σ(z) is computed as max(e, [z ≥ 0]) / (1 + e) with e = e^{-|z|} ≤ 1: no exponent is ever
positive (no overflow), and the numerator is 1 for z ≥ 0 and e for z < 0, so this gives exactly
handnet.activations.Sigmoid's values, 1/(1 + e) and e/(1 + e), with one division and no
selection. The LSTM takes σ over a step's whole row [z_i z_f z_c z_o] (contiguous, one pass
per operation) and then writes tanh(z_c) over the g block: cheaper than three strided calls.
"""

import numpy as np

from .. import activations
from ..ops import recurrent_spec


def fused_kernels_apply(sigma, tanh):
    """True when the in-place kernels here compute the layer's activations (the defaults)."""
    return type(sigma) is activations.Sigmoid and type(tanh) is activations.Tanh


def sigmoid_into(z, out, work, positive):
    """out = σ(z), as activations.Sigmoid computes it (see the module docstring). ``work``
    (float) and ``positive`` (bool) are scratch arrays of z's shape; out may not be z."""
    np.abs(z, out=work)
    np.negative(work, out=work)
    np.exp(work, out=work)  # e = e^{-|z|} ≤ 1
    np.greater_equal(z, 0, out=positive)
    np.maximum(work, positive, out=out)  # the numerator: 1 where z ≥ 0, e where z < 0
    np.add(work, 1, out=work)
    np.divide(out, work, out=out)
    return out


class Workspace:
    """Arrays kept from call to call, by name, and handed out again when the shape and dtype
    match: a fresh array of megabytes page-faults on every batch (the lstm step spent 5 ms a
    step in the kernel before). Whatever a pass reads from an array it must write first; the
    next call overwrites it. A layer owns one; a copy of the layer gets its own
    (handnet.layers.recurrent's __copy__)."""

    def __init__(self):
        self.arrays = {}

    def array(self, name, shape, dtype):
        dtype, shape = np.dtype(dtype), tuple(shape)
        found = self.arrays.get(name)
        if found is None or found.shape != shape or found.dtype != dtype:
            found = self.arrays[name] = np.empty(shape, dtype=dtype)
        return found

    def zeros(self, name, shape, dtype):
        found = self.array(name, shape, dtype)
        found.fill(0)
        return found


def _carry(skip_t, keep_t, gradient, carried):
    """Split a gradient at the masked rows: carried = gradient there (0 elsewhere) goes back to
    the state unchanged; gradient becomes 0 there (the skipped step's equations get nothing)."""
    np.copyto(carried, gradient)
    np.copyto(carried, 0, where=keep_t)
    np.copyto(gradient, 0, where=skip_t)


def lstm_forward(z, recurrent_kernel, skip, sigma, tanh, workspace=None, input_bias=None):
    """recurrent_spec.lstm_forward's results, in ``workspace``'s arrays (a fresh Workspace when
    None; see the module docstring). ``input_bias``: b (4U,) when z holds x_t @ W without it;
    it is then added step by step, (x_t @ W + b) + h_{t-1} @ R as in the specification, while
    the step's row is in cache rather than in a pass of its own over all of z."""
    if not fused_kernels_apply(sigma, tanh):
        if input_bias is not None:
            z += input_bias
        return recurrent_spec.lstm_forward(z, recurrent_kernel, skip, sigma, tanh)
    timesteps, batch, width = z.shape
    units = recurrent_kernel.shape[0]
    space, dtype = workspace if workspace is not None else Workspace(), z.dtype
    states = space.array("states", (timesteps + 1, batch, units), dtype)
    cells = space.array("cells", (timesteps + 1, batch, units), dtype)
    states[0], cells[0] = 0, 0  # h_0 = c_0 = 0; every later row is written below
    gates = space.array("gates", (timesteps, 4, batch, units), dtype)  # gate-major, see above
    tanh_cells = space.array("tanh_cells", (timesteps, batch, units), dtype)
    product = space.array("product", (batch, width), dtype)
    work = space.array("work", (batch, width), dtype)
    positive = space.array("positive", (batch, width), bool)
    activated = space.array("activated", (batch, width), dtype)  # [i f g o] of one step
    input_part = space.array("input_part", (batch, units), dtype)  # i · g
    for t in range(timesteps):
        z_t = z[t]
        if input_bias is not None:
            np.add(z_t, input_bias, out=z_t)
        np.matmul(states[t], recurrent_kernel, out=product)
        np.add(z_t, product, out=z_t)
        sigmoid_into(z_t, activated, work, positive)  # i, f and o (and σ(z_c), overwritten:)
        np.tanh(z_t[:, 2 * units : 3 * units], out=activated[:, 2 * units : 3 * units])  # g
        np.copyto(gates[t], activated.reshape(batch, 4, units).transpose(1, 0, 2))
        i, f, g, o = gates[t]
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


def lstm_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh, workspace=None):
    """recurrent_spec.lstm_backward's dz, in ``workspace``'s arrays; from_above is only read."""
    if not fused_kernels_apply(sigma, tanh):
        return recurrent_spec.lstm_backward(
            from_above, recurrent_kernel, cache, skip, sigma, tanh
        )
    z, gates, cells, tanh_cells = cache["z"], cache["gates"], cache["cells"], cache["tanh_cells"]
    batch = z.shape[1]
    units = recurrent_kernel.shape[0]
    recurrent_transposed = recurrent_kernel.T
    space, dtype = workspace if workspace is not None else Workspace(), z.dtype
    dz = space.array("dz", z.shape, dtype)
    dh, dc, scratch = (space.array(name, (batch, units), dtype) for name in ("dh", "dc", "scratch"))
    dh_next = space.zeros("dh_next", (batch, units), dtype)
    dc_next = space.zeros("dc_next", (batch, units), dtype)
    # one step's dz and the slopes σ'/a, tanh', gate-major (4, N, U) like the gates
    dz_by_gate = space.array("dz_by_gate", (4, batch, units), dtype)
    slopes = space.array("slopes", (4, batch, units), dtype)
    if skip is not None:
        keep = ~skip
        carried_h, carried_c = np.empty_like(dh), np.empty_like(dc)
    for t in reversed(range(len(z))):
        i, f, g, o = gates[t]
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
        dz_i, dz_f, dz_c, dz_o = dz_by_gate
        np.multiply(dc, g, out=dz_i)
        np.multiply(dz_i, i, out=dz_i)  # (dc · g) · i, then · (1 - i) below
        np.multiply(dc, cells[t], out=dz_f)
        np.multiply(dz_f, f, out=dz_f)
        np.multiply(dc, i, out=dz_c)  # then · (1 - g²)
        np.multiply(dh, tanh_cell, out=dz_o)
        np.multiply(dz_o, o, out=dz_o)
        np.subtract(1, gates[t], out=slopes)  # 1 - i, 1 - f, (1 - g: replaced), 1 - o
        np.multiply(g, g, out=slopes[2])
        np.subtract(1, slopes[2], out=slopes[2])
        np.multiply(dz_by_gate, slopes, out=dz_by_gate)
        dz_t = dz[t]
        np.copyto(dz_t.reshape(batch, 4, units), dz_by_gate.transpose(1, 0, 2))
        np.multiply(dc, f, out=dc_next)
        np.matmul(dz_t, recurrent_transposed, out=dh_next)
        if skip is not None:
            np.add(dc_next, carried_c, out=dc_next)
            np.add(dh_next, carried_h, out=dh_next)
    return dz


def gru_forward(
    pre, recurrent_kernel, recurrent_bias, skip, sigma, tanh, workspace=None, input_bias=None
):
    """recurrent_spec.gru_forward's results, in ``workspace``'s arrays (a fresh Workspace when
    None; see the module docstring); the gates [z r ĥ] gate-major, (T, 3, N, U).
    ``input_bias``: b_in (3U,) when pre holds x_t @ W without it (added step by step, as in
    lstm_forward)."""
    if not fused_kernels_apply(sigma, tanh):
        if input_bias is not None:
            pre += input_bias
        return recurrent_spec.gru_forward(pre, recurrent_kernel, recurrent_bias, skip, sigma, tanh)
    timesteps, batch, _ = pre.shape
    units = recurrent_kernel.shape[0]
    space, dtype = workspace if workspace is not None else Workspace(), pre.dtype
    states = space.array("states", (timesteps + 1, batch, units), dtype)
    states[0] = 0  # h_0 = 0; every later row is written below
    recurrent = space.array("recurrent", pre.shape, dtype)
    gates = space.array("gates", (timesteps, 3, batch, units), dtype)
    work = space.array("work", (batch, 2 * units), dtype)
    positive = space.array("positive", (batch, 2 * units), bool)
    activated = space.array("activated", (batch, 2 * units), dtype)  # [z r] of one step
    scratch = space.array("scratch", (batch, units), dtype)
    zr = slice(0, 2 * units)
    for t in range(timesteps):
        pre_t, n_t = pre[t], recurrent[t]
        if input_bias is not None:
            np.add(pre_t, input_bias, out=pre_t)  # m_t
        np.matmul(states[t], recurrent_kernel, out=n_t)
        if recurrent_bias is not None:
            np.add(n_t, recurrent_bias, out=n_t)
        np.add(pre_t[:, zr], n_t[:, zr], out=pre_t[:, zr])  # m_z + n_z, m_r + n_r
        sigmoid_into(pre_t[:, zr], activated, work, positive)  # z and r
        np.copyto(gates[t, :2], activated.reshape(batch, 2, units).transpose(1, 0, 2))
        update, reset, candidate = gates[t]
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


def gru_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh, workspace=None):
    """recurrent_spec.gru_backward's (dm, dn), in ``workspace``'s arrays; from_above is only
    read."""
    if not fused_kernels_apply(sigma, tanh):
        return recurrent_spec.gru_backward(from_above, recurrent_kernel, cache, skip, sigma, tanh)
    recurrent, gates, states = cache["recurrent"], cache["gates"], cache["states"]
    batch = states.shape[1]
    units = recurrent_kernel.shape[0]
    recurrent_transposed = recurrent_kernel.T
    space, dtype = workspace if workspace is not None else Workspace(), gates.dtype
    rows = recurrent.shape
    d_input = space.array("d_input", rows, dtype)
    d_recurrent = space.array("d_recurrent", rows, dtype)
    dh, scratch, product = (space.array(name, (batch, units), dtype)
                            for name in ("dh", "backward_scratch", "product_back"))
    dh_next = space.zeros("dh_next", (batch, units), dtype)
    dm_by_gate = space.array("dm_by_gate", (3, batch, units), dtype)  # one step's dm
    if skip is not None:
        keep = ~skip
        carried = np.empty_like(dh)
    for t in reversed(range(len(gates))):
        update, reset, candidate = gates[t]
        d_update, d_reset, d_candidate = dm_by_gate
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
        # dm_t = [da_z | da_r | da_h] and dn_t = [da_z | da_r | da_h · r], as rows
        np.copyto(d_input[t].reshape(batch, 3, units), dm_by_gate.transpose(1, 0, 2))
        np.copyto(d_recurrent[t, :, : 2 * units], d_input[t, :, : 2 * units])
        np.multiply(d_candidate, reset, out=d_recurrent[t, :, 2 * units :])
        np.matmul(d_recurrent[t], recurrent_transposed, out=product)
        np.multiply(dh, update, out=dh_next)
        np.add(dh_next, product, out=dh_next)  # dh · z + dn_t @ Rᵀ
        if skip is not None:
            np.add(dh_next, carried, out=dh_next)
    return d_input, d_recurrent
