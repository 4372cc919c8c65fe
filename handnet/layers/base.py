"""The layer contract every handnet layer follows.

A layer maps a batch x of shape (N, *input_shape) to y of shape (N, *output_shape):

    build(input_shape, rng)   creates the parameters for a per-sample input shape
    forward(x, training)      -> y, caching exactly what backward needs
    backward(dy)              -> dx = ∂L/∂x, given dy = ∂L/∂y; fills ``grads``

``params`` and ``grads`` are dicts keyed by Keras's variable names (``kernel``, ``bias``, …),
so optimizers, saving and gradient checks treat every layer alike. ``state`` holds arrays that
are saved but not trained (BatchNormalization's moving statistics). ``backward`` never writes
into ``dy``: the array belongs to the layer above.

Shapes in docstrings leave out the batch axis N where they say "per sample".
"""

import copy
import functools
import itertools
import re
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from ..errors import HandnetError, InvalidInputError
from ..validation import check_float_dtype
from . import graph

_name_counters = defaultdict(itertools.count)


def snake_case(name):
    """Keras's own rule, so layers get Keras's names: Conv2D -> conv2d,
    MaxPooling2D -> max_pooling2d."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def serialize(layer):
    """{"class_name": ..., "config": {...}}: what ``handnet.layers.deserialize`` rebuilds the
    layer from."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def activation_name(activation):
    """The name of a serialized activation ("relu", or {"name": "relu", …}); None is linear."""
    return activation["name"] if isinstance(activation, dict) else activation or "linear"


def activation_formula(activation, inner):
    """``inner`` with a serialized activation applied, for ``explain``: relu(x @ W + b)."""
    name = activation_name(activation)
    return inner if name == "linear" else f"{name}({inner})"


class BackwardStep(NamedTuple):
    """One line of ``handnet explain --backward``: a formula of the backward pass and the shape
    of what it computes ("N" stands for the batch axis).

    ``of`` names the gradient the line gives: "x" for ∂L/∂x (a layer of several inputs: "x1",
    "x2", …, or the roles "query", "value", "key"), a weight's key ("kernel", "bias", …) for
    that weight's gradient, or None for an intermediate (dz, the gradient inside a loop)."""

    of: str | None
    formula: str
    shape: tuple


def batch(shape):
    """("N", *shape): a per-sample shape with the batch axis in front, as explain prints it."""
    return ("N", *(int(d) for d in shape))


def penalty_term(layer, key, symbol):
    """' + 0.02·W' for a weight with an L2 penalty (Keras's λ·Σw² has gradient 2λ·w), ' +
    0.01·sign(W)' for L1, '' for none: the end of that weight's gradient formula."""
    regularizer = dict(layer.regularized_params()).get(key)
    if regularizer is None or not layer.penalty_gradient:
        return ""
    terms = []
    if regularizer.l1:
        terms.append(f"{regularizer.l1:g}·sign({symbol})")
    if regularizer.l2:
        terms.append(f"{2 * regularizer.l2:g}·{symbol}")
    return "".join(f" + {term}" for term in terms)


def weight_gradient(layer, key, formula, symbol):
    """The line of one weight's gradient: ``formula`` and its penalty's gradient, shaped as the
    weight."""
    return BackwardStep(key, formula + penalty_term(layer, key, symbol), layer.params[key].shape)


def activation_gradient(activation, output_shape):
    """(steps, "dz") for a layer that ends in ``activation`` (y = f(z)): the line dz = dy ·
    f'(z) and the name the rest of its formulas use; ([], "dy") for the identity (dz = dy)."""
    if activation is None or activation.name == "linear":
        return [], "dy"
    line = f"{activation.gradient}   ({activation.name})"
    return [BackwardStep(None, line, batch(output_shape))], "dz"


def unique_name(prefix):
    """Keras-style names: dense, dense_1, dense_2, …"""
    n = next(_name_counters[prefix])
    return prefix if n == 0 else f"{prefix}_{n}"


