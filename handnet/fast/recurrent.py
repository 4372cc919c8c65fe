"""LSTM and GRU step loops without the per-step allocations: the same equations as
``handnet.ops.recurrent_spec``, in the same order of operations, written into buffers. The
training loops (forward with its cache, backward) come first; the inference loops, which keep
no cache and make as few NumPy calls a step as they can, after them; the LSTM's unit-major
training loops, which the layer runs, last.

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

The GRU's training loops (and lstm_forward, lstm_backward below, which the LSTM layer runs
for activations other than its defaults, σ and tanh) take every product and every sum in the
specification's order (a · b · (1 - b) as (a · b) · (1 - b), the same BLAS calls on the same
operands), so their results are the specification's, run with σ =
recurrent_spec.SigmoidThroughTanh, to the last bit. The LSTM layer trains with the unit-major
loops at the end of the file (lstm_train_forward, lstm_train_backward): lstm_inference's step,
and BPTT with one product a step and one for all the weight gradients, within derived
rounding bounds of the specification; tests/golden's twelve training steps stay within their
1e-6.

The upstream gradient (from_above, a view of the layer's dy) is only read. The in-place
kernels are written for the default activations (σ = sigmoid, tanh); with any other pair the
specification's loop runs.

σ(z) is computed as 1/2 + tanh(z/2)/2 (sigmoid_tanh_into): σ in real arithmetic, no exponent
that can overflow, four passes and half the time of the exponential form 1/(1 + e^{-|z|})
(and e/(1 + e) below 0) that activations.Sigmoid computes; the two differ by at most 2u
(u = unit roundoff, 2⁻²⁴ in float32: 1.2e-7), so the layers' training forward is
activations.Sigmoid's LSTM and GRU to within rounding. The LSTM takes σ over a step's whole
row [z_i z_f z_c z_o] (contiguous, one pass per operation) and then writes tanh(z_c) over the
g block: cheaper than three strided calls.
"""

import math

import numpy as np

from .. import activations
from ..ops import recurrent_spec


def fused_kernels_apply(sigma, tanh):
    """True when the in-place kernels here compute the layer's activations (the defaults)."""
    return type(sigma) is activations.Sigmoid and type(tanh) is activations.Tanh


def sigmoid_tanh_into(z, out):
    """out = σ(z) = 1/2 + tanh(z/2)/2 (exact in real arithmetic; no exponent ever overflows):
    four passes against the exponential form's seven, half its time on the lstm's (128,
    512) rows.
    Within 2u (u = unit roundoff: 1.2e-7 in float32) of activations.Sigmoid's values, so the
    loops that take it are recurrent_spec's with σ = recurrent_spec.SigmoidThroughTanh, to
    the last bit. out may be z."""
    half = out.dtype.type(0.5)
    np.multiply(z, half, out)  # exact: a power of two
    np.tanh(out, out)
    np.multiply(out, half, out)
    np.add(out, half, out)
    return out


class Workspace:
    """Arrays kept from call to call, by name, and handed out again when the dtype matches and
    they are large enough (a smaller request gets the front of the kept array, as a view of
    the shape asked for: the short last batch of an epoch or of a predict and the full ones
    share it): a fresh array of megabytes page-faults on every batch (the lstm step spent 5 ms
    a step in the kernel before). Whatever a pass reads from an array it must write first; the
    next call overwrites it, so one pass never asks for one name twice. A layer owns one; a
    copy of the layer gets its own (handnet.layers.recurrent's __copy__)."""

    #: Inference plans kept per loop: the full passes' and the short last pass's.
    PLANS_KEPT = 2

    def __init__(self):
        self.arrays = {}
        self.plans = {}  # an inference loop's buffers and views, by loop (see below)

    def array(self, name, shape, dtype):
        dtype, shape = np.dtype(dtype), tuple(shape)
        found = self.arrays.get(name)
        size = math.prod(shape)
        if found is None or found.dtype != dtype or found.size < size:
            found = self.arrays[name] = np.empty(shape, dtype=dtype)
        if found.shape == shape:
            return found
        return found.reshape(-1)[:size].reshape(shape)

    def zeros(self, name, shape, dtype):
        found = self.array(name, shape, dtype)
        found.fill(0)
        return found

    def plan(self, kind, *key):
        """``kind(*key)`` (a class), kept for the same key: the PLANS_KEPT latest per kind."""
        kept = self.plans.setdefault(kind, [])
        for found in kept:
            if found.key == key:
                return found
        found = kind(*key)
        found.key = key
        kept.insert(0, found)
        del kept[self.PLANS_KEPT :]
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
    activated = space.array("activated", (batch, width), dtype)  # [i f g o] of one step
    input_part = space.array("input_part", (batch, units), dtype)  # i · g
    for t in range(timesteps):
        z_t = z[t]
        if input_bias is not None:
            np.add(z_t, input_bias, out=z_t)
        np.matmul(states[t], recurrent_kernel, out=product)
        np.add(z_t, product, out=z_t)
        sigmoid_tanh_into(z_t, activated)  # i, f and o (and σ(z_c), overwritten:)
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
        sigmoid_tanh_into(pre_t[:, zr], activated)  # z and r
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


