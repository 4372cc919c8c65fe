"""Attention layers: MultiHeadAttention, Attention (Luong) and AdditiveAttention (Bahdanau),
with Keras's arguments, call arguments and weight names. docs/attention.md derives the math.

The call, Keras's way:

    mha(query, value)                        self-attention when value is query
    mha(query, value, key)                   key defaults to value
    mha(query, value, attention_mask=m, use_causal_mask=True, return_attention_scores=True)
    Attention()([query, value]),  Attention()([query, value, key], use_causal_mask=True)

On arrays the layer computes now; on symbolic tensors (``Input``) it records one node of the
graph whose inputs are the tensors [query, value, (key), (attention_mask)] and whose options
say which is which (handnet.layers.graph: ``accept_call``). Every call of one layer in a graph
must use the same options (the same tensors present, the same flags): one layer, one
signature, so that the plan can hand it a plain list.

Masks, as Keras: ``attention_mask`` (N, Tq, Tk) says which keys each query may look at (any
nonzero = yes); ``use_causal_mask`` adds j ≤ i; the Keras masks of the inputs (from an
Embedding(mask_zero=True) or a Masking before) add query_mask[i] and value_mask[j]. All are
combined with a logical and, and a masked score is replaced by -10⁹ before the softmax
(MultiHeadAttention) or has 10⁹ taken off (Attention, AdditiveAttention), so its weight is 0.
A MultiHeadAttention query whose every key is masked gets what Keras 3 gives it: weights 0
(the output is the bias) when the scores are returned or dropout is set (Keras's explicit
path), uniform weights otherwise (its fused path, torch's scaled_dot_product_attention).
The output carries the query's mask on, as in Keras.
"""

import math

import numpy as np

from .. import initializers, regularizers
from ..errors import HandnetError, InvalidInputError
from ..fast import attention as fast
from . import graph
from .base import BackwardStep, Layer, batch, weight_gradient

#: The call options of an attention node and their defaults.
CALL_DEFAULTS = {
    "key": False,
    "attention_mask": False,
    "use_causal_mask": False,
    "return_attention_scores": False,
}


def causal_mask(t_query, t_key):
    """(Tq, Tk) boolean, True where j ≤ i: Keras's cumsum(rows) >= cumsum(columns)."""
    return np.arange(t_query)[:, None] >= np.arange(t_key)[None, :]


def _as_bool(mask):
    return mask if mask.dtype == bool else mask != 0


def _dropout_keep(rng, shape, rate, dtype):
    """0 or 1/(1 - rate) per weight (inverted dropout, as handnet's Dropout draws it)."""
    keep = 1 - rate
    return (rng.random(shape, dtype=np.float32) < keep) * np.dtype(dtype).type(1 / keep)


