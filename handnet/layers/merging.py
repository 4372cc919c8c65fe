"""Merge layers: several inputs, one output (Keras's ``keras.layers`` merging family).

    Add, Subtract, Multiply, Average, Maximum, Minimum   elementwise, shapes broadcast
    Concatenate(axis=-1)                                 joined along one axis
    Dot(axes, normalize=False)                           Keras's batch_dot, one product per sample

The multi-input contract, which the graph engine relies on:

    build(input_shapes, rng)   a LIST of per-sample shapes [shape₁, shape₂, …] (no batch axis);
                               input_shape becomes that list of tuples, output_shape one tuple
    forward(inputs, training)  [x₁ (N, *shape₁), x₂ (N, *shape₂), …] -> y (N, *output_shape)
    backward(dy)               -> [dx₁, dx₂, …],  dx_k = ∂L/∂x_k, of x_k's shape

Every array ``backward`` returns belongs to the caller alone: never dy itself, never a view of
dy, never shared with another returned gradient. Add's gradients all equal dy, but a graph
engine sums gradients where one tensor feeds two layers, and may do it in place (dx₁ += …); had
dx₁ and dx₂ been one array, that sum would change dx₂ too, and had it been dy, it would change
an array the layer above owns. One copy of dy per input is cheap beside a silently wrong gradient.
Likewise ``forward`` returns a new array, never one of its inputs (Add of a single input copies).

Axes are counted as Keras counts them, with the batch axis: axis=1 is the first per-sample axis,
axis=-1 the last. The batch axis itself (0) is refused: a handnet layer works per sample.
"""

import numpy as np

from ..errors import HandnetError, InvalidInputError
from . import graph
from .base import BackwardStep, Layer, batch

#: Keras's ``backend.epsilon()``: the floor under the norm in Dot(normalize=True).
NORMALIZE_EPSILON = 1e-7

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _x(k):
    """The name of input k (1-based) in formulas: x₁, x₂, …, x₁₂."""
    return "x" + str(k).translate(_SUBSCRIPTS)


def _shapes_text(shapes):
    """(3,) and (4,);  (3,), (3,) and (4,)"""
    shapes = [str(tuple(s)) for s in shapes]
    return shapes[0] if len(shapes) == 1 else f"{', '.join(shapes[:-1])} and {shapes[-1]}"


def _same_arrays(inputs, input_shapes, output_shape):
    """True when the layer was built for equal shapes and inputs are as many ndarrays of one
    shape (N, *output_shape) and one dtype: the case that needs no broadcasting and passes
    ``check_input``, tested in a few comparisons."""
    if type(inputs) is not list and type(inputs) is not tuple:
        return False
    if len(inputs) != len(input_shapes) or len(inputs) < 2:
        return False
    for built in input_shapes:
        if built != output_shape:
            return False
    first = inputs[0]
    if type(first) is not np.ndarray or first.ndim == 0 or first.shape[1:] != output_shape:
        return False
    shape, dtype = first.shape, first.dtype
    for x in inputs[1:]:
        if type(x) is not np.ndarray or x.shape != shape or x.dtype != dtype:
            return False
    return True