# -- inference: no backward pass follows ------------------------------------------------------
#
# Predicting needs no cache, so a step keeps only h_{t-1} and c_{t-1}; what a step costs then
# is its product and the NumPy calls of its gates (at batch 1 each call's fixed cost, ~0.5 µs,
# is most of the step: 28 steps × calls is the layer's latency).
#
# Both loops lay the step out unit-major and take σ through tanh with the halving in the
# weights, so their outputs differ from the training forward's by rounding (the bounds, derived
# and tested: tests/layers/test_recurrent_spec_vs_fast.py's lstm_inference_bound and
# gru_inference_bound; ~1e-7 seen in float32).
#
# The LSTM:
#
#   - one product a step, z_tᵀ = Aᵀ [h_{t-1}; x_t; 1] with A = [R; W; b] (U + D + 1, 4U): no
#     projection of all steps beforehand (its (T, N, 4U) array of 14 MB at N = 1000 written
#     and read again) and no add a step; x_tᵀ is copied once into the rows below h_{t-1}, and
#     h_t written straight into the next step's rows. The first step takes [W; b] alone
#     (h_0 = 0). BLAS reads Aᵀ, a transposed view, as it is (no copy);
#   - unit-major: z_tᵀ is (4U, N), so every gate is a block of rows, contiguous, where in the
#     (N, 4U) rows it is a strided block of columns (NumPy's passes over those cost up to
#     twice as much). A's columns go in the order [o i f g] (a copy of the weights, made
#     again only when the layer's have changed: built_from): σ's gates are the first 3U
#     rows, [i f] meets [g; c_{t-1}] in one multiply, c_{t-1} being kept in the rows just
#     below z_t;
#   - σ through tanh with the halving in A: σ's columns of A are halved (exact, a power of
#     two), so one tanh over all 4U rows gives tanh(z/2) for σ's gates and g = tanh(z_c),
#     and two passes over 3U rows make σ = 1/2 + tanh(z/2)/2: eight calls a step in all.
#
# The GRU: r · n_h needs n_h = h_{t-1} @ R_h + b_rec,h on its own, so a step takes two
# products, n_t = [b_rec; R]ᵀ [1; h_{t-1}] and m_t = [W; b_in]ᵀ [x_t; 1] (no projection of
# all steps beforehand), the columns in the order [h r z] with r's and z's halved. The buffer
# [1; h_{t-1}; ĥ_t] gives both the product's operand and, with [z; 1 - z] (the rows below
# n_t's), the one multiply [z · h_{t-1}; (1 - z) · ĥ]; h_t goes into the other buffer of the
# two. 0.54x the time of the row layout at N = 256, 0.60x at 64, 0.93x at 1 (1 thread).