class _AttentionBase(Layer):
    """What the three layers share: the call signature, its options and the masks."""

    takes_mask = True  # the Keras masks of query and value take part (see the module doc)

    def __init__(self, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0 <= dropout < 1
        ):
            raise HandnetError(f"{type(self).__name__} dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._signature = dict(CALL_DEFAULTS)
        self._signature_fixed = False

    # -- the call -------------------------------------------------------------------------
    def accept_call(self, options):
        """Take the options of a symbolic call (graph.call hands them over)."""
        unknown = set(options) - set(CALL_DEFAULTS)
        if unknown:
            raise HandnetError(
                f"{type(self).__name__} {self.name!r}: unknown call options {sorted(unknown)}; "
                f"it takes {sorted(CALL_DEFAULTS)}"
            )
        for key, value in options.items():
            if not isinstance(value, bool):
                raise HandnetError(
                    f"{type(self).__name__} {self.name!r}: call option {key!r} must be true or "
                    f"false, got {value!r}"
                )
        signature = {**CALL_DEFAULTS, **options}
        if self._signature_fixed and signature != self._signature:
            raise HandnetError(
                f"{type(self).__name__} {self.name!r} is already called with {self._signature} "
                f"in a graph; a second call with {signature} would need another signature "
                "(use a second layer)"
            )
        self._signature, self._signature_fixed = signature, True

    @property
    def returns_list(self):
        return self._signature["return_attention_scores"]

    def _roles(self):
        """The names of the node's inputs, in order."""
        roles = ["query", "value"]
        if self._signature["key"]:
            roles.append("key")
        if self._signature["attention_mask"]:
            roles.append("attention_mask")
        return roles

    def split_inputs(self, items):
        """{role: item} ("query", "value", "key", "attention_mask") of a node's list of inputs,
        in its call's order (missing roles: None)."""
        roles = self._roles()
        if not self._signature_fixed and isinstance(items, (list, tuple)) and len(items) == 3:
            roles = ["query", "value", "key"]  # outside a graph a third input is the key
        if not isinstance(items, (list, tuple)) or len(items) != len(roles):
            got = len(items) if isinstance(items, (list, tuple)) else type(items).__name__
            raise InvalidInputError(
                f"{type(self).__name__} {self.name!r} expected a list of {len(roles)} "
                f"({', '.join(roles)}), got {got}"
            )
        named = dict(zip(roles, items))
        return {role: named.get(role) for role in ("query", "value", "key", "attention_mask")}

    def _symbolic_call(self, query, value, key, attention_mask, use_causal_mask, return_scores):
        options = {
            "key": key is not None,
            "attention_mask": attention_mask is not None,
            "use_causal_mask": bool(use_causal_mask),
            "return_attention_scores": bool(return_scores),
        }
        tensors = [t for t in (query, value, key, attention_mask) if t is not None]
        return graph.call(self, tensors, {k: v for k, v in options.items() if v})

    # -- shapes ---------------------------------------------------------------------------
    def _shapes(self, input_shapes):
        """{role: per-sample shape} with the checks every attention layer needs."""
        if not isinstance(input_shapes, (list, tuple)) or not input_shapes or not isinstance(
            input_shapes[0], (list, tuple)
        ):
            raise HandnetError(
                f"{type(self).__name__} {self.name!r} is built from a list of per-sample shapes "
                f"[query, value, …], got {input_shapes!r}"
            )
        shapes = self.split_inputs([tuple(int(d) for d in s) for s in input_shapes])
        for role in ("query", "value", "key"):
            shape = shapes[role]
            if shape is not None and len(shape) != 2:
                raise HandnetError(
                    f"{type(self).__name__} {self.name!r}: {role} must be (T, features) per "
                    f"sample, got {shape} (attention over one sequence axis: the default "
                    "attention_axes)"
                )
        if shapes["key"] is None:
            shapes["key"] = shapes["value"]
        if shapes["key"][0] != shapes["value"][0]:
            raise HandnetError(
                f"{type(self).__name__} {self.name!r}: key and value need the same length, got "
                f"key {shapes['key']} and value {shapes['value']}"
            )
        expected = (shapes["query"][0], shapes["value"][0])
        mask = shapes["attention_mask"]
        if mask is not None and tuple(mask) != expected:
            raise HandnetError(
                f"{type(self).__name__} {self.name!r}: attention_mask must be (Tq, Tk) = "
                f"{expected} per sample, got {mask}"
            )
        return shapes

    def _combined_mask(self, query, value, key, attention_mask, use_causal_mask, masks):
        """The boolean (N or 1, Tq, Tk) of allowed (query, key) pairs, or None for all."""
        t_query, t_key = query.shape[1], value.shape[1]
        combined = None

        def both(a, b):
            return b if a is None else a & b

        if attention_mask is not None:
            attention_mask = np.asarray(attention_mask)
            if attention_mask.shape[-2:] != (t_query, t_key) or attention_mask.ndim not in (2, 3):
                raise InvalidInputError(
                    f"{type(self).__name__} {self.name!r}: attention_mask must be (N, {t_query}, "
                    f"{t_key}), got {attention_mask.shape}"
                )
            combined = _as_bool(attention_mask).reshape(-1, t_query, t_key)
        if masks is not None:
            query_mask, value_mask, key_mask = masks
            if query_mask is not None:
                combined = both(combined, _as_bool(query_mask)[:, :, None])
            if value_mask is not None:
                combined = both(combined, _as_bool(value_mask)[:, None, :])
            if key_mask is not None:
                combined = both(combined, _as_bool(key_mask)[:, None, :])
        if use_causal_mask:
            combined = both(combined, causal_mask(t_query, t_key)[None])
        return combined

    def _input_masks(self, mask):
        """(query_mask, value_mask, key_mask) from the engine's list of input masks."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            return (mask, None, None)
        named = self.split_inputs(list(mask))
        if named["attention_mask"] is not None:
            raise HandnetError(
                f"{type(self).__name__} {self.name!r}: its attention_mask input carries a Keras "
                "mask itself; handnet does not read that"
            )
        return (named["query"], named["value"], named["key"])

    def compute_mask(self, x, mask):
        """The output's mask is the query's (Keras); the scores carry none."""
        masks = self._input_masks(mask)
        out = None if masks is None else masks[0]
        return [out, None] if self.returns_list else out

    def _check(self, role, x, shape):
        if x.ndim != 3 or x.shape[1:] != tuple(shape):
            raise InvalidInputError(
                f"{type(self).__name__} {self.name!r} expected {role} of shape (None, "
                f"{', '.join(map(str, shape))}), got {x.shape}"
            )

    def _dy_parts(self, dy):
        """(∂L/∂output, ∂L/∂scores or None) from backward's argument."""
        if self._cache_returned:
            if not isinstance(dy, (list, tuple)) or len(dy) != 2:
                raise InvalidInputError(
                    f"{type(self).__name__} {self.name!r} returned (output, scores): backward "
                    "takes [d_output, d_scores]"
                )
            return dy[0], dy[1]
        return dy, None

    def _input_gradients(self, d_query, d_value, d_key):
        """The gradients in the order of the inputs; the key's goes to value when it was value,
        and the attention_mask input gets None (a mask has no gradient)."""
        grads = [d_query]
        if self._cache_key_given:
            grads += [d_value, d_key]
        else:
            grads.append(d_value + d_key)
        if self._cache_mask_input:
            grads.append(None)
        return grads

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout, "seed": self.seed}

    def explain_input_gradients(self, input_shapes, formulas):
        """The BackwardSteps of the inputs, in the order backward returns them: ``formulas``
        {"query", "value", "key"} give each one's; without a key input the key was the value,
        and the value gets both gradients."""
        shapes = self._shapes(input_shapes)
        named = self.split_inputs(list(input_shapes))
        roles = ["query", "value"] + (["key"] if named["key"] is not None else [])
        steps = []
        for role in roles:
            formula = formulas[role]
            if role == "value" and named["key"] is None:
                formula += f" + {formulas['key'].split(' = ', 1)[1]}   (the key was the value)"
            steps.append(BackwardStep(role, formula, batch(shapes[role])))
        if named["attention_mask"] is not None:
            steps.append(BackwardStep(None, "no gradient for the attention_mask", ()))
        return steps

    def dropout_note(self):
        return " ⊙ R" if self.dropout else ""

    def weights_transposed(self):
        """(P ⊙ R)ᵀ, P's transpose with the dropout mask R of training (Pᵀ without dropout)."""
        return "(P ⊙ R)ᵀ" if self.dropout else "Pᵀ"

    def returned_note(self):
        return " + dP (the returned scores' gradient)" if self.returns_list else ""


