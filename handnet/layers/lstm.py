"""LSTM: long short-term memory, with Keras's gate order (i, f, c, o) and weight layout."""

import numpy as np

from .. import activations, initializers
from ..fast import recurrent
from .recurrent import Recurrent


class LSTM(Recurrent):
    """A cell state c_t that gates write to, keep and read, so gradients can cross many steps.

    Each step, with σ = recurrent_activation (sigmoid) and tanh = activation:
        z_t = x_t @ W + h_{t-1} @ R + b = [z_i | z_f | z_c | z_o]     (N, 4U), Keras's order
        i = σ(z_i)   input gate         f = σ(z_f)   forget gate
        g = tanh(z_c) candidate         o = σ(z_o)   output gate
        c_t = f · c_{t-1} + i · g
        h_t = o · tanh(c_t)                                           c_0 = h_0 = 0

    Shapes:  x (N, T, D),  W = kernel (D, 4U),  R = recurrent_kernel (U, 4U),  b = bias (4U,),
             c_t, h_t (N, U);  y = h_T (N, U), or every h_t (N, T, U) with return_sequences.
    ``unit_forget_bias`` starts b_f at 1 (Jozefowicz et al. 2015): the cell keeps its memory
    until training teaches it to forget.

    Backward through time, t = T … 1; dh_t^next and dc_t^next come from step t + 1 (zero at T):
        dh_t = (∂L/∂y at step t) + dh_t^next
        dc_t = dc_t^next + dh_t · o · tanh'(c_t)        c_t reaches the loss through h_t and c_{t+1}
        do = dh_t · tanh(c_t)      di = dc_t · g      dg = dc_t · i      df = dc_t · c_{t-1}
        dz_t = [di · σ'(z_i) | df · σ'(z_f) | dg · tanh'(z_c) | do · σ'(z_o)]     (N, 4U)
        dc_{t-1}^next = dc_t · f
        dh_{t-1}^next = dz_t @ Rᵀ                       one product for all four gates
    then dW = Σ_t x_tᵀ dz_t,  dR = Σ_t h_{t-1}ᵀ dz_t,  db = Σ_t Σ_n dz_t,  dx_t = dz_t @ Wᵀ
    (one product each, see handnet.layers.recurrent).

    Training and predicting (default activations) run the same step, handnet.fast.recurrent's
    unit-major loop: z_t from one product [R; W; b]ᵀ · [h_{t-1}; x_t; 1] a step (4U × N, each
    gate a contiguous block of rows), σ as 1/2 + tanh(z/2)/2 with the halving folded into the
    weights; lstm_inference keeps no cache, lstm_train_forward keeps the gates, cells and
    tanh(c_t), and lstm_train_backward takes BPTT in the same layout: dz_t (4U, N), one
    product R' @ dz_t a step, and d[R; W; b] = Σ_t [h_{t-1}; x_t; 1] dz_tᵀ in ONE product over
    all T·N columns at the end. So predict gives the training outputs to the last bit; both
    differ from the specification's loop (handnet.ops.recurrent_spec) by rounding only, within
    the derived bounds of tests/layers/test_recurrent_spec_vs_fast.py (about 1e-7 seen in
    float32, 1e-16 in float64). Other activations run the specification's loop.

    With a mask m_t (0 = padding) both states are carried: h_t = m_t · h̃_t + (1 - m_t) · h_{t-1}
    and c_t = m_t · c̃_t + (1 - m_t) · c_{t-1}, where h̃_t, c̃_t are the step's equations above.
    Backward, the step's equations get dh̃ = m_t · dh_t and dc̃ = m_t · dc_t (dc_t computed from
    dh̃), so all four dz are 0 at a masked row, and
        dc_{t-1}^next = dc̃ · f + (1 - m_t) · dc_t      dh_{t-1}^next = dz_t @ Rᵀ + (1 - m_t) · dh_t
    """

    gate_count = 4

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def initial_bias(self, rng):
        if not self.unit_forget_bias:
            return super().initial_bias(rng)
        init_bias, units = initializers.get(self.bias_initializer), self.units
        return np.concatenate(
            [
                init_bias((units,), rng, self.dtype),
                np.ones(units, dtype=self.dtype),
                init_bias((2 * units,), rng, self.dtype),
            ]
        )

    def forward_for_backward(self, x, mask=None):
        """The step loop of handnet.fast.recurrent, keeping what backward reads: with the
        default activations its unit-major training loop (lstm_train_forward: the states of
        lstm_inference, the specification's within rounding), else the specification's loop
        (handnet.ops.recurrent_spec.lstm_forward, the equations above one line each)."""
        self._skip = self.skipped_steps(mask, x)
        if self.inference_applies():
            self.check_input(x)
            self._plan = recurrent.lstm_train_forward(
                x, self.params["kernel"], self.params["recurrent_kernel"],
                self.params["bias"] if self.use_bias else None, self._skip,
                workspace=self.workspace(),
            )
            states = self._plan.states()  # (U, T + 1, N)
            if self.return_sequences:
                return np.ascontiguousarray(states[:, 1:].transpose(2, 1, 0))
            return states[:, -1].T.copy()
        self._plan = None
        x_steps, z = self.project_inputs(x, with_bias=False)  # z[t] = x_t @ W; the loop adds
        self._x_steps = x_steps  # b and h_{t-1} @ R, step by step
        self._cache = recurrent.lstm_forward(
            z, self.params["recurrent_kernel"], self._skip, self.recurrent_activation,
            self.cell_activation, workspace=self.workspace(),
            input_bias=self.params["bias"] if self.use_bias else None,
        )
        return self.outputs(self._cache["states"])

    def inference_applies(self):
        return recurrent.fused_kernels_apply(self.recurrent_activation, self.cell_activation)

    def forward_inference(self, x, mask=None):
        """The training forward's outputs, bit for bit (see the class docstring), with no
        cache: handnet.fast.recurrent.lstm_inference."""
        self.check_input(x)
        last, states = recurrent.lstm_inference(
            x, self.params["kernel"], self.params["recurrent_kernel"],
            self.params["bias"] if self.use_bias else None, self.skipped_steps(mask, x),
            workspace=self.workspace(), every_state=self.return_sequences,
        )
        return self.outputs(states) if self.return_sequences else last.copy()

    def backward(self, dy):
        self.ensure_cache()
        if self._plan is not None:
            return self.backward_unit_major(dy)
        dz = recurrent.lstm_backward(
            self.upstream_per_step(dy), self.params["recurrent_kernel"], self._cache, self._skip,
            self.recurrent_activation, self.cell_activation, workspace=self.workspace(),
        )
        return self.finish_backward(self._x_steps, self._cache["states"], dz, dz)

    def backward_unit_major(self, dy):
        """BPTT through lstm_train_forward's cache (handnet.fast.recurrent.lstm_train_backward):
        dR, dW and db from one product over all T·N columns, reordered to Keras's columns;
        dx = dZᵀ W' (W' = W with the columns [o i f c]) in one product."""
        units, plan = self.units, self._plan
        from_above = dy.transpose(1, 0, 2) if self.return_sequences else dy
        stacked, d_gates = recurrent.lstm_train_backward(
            plan, self.params["recurrent_kernel"], from_above, not self.return_sequences
        )
        features = self.params["kernel"].shape[0]
        recurrent.from_unit_major(stacked[:units], self.grads["recurrent_kernel"])
        recurrent.from_unit_major(stacked[units : units + features], self.grads["kernel"])
        if self.use_bias:
            recurrent.from_unit_major(stacked[-1], self.grads["bias"])
        self.add_regularization_gradients()
        if not self.needs_input_gradient:
            return None
        timesteps, batch = plan.shape[:2]
        kernel = recurrent.to_unit_major(self.params["kernel"])
        dx = d_gates.T @ kernel.T  # (T·N, D)
        return dx.reshape(timesteps, batch, features).transpose(1, 0, 2)

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }

    def explain(self):
        return self.explain_steps(
            "[i f g o] = [{sigma} {sigma} {f} {sigma}](x_t @ W + h_(t-1) @ R + b);  "
            "c_t = f·c_(t-1) + i·g;  h_t = o·{f}(c_t)"
        )

    def explain_backward(self, input_shape):
        f, sigma, units = self.cell_activation.name, self.recurrent_activation.name, self.units
        return self.explain_through_time(input_shape, [
            (f"dc_t = dc_t^next + dh_t · o · {f}'(c_t)", (units,)),
            (f"do = dh_t · {f}(c_t),  di = dc_t · g,  dg = dc_t · i,  df = dc_t · c_(t-1)",
             (units,)),
            (f"dz_t = [di·{sigma}'(z_i) | df·{sigma}'(z_f) | dg·{f}'(z_c) | do·{sigma}'(z_o)]",
             (4 * units,)),
            ("dc_(t-1)^next = dc_t · f;  dh_(t-1)^next = dz_t @ Rᵀ", (units,)),
        ])