class Merge(Layer):
    """The base of every merge layer: a list of inputs in, one output out (see the module doc).

    The elementwise layers broadcast per-sample shapes as NumPy does, which is Keras's rule: a
    lower-rank input gets axes of size 1 inserted after the batch axis, then every axis of size 1
    stretches to match, e.g. (3, 4) with (4,) -> (3, 4) and (3, 1) with (1, 4) -> (3, 4). The
    batch axis never broadcasts: every input has the same N. A broadcast input is used once per
    copy, so its gradient is the sum of the copies' gradients over the stretched axes.
    """

    #: How many inputs the layer takes: (fewest, most), None for no upper bound. Keras 3 accepts
    #: a single input for every merge layer but Subtract and Dot (the output is then the input).
    arity = (1, None)

    # -- construction -------------------------------------------------------------------
    def build(self, input_shapes, rng=None):
        """Record the per-sample shapes (a list, one per input) and the output shape."""
        shapes = self._shape_list(input_shapes)
        fewest, most = self.arity
        if len(shapes) < fewest or (most is not None and len(shapes) > most):
            wanted = f"exactly {fewest}" if fewest == most else f"at least {fewest}"
            raise HandnetError(
                f"{self._label} takes {wanted} input{'s' if fewest > 1 else ''}, "
                f"got {len(shapes)} (per-sample shapes {shapes})"
            )
        self.input_shape = shapes
        self.output_shape = tuple(int(d) for d in self.compute_output_shape(shapes))
        self.built = True

    def compute_output_shape(self, input_shapes):
        try:
            return tuple(np.broadcast_shapes(*input_shapes))
        except ValueError:
            raise HandnetError(
                f"{self._label}: inputs of per-sample shapes {_shapes_text(input_shapes)} do not "
                "broadcast together (sizes must be equal or 1, aligned from the last axis)"
            ) from None

    @property
    def _label(self):
        return f"{type(self).__name__} {self.name!r}"

    def _shape_list(self, input_shapes):
        def is_shape(shape):
            return isinstance(shape, (list, tuple)) and all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape
            )

        if is_shape(input_shapes) and input_shapes:
            raise HandnetError(
                f"{self._label} is built from a list of per-sample shapes, one per input; "
                f"{input_shapes!r} is a single shape"
            )
        if not isinstance(input_shapes, (list, tuple)) or not all(map(is_shape, input_shapes)):
            raise HandnetError(
                f"{self._label} is built from a list of per-sample shapes, one per input, "
                f"e.g. [(3,), (3,)]; got {input_shapes!r}"
            )
        return [tuple(int(d) for d in shape) for shape in input_shapes]

    # -- computation ----------------------------------------------------------------------
    def __call__(self, inputs, training=False):
        """Eager use: ``Add()([a, b])`` builds from the arrays' shapes on the first call, then
        runs forward. On symbolic tensors it records a node, as every layer does."""
        if graph.is_symbolic(inputs):
            return super().__call__(inputs, training=training)
        if not isinstance(inputs, (list, tuple)):
            raise InvalidInputError(
                f"{self._label} is called on a list of arrays, got {type(inputs).__name__}"
            )
        inputs = [np.asarray(x) for x in inputs]
        if not self.built:
            if any(x.ndim == 0 for x in inputs):
                raise InvalidInputError(
                    f"{self._label}: every input needs a batch axis, got shapes "
                    f"{[x.shape for x in inputs]}"
                )
            self.build([x.shape[1:] for x in inputs])
        return self.forward(inputs, training=training)

    def check_input(self, inputs):
        """Raise unless inputs is a list of len(input_shape) arrays (N, *shape_k), one N."""
        expected = len(self.input_shape)
        if not isinstance(inputs, (list, tuple)) or len(inputs) != expected:
            got = f"{len(inputs)}" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise InvalidInputError(
                f"{self._label} expected a list of {expected} arrays, got {got}"
            )
        for k, (x, shape) in enumerate(zip(inputs, self.input_shape)):
            if x.ndim == 0 or x.shape[1:] != shape:
                raise InvalidInputError(
                    f"{self._label} expected inputs[{k}] of shape (None, "
                    f"{', '.join(map(str, shape))}), got {x.shape}"
                )
        if len({x.shape[0] for x in inputs}) > 1:
            raise InvalidInputError(
                f"{self._label}: the inputs have different batch sizes, shapes "
                f"{_shapes_text([x.shape for x in inputs])}"
            )

    def _checked(self, inputs):
        if isinstance(inputs, (list, tuple)):
            inputs = [np.asarray(x) for x in inputs]
        self.check_input(inputs)
        return inputs

    def _aligned(self, x, k):
        """x_k (N, *shape_k) viewed as (N, 1, …, 1, *shape_k) with the output's rank, so that
        NumPy broadcasts the per-sample axes and never the batch axis against them."""
        shape = self.input_shape[k]
        return x.reshape(x.shape[0], *(1,) * (len(self.output_shape) - len(shape)), *shape)

    def _full(self, aligned):
        """A fresh output array (N, *output_shape) that starts as the first (aligned) input."""
        dtype = np.result_type(*aligned)
        return np.array(np.broadcast_to(aligned[0], (len(aligned[0]), *self.output_shape)), dtype)

    def _sum_to_input(self, grad, k):
        """(N, *output_shape) -> (N, *shape_k): sum over the axes input k was stretched along."""
        shape = self.input_shape[k]
        aligned = (1,) * (len(self.output_shape) - len(shape)) + shape
        axes = tuple(
            1 + i for i, (a, o) in enumerate(zip(aligned, self.output_shape)) if a == 1 and o != 1
        )
        if axes:
            grad = grad.sum(axis=axes, keepdims=True)
        return grad.reshape(grad.shape[0], *shape)

    @staticmethod
    def _separate(grads, dy):
        """The gradients as arrays the caller owns (see the module docstring): any that may share
        memory with dy or with a gradient before it is copied."""
        owned = []
        for grad in grads:
            if np.may_share_memory(grad, dy) or any(np.may_share_memory(grad, o) for o in owned):
                grad = grad.copy()
            owned.append(grad)
        return owned

    # -- description ----------------------------------------------------------------------
    def _names(self):
        """["x₁", "x₂", …] when built; ["x₁", "x₂", "…"] before the number is known."""
        if self.built:
            return [_x(k + 1) for k in range(len(self.input_shape))]
        return [_x(1), _x(2), "…"]

    def _count(self):
        return f"{len(self.input_shape)} inputs" if self.built else "the inputs"

    def _broadcast_note(self):
        if self.built and any(shape != self.output_shape for shape in self.input_shape):
            return f", broadcast to {self.output_shape}"
        return ""

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        raise NotImplementedError

    def input_gradients(self, formula, broadcast=True):
        """One BackwardStep per input ("x1", "x2", …): ``formula(k, name)`` for input k
        (0-based) named x₁, x₂, …, and for a broadcast input the sum that brings it back."""
        steps = []
        for k, shape in enumerate(self.input_shape):
            text = formula(k, _x(k + 1))
            if broadcast and shape != self.output_shape:
                text += f"   (summed back to {shape} over the axes it was broadcast along)"
            steps.append(BackwardStep(f"x{k + 1}", text, batch(shape)))
        return steps