class LSTMInference:
    """The buffers of lstm_inference for one (T, N, D, U) and dtype, and every view a step
    reads, made once (see above)."""

    def __init__(self, shape, dtype, every_state):
        timesteps, batch, features, units = shape
        depth = units + features + 1
        self.weights = np.empty((depth, 4 * units), dtype)  # A = [R; W; b], columns [o i f c]
        # stacked[t] = [h_t; x_{t+1}; 1] (K, N); h_0 = 0 and the row of ones are written here
        # once (nothing else writes them), the last slot's x rows are never read
        self.stacked = np.empty((timesteps + 1, depth, batch), dtype)
        self.stacked[:, units + features] = 1
        self.stacked[0, :units] = 0
        self.inputs = self.stacked[:timesteps, units : units + features]  # every x_tᵀ (D, N)
        self.states = self.stacked[:, :units].transpose(0, 2, 1) if every_state else None
        # one plane per parity: z_t's [o i f g] rows (4U, N), then c_{t-1} (U, N) below them
        planes = [np.empty((5 * units, batch), dtype) for _ in range(2)]
        self.cells = [plane[4 * units :] for plane in planes]
        pair = np.empty((2 * units, batch), dtype)  # [i · g; f · c_{t-1}]
        tanh_cell = np.empty((units, batch), dtype)
        self.steps = []  # what step t (0-based) reads and writes
        for t in range(timesteps):
            plane, cell = planes[t % 2], self.cells[1 - t % 2]
            self.steps.append((
                self.stacked[t] if t else self.stacked[0, units:],  # [h_{t-1}; x_t; 1]
                plane[: 4 * units],  # z_t, then [tanh(z_o/2) tanh(z_i/2) tanh(z_f/2) g]
                plane[: 3 * units],  # σ's rows: o, i, f
                plane[units : 3 * units],  # i, f
                plane[3 * units :],  # g, c_{t-1}
                pair, pair[units:], pair[:units], cell, tanh_cell,
                plane[:units],  # o
                self.stacked[t + 1, :units],  # h_t
                plane[4 * units :],  # c_{t-1}, for a masked step
                self.stacked[t, :units],  # h_{t-1}, likewise
            ))
        self.last = self.stacked[timesteps, :units].T  # h_T (N, U)
        self.product_all = self.weights.T  # Aᵀ (4U, K), Fortran-ordered: BLAS reads it as is
        self.product_first = self.weights[units:].T  # h_0 = 0: [W; b]ᵀ (4U, D + 1) alone
        self.half = np.dtype(dtype).type(0.5)
        self.sources = None  # copies of what self.weights was made from (built_from)


def built_from(plan, sources):
    """Whether the plan's weights were made from arrays bit for bit equal to ``sources`` (the
    layer's kernel, recurrent kernel and bias, or None); if not, copies of them are kept for
    the next call, which the caller is to make the weights from. A predict then rebuilds the
    reordered, halved weights only when the layer's changed: at batch 1 the rebuild was a
    sixth of the lstm's call (46 µs against 13 for the comparison). Compared, not tracked:
    an optimizer, set_weights or a learner's own ``params["kernel"][...] = …`` all write in
    place."""
    kept = plan.sources
    if kept is not None and all(map(_same_bits, kept, sources)):
        return True
    plan.sources = tuple(None if a is None else a.copy() for a in sources)
    return False


def _same_bits(a, b):
    if a is None or b is None:
        return a is b
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    unsigned = np.dtype(f"u{a.dtype.itemsize}")  # NaN's and -0's bits compared as they are
    return bool(np.array_equal(a.view(unsigned), b.view(unsigned)))


def lstm_inference_weights(kernel, recurrent_kernel, bias, out):
    """out (U + D + 1, 4U) = [R; W; b] (b = 0 when None) with the gate columns reordered from
    Keras's [i f c o] to [o i f c], and those of σ's gates halved (exact: a power of two)."""
    units = recurrent_kernel.shape[0]
    half = out.dtype.type(0.5)
    sources = (recurrent_kernel, kernel, None if bias is None else bias[None])
    targets = (out[:units], out[units:-1], out[-1:])
    for source, target in zip(sources, targets):
        if source is None:
            target.fill(0)
            continue
        np.multiply(source[:, 3 * units :], half, target[:, :units])  # o
        np.multiply(source[:, : 2 * units], half, target[:, units : 3 * units])  # i, f
        np.copyto(target[:, 3 * units :], source[:, 2 * units : 3 * units])  # c
    return out


