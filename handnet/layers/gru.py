"""GRU: the gated recurrent unit, as Keras 3 computes it by default (reset_after=True)."""

import numpy as np

from .. import activations, initializers
from ..errors import HandnetError
from .base import weight_gradient
from .recurrent import Recurrent


class GRU(Recurrent):
    """An update gate z blends the old state with a candidate; a reset gate r decides how much
    of the old state the candidate sees.

    Each step, with σ = recurrent_activation (sigmoid) and tanh = activation, in Keras's gate
    order (z, r, h) and with reset_after=True (the reset gate applied after the product, as
    Keras 3 and cuDNN do; it keeps one product per step for all three gates):
        m_t = x_t @ W + b_in       = [m_z | m_r | m_h]      (N, 3U)
        n_t = h_{t-1} @ R + b_rec  = [n_z | n_r | n_h]      (N, 3U)
        z = σ(m_z + n_z)        r = σ(m_r + n_r)
        ĥ = tanh(m_h + r · n_h)
        h_t = z · h_{t-1} + (1 - z) · ĥ                     h_0 = 0

    Shapes:  x (N, T, D),  W = kernel (D, 3U),  R = recurrent_kernel (U, 3U),
             bias (2, 3U) = [b_in; b_rec],  h_t (N, U);  y = h_T (N, U), or (N, T, U).

    Backward through time, t = T … 1; dh_t^next comes from step t + 1 (zero at T):
        dh_t = (∂L/∂y at step t) + dh_t^next
        dz = dh_t · (h_{t-1} - ĥ)        dĥ = dh_t · (1 - z)
        da_h = dĥ · tanh'(m_h + r · n_h)
        dr = da_h · n_h
        da_z = dz · σ'(m_z + n_z)        da_r = dr · σ'(m_r + n_r)
        dm_t = [da_z | da_r | da_h]       dn_t = [da_z | da_r | da_h · r]
        dh_{t-1}^next = dh_t · z + dn_t @ Rᵀ
    then dW = Σ_t x_tᵀ dm_t,  dR = Σ_t h_{t-1}ᵀ dn_t,  db_in = Σ dm_t,  db_rec = Σ dn_t,
    dx_t = dm_t @ Wᵀ (one product each, see handnet.layers.recurrent).

    With a mask m_t (0 = padding): h_t = m_t · h̃_t + (1 - m_t) · h_{t-1}, h̃_t the step above;
    backward, the step's equations get dh̃ = m_t · dh_t (so dm_t = dn_t = 0 at a masked row) and
        dh_{t-1}^next = dh̃ · z + dn_t @ Rᵀ + (1 - m_t) · dh_t
    """

    gate_count = 3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        reset_after=True,
        **kwargs,
    ):
        if not reset_after:
            raise HandnetError(
                "GRU supports reset_after=True only (Keras 3's default: the reset gate multiplies "
                "h_{t-1} @ R after the product)"
            )
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = True

    def initial_bias(self, rng):
        init_bias = initializers.get(self.bias_initializer)
        return init_bias((2, self.gate_count * self.units), rng, self.dtype)

    def input_bias(self):
        return self.params["bias"][0]

    def forward(self, x, training=False, mask=None):
        # pre[t] starts as m_t; the loop adds the recurrent terms, leaving the pre-activations
        # [m_z + n_z | m_r + n_r | m_h + r · n_h] there.
        x_steps, pre = self.project_inputs(x)
        skip = self._skip = self.skipped_steps(mask, x)
        timesteps, batch, _ = pre.shape
        units, recurrent_kernel = self.units, self.params["recurrent_kernel"]
        sigma, tanh = self.recurrent_activation, self.cell_activation
        states = np.zeros((timesteps + 1, batch, units), dtype=pre.dtype)
        recurrent = np.empty_like(pre)  # n_t of every step: backward needs n_h
        gates = np.empty_like(pre)  # [z | r | ĥ] of every step
        for t in range(timesteps):
            np.matmul(states[t], recurrent_kernel, out=recurrent[t])
            if self.use_bias:
                recurrent[t] += self.params["bias"][1]
            n_z, n_r, n_h = self.gates_of(recurrent[t])
            pre_update, pre_reset, pre_candidate = self.gates_of(pre[t])
            update, reset, candidate = self.gates_of(gates[t])
            pre_update += n_z
            pre_reset += n_r
            update[...] = sigma.forward(pre_update)
            reset[...] = sigma.forward(pre_reset)
            pre_candidate += reset * n_h
            candidate[...] = tanh.forward(pre_candidate)
            states[t + 1] = update * states[t] + (1 - update) * candidate
            if skip is not None:  # a masked step keeps h_{t-1}
                np.copyto(states[t + 1], states[t], where=skip[t])
        self._x_steps, self._pre, self._recurrent = x_steps, pre, recurrent
        self._gates, self._states = gates, states
        return self.outputs(states)

    def backward(self, dy):
        from_above = self.upstream_per_step(dy)
        recurrent_kernel = self.params["recurrent_kernel"]
        sigma, tanh = self.recurrent_activation, self.cell_activation
        pre, recurrent, gates, states = self._pre, self._recurrent, self._gates, self._states
        d_input = np.empty_like(pre)  # dm_t
        d_recurrent = np.empty_like(pre)  # dn_t
        dh_next, skip = np.zeros_like(states[0]), self._skip
        for t in reversed(range(len(pre))):
            update, reset, candidate = self.gates_of(gates[t])
            pre_update, pre_reset, pre_candidate = self.gates_of(pre[t])
            d_update, d_reset, d_candidate = self.gates_of(d_input[t])
            dh = from_above[t] + dh_next
            if skip is not None:  # masked rows: dh goes to h_{t-1} as is, the step gets 0
                carried, dh = np.where(skip[t], dh, 0), np.where(skip[t], 0, dh)
            d_candidate[...] = tanh.backward(dh * (1 - update), pre_candidate, candidate)
            d_update[...] = sigma.backward(dh * (states[t] - candidate), pre_update, update)
            n_h = self.gates_of(recurrent[t])[2]
            d_reset[...] = sigma.backward(d_candidate * n_h, pre_reset, reset)
            d_recurrent[t] = d_input[t]
            self.gates_of(d_recurrent[t])[2][...] *= reset
            dh_next = dh * update + d_recurrent[t] @ recurrent_kernel.T
            if skip is not None:
                dh_next += carried
        return self.finish_backward(self._x_steps, states, d_input, d_recurrent)

    def fill_bias_gradient(self, d_input, d_recurrent):
        np.sum(d_input, axis=(0, 1), out=self.grads["bias"][0])
        np.sum(d_recurrent, axis=(0, 1), out=self.grads["bias"][1])

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }

    def explain(self):
        return self.explain_steps(
            "[z r] = {sigma}(x_t @ W_zr + b_zr + h_(t-1) @ R_zr + b'_zr);  "
            "ĥ = {f}(x_t @ W_h + b_h + r·(h_(t-1) @ R_h + b'_h));  h_t = z·h_(t-1) + (1 - z)·ĥ"
        )

    def explain_backward(self, input_shape):
        f, sigma, units = self.cell_activation.name, self.recurrent_activation.name, self.units
        return self.explain_through_time(input_shape, [
            ("dz = dh_t · (h_(t-1) - ĥ),  dĥ = dh_t · (1 - z)", (units,)),
            (f"da_h = dĥ · {f}'(m_h + r · n_h),  dr = da_h · n_h", (units,)),
            (f"da_z = dz · {sigma}'(m_z + n_z),  da_r = dr · {sigma}'(m_r + n_r)", (units,)),
            ("dm_t = [da_z | da_r | da_h],  dn_t = [da_z | da_r | da_h · r]", (3 * units,)),
            ("dh_(t-1)^next = dh_t · z + dn_t @ Rᵀ", (units,)),
        ], "dm", "dn")

    def explain_bias_gradient(self, d_input, d_recurrent):
        formula = "db = [Σ_(t,n) dm_t[n]; Σ_(t,n) dn_t[n]]   (b_in; b_rec)"
        return weight_gradient(self, "bias", formula, "b")