class Add(Merge):
    """y = x₁ + x₂ + … + x_K, elementwise.

    Shapes:  x_k (N, *shape_k), shapes equal or broadcastable  ->  y (N, *broadcast shape).

    Backward: ∂y/∂x_k = 1, so dx_k = dy (summed over the axes x_k was broadcast along), a
    separate copy for each input.
    """

    def forward(self, inputs, training=False):
        if _same_arrays(inputs, self.input_shape, self.output_shape):
            # The hot path (a residual connection): no broadcasting, one dtype. np.add makes y,
            # then the rest are added in order: the sums of the general path below, bit for bit.
            y = np.add(inputs[0], inputs[1])
            for x in inputs[2:]:
                y += x
            return y
        inputs = self._checked(inputs)
        aligned = [self._aligned(x, k) for k, x in enumerate(inputs)]
        y = self._full(aligned)
        for x in aligned[1:]:
            y += x
        return y

    def backward(self, dy):
        return self._separate([self._sum_to_input(dy, k) for k in range(len(self.input_shape))], dy)

    def explain(self):
        return f"sum of {self._count()}{self._broadcast_note()}", "y = " + " + ".join(self._names())

    def explain_backward(self, input_shapes):
        return self.input_gradients(lambda k, name: f"d{name} = dy")