class MultiHeadAttention(_AttentionBase):
    """y = concat_h(softmax(Q_h K_hᵀ / √K ⊙ mask) V_h) W_o + b_o, H heads.

    Shapes, per sample (Keras's EinsumDense projections; query (Tq, Dq), value (Tk, Dv),
    key (Tk, Dk)):

        Q = query · W_q + b_q     W_q = query/kernel (Dq, H, K),  b_q (H, K)  -> (Tq, H, K)
        K = key   · W_k + b_k     W_k = key/kernel   (Dk, H, K),  b_k (H, K)  -> (Tk, H, K)
        V = value · W_v + b_v     W_v = value/kernel (Dv, H, V),  b_v (H, V)  -> (Tk, H, V)
        S_h = (Q_h / √K) K_hᵀ     (H, Tq, Tk);  masked scores become -10⁹
        P_h = softmax(S_h)        over the keys;  dropout(P) in training
        O_h = P_h V_h             (Tq, H, V)
        y = Σ_{h,v} O[:, h, v] W_o[h, v, :] + b_o      W_o = attention_output/kernel (H, V, D)

    D is the query's feature size, or ``output_shape``. With ``return_attention_scores`` the
    layer also returns P (N, H, Tq, Tk), before dropout.

    Backward, given dy (N, Tq, D) (and dP if P was returned):

        dW_o = Σ_{n,i} O ⊗ dy,  db_o = Σ_{n,i} dy,  dO = dy · W_oᵀ
        dP = dO V_hᵀ ⊙ R (+ dP returned);  dS = P ⊙ (dP - rowsum(dP ⊙ P)), 0 where masked
        dQ = dS K / √K,  dK = dSᵀ Q / √K,  dV = (P ⊙ R)ᵀ dO      (handnet.fast.attention)
        dW_q = Σ queryᵀ dQ, db_q = Σ dQ, d query = dQ · W_qᵀ   (likewise for key and value)

    A key that is the value (no key given) adds both gradients into the value's.
    """

    _PROJECTIONS = ("query", "key", "value", "attention_output")

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise HandnetError(
                    f"MultiHeadAttention {name} must be a positive integer, got {value!r}"
                )
        if value_dim is not None and (
            isinstance(value_dim, bool) or not isinstance(value_dim, (int, np.integer))
            or value_dim < 1
        ):
            raise HandnetError(
                f"MultiHeadAttention value_dim must be a positive integer or None, got "
                f"{value_dim!r}"
            )
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.use_bias = bool(use_bias)
        if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
            output_shape = (int(output_shape),)
        if output_shape is not None:
            if not isinstance(output_shape, (list, tuple)) or len(output_shape) != 1 or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                for d in output_shape
            ):
                raise HandnetError(
                    f"MultiHeadAttention output_shape must be a positive int or (int,) (the "
                    f"output's feature size), got {output_shape!r}"
                )
            output_shape = (int(output_shape[0]),)
        self.partial_output_shape = output_shape or None
        if attention_axes is not None:
            axes = (attention_axes,) if isinstance(attention_axes, int) else attention_axes
            if not isinstance(axes, (list, tuple)) or [int(a) for a in axes] not in ([1], [-2]):
                raise HandnetError(
                    f"MultiHeadAttention attention_axes {attention_axes!r}: handnet attends over "
                    "the sequence axis of (N, T, features) inputs, the default (None, or [1])"
                )
        self.attention_axes = None
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._scale = 1.0 / math.sqrt(float(self.key_dim))

    # -- construction ---------------------------------------------------------------------
    def build(self, input_shapes, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        shapes = self._shapes(input_shapes)
        heads, key_dim, value_dim = self.num_heads, self.key_dim, self.value_dim
        out = self._output_size(shapes["query"])
        layout = {
            "query": ((shapes["query"][-1],), (heads, key_dim)),
            "key": ((shapes["key"][-1],), (heads, key_dim)),
            "value": ((shapes["value"][-1],), (heads, value_dim)),
            "attention_output": ((heads, value_dim), (out,)),
        }
        init_kernel = initializers.get(self.kernel_initializer)
        init_bias = initializers.get(self.bias_initializer)
        for name in self._PROJECTIONS:
            inputs, outputs = layout[name]
            # EinsumDense's fans: the input axes multiply into fan_in, the output axes fan_out.
            flat = init_kernel((math.prod(inputs), math.prod(outputs)), rng, self.dtype)
            self.add_param(f"{name}/kernel", flat.reshape(inputs + outputs))
            if self.use_bias:
                self.add_param(f"{name}/bias", init_bias(outputs, rng, self.dtype))
        self.input_shape = [tuple(int(d) for d in s) for s in input_shapes]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _output_size(self, query_shape):
        return self.partial_output_shape[0] if self.partial_output_shape else query_shape[-1]

    def compute_output_shape(self, input_shapes):
        shapes = self._shapes(input_shapes)
        t_query, t_key = shapes["query"][0], shapes["value"][0]
        y = (t_query, self._output_size(shapes["query"]))
        if self.returns_list:
            return [y, (self.num_heads, t_query, t_key)]
        return y

    def regularized_params(self):
        for name in self._PROJECTIONS:
            for kind, regularizer in (("kernel", self.kernel_regularizer),
                                      ("bias", self.bias_regularizer)):
                if regularizer is not None and f"{name}/{kind}" in self.params:
                    yield f"{name}/{kind}", regularizer

    # -- computation ----------------------------------------------------------------------
    def __call__(
        self,
        query,
        value=None,
        key=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=False,
    ):
        """Keras's call: ``mha(query, value, key=None, attention_mask=None, …)``."""
        if value is None:
            raise HandnetError(
                f"MultiHeadAttention {self.name!r} is called as mha(query, value) (value = query "
                "for self-attention); got no value"
            )
        if graph.is_symbolic([query, value, key, attention_mask]):
            return self._symbolic_call(
                query, value, key, attention_mask, use_causal_mask, return_attention_scores
            )
        query, value = np.asarray(query), np.asarray(value)
        key = None if key is None else np.asarray(key)
        if not self.built:
            shapes = [query.shape[1:], value.shape[1:]]
            saved = self._signature
            self._signature = {**CALL_DEFAULTS, "key": key is not None}
            try:
                self.build(shapes + ([key.shape[1:]] if key is not None else []))
            finally:
                self._signature = saved
        return self._attend(
            query, value, key, attention_mask, use_causal_mask, return_attention_scores,
            training, masks=None,
        )

    def forward(self, inputs, training=False, mask=None):
        """inputs: [query, value, (key), (attention_mask)] in the order of the call's options."""
        signature = self._signature
        if (
            type(inputs) is list and len(inputs) == 2 and mask is None
            and not signature["key"] and not signature["attention_mask"]
        ):  # [query, value], no masks (a transformer block's call): what split_inputs gives
            return self._attend(
                np.asarray(inputs[0]), np.asarray(inputs[1]), None, None,
                signature["use_causal_mask"], signature["return_attention_scores"], training,
                masks=None,
            )
        named = self.split_inputs(inputs)
        return self._attend(
            np.asarray(named["query"]), np.asarray(named["value"]),
            None if named["key"] is None else np.asarray(named["key"]),
            named["attention_mask"], self._signature["use_causal_mask"],
            self._signature["return_attention_scores"], training,
            masks=self._input_masks(mask), mask_input=named["attention_mask"] is not None,
        )

    def _attend(self, query, value, key, attention_mask, use_causal_mask, return_scores,
                training, masks, mask_input=False):
        shapes = self.input_shape
        self._check("query", query, shapes[0])
        self._check("value", value, shapes[1])
        key_given = key is not None
        if key_given:
            self._check("key", key, (value.shape[1], self.params["key/kernel"].shape[0]))
        else:
            key = value
            if self.params["key/kernel"].shape[0] != value.shape[-1]:
                raise InvalidInputError(
                    f"MultiHeadAttention {self.name!r} was built with a key of "
                    f"{self.params['key/kernel'].shape[0]} features; called without a key, "
                    f"value (with {value.shape[-1]}) stands in"
                )
        if not query.shape[0] == value.shape[0] == key.shape[0]:
            raise InvalidInputError(
                f"MultiHeadAttention {self.name!r}: query, value and key have different batch "
                f"sizes: {query.shape}, {value.shape}, {key.shape}"
            )
        mask = self._combined_mask(query, value, key, attention_mask, use_causal_mask, masks)
        q = self._project("query", query)
        k = self._project("key", key)
        v = self._project("value", value)
        mask4 = None if mask is None else mask[:, None]  # one mask for every head
        keep = None
        if training and self.dropout > 0:
            keep = _dropout_keep(
                self.rng, (len(query), self.num_heads, q.shape[1], k.shape[1]), self.dropout,
                q.dtype,
            )
        # A query row with every key masked: Keras 3 gives it weights 0 on its explicit path
        # (scores returned, or dropout) and uniform weights on its fused one; as Keras.
        zero_masked = bool(return_scores) or self.dropout > 0
        o, p = fast.attention_forward(q, k, v, mask4, self._scale, keep, zero_masked)
        y = self._project("attention_output", o, bound=2)
        self._cache = (query, key, value, q, k, v, o, p, mask4, keep)
        self._cache_key_given, self._cache_mask_input = key_given, mask_input
        self._cache_returned = bool(return_scores)
        return [y, p.copy()] if return_scores else y

    def _project(self, name, x, bound=1):
        """EinsumDense's product: x (N, T, *in) · W (*in, *out) + b, contracting the last
        ``bound`` axes of x, as one matrix product."""
        kernel = self.params[name + "/kernel"]
        fan_in = x.shape[-1] if bound == 1 else x.shape[-1] * x.shape[-2]
        z = x.reshape(-1, fan_in) @ kernel.reshape(fan_in, -1)
        if self.use_bias:
            z += self.params[name + "/bias"].reshape(-1)
        return z.reshape(*x.shape[: x.ndim - bound], *kernel.shape[bound:])

    def _project_backward(self, name, x, dz, bound=1):
        """∂L/∂x of ``_project``; fills the gradients of W and b."""
        kernel = self.params[f"{name}/kernel"]
        inputs = kernel.shape[:bound]
        flat_x = x.reshape(-1, math.prod(inputs))
        flat_dz = dz.reshape(len(flat_x), -1)
        np.matmul(flat_x.T, flat_dz, out=self.grads[f"{name}/kernel"].reshape(len(flat_x.T), -1))
        if self.use_bias:
            self.grads[f"{name}/bias"][...] = flat_dz.sum(axis=0).reshape(kernel.shape[bound:])
        return (flat_dz @ kernel.reshape(math.prod(inputs), -1).T).reshape(x.shape)

    def backward(self, dy):
        dy, d_scores = self._dy_parts(dy)
        query, key, value, q, k, v, o, p, mask, keep = self._cache
        do = self._project_backward("attention_output", o, dy, bound=2)
        dq, dk, dv = fast.attention_backward(do, q, k, v, p, mask, self._scale, keep, d_scores)
        d_query = self._project_backward("query", query, dq)
        d_key = self._project_backward("key", key, dk)
        d_value = self._project_backward("value", value, dv)
        self.add_regularization_gradients()
        if not self.needs_input_gradient:
            return [None] * (2 + self._cache_key_given + self._cache_mask_input)
        return self._input_gradients(d_query, d_value, d_key)

    # -- description ----------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "use_bias": self.use_bias,
            "output_shape": None if self.partial_output_shape is None
            else list(self.partial_output_shape),
            "attention_axes": self.attention_axes,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    def explain(self):
        heads, k, v = self.num_heads, self.key_dim, self.value_dim
        headline = f"{heads} heads, key_dim {k}, value_dim {v}"
        flags = [name for name in ("use_causal_mask",) if self._signature[name]]
        if flags:
            headline += ", causal"
        bias = " + b" if self.use_bias else ""
        formula = (
            f"Q = x_q W_q{bias}, K = x_k W_k{bias}, V = x_v W_v{bias} (per head h of {heads});  "
            f"P_h = softmax(Q_h K_hᵀ / √{k}, masked);  y = concat_h(P_h V_h) W_o{bias}"
        )
        return headline, formula

    def explain_details(self, input_shape):
        if not self.built:
            return []
        shapes = self._shapes(self.input_shape)
        (tq, dq), (tk, _) = shapes["query"], shapes["value"]
        h, k, v = self.num_heads, self.key_dim, self.value_dim
        out = self._output_size(shapes["query"])
        return [
            f"Q ({tq}, {h}, {k}) = query ({tq}, {dq}) · W_q ({dq}, {h}, {k})",
            f"K ({tk}, {h}, {k}), V ({tk}, {h}, {v}) from key and value",
            f"S = Q Kᵀ / √{k}: ({h}, {tq}, {tk});  P = softmax over the {tk} keys",
            f"O = P V: ({tq}, {h}, {v});  y = O · W_o ({h}, {v}, {out}) -> ({tq}, {out})",
        ]

    def explain_backward(self, input_shapes):
        shapes = self._shapes(input_shapes)
        (tq, _), (tk, _) = shapes["query"], shapes["value"]
        h, k, v = self.num_heads, self.key_dim, self.value_dim
        r = self.dropout_note()
        steps = [weight_gradient(
            self, "attention_output/kernel", "dW_o[h,v,d] = Σ_(n,i) O[n,i,h,v] · dy[n,i,d]", "W_o"
        )]
        if self.use_bias:
            steps.append(weight_gradient(self, "attention_output/bias", "db_o = Σ_(n,i) dy", "b_o"))
        steps += [
            BackwardStep(None, "dO = dy · W_oᵀ", batch((tq, h, v))),
            BackwardStep(None, f"dP_h = dO_h V_hᵀ{r}{self.returned_note()}", batch((h, tq, tk))),
            BackwardStep(None, "dS = P ⊙ (dP - Σ_keys dP ⊙ P), 0 where masked", batch((h, tq, tk))),
            BackwardStep(None, f"dQ = dS K / √{k}", batch((tq, h, k))),
            BackwardStep(None, f"dK = dSᵀ Q / √{k}", batch((tk, h, k))),
            BackwardStep(None, f"dV = {self.weights_transposed()} dO", batch((tk, h, v))),
        ]
        for name, grad, letter in (("query", "dQ", "q"), ("key", "dK", "k"), ("value", "dV", "v")):
            steps.append(weight_gradient(
                self, f"{name}/kernel", f"dW_{letter} = Σ_(n,t) {name}[n,t] ⊗ {grad}[n,t]",
                f"W_{letter}",
            ))
            if self.use_bias:
                steps.append(weight_gradient(
                    self, f"{name}/bias", f"db_{letter} = Σ_(n,t) {grad}[n,t]", f"b_{letter}"
                ))
        return steps + self.explain_input_gradients(input_shapes, {
            "query": "d query = dQ · W_qᵀ",
            "value": "d value = dV · W_vᵀ",
            "key": "d key = dK · W_kᵀ",
        })


class Attention(_AttentionBase):
    """Dot-product (Luong) attention, no projections: Attention()([query, value, (key)]).

        score_mode "dot":     S = s · Q Kᵀ                 (s = ``scale`` if use_scale, else 1)
        score_mode "concat":  S_ij = w · Σ_a tanh(s · (q_ia + k_ja))    (w = concat_score_weight)
        P = softmax(S - 10⁹ where masked);  y = (P ⊙ R) V

    Shapes: query (N, Tq, D), value (N, Tk, Dv), key (N, Tk, D) (default value) -> y (N, Tq, Dv),
    and P (N, Tq, Tk) with ``return_attention_scores``. ``scale`` and ``concat_score_weight``
    are scalars initialised to 1, Keras's. A query step its Keras mask marks as padding gets a
    zero output.

    Backward:  dP = dy Vᵀ ⊙ R,  dS = P ⊙ (dP - rowsum(dP ⊙ P)),  dV = (P ⊙ R)ᵀ dy;
        "dot":     dQ = s dS K,  dK = s dSᵀ Q,  ds = Σ dS ⊙ (Q Kᵀ)
        "concat":  with t = tanh(s (q_i + k_j)) and g = w dS_ij (1 - t²):
                   dq_i = s Σ_j g,  dk_j = s Σ_i g,  ds = Σ g ⊙ (q_i + k_j),  dw = Σ dS ⊙ Σ_a t
    """

    _score_modes = ("dot", "concat")

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        if score_mode not in self._score_modes:
            raise HandnetError(
                f"{type(self).__name__} score_mode must be one of {list(self._score_modes)}, got "
                f"{score_mode!r}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode

    def build(self, input_shapes, rng=None):
        self._check_shapes(input_shapes)
        if self.use_scale:
            self.add_param("scale", np.ones((), dtype=self.dtype))
        if self.score_mode == "concat":
            self.add_param("concat_score_weight", np.ones((), dtype=self.dtype))
        self.input_shape = [tuple(int(d) for d in s) for s in input_shapes]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _check_shapes(self, input_shapes):
        shapes = self._shapes(input_shapes)
        if shapes["query"][-1] != shapes["key"][-1]:
            raise HandnetError(
                f"{type(self).__name__} {self.name!r}: query and key need the same feature "
                f"size, got query {shapes['query']} and key {shapes['key']}"
            )
        return shapes

    def compute_output_shape(self, input_shapes):
        shapes = self._check_shapes(input_shapes)
        y = (shapes["query"][0], shapes["value"][-1])
        if self.returns_list:
            return [y, (shapes["query"][0], shapes["value"][0])]
        return y

    def accept_call(self, options):
        if options.get("attention_mask"):
            raise HandnetError(
                f"{type(self).__name__} {self.name!r} takes its masks from its inputs (Keras's "
                "mask argument), not an attention_mask"
            )
        super().accept_call(options)

    def __call__(self, inputs, mask=None, training=False, return_attention_scores=False,
                 use_causal_mask=False):
        """Keras's call: ``layer([query, value, (key)], mask=[query_mask, value_mask])``."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise HandnetError(
                f"{type(self).__name__} {self.name!r} is called on a list [query, value] or "
                f"[query, value, key], got {type(inputs).__name__}"
                + (f" of {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
            )
        key = inputs[2] if len(inputs) == 3 else None
        if graph.is_symbolic(list(inputs)):
            if mask is not None:
                raise HandnetError(
                    f"{type(self).__name__} {self.name!r}: in a graph the masks come from the "
                    "inputs (an Embedding(mask_zero=True) or a Masking before), not mask=[…]"
                )
            return self._symbolic_call(
                inputs[0], inputs[1], key, None, use_causal_mask, return_attention_scores
            )
        arrays = [np.asarray(x) for x in inputs]
        if not self.built:
            saved = self._signature
            self._signature = {**CALL_DEFAULTS, "key": key is not None}
            try:
                self.build([x.shape[1:] for x in arrays])
            finally:
                self._signature = saved
        masks = None
        if mask is not None:
            if not isinstance(mask, (list, tuple)) or len(mask) not in (2, 3):
                raise HandnetError(
                    f"{type(self).__name__} {self.name!r}: mask must be [query_mask, value_mask]"
                )
            masks = (mask[0], mask[1], None)
        return self._attend(
            arrays[0], arrays[1], arrays[2] if key is not None else None, use_causal_mask,
            return_attention_scores, training, masks,
        )

    def forward(self, inputs, training=False, mask=None):
        named = self.split_inputs(inputs)
        masks = self._input_masks(mask)
        if masks is not None:
            masks = (masks[0], masks[1], None)  # Keras's Attention reads [query, value] masks
        key = named["key"]
        return self._attend(
            np.asarray(named["query"]), np.asarray(named["value"]),
            None if key is None else np.asarray(key),
            self._signature["use_causal_mask"], self._signature["return_attention_scores"],
            training, masks,
        )

    def _attend(self, query, value, key, use_causal_mask, return_scores, training, masks):
        shapes = self.input_shape
        self._check("query", query, shapes[0])
        self._check("value", value, shapes[1])
        key_given = key is not None
        key = value if key is None else key
        self._check("key", key, (value.shape[1], query.shape[-1]))
        query_mask, value_mask = (None, None) if masks is None else masks[:2]
        # Keras's rule: the value's mask and the causal mask decide which scores are masked.
        scores_mask = None
        if value_mask is not None:
            scores_mask = _as_bool(np.asarray(value_mask))[:, None, :]
        if use_causal_mask:
            causal = causal_mask(query.shape[1], key.shape[1])[None]
            scores_mask = causal if scores_mask is None else scores_mask & causal
        s, score_cache = self._scores(query, key)
        p = fast.softmax(fast.masked_scores(s, scores_mask, mode="subtract"))
        keep = None
        if training and self.dropout > 0:
            keep = _dropout_keep(self.rng, p.shape, self.dropout, p.dtype)
        weights = p if keep is None else p * keep
        y = weights @ value
        q_keep = None
        if query_mask is not None:
            q_keep = _as_bool(np.asarray(query_mask))[:, :, None]
            y = np.where(q_keep, y, y.dtype.type(0))
        self._cache = (query, key, value, p, keep, q_keep, score_cache)
        self._cache_key_given, self._cache_mask_input = key_given, False
        self._cache_returned = bool(return_scores)
        return [y, p.copy()] if return_scores else y

    def _scale_value(self):
        return self.params["scale"] if self.use_scale else None

    def _scores(self, query, key):
        """(S (N, Tq, Tk), what the backward pass needs): handnet.fast.attention."""
        if self.score_mode == "dot":
            return fast.dot_scores(query, key, self._scale_value())
        return fast.concat_scores(
            query, key, self._scale_value(), self.params["concat_score_weight"]
        )

    def _scores_backward(self, ds, query, key, cache):
        """(dquery, dkey) from dS; fills the gradients of the score's weights."""
        if self.score_mode == "dot":
            dq, dk, d_scale = fast.dot_scores_backward(ds, query, key, self._scale_value(), cache)
        else:
            dq, dk, d_scale, d_weight = fast.concat_scores_backward(
                ds, self._scale_value(), self.params["concat_score_weight"], cache
            )
            self.grads["concat_score_weight"][...] = d_weight
        if d_scale is not None:
            self.grads["scale"][...] = d_scale
        return dq, dk

    def backward(self, dy):
        dy, d_scores = self._dy_parts(dy)
        query, key, value, p, keep, q_keep, score_cache = self._cache
        if q_keep is not None:
            dy = np.where(q_keep, dy, dy.dtype.type(0))
        weights = p if keep is None else p * keep
        dv = weights.transpose(0, 2, 1) @ dy
        dp = dy @ value.transpose(0, 2, 1)
        if keep is not None:
            dp *= keep
        if d_scores is not None:
            dp += d_scores
        ds = fast.softmax_backward(dp, p)
        dq, dk = self._scores_backward(ds, query, key, score_cache)
        if not self.needs_input_gradient:
            return [None] * (2 + self._cache_key_given)
        return self._input_gradients(dq, dv, dk)

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode}

    def explain(self):
        s = "s · " if self.use_scale else ""
        if self.score_mode == "dot":
            score = f"S = {s}Q Kᵀ"
        else:
            score = f"S_ij = w · Σ tanh({s}(q_i + k_j))"
        return (f"{self.score_mode} attention",
                f"{score};  P = softmax(S, masked);  y = P V")

    def explain_backward(self, input_shapes):
        shapes = self._shapes(input_shapes)
        (tq, _), (tk, _) = shapes["query"], shapes["value"]
        r = self.dropout_note()
        steps = [
            BackwardStep(None, f"dP = dy Vᵀ{r}{self.returned_note()}   (dy = 0 at a padded query)",
                         batch((tq, tk))),
            BackwardStep(None, "dS = P ⊙ (dP - Σ_keys dP ⊙ P)", batch((tq, tk))),
        ]
        steps += self.explain_score_gradients(shapes)
        return steps + self.explain_input_gradients(input_shapes, {
            "query": "d query = dQ",
            "value": f"d value = {self.weights_transposed()} dy",
            "key": "d key = dK",
        })

    def explain_score_gradients(self, shapes):
        """The lines from dS to dQ, dK and the score's weights (scale, concat_score_weight)."""
        (tq, d), (tk, _) = shapes["query"], shapes["key"]
        s = "s · " if self.use_scale else ""
        if self.score_mode == "dot":
            steps = [BackwardStep(None, f"dQ = {s}dS K,  dK = {s}dSᵀ Q", ())]
            if self.use_scale:
                steps.append(weight_gradient(self, "scale", "ds = Σ dS ⊙ (Q Kᵀ)", "s"))
            return steps
        steps = [
            BackwardStep(None, f"t = tanh({s}(q_i + k_j)),  g = w · dS_ij · (1 - t²)",
                         batch((tq, tk, d))),
            BackwardStep(None, f"dQ: dq_i = {s}Σ_j g,  dK: dk_j = {s}Σ_i g", ()),
        ]
        if self.use_scale:
            steps.append(weight_gradient(self, "scale", "ds = Σ g ⊙ (q_i + k_j)", "s"))
        steps.append(weight_gradient(self, "concat_score_weight", "dw = Σ dS ⊙ Σ_a t", "w"))
        return steps


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: S_ij = Σ_a scale_a · tanh(q_ia + k_ja), then as Attention.

    ``scale`` is a vector (D,) (Glorot uniform) when ``use_scale`` (the default), else 1.

    Backward, t = tanh(q_i + k_j), g = dS_ij · scale ⊙ (1 - t²):
        dq_i = Σ_j g,  dk_j = Σ_i g,  dscale = Σ_{n,i,j} dS_ij t
    """

    _score_modes = ("concat",)

    def __init__(self, use_scale=True, dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, score_mode="concat", dropout=dropout, seed=seed,
                         **kwargs)

    def build(self, input_shapes, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        shapes = self._check_shapes(input_shapes)
        if self.use_scale:
            dim = shapes["query"][-1]
            self.add_param("scale", initializers.get("glorot_uniform")((dim,), rng, self.dtype))
        self.input_shape = [tuple(int(d) for d in s) for s in input_shapes]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _scores(self, query, key):
        return fast.additive_scores(query, key, self._scale_value())

    def _scores_backward(self, ds, query, key, t):
        dq, dk, d_scale = fast.additive_scores_backward(ds, self._scale_value(), t)
        if d_scale is not None:
            self.grads["scale"][...] = d_scale
        return dq, dk

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config

    def explain(self):
        scale = "scale · " if self.use_scale else ""
        return ("additive attention",
                f"S_ij = Σ {scale}tanh(q_i + k_j);  P = softmax(S, masked);  y = P V")

    def explain_score_gradients(self, shapes):
        (tq, d), (tk, _) = shapes["query"], shapes["key"]
        scale = "scale ⊙ " if self.use_scale else ""
        steps = [
            BackwardStep(None, f"t = tanh(q_i + k_j),  g = dS_ij · {scale}(1 - t²)",
                         batch((tq, tk, d))),
            BackwardStep(None, "dQ: dq_i = Σ_j g,  dK: dk_j = Σ_i g", ()),
        ]
        if self.use_scale:
            steps.append(weight_gradient(self, "scale", "dscale = Σ_(n,i,j) dS_ij · t", "scale"))
        return steps