def per_sample_shape(input_shape):
    """``input_shape`` without a leading batch axis: Keras's (None, 5) and handnet's (5,) both
    give (5,). A list of shapes (a merge layer's) is mapped shape by shape."""
    if not isinstance(input_shape, (list, tuple)):
        return input_shape  # the layer's own build says what it expected
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return [per_sample_shape(shape) for shape in input_shape]
    shape = tuple(input_shape)
    if shape and shape[0] is None:
        shape = shape[1:]
    return shape


def _accepting_batch_axis(build):
    @functools.wraps(build)
    def wrapped(self, input_shape=None, *args, **kwargs):
        if input_shape is not None:
            input_shape = per_sample_shape(input_shape)
        return build(self, input_shape, *args, **kwargs)

    return wrapped


def assign_weights(expected, weights):
    """Write ``weights`` into the arrays of ``expected``, a list of (label, target array), in
    order: the count and each shape are checked for all of them first, so that a wrong list
    changes nothing; values are cast to each target's dtype."""
    weights = list(weights)
    if len(weights) != len(expected):
        raise HandnetError(f"set_weights: expected {len(expected)} arrays, got {len(weights)}")
    values = [np.asarray(value) for value in weights]
    for (label, target), value in zip(expected, values):
        if value.shape != target.shape:
            raise HandnetError(
                f"set_weights: {label} expects shape {target.shape}, got {value.shape}"
            )
    for (_, target), value in zip(expected, values):
        target[...] = value