class Subtract(Merge):
    """y = x₁ - x₂, elementwise; exactly two inputs.

    Shapes:  x₁ (N, *shape₁), x₂ (N, *shape₂), equal or broadcastable  ->  y (N, *broadcast).

    Backward:  dx₁ = dy,  dx₂ = -dy  (each summed over the axes it was broadcast along).
    """

    arity = (2, 2)

    def forward(self, inputs, training=False):
        x1, x2 = self._checked(inputs)
        return self._aligned(x1, 0) - self._aligned(x2, 1)

    def backward(self, dy):
        return self._separate([self._sum_to_input(dy, 0), self._sum_to_input(-dy, 1)], dy)

    def explain(self):
        return f"difference of 2 inputs{self._broadcast_note()}", f"y = {_x(1)} - {_x(2)}"

    def explain_backward(self, input_shapes):
        return self.input_gradients(lambda k, name: f"d{name} = {'-' if k else ''}dy")


class Multiply(Merge):
    """y = x₁ ⊙ x₂ ⊙ … ⊙ x_K, elementwise.

    Shapes:  x_k (N, *shape_k), equal or broadcastable  ->  y (N, *broadcast shape).

    Backward:  dx_k = dy ⊙ Π_{j≠k} x_j  (summed over x_k's broadcast axes). The product of the
    others is built from prefix and suffix products, (x₁⋯x_{k-1}) ⊙ (x_{k+1}⋯x_K), rather than as
    y / x_k: inputs are often exactly 0 (a ReLU's output), and 0/0 is not the derivative.
    """

    def forward(self, inputs, training=False):
        inputs = self._checked(inputs)
        self._inputs = [self._aligned(x, k) for k, x in enumerate(inputs)]
        y = self._full(self._inputs)
        for x in self._inputs[1:]:
            y *= x
        return y

    def backward(self, dy):
        xs = self._inputs
        # before[k] = dy ⊙ x₁ ⊙ … ⊙ x_{k-1}: dy rides along the prefix products.
        before, running = [], dy
        for x in xs:
            before.append(running)
            running = running * x
        grads, after = [None] * len(xs), None  # after = x_{k+1} ⊙ … ⊙ x_K
        for k in reversed(range(len(xs))):
            grads[k] = self._sum_to_input(before[k] if after is None else before[k] * after, k)
            after = xs[k] if after is None else after * xs[k]
        return self._separate(grads, dy)

    def explain(self):
        return (
            f"elementwise product of {self._count()}{self._broadcast_note()}",
            "y = " + " ⊙ ".join(self._names()),
        )

    def explain_backward(self, input_shapes):
        names = self._names()

        def formula(k, name):
            others = [other for j, other in enumerate(names) if j != k]
            return f"d{name} = " + " ⊙ ".join(["dy", *others])

        return self.input_gradients(formula)


class Average(Merge):
    """y = (x₁ + x₂ + … + x_K) / K, elementwise.

    Shapes:  x_k (N, *shape_k), equal or broadcastable  ->  y (N, *broadcast shape).

    Backward:  dx_k = dy / K  (summed over x_k's broadcast axes), a separate array per input.
    """

    def forward(self, inputs, training=False):
        inputs = self._checked(inputs)
        aligned = [self._aligned(x, k) for k, x in enumerate(inputs)]
        y = self._full(aligned)
        for x in aligned[1:]:
            y += x
        y /= len(aligned)  # after the sum, in Keras's order of operations
        return y

    def backward(self, dy):
        share = dy / len(self.input_shape)
        return self._separate(
            [self._sum_to_input(share, k) for k in range(len(self.input_shape))], dy
        )

    def explain(self):
        names = self._names()
        count = len(self.input_shape) if self.built else "K"
        return (
            f"mean of {self._count()}{self._broadcast_note()}",
            f"y = ({' + '.join(names)}) / {count}",
        )

    def explain_backward(self, input_shapes):
        count = len(self.input_shape)
        return self.input_gradients(lambda k, name: f"d{name} = dy / {count}")


