"""EinsumDense: a dense layer whose product is any einsum equation (Keras's EinsumDense)."""

import math
import re
import string

import numpy as np

from .. import activations, initializers, regularizers
from ..errors import HandnetError, InvalidInputError
from .base import (
    BackwardStep,
    Layer,
    activation_formula,
    activation_gradient,
    batch,
    weight_gradient,
)

#: input,kernel->output, with '...' allowed at either end of the input and of the output.
_EQUATION = re.compile(
    r"^(\.\.\.)?([a-zA-Z]+)(\.\.\.)?,([a-zA-Z]+)->(\.\.\.)?([a-zA-Z]+)(\.\.\.)?$"
)


def _route(explicit, kernel_shape):
    """How ``forward`` computes einsum(explicit, x, W) for two forms it can do with fewer
    NumPy calls (at batch 1 an einsum's planning costs more than its arithmetic):

        ("scale",)                          x's letters are y's, W's a suffix of them and
                                            nothing is summed ("abc,c->abc", "abc,bc->abc"):
                                            y = x · W, broadcast; exactly einsum's numbers
        ("matmul", C, out, bound)           x = rows + contracted letters, W = contracted +
                                            out letters, y = rows + out ("abc,cd->abd",
                                            "abc,cde->abde", "abcd,cde->abe"): one matrix
                                            product of x (rows, C) and W (C, out)
        None                                anything else: np.einsum

    The matrix product sums each output over the C contracted entries as BLAS does, the same
    dot products einsum hands to BLAS: a float32 result within C·2⁻²³·Σ|x W| of the exact sum
    (tests/layers/test_einsum_dense.py holds it to that against float64)."""
    x_spec, rest = explicit.split(",")
    w_spec, y_spec = rest.split("->")
    if x_spec == y_spec and y_spec.endswith(w_spec):
        return ("scale",)
    summed = "".join(c for c in x_spec if c not in y_spec)
    if not summed or any(c not in w_spec for c in summed):
        return None
    rows = x_spec[: len(x_spec) - len(summed)]
    out = w_spec[len(summed):]
    if x_spec != rows + summed or w_spec != summed + out or y_spec != rows + out or any(
        c in w_spec for c in rows
    ):
        return None
    contracted = math.prod(kernel_shape[: len(summed)])
    return ("matmul", contracted, tuple(kernel_shape[len(summed):]), len(summed))