class Layer:
    #: Layers that end in an activation (Dense, Conv2D, Activation) hold it here, so that the
    #: model can fuse a final softmax with cross-entropy.
    activation = None
    #: Whether the layer gives several outputs (a nested Model with several): then
    #: ``compute_output_shape`` and ``forward`` return lists.
    returns_list = False
    #: Masks, as Keras has them (a boolean (N, T) beside a sequence: False = a padded step; see
    #: handnet.model.plan): ``supports_masking`` passes an incoming mask on unchanged,
    #: ``takes_mask`` reads it (``forward(x, training, mask=...)``), ``makes_mask`` produces
    #: one from the input (Embedding(mask_zero=True), Masking) through ``compute_mask``.
    supports_masking = False
    takes_mask = False
    makes_mask = False

    def __init_subclass__(cls, **kwargs):
        # Every layer's build takes Keras's full shape (None, 5) as well as the per-sample (5,).
        super().__init_subclass__(**kwargs)
        if "build" in vars(cls):
            cls.build = _accepting_batch_axis(vars(cls)["build"])

    def __init__(self, name=None, trainable=True, dtype="float32"):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = trainable
        self.dtype = check_float_dtype(dtype)
        self.params = {}
        self.grads = {}
        self.state = {}
        self.input_shape = None
        self.output_shape = None
        self.built = False
        # The first layer of a model needs no ∂L/∂x (the data is not trained); skipping it
        # saves a whole matrix product per step.
        self.needs_input_gradient = True

    # -- construction -------------------------------------------------------------------
    @_accepting_batch_axis  # subclasses' own builds are wrapped by __init_subclass__
    def build(self, input_shape, rng=None):
        """Create parameters for per-sample ``input_shape``; record the output shape."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def add_param(self, name, value):
        self.params[name] = np.asarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def weights(self):
        """Every saved array, trained or not, in Keras's order: {name: array}."""
        return {**self.params, **self.state}

    def get_weights(self):
        """Copies of the layer's weights in Keras's order (its params, then its state)."""
        return [weight.copy() for weight in self.weights().values()]

    def set_weights(self, weights):
        """Write ``weights`` (a list in get_weights' order) into the layer's arrays; the count
        and every shape are checked before anything is written."""
        assign_weights(
            [(f"layer {self.name!r} {key}", target) for key, target in self.weights().items()],
            weights,
        )

    def cast(self, dtype):
        """Run this layer in ``dtype`` from now on (float64 for gradient checks)."""
        self.dtype = check_float_dtype(dtype)
        for table in (self.params, self.grads, self.state):
            for key in table:
                table[key] = table[key].astype(self.dtype)
        return self

    # -- computation ----------------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def compute_mask(self, x, mask):
        """The mask of the output, from the input x and its mask (None = no mask): the same
        mask for a layer that supports masking, none otherwise (Keras's default)."""
        return mask if self.supports_masking else None

    def __call__(self, x, training=False):
        """On a symbolic tensor (``Input``), record a node of the graph (handnet.layers.graph);
        on an array, compute y = forward(x) now, building the weights first if needed."""
        if graph.is_symbolic(x):
            return graph.call(self, x)
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        return self.forward(x, training=training)

    def replica(self, rng=None, share_state=False):
        """A shallow copy on the same parameter arrays, with its own gradients, caches and random
        generator (im2col buffers are reused in place: never share them). ``share_state`` keeps
        the very same moving statistics (a layer called twice in one graph); otherwise the copy
        has its own (each part of a split batch updates its copy with the same whole-batch
        values, and the original's is the one saved)."""
        twin = copy.copy(self)
        for name, value in vars(self).items():
            if name.startswith("_") and isinstance(value, np.ndarray):
                setattr(twin, name, None)
        twin.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        if not share_state:
            twin.state = {key: value.copy() for key, value in self.state.items()}
        if hasattr(twin, "rng") and rng is not None:
            twin.rng = rng
        return twin

    penalty_gradient = True  # see add_regularization_gradients

    def regularized_params(self):
        """(name, regularizer) for each penalized parameter: a layer's ``kernel_regularizer``
        applies to its "kernel", ``bias_regularizer`` to its "bias" (Keras's convention)."""
        for key in ("kernel", "bias"):
            regularizer = getattr(self, f"{key}_regularizer", None)
            if regularizer is not None and key in self.params:
                yield key, regularizer

    def regularization_penalty(self):
        """The term this layer adds to the loss (L1/L2 on its weights); 0.0 for most layers."""
        return sum(reg.penalty(self.params[key]) for key, reg in self.regularized_params())

    def add_regularization_gradients(self):
        """grads[key] += ∂penalty/∂params[key]; the end of backward for layers with regularizers.
        Not on a replica that runs a shared layer's later call (``penalty_gradient`` False): the
        penalty is the layer's once, whatever its calls, and so is its gradient."""
        if not self.penalty_gradient:
            return
        for key, regularizer in self.regularized_params():
            self.grads[key] += regularizer.gradient(self.params[key])

    def count_params(self):
        return int(sum(w.size for w in self.weights().values()))

    # -- description ----------------------------------------------------------------------
    def get_config(self):
        """Constructor arguments, JSON-ready: ``type(layer)(**layer.get_config())`` rebuilds it."""
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def explain(self):
        """(headline, formula): what the layer computes, written from its own settings (real
        strides, padding, activation), for ``handnet explain``. Each layer type has its own."""
        return "", "(no formula on file)"

    def explain_details(self, input_shape):
        """More lines for ``handnet explain``, given the per-sample input shape (a recurrent
        layer's loop unrolled with the shapes of one step); none by default."""
        return []

    def explain_backward(self, input_shape):
        """The backward pass, for ``handnet explain --backward``: a list of ``BackwardStep``,
        the formulas of dx and of each weight's gradient, from dy = ∂L/∂y, with their shapes
        for the per-sample ``input_shape`` (a list of shapes for a layer of several inputs) of
        the built layer; the inputs' gradients in the order ``backward`` returns them. Each
        layer type writes its own, beside its ``backward`` (tests/test_explain_backward.py
        checks the shapes against what ``backward`` returns)."""
        return [BackwardStep(None, "(no backward formula on file)", ())]

    def __repr__(self):
        config = {
            k: v for k, v in self.get_config().items() if k not in ("name", "trainable", "dtype")
        }
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"

    def check_input(self, x):
        """Raise if x is not (N, *input_shape)."""
        if x.shape[1:] != self.input_shape:
            raise InvalidInputError(
                f"layer {self.name!r} expected input shape (None, "
                f"{', '.join(map(str, self.input_shape))}), got {x.shape}"
            )