class _PairwiseExtremum(Merge):
    """Maximum and Minimum: a left fold of a pairwise pick, y = pick(…pick(pick(x₁, x₂), x₃)…, x_K),
    as Keras computes it, with the tie rule of PyTorch's torch.maximum / torch.minimum backward.

    Shapes:  x_k (N, *shape_k), equal or broadcastable  ->  y (N, *broadcast shape).

    Backward. Write y₁ = x₁ and y_k = pick(y_{k-1}, x_k). At each step the step's gradient g_k
    (g_K = dy) is split between the two sides:

        x_k      gets  g_k · s_k,        s_k = 1 where x_k wins, ½ where x_k == y_{k-1}, 0 else
        y_{k-1}  gets  g_k · (1 - s_k)

    and x₁ gets what reaches y₁. So the winner takes the whole gradient, and an exact tie splits
    it in halves step by step, as torch.maximum(a, b) does (where a == b each gets g/2). With
    all K inputs equal, x_K gets ½, x_{K-1} ¼, …, and x₁ and x₂ 1/2^{K-1} each: a three-way tie
    gives (¼, ¼, ½). That is not symmetric in the inputs, but it is what Keras on the torch
    backend computes, to the last bit; the shares always sum to 1, so no gradient is lost.
    """

    _pick = None  # np.maximum or np.minimum
    _wins = None  # np.greater or np.less: x_k beats the running result

    def forward(self, inputs, training=False):
        inputs = self._checked(inputs)
        self._inputs = [self._aligned(x, k) for k, x in enumerate(inputs)]
        y = self._full(self._inputs)
        for x in self._inputs[1:]:
            self._pick(y, x, out=y)
        return y

    def backward(self, dy):
        xs = self._inputs
        one, half, zero = (dy.dtype.type(v) for v in (1, 0.5, 0))
        shares, running = [], xs[0]  # replay the fold: s_k for k = 2 … K
        for x in xs[1:]:
            shares.append(np.where(self._wins(x, running), one, np.where(x == running, half, zero)))
            running = self._pick(running, x)
        grads, upstream = [None] * len(xs), dy
        for k in range(len(xs) - 1, 0, -1):
            grads[k] = self._sum_to_input(upstream * shares[k - 1], k)
            upstream = upstream * (one - shares[k - 1])
        grads[0] = self._sum_to_input(upstream, 0)
        return self._separate(grads, dy)

    def explain_picks(self, which):
        """The fold replayed from the last pick: y_k = pick(y_(k-1), x_k), g_k = ∂L/∂y_k."""
        fold = BackwardStep(
            None,
            f"g_K = dy,  g_(k-1) = g_k · (1 - s_k);  s_k = 1 where x_k is {which} than "
            "y_(k-1) = pick(x₁ … x_(k-1)), ½ on a tie, else 0",
            batch(self.output_shape),
        )

        def formula(k, name):
            return f"d{name} = g_1" if k == 0 else f"d{name} = g_{k + 1} · s_{k + 1}"

        return [fold, *self.input_gradients(formula)]


class Maximum(_PairwiseExtremum):
    """y = max(x₁, x₂, …, x_K), elementwise, folded left: max(max(x₁, x₂), x₃)…

    Backward: the larger side of each pairwise max takes the gradient; an exact tie splits it in
    halves (torch.maximum's rule), so a three-way tie gives (¼, ¼, ½). See _PairwiseExtremum.
    """

    _pick = np.maximum
    _wins = np.greater

    def explain(self):
        return (
            f"elementwise maximum of {self._count()}{self._broadcast_note()}",
            f"y = max({', '.join(self._names())})",
        )

    def explain_backward(self, input_shapes):
        return self.explain_picks("larger")


class Minimum(_PairwiseExtremum):
    """y = min(x₁, x₂, …, x_K), elementwise, folded left: min(min(x₁, x₂), x₃)…

    Backward: the smaller side of each pairwise min takes the gradient; an exact tie splits it
    in halves (torch.minimum's rule), so a three-way tie gives (¼, ¼, ½). See _PairwiseExtremum.
    """

    _pick = np.minimum
    _wins = np.less

    def explain(self):
        return (
            f"elementwise minimum of {self._count()}{self._broadcast_note()}",
            f"y = min({', '.join(self._names())})",
        )

    def explain_backward(self, input_shapes):
        return self.explain_picks("smaller")


