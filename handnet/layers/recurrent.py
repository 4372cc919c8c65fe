"""What SimpleRNN, LSTM and GRU share: sequences in, a state carried across time, and the two
products of backpropagation through time that can be taken once for all steps.

A recurrent layer reads x (N, T, D) — N sequences of T steps of D features — one step at a
time, carrying a state h (N, U) from step to step (h_0 = 0). Every step computes G blocks of U
pre-activations ("gates": G = 1 SimpleRNN, 3 GRU, 4 LSTM) from the step's input and the previous
state:

    z_t = x_t @ W + h_{t-1} @ R + b       W = kernel (D, G·U),  R = recurrent_kernel (U, G·U)

Only h_{t-1} @ R depends on the recurrence. So the forward pass takes x_t @ W + b for all T steps
in one product, (T·N, D) @ (D, G·U), and each step adds one product (N, U) @ (U, G·U) for all
its gates. Backward through time mirrors it: a step needs only dz_t @ Rᵀ (the gradient that
reaches h_{t-1}); the rest is summed over all steps by single products afterwards:

    dW = Σ_t x_tᵀ dz_t = Xᵀ dZ         X (T·N, D),  dZ (T·N, G·U)
    dR = Σ_t h_{t-1}ᵀ dz_t = H₋ᵀ dZ    H₋ (T·N, U): the states each step started from
    db = Σ_t Σ_n dz_t[n]
    dX = dZ Wᵀ                         back to (N, T, D)

Inside, arrays are time-major (T, N, ·) so that one step's slice is contiguous; states are
stored as h[0] = h_0 = 0 and h[t + 1] = the state after reading x[:, t].

Masks (Keras's, for padded sequences; handnet.model.plan brings them): m_t[n] = 0 marks step
t of sequence n as padding. A masked step keeps the state it received,

    h_t = m_t · h̃_t + (1 - m_t) · h_{t-1}        h̃_t = the step's new state (c_t likewise)

and with return_sequences its output is that carried state, which is what Keras returns there
(its output from the step before; 0 = h_0 before any real step). Backward, where m_t = 0 the
step is the identity on the state, ∂h_t/∂h_{t-1} = I: the gradient dh_t passes to h_{t-1}
unchanged, and the step's gates, its input x_t and the weights (through that step) get 0:

    dh̃_t = m_t · dh_t                              (what the step's equations receive)
    dh_{t-1}^next = (1 - m_t) · dh_t + (the step's own dh_{t-1} from dh̃_t)

The steps are still computed for every sequence (one product per step for the whole batch)
and the carried state is copied over the masked rows; a model with no mask runs none of this.

Inference (``training=False``: predict, evaluate) keeps no cache: a step keeps only the state
it hands on (handnet.fast.recurrent's inference loops, fewer NumPy calls a step). SimpleRNN's
gives the training forward's outputs to the last bit, and so does the LSTM's (its training
forward runs the same unit-major step, keeping what backward reads); the GRU's takes each
step's sums in its products with the biases, unit-major, so its outputs differ from the
training forward's by rounding (derived bound, tested; ~1e-7 seen in float32), as the LSTM's
differ from the specification's (handnet.ops.recurrent_spec). A backward pass after
such a forward runs the training forward on the same input first, so ``forward(x)`` then
``backward(dy)`` still gives BPTT's gradients.

σ (the default recurrent_activation) is computed as 1/2 + tanh(z/2)/2 in the LSTM's and GRU's
loops, training and inference (handnet.fast.recurrent): activations.Sigmoid's values within
2u (u = unit roundoff, 1.2e-7 in float32), at half the time.

Long sequences can make the gradients through R explode; the optimizers' ``clipnorm`` and
``global_clipnorm`` (handnet.optimizers) bound them, as in Keras.
"""

import numpy as np

from .. import activations, initializers, regularizers
from ..errors import InvalidInputError
from ..fast.recurrent import Workspace
from .base import BackwardStep, Layer, activation_name, batch, weight_gradient