def lstm_inference(x, kernel, recurrent_kernel, bias, skip, workspace=None, every_state=False):
    """The LSTM's states with no cache (see above): x (N, T, D), kernel W (D, 4U),
    recurrent_kernel R (U, 4U), bias b (4U,) or None, skip (T, N, 1) or None. -> (h_T (N, U),
    every state (T + 1, N, U) or None), views of ``workspace``'s arrays (the next call
    overwrites them). recurrent_spec.lstm_forward's states to within rounding: the bound is
    derived in tests/layers/test_recurrent_spec_vs_fast.py."""
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    space = workspace if workspace is not None else Workspace()
    dtype = np.result_type(x.dtype, kernel.dtype)
    plan = space.plan(LSTMInference, (timesteps, batch, features, units), dtype, every_state)
    if not built_from(plan, (kernel, recurrent_kernel, bias)):
        lstm_inference_weights(kernel, recurrent_kernel, bias, plan.weights)
    np.copyto(plan.inputs, x.transpose(1, 2, 0))  # x_t as (D, N), every step
    plan.cells[0].fill(0)  # c_0; c_t then goes to the other plane, turn by turn
    half, product_all, product_first = plan.half, plan.product_all, plan.product_first
    kept = [None] * timesteps if skip is None else skip.transpose(0, 2, 1)  # (T, 1, N)
    _lstm_steps(plan.steps, product_all, product_first, half, kept)
    return plan.last, plan.states


def _lstm_steps(steps, product_all, product_first, half, kept, copy_source=False):
    """The steps of the unit-major LSTM, lstm_inference's and lstm_train_forward's, in the views
    a plan made (one loop here, not a call a step: at batch 1 a call's cost is a step's).
    kept[t]: (1, N) bool, where a masked step keeps c_{t-1} and h_{t-1}, or None.
    copy_source: make each step's [h; x_t; 1] contiguous first (see lstm_train_forward)."""
    matmul, add, multiply, tanh, copyto = np.matmul, np.add, np.multiply, np.tanh, np.copyto
    for t, (source, z, sigmoid, i_f, g_c, pair, kept_part, input_part, cell, tanh_cell, o,
            state, previous_cell, previous_state) in enumerate(steps):  # fmt: skip
        if copy_source:
            source = source.copy()
        matmul(product_all if t else product_first, source, out=z)  # z_t, σ's rows halved
        tanh(z, z)
        multiply(sigmoid, half, sigmoid)
        add(sigmoid, half, sigmoid)  # σ(z) = 1/2 + tanh(z / 2) / 2: o, i, f
        multiply(i_f, g_c, pair)
        add(kept_part, input_part, cell)  # c_t = f · c_{t-1} + i · g
        tanh(cell, tanh_cell)
        multiply(o, tanh_cell, state)  # h_t = o · tanh(c_t)
        if kept[t] is not None:  # a masked step keeps c_{t-1} and h_{t-1}
            copyto(cell, previous_cell, where=kept[t])
            copyto(state, previous_state, where=kept[t])


