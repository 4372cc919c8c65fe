"""SimpleRNN: the plain recurrence h_t = f(x_t W + h_{t-1} R + b)."""

import numpy as np

from .recurrent import Recurrent


class SimpleRNN(Recurrent):
    """h_t = f(a_t),  a_t = x_t @ W + h_{t-1} @ R + b,  h_0 = 0,  f = tanh by default.

    Shapes:  x (N, T, D),  W = kernel (D, U),  R = recurrent_kernel (U, U),  b = bias (U,),
             h_t (N, U);  y = h_T (N, U), or every h_t (N, T, U) with return_sequences.

    Backward through time, t = T … 1, given ∂L/∂y:
        dh_t = (∂L/∂y at step t) + dh_t^next        the state feeds the output and step t + 1
        da_t = dh_t · f'(a_t)
        dh_{t-1}^next = da_t @ Rᵀ                   what step t sends back (dh_T^next = 0)
    then dW = Σ_t x_tᵀ da_t,  dR = Σ_t h_{t-1}ᵀ da_t,  db = Σ_t Σ_n da_t,  dx_t = da_t @ Wᵀ
    (one product each, see handnet.layers.recurrent).

    With a mask m_t (0 = padding): h_t = m_t · f(a_t) + (1 - m_t) · h_{t-1}, so backward
        da_t = m_t · dh_t · f'(a_t)      dh_{t-1}^next = da_t @ Rᵀ + (1 - m_t) · dh_t
    — a masked step passes dh_t on unchanged, and gives nothing to W, R, b or x_t.
    """

    gate_count = 1

    def forward_for_backward(self, x, mask=None):
        x_steps, pre_activations = self.project_inputs(x)
        skip = self._skip = self.skipped_steps(mask, x)
        timesteps, batch, _ = pre_activations.shape
        recurrent_kernel, f = self.params["recurrent_kernel"], self.cell_activation
        states = np.zeros((timesteps + 1, batch, self.units), dtype=pre_activations.dtype)
        for t in range(timesteps):
            pre_activations[t] += states[t] @ recurrent_kernel
            states[t + 1] = f.forward(pre_activations[t])
            if skip is not None:  # a masked step keeps h_{t-1}
                np.copyto(states[t + 1], states[t], where=skip[t])
        self._x_steps, self._pre_activations, self._states = x_steps, pre_activations, states
        return self.outputs(states)

    def forward_inference(self, x, mask=None):
        """The same outputs with no cache: three calls a step into reused buffers, the state
        ping-ponging between two (or written into its row of every state)."""
        _, pre_activations = self.project_inputs(x)
        skip = self.skipped_steps(mask, x)
        timesteps, batch, _ = pre_activations.shape
        recurrent_kernel, f = self.params["recurrent_kernel"], self.cell_activation
        space, dtype = self.workspace(), pre_activations.dtype
        product = space.array("inference_product", (batch, self.units), dtype)
        if self.return_sequences:
            states = space.array("inference_states", (timesteps + 1, batch, self.units), dtype)
            rows = list(states)
        else:
            twins = [space.array(f"inference_state{k}", (batch, self.units), dtype) for k in (0, 1)]
            rows = [twins[t % 2] for t in range(timesteps + 1)]
        rows[0][...] = 0
        for t in range(timesteps):
            np.matmul(rows[t], recurrent_kernel, out=product)
            np.add(pre_activations[t], product, product)  # a_t
            activated = f.forward(product, out=rows[t + 1])
            if activated is not rows[t + 1]:  # an activation that ignores out (linear)
                rows[t + 1][...] = activated
            if skip is not None:  # a masked step keeps h_{t-1}
                np.copyto(rows[t + 1], rows[t], where=skip[t])
        return self.outputs(states) if self.return_sequences else rows[timesteps].copy()

    def backward(self, dy):
        self.ensure_cache()
        from_above = self.upstream_per_step(dy)
        recurrent_kernel, f = self.params["recurrent_kernel"], self.cell_activation
        pre_activations, states = self._pre_activations, self._states
        d_pre_activations = np.empty_like(pre_activations)
        dh_next, skip = np.zeros_like(states[0]), self._skip
        for t in reversed(range(len(pre_activations))):
            dh = from_above[t] + dh_next
            if skip is not None:  # masked rows: dh goes to h_{t-1} as is, the step gets 0
                carried, dh = np.where(skip[t], dh, 0), np.where(skip[t], 0, dh)
            # (at a masked row states[t + 1] is the carried state, but its dh is 0 there)
            d_pre_activations[t] = f.backward(dh, pre_activations[t], states[t + 1])
            dh_next = d_pre_activations[t] @ recurrent_kernel.T
            if skip is not None:
                dh_next += carried
        return self.finish_backward(self._x_steps, states, d_pre_activations, d_pre_activations)

    def explain(self):
        return self.explain_steps("h_t = {f}(x_t @ W + h_(t-1) @ R + b)")

    def explain_backward(self, input_shape):
        f, units = self.cell_activation.name, self.units
        return self.explain_through_time(input_shape, [
            (f"da_t = dh_t · {f}'(a_t);  dh_(t-1)^next = da_t @ Rᵀ", (units,)),
        ], "da")
