"""GRU: the gated recurrent unit, as Keras 3 computes it by default (reset_after=True)."""

import numpy as np

from .. import activations, initializers
from ..fast import recurrent
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

    Predicting (training=False) runs handnet.fast.recurrent.gru_inference: unit-major, the
    products with their biases, σ as 1/2 + tanh(z/2)/2 (as the training loop takes it too).
    Its outputs differ from the training forward's by rounding only, within the first-order
    bound of tests/layers/test_recurrent_spec_vs_fast.py.

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

    def forward_for_backward(self, x, mask=None):
        """The step loop of handnet.fast.recurrent (its specification, the equations above one
        line each: handnet.ops.recurrent_spec.gru_forward), keeping what backward reads."""
        # pre[t] starts as x_t @ W; the loop adds b_in (m_t) and the recurrent terms, leaving
        # the pre-activations [m_z + n_z | m_r + n_r | m_h + r · n_h] there.
        x_steps, pre = self.project_inputs(x, with_bias=False)
        self._skip = self.skipped_steps(mask, x)
        self._x_steps = x_steps
        bias = self.params["bias"] if self.use_bias else (None, None)
        self._cache = recurrent.gru_forward(
            pre, self.params["recurrent_kernel"], bias[1], self._skip,
            self.recurrent_activation, self.cell_activation, workspace=self.workspace(),
            input_bias=bias[0],
        )
        return self.outputs(self._cache["states"])

    def inference_applies(self):
        return recurrent.fused_kernels_apply(self.recurrent_activation, self.cell_activation)

    def forward_inference(self, x, mask=None):
        """The training forward's outputs to within rounding (see the class docstring), with
        no cache: handnet.fast.recurrent.gru_inference."""
        self.check_input(x)
        last, states = recurrent.gru_inference(
            x, self.params["kernel"], self.params["recurrent_kernel"],
            self.params["bias"] if self.use_bias else None, self.skipped_steps(mask, x),
            workspace=self.workspace(), every_state=self.return_sequences,
        )
        return self.outputs(states) if self.return_sequences else last.copy()

    def backward(self, dy):
        self.ensure_cache()
        d_input, d_recurrent = recurrent.gru_backward(
            self.upstream_per_step(dy), self.params["recurrent_kernel"], self._cache, self._skip,
            self.recurrent_activation, self.cell_activation, workspace=self.workspace(),
        )
        return self.finish_backward(self._x_steps, self._cache["states"], d_input, d_recurrent)

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