class GRUInference:
    """The buffers of gru_inference for one (T, N, D, U) and dtype, and every view a step
    reads, made once (see above)."""

    def __init__(self, shape, dtype, every_state):
        timesteps, batch, features, units = shape
        self.recurrent_weights = np.empty((units + 1, 3 * units), dtype)  # [b_rec; R]
        self.input_weights = np.empty((features + 1, 3 * units), dtype)  # [W; b_in]
        self.inputs = np.empty((timesteps, features + 1, batch), dtype)  # [x_t; 1]
        self.inputs[:, features] = 1  # never written again
        self.x_rows = self.inputs[:, :features]
        # two buffers, turn by turn: [1; h_{t-1}; ĥ_t] (2U + 1, N), the ones row made here
        blocks = [np.empty((2 * units + 1, batch), dtype) for _ in range(2)]
        for block in blocks:
            block[0] = 1
        self.first_state = blocks[0][1 : units + 1]  # h_0 = 0, written each call (h_2 lands there)
        recurrent = np.empty((4 * units, batch), dtype)  # [n_h; n_r; n_z], then 1 - z
        projected = np.empty((3 * units, batch), dtype)  # [m_h; m_r; m_z]
        pair = np.empty((2 * units, batch), dtype)  # [z · h_{t-1}; (1 - z) · ĥ]
        reset_part = np.empty((units, batch), dtype)
        self.states = np.empty((timesteps + 1, units, batch), dtype) if every_state else None
        if every_state:
            self.states[0] = 0
        self.steps = []
        for t in range(timesteps):
            block, following = blocks[t % 2], blocks[1 - t % 2]
            self.steps.append((
                block[: units + 1],  # [1; h_{t-1}]
                recurrent[: 3 * units], self.inputs[t], projected,
                projected[units:], recurrent[units : 3 * units],  # [m_r; m_z], [a_r; a_z]
                recurrent[units : 2 * units], recurrent[:units], reset_part,  # r, n_h
                projected[:units], block[units + 1 :],  # m_h, ĥ
                recurrent[2 * units : 3 * units], recurrent[3 * units :],  # z, 1 - z
                recurrent[2 * units :], block[1:], pair, pair[:units], pair[units:],
                following[1 : units + 1],  # h_t
                block[1 : units + 1],  # h_{t-1}, for a masked step
            ))
        self.last = blocks[timesteps % 2][1 : units + 1].T
        self.recurrent_product = self.recurrent_weights.T  # Fortran-ordered views for BLAS
        self.input_product = self.input_weights.T
        self.half, self.one = np.dtype(dtype).type(0.5), np.dtype(dtype).type(1)
        self.sources = None  # copies of what the weights were made from (built_from)


def gru_unit_major_weights(source, out, units):
    """out[...] = source's columns from Keras's [z r h] to [h r z], σ's (z, r) halved."""
    half = out.dtype.type(0.5)
    np.copyto(out[:, :units], source[:, 2 * units :])  # h
    np.multiply(source[:, units : 2 * units], half, out[:, units : 2 * units])  # r
    np.multiply(source[:, :units], half, out[:, 2 * units :])  # z


def gru_inference(x, kernel, recurrent_kernel, bias, skip, workspace=None, every_state=False):
    """The GRU's states with no cache (see above): x (N, T, D), kernel W (D, 3U),
    recurrent_kernel R (U, 3U), bias [b_in; b_rec] (2, 3U) or None, skip (T, N, 1) or None. ->
    (h_T (N, U), every state (T + 1, N, U) or None), views of ``workspace``'s arrays (the next
    call overwrites them). recurrent_spec.gru_forward's states to within rounding: the bound
    is derived in tests/layers/test_recurrent_spec_vs_fast.py."""
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    space = workspace if workspace is not None else Workspace()
    dtype = np.result_type(x.dtype, kernel.dtype)
    plan = space.plan(GRUInference, (timesteps, batch, features, units), dtype, every_state)
    rows_r, rows_w = plan.recurrent_weights, plan.input_weights
    if not built_from(plan, (kernel, recurrent_kernel, bias)):
        gru_unit_major_weights(recurrent_kernel, rows_r[1:], units)
        gru_unit_major_weights(kernel, rows_w[:features], units)
        if bias is None:
            rows_r[0], rows_w[features] = 0, 0
        else:
            gru_unit_major_weights(bias[1][None], rows_r[:1], units)
            gru_unit_major_weights(bias[0][None], rows_w[features:], units)
    np.copyto(plan.x_rows, x.transpose(1, 2, 0))
    plan.first_state.fill(0)
    half, one, states = plan.half, plan.one, plan.states
    recurrent_product, input_product = plan.recurrent_product, plan.input_product
    kept = [None] * timesteps if skip is None else skip.transpose(0, 2, 1)
    matmul, add, multiply, tanh = np.matmul, np.add, np.multiply, np.tanh
    for t, (source, n, x_t, m, m_rz, a_rz, r, n_h, reset_part, m_h, candidate, z, complement,
            blend, previous_and_candidate, pair, kept_part, new_part, state,
            previous) in enumerate(plan.steps):  # fmt: skip
        matmul(recurrent_product, source, out=n)  # n_t = [b_rec; R]ᵀ [1; h_{t-1}]
        matmul(input_product, x_t, out=m)  # m_t = [W; b_in]ᵀ [x_t; 1]
        add(m_rz, a_rz, a_rz)  # (m_r + n_r, m_z + n_z) / 2
        tanh(a_rz, a_rz)
        multiply(a_rz, half, a_rz)
        add(a_rz, half, a_rz)  # r, z
        multiply(r, n_h, reset_part)
        add(m_h, reset_part, reset_part)  # m_h + r · n_h
        tanh(reset_part, candidate)  # ĥ
        np.subtract(one, z, complement)
        multiply(blend, previous_and_candidate, pair)
        add(kept_part, new_part, state)  # h_t = z · h_{t-1} + (1 - z) · ĥ
        if kept[t] is not None:  # a masked step keeps h_{t-1}
            np.copyto(state, previous, where=kept[t])
        if states is not None:
            np.copyto(states[t + 1], state)
    return plan.last, None if states is None else states.transpose(0, 2, 1)