class Concatenate(Merge):
    """y = [x₁, x₂, …, x_K] joined along ``axis`` (Keras's count: with the batch axis, so the
    default -1 is the last axis and 1 the first per-sample axis; 0, the batch, is refused).

    Shapes:  x_k (N, …, d_k, …), equal except along the axis  ->  y (N, …, d₁ + … + d_K, …).
    No broadcasting (Keras has none here): every input has the same rank.

    Backward: y's slice [o_k, o_k + d_k) along the axis is x_k, o_k = d₁ + … + d_{k-1}, so
    dx_k = dy[…, o_k : o_k + d_k, …], copied (a slice would be a view of dy).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise HandnetError(f"Concatenate: axis must be an integer, got {axis!r}")
        self.axis = int(axis)

    def _sample_axis(self, rank):
        """The per-sample axis (0-based, batch left out) of ``self.axis`` for inputs of ``rank``."""
        full = rank + 1
        if not -full <= self.axis < full or self.axis % full == 0:
            raise HandnetError(
                f"{self._label}: axis={self.axis} is "
                + ("the batch axis" if -full <= self.axis < full else "out of range")
                + f" for inputs of rank {full} counting the batch axis; concatenation is per "
                f"sample, along axis 1 … {full - 1} or -{full - 1} … -1"
            )
        return self.axis % full - 1

    def compute_output_shape(self, input_shapes):
        ranks = {len(shape) for shape in input_shapes}
        if len(ranks) > 1:
            raise HandnetError(
                f"{self._label}: inputs of per-sample shapes {_shapes_text(input_shapes)} have "
                "different ranks; Concatenate needs equal ranks (it does not broadcast)"
            )
        axis = self._sample_axis(ranks.pop())
        others = {shape[:axis] + shape[axis + 1 :] for shape in input_shapes}
        if len(others) > 1:
            raise HandnetError(
                f"{self._label}: inputs of per-sample shapes {_shapes_text(input_shapes)} must "
                f"match on every axis but the concatenation axis {self.axis}"
            )
        output = list(input_shapes[0])
        output[axis] = sum(shape[axis] for shape in input_shapes)
        return tuple(output)

    def forward(self, inputs, training=False):
        inputs = self._checked(inputs)
        return np.concatenate(inputs, axis=1 + self._sample_axis(len(self.output_shape)))

    def backward(self, dy):
        axis = self._sample_axis(len(self.output_shape))
        ends = np.cumsum([shape[axis] for shape in self.input_shape])[:-1]
        return [part.copy() for part in np.split(dy, ends, axis=1 + axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}

    def explain(self):
        return (
            f"{self._count()} joined along axis {self.axis}",
            f"y = concatenate([{', '.join(self._names())}], axis={self.axis})",
        )

    def explain_backward(self, input_shapes):
        axis = self._sample_axis(len(self.output_shape))
        starts = [0, *np.cumsum([shape[axis] for shape in self.input_shape])]
        lead = ", ".join([":"] * (axis + 1))

        def formula(k, name):
            rest = ", …" if axis < len(self.output_shape) - 1 else ""
            return f"d{name} = dy[{lead}, {starts[k]}:{starts[k + 1]}{rest}]   (its slice)"

        return self.input_gradients(formula, broadcast=False)


def _l2_normalize(x, axis):
    """x̂ = x / max(‖x‖₂, ε) along ``axis`` (Keras: x · min(rsqrt(Σ x²), 1/ε), ε = 1e-7).
    Returns x̂, the scale s = 1 / max(‖x‖, ε) and where the norm is above the floor."""
    norm = np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    scale = 1 / np.maximum(norm, NORMALIZE_EPSILON)
    return x * scale, scale, norm >= NORMALIZE_EPSILON


def _l2_normalize_backward(d_normalized, normalized, scale, above_floor, axis):
    """dx from dx̂ for x̂ = x · s (see Dot): s · (dx̂ - x̂ (x̂ · dx̂)), or s · dx̂ below the floor."""
    radial = np.sum(normalized * d_normalized, axis=axis, keepdims=True) * above_floor
    return scale * (d_normalized - normalized * radial)


class Dot(Merge):
    """Keras's batch_dot: per sample, the sum of x₁ ⊙ x₂ over one axis of each; two inputs.

    ``axes`` is an int (the same axis of both) or a pair (a, b), counted as Keras counts them,
    with the batch axis (so axes=1 is the first per-sample axis); negative axes count from the
    end of each input's own rank. The batch axis 0 is refused. With i the contracted index:

        y[n, p…, q…] = Σ_i x₁[n, p…, i, …] · x₂[n, q…, i, …]        (i at axis a of x₁, b of x₂)

    Shapes: the free axes of x₁ then those of x₂, in order; (N, 1) when none is left:
        (N, d)·(N, d), axes=1 -> (N, 1);   (N, n, d)·(N, m, d), axes=2 -> (N, n, m);
        (N, d, n)·(N, d, m), axes=1 -> (N, n, m);   (N, n, d)·(N, d), axes=(2, 1) -> (N, n).

    Computed as one batched matrix product: x₁'s axis a moved last and its free axes flattened,
    A (N, P, d); x₂'s axis b moved first and its free axes flattened, B (N, d, Q); Y = A @ B
    (N, P, Q), reshaped to the output. Backward, given dY (dy reshaped to (N, P, Q)):
        dA = dY @ Bᵀ  (N, P, d),   dB = Aᵀ @ dY  (N, d, Q),
    reshaped and the axes moved back.

    normalize=True first l2-normalizes each input along its dot axis (the output is then the
    cosine similarity): x̂ = x / max(‖x‖, ε), ‖x‖ = sqrt(Σ_i x_i²), ε = 1e-7 (Keras's epsilon).
    Above the floor, ∂‖x‖/∂x_j = x_j / ‖x‖, so

        ∂x̂_i/∂x_j = δ_ij / ‖x‖ - x_i x_j / ‖x‖³ = (δ_ij - x̂_i x̂_j) / ‖x‖
        dx = (dx̂ - x̂ (x̂ · dx̂)) / ‖x‖      (x̂ · dx̂ summed along the dot axis)

    The part of dx̂ along x̂ drops out (stretching x does not change x̂) and the rest is scaled
    by 1/‖x‖. Below the floor the denominator is the constant ε and dx = dx̂ / ε. (Keras on torch
    computes rsqrt(Σ x²), so an all-zero slice gets a NaN gradient there; here it gets dx̂ / ε.)
    """

    arity = (2, 2)

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)

        def is_int(a):
            return isinstance(a, (int, np.integer)) and not isinstance(a, bool)

        if is_int(axes):
            self.axes = int(axes)
        elif isinstance(axes, (list, tuple)) and len(axes) == 2 and all(map(is_int, axes)):
            self.axes = tuple(int(a) for a in axes)
        else:
            raise HandnetError(f"Dot: axes must be an int or a pair of ints, got {axes!r}")
        self.normalize = bool(normalize)

    def _resolved_axes(self, input_shapes):
        """(a, b): the dot axis of each input, counted with the batch axis, in 1 … rank - 1."""
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        resolved = []
        for k, (axis, shape) in enumerate(zip(pair, input_shapes)):
            full = len(shape) + 1
            if not -full <= axis < full or axis % full == 0:
                raise HandnetError(
                    f"{self._label}: axes={self.axes!r} gives axis {axis} of input {k}, of "
                    f"per-sample shape {shape} (rank {full} counting the batch axis): "
                    + ("that is the batch axis" if -full <= axis < full else "out of range")
                    + f"; the dot axis must be one of 1 … {full - 1} or -{full - 1} … -1"
                )
            resolved.append(axis % full)
        return tuple(resolved)

    def compute_output_shape(self, input_shapes):
        shape1, shape2 = input_shapes
        a, b = self._resolved_axes(input_shapes)
        if shape1[a - 1] != shape2[b - 1]:
            raise HandnetError(
                f"{self._label}: per-sample shapes {shape1} and {shape2} have sizes "
                f"{shape1[a - 1]} and {shape2[b - 1]} on the dot axes {a} and {b} "
                f"(axes={self.axes!r}); they must be equal"
            )
        free = shape1[: a - 1] + shape1[a:] + shape2[: b - 1] + shape2[b:]
        return free or (1,)

    def forward(self, inputs, training=False):
        x1, x2 = self._checked(inputs)
        a, b = self._resolved_axes(self.input_shape)
        if self.normalize:
            x1, *self._norm1 = _l2_normalize(x1, a)
            x2, *self._norm2 = _l2_normalize(x2, b)
            self._normalized = (x1, x2)
        n, d = x1.shape[0], x1.shape[a]
        moved1, moved2 = np.moveaxis(x1, a, -1), np.moveaxis(x2, b, 1)
        self._moved_shapes = (moved1.shape, moved2.shape)
        self._a = moved1.reshape(n, -1, d)  # A (N, P, d)
        self._b = moved2.reshape(n, d, -1)  # B (N, d, Q)
        return (self._a @ self._b).reshape(n, *self.output_shape)

    def backward(self, dy):
        a, b = self._resolved_axes(self.input_shape)
        n, p, q = self._a.shape[0], self._a.shape[1], self._b.shape[2]
        dy = dy.reshape(n, p, q)
        shape1, shape2 = self._moved_shapes
        dx1 = np.moveaxis((dy @ self._b.transpose(0, 2, 1)).reshape(shape1), -1, a)
        dx2 = np.moveaxis((self._a.transpose(0, 2, 1) @ dy).reshape(shape2), 1, b)
        if self.normalize:
            normalized1, normalized2 = self._normalized
            dx1 = _l2_normalize_backward(dx1, normalized1, *self._norm1, axis=a)
            dx2 = _l2_normalize_backward(dx2, normalized2, *self._norm2, axis=b)
        return self._separate([dx1, dx2], dy)

    def get_config(self):
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}

    def explain(self):
        operands = ("x̂₁", "x̂₂") if self.normalize else (_x(1), _x(2))
        norm = ",  x̂ = x / max(‖x‖₂, 1e-7) along the dot axis" if self.normalize else ""
        what = "cosine similarity" if self.normalize else "dot product"
        if not self.built:
            a, b = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
            return (
                f"{what} over axes={self.axes!r}",
                f"y = Σ_i {operands[0]}[i on axis {a}] · {operands[1]}[i on axis {b}]{norm}",
            )
        a, b = self._resolved_axes(self.input_shape)
        letters = iter("pqrstuvwjklm")
        index1 = ["n"] + [next(letters, "?") for _ in self.input_shape[0][1:]]
        index2 = ["n"] + [next(letters, "?") for _ in self.input_shape[1][1:]]
        index1.insert(a, "i")
        index2.insert(b, "i")
        free = [c for c in index1 if c not in "ni"] + [c for c in index2 if c not in "ni"]
        out = ", ".join(["n", *free] if free else ["n", "0"])
        return (
            f"{what} over axes ({a}, {b})",
            f"y[{out}] = Σ_i {operands[0]}[{', '.join(index1)}]"
            f" · {operands[1]}[{', '.join(index2)}]{norm}",
        )

    def explain_backward(self, input_shapes):
        a, b = self._resolved_axes(self.input_shape)
        steps = [BackwardStep(None, "dY = dy reshaped (N, P, Q);  A (N, P, d), B (N, d, Q)", ())]
        products = ("dY @ Bᵀ", "Aᵀ @ dY")
        for k, (shape, product, axis) in enumerate(zip(self.input_shape, products, (a, b))):
            name, normalized = _x(k + 1), "x̂" + _x(k + 1)[1:]
            moved = f"({product}) reshaped, axis {axis} moved back"
            if self.normalize:
                formula = (
                    f"d{normalized} = {moved};  d{name} = (d{normalized} - {normalized} · "
                    f"Σ_i {normalized} · d{normalized}) / max(‖{name}‖, 1e-7)"
                )
            else:
                formula = f"d{name} = {moved}"
            steps.append(BackwardStep(f"x{k + 1}", formula, batch(shape)))
        return steps