class Recurrent(Layer):
    """The base of the recurrent layers: weights, sequence layout, and BPTT's shared products.

    A subclass sets ``gate_count`` and writes its own step loops in ``forward`` and
    ``backward``, next to its equations.
    """

    gate_count = 1
    takes_mask = True  # forward(x, mask=...): masked steps carry the state (module docstring)

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        return_sequences=False,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        # Not ``self.activation``: that attribute tells the model that a layer ends in an
        # activation it may fuse with the loss (softmax + cross-entropy), and a recurrence
        # cannot be split there.
        self.cell_activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.return_sequences = bool(return_sequences)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._inference_input = None  # (x, mask) of an inference forward (module docstring)

    # -- construction -------------------------------------------------------------------
    def build(self, input_shape, rng=None):
        if len(input_shape) != 2:
            raise InvalidInputError(
                f"layer {self.name!r} ({type(self).__name__}) reads sequences (None, timesteps, "
                f"features), got per-sample shape {tuple(input_shape)}"
            )
        rng = rng if rng is not None else np.random.default_rng()
        width = self.gate_count * self.units
        init_kernel = initializers.get(self.kernel_initializer)
        init_recurrent = initializers.get(self.recurrent_initializer)
        self.add_param("kernel", init_kernel((input_shape[-1], width), rng, self.dtype))
        self.add_param("recurrent_kernel", init_recurrent((self.units, width), rng, self.dtype))
        if self.use_bias:
            self.add_param("bias", self.initial_bias(rng))
        super().build(input_shape)

    def initial_bias(self, rng):
        init_bias = initializers.get(self.bias_initializer)
        return init_bias((self.gate_count * self.units,), rng, self.dtype)

    def compute_output_shape(self, input_shape):
        timesteps = input_shape[0]
        return (timesteps, self.units) if self.return_sequences else (self.units,)

    def regularized_params(self):
        """Keras's three: kernel_regularizer, recurrent_regularizer (on R), bias_regularizer."""
        penalties = {
            "kernel": self.kernel_regularizer,
            "recurrent_kernel": self.recurrent_regularizer,
            "bias": self.bias_regularizer,
        }
        for key, regularizer in penalties.items():
            if regularizer is not None and key in self.params:
                yield key, regularizer

    # -- pieces of the two passes ----------------------------------------------------------
    def input_bias(self):
        """The bias added to x_t @ W (GRU keeps a second one for the recurrent side)."""
        return self.params["bias"]

    def workspace(self):
        """The arrays the two passes reuse from batch to batch (handnet.fast.recurrent)."""
        if getattr(self, "_workspace", None) is None:
            self._workspace = Workspace()
        return self._workspace

    def __copy__(self):
        """A shallow copy with a workspace of its own: a replica that runs in another thread
        (handnet.training.parallel) must never write into this layer's buffers."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._workspace = None
        return twin

    def project_inputs(self, x, with_bias=True):
        """x (N, T, D) -> (x time-major (T, N, D), x_t @ W + b for every step (T, N, G·U)),
        the second in one matrix product for all steps. Both are written into the workspace's
        arrays: the next batch overwrites them. ``with_bias=False`` leaves b out, for a step
        loop that adds it step by step (handnet.fast.recurrent: while the row is in cache)."""
        self.check_input(x)
        kernel, workspace = self.params["kernel"], self.workspace()
        batch, timesteps, features = x.shape
        x_steps = workspace.array("x_steps", (timesteps, batch, features), x.dtype)
        np.copyto(x_steps, x.transpose(1, 0, 2))
        width = kernel.shape[1]
        dtype = np.result_type(x.dtype, kernel.dtype)
        projected = workspace.array("projected", (timesteps * batch, width), dtype)
        np.matmul(x_steps.reshape(-1, features), kernel, out=projected)
        if self.use_bias and with_bias:
            projected += self.input_bias()
        return x_steps, projected.reshape(timesteps, batch, -1)

    def forward(self, x, training=False, mask=None):
        """x (N, T, D) -> y = h_T (N, U), or every h_t (N, T, U) with return_sequences.
        In training the subclass's loop with its caches (``forward_for_backward``); else the
        loop that keeps none (``forward_inference``; see the module docstring)."""
        if not training and self.inference_applies():
            self._inference_input = (x, mask)
            return self.forward_inference(x, mask)
        self._inference_input = None
        return self.forward_for_backward(x, mask)

    def inference_applies(self):
        """Whether ``forward_inference`` computes this layer (its loop is written for it)."""
        return True

    def ensure_cache(self):
        """Before backward: an inference forward kept no cache, so the training forward runs
        on the same input (and mask) again; its outputs are the inference forward's."""
        if self._inference_input is not None:
            x, mask = self._inference_input
            self._inference_input = None
            self.forward_for_backward(x, mask)

    def skipped_steps(self, mask, x):
        """The masked steps of x (N, T, D) given its mask (N, T), True = a real step: time-major
        (T, N, 1) booleans, True where the step is skipped; None without a mask or with no
        step masked (then nothing is skipped and the plain loop runs)."""
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != x.shape[:2]:
            raise InvalidInputError(
                f"layer {self.name!r} ({type(self).__name__}) got a mask of shape {mask.shape} "
                f"for inputs of shape {x.shape}; expected (samples, timesteps) = {x.shape[:2]}"
            )
        skip = ~mask.astype(bool, copy=False)
        if not skip.any():
            return None
        return np.ascontiguousarray(skip.T)[..., None]

    def compute_mask(self, x, mask):
        """Keras's: every step's output keeps the input's mask; the last state has none."""
        return mask if self.return_sequences else None

    def outputs(self, states):
        """states (T + 1, N, U) -> every h_t as (N, T, U), or the last one (N, U)."""
        if self.return_sequences:
            return np.ascontiguousarray(states[1:].transpose(1, 0, 2))
        return states[-1].copy()

    def upstream_per_step(self, dy):
        """∂L/∂h_t from the layer above for every step, time-major (T, N, U): dy itself when the
        layer returned every state, else zeros but at the last step. Read only: a view of dy."""
        if self.return_sequences:
            return dy.transpose(1, 0, 2)
        per_step = self.workspace().array("from_above", (self.input_shape[0], *dy.shape), dy.dtype)
        per_step[:-1] = 0
        per_step[-1] = dy
        return per_step

    def finish_backward(self, x_steps, states, d_input, d_recurrent):
        """Sum the per-step gradients over time in one product each; returns dx (N, T, D).

        d_input (T, N, G·U) = ∂L/∂(x_t @ W + b), d_recurrent (T, N, G·U) = ∂L/∂(h_{t-1} @ R);
        the same array for SimpleRNN and LSTM, where both enter z_t unchanged.
        """
        timesteps, batch, features = x_steps.shape
        width = d_input.shape[-1]
        d_input_rows = d_input.reshape(-1, width)
        np.matmul(x_steps.reshape(-1, features).T, d_input_rows, out=self.grads["kernel"])
        np.matmul(
            states[:-1].reshape(-1, self.units).T,
            d_recurrent.reshape(-1, width),
            out=self.grads["recurrent_kernel"],
        )
        if self.use_bias:
            self.fill_bias_gradient(d_input, d_recurrent)
        self.add_regularization_gradients()
        if not self.needs_input_gradient:
            return None
        dx = d_input_rows @ self.params["kernel"].T
        return dx.reshape(timesteps, batch, features).transpose(1, 0, 2)

    def fill_bias_gradient(self, d_input, d_recurrent):
        np.sum(d_input, axis=(0, 1), out=self.grads["bias"])

    # -- description ----------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.cell_activation),
            "use_bias": self.use_bias,
            "return_sequences": self.return_sequences,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    def explain_steps(self, equations):
        """(headline, formula) with one step's ``equations``, {f} and {sigma} replaced by the
        layer's activation and recurrent activation."""
        config = self.get_config()
        f = activation_name(config.get("activation", "tanh"))
        sigma = activation_name(config.get("recurrent_activation", "sigmoid"))
        returns = "every h_t" if self.return_sequences else "the last state h_T"
        return f"{self.units} units, returns {returns}", equations.format(f=f, sigma=sigma)

    def explain_details(self, input_shape):
        """The loop the layer runs, with the shapes of one step: one product gives every
        gate's pre-activations."""
        steps, features = input_shape
        units, width = self.units, self.gate_count * self.units
        return [
            f"unrolled over {steps} steps (t = 1…{steps}, h_0 = 0): x_t (N, {features}) @ "
            f"W ({features}, {width}) + h_(t-1) (N, {units}) @ R ({units}, {width}) → "
            f"pre-activations (N, {width}) → h_t (N, {units})"
        ]

    def explain_through_time(self, input_shape, step_lines, d_input="dz", d_recurrent=None):
        """Backpropagation through time: the loop t = T … 1 (``step_lines``: (formula, per-sample
        shape) of one step, after dh_t), then the sums over all steps of ``d_input`` =
        ∂L/∂(x_t @ W + b) and ``d_recurrent`` = ∂L/∂(h_(t-1) @ R) (the same by default)."""
        d_recurrent = d_recurrent or d_input
        steps = input_shape[0]
        above = "dy[:, t]" if self.return_sequences else "[t = T] · dy"
        loop = f"t = {steps} … 1:  dh_t = {above} + dh_t^next   (dh_T^next = 0)"
        lines = [BackwardStep(None, loop, batch((self.units,)))]
        for formula, shape in step_lines:
            lines.append(BackwardStep(None, f"    {formula}", batch(shape)))
        masked = f"(a masked step: dh_t goes to h_(t-1) unchanged, its {d_input}_t is 0)"
        lines += [
            BackwardStep(None, masked, ()),
            weight_gradient(self, "kernel", f"dW = Σ_t x_tᵀ @ {d_input}_t", "W"),
            weight_gradient(self, "recurrent_kernel", f"dR = Σ_t h_(t-1)ᵀ @ {d_recurrent}_t", "R"),
        ]
        if self.use_bias:
            lines.append(self.explain_bias_gradient(d_input, d_recurrent))
        dx = f"dx_t = {d_input}_t @ Wᵀ   (all {steps} steps in one product)"
        lines.append(BackwardStep("x", dx, batch(input_shape)))
        return lines

    def explain_bias_gradient(self, d_input, d_recurrent):
        return weight_gradient(self, "bias", f"db = Σ_(t,n) {d_input}_t[n]", "b")