# -- the LSTM's training loops, unit-major --------------------------------------------------
#
# The forward is lstm_inference's step, operation for operation (so its states are
# lstm_inference's to the last bit, and within the same derived bound of the specification's:
# tests/layers/test_recurrent_spec_vs_fast.py), keeping what backward reads. Everything is
# unit-major, a step's N sequences along the columns, and laid out so that the sums over all
# steps are single products:
#
#     stacked S (K, (T + 1)·N), K = U + D + 1: column block t = [h_{t-1}; x_t; 1], so step
#         t's product is A @ S_t (A = [R; W; b]ᵀ, σ's rows halved) and h_t goes into block t+1
#     planes P (T + 1, 5U, N): plane t = [o i f g] of step t (σ and tanh applied in place
#         over z_t), then c_{t-1} (c_0 = 0), so that [i; f] · [g; c_{t-1}] is one multiply
#     tanh_cells (T, U, N)
#
# Backward through time writes dz_t (4U, N), rows [o i f g], into column block t of
# dZ (4U, T·N): each gate a contiguous block of rows, the specification's elementwise
# operations in the specification's order (σ' = a · (1 - a), tanh' = 1 - a²), then
# dh_{t-1}^next = R' @ dz_t (R' = R with the columns [o i f c], U × 4U) — the one product
# of a step. After the loop ONE product gives dR, dW and db together:
#
#     d[R; W; b] = S[:, :T·N] @ dZᵀ     (K, 4U) = Σ_t [h_{t-1}; x_t; 1] dz_tᵀ
#
# then reordered to Keras's [i f c o] columns. The products sum in other orders than the
# specification's (dz_t @ Rᵀ, Xᵀ dZ, np.sum), so dz and the gradients differ from it by
# rounding: the derived bound in the tests (lstm_backward_bound).

#: Keras's gate blocks [i f c o] -> the unit-major order [o i f c]: block k of the latter
#: is block UNIT_MAJOR[k] of the former.
UNIT_MAJOR = (3, 0, 1, 2)