class EinsumDense(Layer):
    """y = f(einsum(equation, x, W) + b)

    The equation names the axes of x (batch axis first), of the kernel W and of y, Keras's way:
    "ab,bc->ac" is Dense; "abc,cde->abde" projects (N, T, D) to (N, T, H, K), the query, key
    and value projections of MultiHeadAttention; "abcd,cde->abe" its output projection. A
    letter in x and W but not in y is summed over; "..." stands for axes passed through.

    Shapes (Keras's rules): ``output_shape`` gives the sizes of y's axes after the batch axis
    (None where the input fixes them); W has, for each of its letters, the size of that axis in
    y or else in x; b (``bias_axes``, letters of y) has y's trailing shape from the first bias
    letter on, 1 on the axes without bias, so it broadcasts against y.

    Backward, given dy = ∂L/∂y and dz = dy · f'(z), every term of the sum being a product:

        dW = einsum("x,y->W", x, dz)     (each kernel entry collects x times dz)
        dx = einsum("y,W->x", dz, W)     (broadcast over any x axis summed alone)
        db = Σ dz over the axes b is broadcast along (the batch axis among them)

    Keras draws W's Glorot limit from fan_in = the product of W's input axes, fan_out = that
    of its output axes; handnet draws a (fan_in, fan_out) matrix and lays it out as W.
    """

    supports_masking = False

    def __init__(
        self,
        equation,
        output_shape,
        activation=None,
        bias_axes=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(equation, str) or not _EQUATION.match(equation.replace(" ", "")):
            raise HandnetError(
                f"EinsumDense equation must be 'input,kernel->output' with letters (and '...' "
                f"at the start or end of input and output), e.g. 'abc,cd->abd'; got {equation!r}"
            )
        self.equation = equation.replace(" ", "")
        if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
            output_shape = (int(output_shape),)
        if not isinstance(output_shape, (list, tuple)) or not all(
            d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0)
            for d in output_shape
        ):
            raise HandnetError(
                f"EinsumDense output_shape must be an int or a list of positive ints (None for "
                f"an axis the input fixes), got {output_shape!r}"
            )
        self.partial_output_shape = tuple(None if d is None else int(d) for d in output_shape)
        if bias_axes is not None and (not isinstance(bias_axes, str) or not bias_axes):
            raise HandnetError(f"EinsumDense bias_axes must be letters or None, got {bias_axes!r}")
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._analysis = None

    # -- the equation ---------------------------------------------------------------------
    def _analyze(self, input_shape):
        """(explicit equation, kernel shape, bias shape or None, output shape, fan axes) for a
        per-sample input shape: Keras's _analyze_split_string, with '...' written out."""
        match = _EQUATION.match(self.equation)
        left_in, x_spec, right_in, w_spec, left_out, y_spec, right_out = match.groups()
        if (bool(left_in), bool(right_in)) != (bool(left_out), bool(right_out)) or (
            left_in and right_in
        ):
            raise HandnetError(
                f"EinsumDense equation {self.equation!r}: '...' must stand at the same end of "
                "the input and the output"
            )
        for spec, what in ((x_spec, "input"), (w_spec, "kernel"), (y_spec, "output")):
            if len(set(spec)) != len(spec):
                raise HandnetError(
                    f"EinsumDense equation {self.equation!r}: the {what} repeats a letter"
                )
        full = (None, *input_shape)
        elided = len(full) - len(x_spec)
        if elided < 0 or (elided > 0 and not (left_in or right_in)):
            raise HandnetError(
                f"EinsumDense {self.name!r}: equation {self.equation!r} names {len(x_spec)} "
                f"input axes, the input has {len(full)} (batch axis included): {full}"
            )
        spare = [c for c in string.ascii_letters if c not in x_spec + w_spec + y_spec]
        ellipsis = "".join(spare[:elided])
        if left_in:
            x_full, y_full = ellipsis + x_spec, ellipsis + y_spec
        else:
            x_full, y_full = x_spec + ellipsis, y_spec + ellipsis
        # output_shape sizes every letter of y but the batch axis's (inside '...' on the left).
        named = y_spec if left_in else y_spec[1:]
        if len(self.partial_output_shape) != len(named):
            raise HandnetError(
                f"EinsumDense {self.name!r}: output_shape {self.partial_output_shape} gives "
                f"{len(self.partial_output_shape)} sizes, the equation's output {y_spec!r} "
                f"needs {len(named)} (one per letter{'' if left_in else ' after the batch axis'})"
            )
        sizes = dict(zip(x_full, full))
        out = {} if left_in else {y_spec[0]: None}
        out.update(zip(named, self.partial_output_shape))
        for letter in y_spec:
            given = out[letter]
            if letter in x_full and given is not None and sizes[letter] not in (None, given):
                raise HandnetError(
                    f"EinsumDense {self.name!r}: axis {letter!r} is {sizes[letter]} in the input "
                    f"and {given} in output_shape"
                )
            if letter not in x_full and letter not in w_spec:
                raise HandnetError(
                    f"EinsumDense equation {self.equation!r}: output axis {letter!r} is in "
                    "neither the input nor the kernel"
                )
            if given is None and letter != y_full[0]:
                if letter not in x_full:
                    raise HandnetError(
                        f"EinsumDense {self.name!r}: output axis {letter!r} needs a size in "
                        "output_shape (the input does not fix it)"
                    )
                out[letter] = sizes[letter]
        for letter, size in zip(ellipsis, full[len(full) - elided:] if right_in else full[:elided]):
            out[letter] = size
        kernel_shape, fan_in_axes, fan_out_axes = [], [], []
        for axis, letter in enumerate(w_spec):
            if letter in y_spec:
                kernel_shape.append(out[letter])
                fan_out_axes.append(axis)
            elif letter in x_full:
                kernel_shape.append(sizes[letter])
                fan_in_axes.append(axis)
            else:
                raise HandnetError(
                    f"EinsumDense equation {self.equation!r}: kernel axis {letter!r} is in "
                    "neither the input nor the output"
                )
        bias_shape = None
        if self.bias_axes is not None:
            for letter in self.bias_axes:
                if letter not in y_spec:
                    raise HandnetError(
                        f"EinsumDense {self.name!r}: bias axis {letter!r} is not an output axis "
                        f"of {y_spec!r}"
                    )
            first = min(y_spec.index(c) for c in self.bias_axes)
            bias_shape = [out[c] if c in self.bias_axes else 1 for c in y_spec[first:]]
            if right_in:
                bias_shape += [1] * elided
        y_shape = tuple(out[c] for c in y_full)
        explicit = f"{x_full},{w_spec}->{y_full}"
        return explicit, tuple(kernel_shape), bias_shape, y_shape[1:], (fan_in_axes, fan_out_axes)

    # -- construction ---------------------------------------------------------------------
    def build(self, input_shape, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        explicit, kernel_shape, bias_shape, _, (fan_in, fan_out) = self._analyze(input_shape)
        self._analysis = explicit
        self._route = _route(explicit, kernel_shape)
        # A (fan_in, fan_out) matrix laid out as the kernel: the fans Keras's EinsumDense uses.
        order = fan_in + fan_out
        flat = (
            math.prod(kernel_shape[a] for a in fan_in),
            math.prod(kernel_shape[a] for a in fan_out),
        )
        init_kernel = initializers.get(self.kernel_initializer)
        matrix = init_kernel(flat, rng, self.dtype)
        laid_out = matrix.reshape([kernel_shape[a] for a in order])
        kernel = np.ascontiguousarray(laid_out.transpose(np.argsort(order)))
        self.add_param("kernel", kernel)
        if bias_shape is not None:
            init_bias = initializers.get(self.bias_initializer)
            self.add_param("bias", init_bias(tuple(bias_shape), rng, self.dtype))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return self._analyze(tuple(input_shape))[3]

    # -- computation ----------------------------------------------------------------------
    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        kernel = self.params["kernel"]
        route = self._route
        if route is None:
            z = np.einsum(self._analysis, x, kernel, optimize=True)
        elif route[0] == "scale":  # one product per entry, no sum: einsum's numbers exactly
            z = x * kernel
        else:  # "matmul": (N·rows, contracted) @ (contracted, out), rows and out flattened
            contracted, out_shape = route[1], route[2]
            z = (x.reshape(-1, contracted) @ kernel.reshape(contracted, -1)).reshape(
                *x.shape[: x.ndim - route[3]], *out_shape
            )
        if "bias" in self.params:
            z += self.params["bias"]
        if self.activation.uses_input:
            self._z, y = z, self.activation.forward(z)
        else:
            self._z, y = None, self.activation.forward(z, out=z)
        self._y = y
        return y

    def backward(self, dy):
        return self.backward_pre_activation(self.activation.backward(dy, self._z, self._y))

    def backward_pre_activation(self, dz):
        x_spec, rest = self._analysis.split(",")
        w_spec, y_spec = rest.split("->")
        kernel = self.params["kernel"]
        self.grads["kernel"][...] = np.einsum(f"{x_spec},{y_spec}->{w_spec}", self._x, dz,
                                              optimize=True)
        if "bias" in self.params:
            bias = self.params["bias"]
            # b is aligned with y's last axes: sum over the leading ones and where b has size 1.
            lead = dz.ndim - bias.ndim
            axes = tuple(range(lead)) + tuple(
                lead + i for i, size in enumerate(bias.shape)
                if size == 1 and dz.shape[lead + i] != 1
            )
            self.grads["bias"][...] = dz.sum(axis=axes, keepdims=True).reshape(bias.shape)
        self.add_regularization_gradients()
        if not self.needs_input_gradient:
            return None
        if self._route is not None and self._route[0] == "scale":
            return dz * kernel  # dx = dz · W, one product per entry as einsum's
        # An input axis in neither W nor y was summed alone: its gradient is the same for each
        # of its entries, so it is computed without it and broadcast back.
        present = "".join(c for c in x_spec if c in w_spec or c in y_spec)
        dx = np.einsum(f"{y_spec},{w_spec}->{present}", dz, kernel, optimize=True)
        if present != x_spec:
            shape = [self._x.shape[i] if c in present else 1 for i, c in enumerate(x_spec)]
            dx = np.array(np.broadcast_to(dx.reshape(shape), self._x.shape))
        return dx

    def check_input(self, x):
        if x.shape[1:] != self.input_shape:
            raise InvalidInputError(
                f"layer {self.name!r} (EinsumDense {self.equation!r}) expected input shape "
                f"(None, {', '.join(map(str, self.input_shape))}), got {x.shape}"
            )

    # -- description ----------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "equation": self.equation,
            "output_shape": list(self.partial_output_shape),
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    def explain(self):
        x_spec, rest = self.equation.split(",")
        w_spec, y_spec = rest.split("->")
        product = f"einsum('{self.equation}', x, W)"
        if self.bias_axes is not None:
            product += f" + b[{self.bias_axes}]"
        shapes = ""
        if self.built:
            shapes = f";  W {self.params['kernel'].shape}"
            if "bias" in self.params:
                shapes += f", b {self.params['bias'].shape}"
        headline = f"einsum {self.equation} to {self.output_shape if self.built else '…'}"
        activation = self.get_config()["activation"]
        return headline, f"y = {activation_formula(activation, product)}{shapes}"

    def explain_backward(self, input_shape):
        explicit = self._analyze(tuple(input_shape))[0]
        x_spec, rest = explicit.split(",")
        w_spec, y_spec = rest.split("->")
        steps, dz = activation_gradient(self.activation, self.compute_output_shape(input_shape))
        steps.append(weight_gradient(
            self, "kernel", f"dW = einsum('{x_spec},{y_spec}->{w_spec}', x, {dz})", "W"
        ))
        if "bias" in self.params:
            formula = f"db = Σ {dz} over the axes b is broadcast along (the batch axis among them)"
            steps.append(weight_gradient(self, "bias", formula, "b"))
        present = "".join(c for c in x_spec if c in w_spec or c in y_spec)
        dx = f"dx = einsum('{y_spec},{w_spec}->{present}', {dz}, W)"
        if present != x_spec:
            dx += f", broadcast back to '{x_spec}' (axes summed alone get the same gradient)"
        steps.append(BackwardStep("x", dx, batch(input_shape)))
        return steps