class LSTMTraining:
    """The buffers of the LSTM's training loops for one (T, N, D, U) and dtype, with every
    view a step reads, made once (see above); kept in the layer's Workspace, so the next
    batch of the same shape overwrites them."""

    def __init__(self, shape, dtype):
        timesteps, batch, features, units = shape
        depth, span = units + features + 1, timesteps * batch
        self.shape = shape
        self.weights = np.empty((depth, 4 * units), dtype)  # [R; W; b], lstm_inference_weights
        self.stacked = np.empty((depth, (timesteps + 1) * batch), dtype)
        self.stacked[units + features] = 1  # the row of ones (b's), written once
        self.stacked[:units, :batch] = 0  # h_0
        self.inputs = self.stacked[units : units + features, :span].reshape(
            features, timesteps, batch
        )  # x_t in column block t
        self.planes = np.empty((timesteps + 1, 5 * units, batch), dtype)
        self.planes[0, 4 * units :] = 0  # c_0
        self.tanh_cells = np.empty((timesteps, units, batch), dtype)
        self.d_gates = np.empty((4 * units, span), dtype)  # dZ, column block t = dz_t
        self.recurrent = np.empty((units, 4 * units), dtype)  # R', columns [o i f c]
        pair = np.empty((2 * units, batch), dtype)  # [i · g; f · c_{t-1}]
        slopes = np.empty((4 * units, batch), dtype)  # [1 - o; 1 - i; 1 - f; 1 - g²]
        partial = np.empty((4 * units, batch), dtype)  # dz_t before the slopes
        self.vectors = [np.empty((units, batch), dtype) for _ in range(7)]
        self.half = np.dtype(dtype).type(0.5)
        blocks = [slice(t * batch, (t + 1) * batch) for t in range(timesteps + 1)]
        self.forward_steps, self.backward_steps = [], []
        for t in range(timesteps):
            plane, tanh_cell = self.planes[t], self.tanh_cells[t]
            state, previous_state = self.stacked[:units, blocks[t + 1]], self.stacked[:units,
                                                                                        blocks[t]]
            cell = self.planes[t + 1, 4 * units :]
            self.forward_steps.append((
                self.stacked[:, blocks[t]] if t else self.stacked[units:, blocks[0]],
                plane[: 4 * units],  # z_t, then [tanh(z_o/2) tanh(z_i/2) tanh(z_f/2) g]
                plane[: 3 * units],  # σ's rows: o, i, f
                plane[units : 3 * units],  # i, f
                plane[3 * units :],  # g, c_{t-1}
                pair, pair[units:], pair[:units], cell, tanh_cell,
                plane[:units],  # o
                state, plane[4 * units :], previous_state,  # h_t; c_{t-1}, h_{t-1}: masks
            ))
            self.backward_steps.append((
                plane[:units], plane[units : 2 * units], plane[2 * units : 3 * units],
                plane[3 * units : 4 * units], tanh_cell,
                plane[: 3 * units], plane[3 * units :].reshape(2, units, batch),
                self.d_gates[:, blocks[t]],
                partial, partial[:units], partial[units : 3 * units].reshape(2, units, batch),
                partial[: 3 * units], partial[3 * units :],
                slopes, slopes[: 3 * units], slopes[3 * units :],
            ))

    def states(self):
        """Every state h_0 … h_T, a (U, T + 1, N) view."""
        timesteps, batch, _, units = self.shape
        return self.stacked[:units].reshape(units, timesteps + 1, batch)


def lstm_train_forward(x, kernel, recurrent_kernel, bias, skip, workspace=None):
    """The LSTM's training forward (see above): x (N, T, D), W (D, 4U), R (U, 4U), b (4U,) or
    None, skip (T, N, 1) or None. -> the LSTMTraining plan holding the cache; its states()
    are lstm_inference's, bit for bit (and so the specification's within the bound tested)."""
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    space = workspace if workspace is not None else Workspace()
    dtype = np.result_type(x.dtype, kernel.dtype)
    plan = space.plan(LSTMTraining, (timesteps, batch, features, units), dtype)
    lstm_inference_weights(kernel, recurrent_kernel, bias, plan.weights)
    np.copyto(plan.inputs, x.transpose(2, 1, 0))
    plan.skip = None if skip is None else skip.transpose(0, 2, 1)  # (T, 1, N)
    kept = [None] * timesteps if skip is None else plan.skip
    half, product_all, product_first = plan.half, plan.weights.T, plan.weights[units:].T
    # At batch 1 the step's input is a strided column, which NumPy multiplies otherwise than
    # lstm_inference's contiguous one: copied, the two give the same bits.
    _lstm_steps(plan.forward_steps, product_all, product_first, half, kept, batch == 1)
    return plan


def lstm_train_backward(plan, recurrent_kernel, from_above, last_only):
    """BPTT through lstm_train_forward's plan (see above). from_above: ∂L/∂h_t, (T, N, U)
    time-major, or with ``last_only`` ∂L/∂h_T (N, U) alone (the other steps get 0 from
    above); only read. -> (d[R; W; b] (K, 4U) in the unit-major column order [o i f c],
    dZ (4U, T·N)), views of the plan's arrays."""
    timesteps, batch, features, units = plan.shape
    for k, source in enumerate(UNIT_MAJOR):  # R' = R with the columns [o i f c]
        np.copyto(plan.recurrent[:, k * units : (k + 1) * units],
                  recurrent_kernel[:, source * units : (source + 1) * units])
    dh, dh_next, dc, dc_next, scratch, carried_h, carried_c = plan.vectors
    dh_next.fill(0)
    dc_next.fill(0)
    skip = plan.skip
    keep = None if skip is None else ~skip
    recurrent = plan.recurrent
    matmul, add, multiply, subtract = np.matmul, np.add, np.multiply, np.subtract
    for t in reversed(range(timesteps)):
        (o, i, f, g, tanh_cell, sigmoid_gates, g_c, dz, partial, partial_o, partial_i_f,
         partial_sigmoid, partial_g, slopes, slopes_sigmoid, slopes_g) = plan.backward_steps[t]
        if not last_only:
            add(from_above[t].T, dh_next, out=dh)
        elif t == timesteps - 1:
            np.copyto(dh, from_above.T)
        else:  # nothing from above: dh_t = dh_t^next; the buffers trade places
            dh, dh_next = dh_next, dh
        if skip is not None:  # masked rows: dh and dc go back as they are, dz gets 0
            _carry(skip[t], keep[t], dh, carried_h)
        # dc = dc_next + (dh · o) · (1 - tanh(c_t)²)
        multiply(dh, o, out=dc)
        multiply(tanh_cell, tanh_cell, out=scratch)
        subtract(1, scratch, out=scratch)
        multiply(dc, scratch, out=dc)
        add(dc_next, dc, out=dc)
        if skip is not None:
            _carry(skip[t], keep[t], dc, carried_c)
        # dz_t's factors in a contiguous block, then one multiply by the slopes into dZ
        # (NumPy's passes over a strided block cost one inner loop per row)
        multiply(dh, tanh_cell, out=partial_o)  # dh · tanh(c_t)
        multiply(dc, g_c, out=partial_i_f)  # dc · [g; c_{t-1}]
        multiply(dc, i, out=partial_g)  # dc · i
        multiply(partial_sigmoid, sigmoid_gates, out=partial_sigmoid)  # · [o i f]
        subtract(1, sigmoid_gates, out=slopes_sigmoid)
        multiply(g, g, out=slopes_g)
        subtract(1, slopes_g, out=slopes_g)
        multiply(partial, slopes, out=dz)  # σ' = a(1 - a), tanh' = 1 - g²: rows [o i f g]
        if t == 0:  # dh_0, dc_0: nothing reads them (h_0 = c_0 = 0 are no layer's output)
            break
        multiply(dc, f, out=dc_next)
        matmul(recurrent, dz, out=dh_next)
        if skip is not None:
            add(dc_next, carried_c, out=dc_next)
            add(dh_next, carried_h, out=dh_next)
    return plan.stacked[:, : timesteps * batch] @ plan.d_gates.T, plan.d_gates


def from_unit_major(source, out):
    """Columns [o i f c] (…, 4U) -> Keras's [i f c o] into ``out``."""
    units = source.shape[-1] // 4
    for k, target in enumerate(UNIT_MAJOR):
        np.copyto(out[..., target * units : (target + 1) * units],
                  source[..., k * units : (k + 1) * units])
    return out


def to_unit_major(source):
    """Keras's columns [i f c o] (…, 4U) -> a new array with the columns [o i f c]."""
    units = source.shape[-1] // 4
    return np.concatenate(
        [source[..., k * units : (k + 1) * units] for k in UNIT_MAJOR], axis=-1
    )
