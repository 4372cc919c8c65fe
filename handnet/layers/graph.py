"""Symbolic tensors and nodes: what calling a layer on an ``Input`` records.

    inputs = Input((28, 28, 1))           # a SymbolicTensor of shape (None, 28, 28, 1)
    h = Conv2D(32, 3)(inputs)             # records Node(Conv2D, inputs=[inputs]) -> h
    y = Dense(10)(Flatten()(h))

No arithmetic happens here: a symbolic call only works out the output's per-sample shape with
the layer's ``compute_output_shape``. ``handnet.model.Model(inputs, y)`` later walks the nodes
back from ``y``, builds the layers' weights and runs them in topological order.

A layer called twice has two nodes and one set of weights (a shared layer); a layer called on
a list of tensors (Add, Concatenate, …) has one node with several inputs. A layer whose call
takes arguments besides tensors (MultiHeadAttention's ``use_causal_mask``, which of its inputs
is the key) records them as the node's ``options``, plain JSON, and receives them through its
``accept_call(options)`` before its shapes are worked out.
"""

from ..errors import HandnetError


class SymbolicTensor:
    """A placeholder for a batch of arrays of shape (None, *per_sample_shape): the ``index``-th
    output of ``node``."""

    def __init__(self, per_sample_shape, node, index=0):
        self.per_sample_shape = tuple(int(d) for d in per_sample_shape)
        self.node = node
        self.index = index

    @property
    def shape(self):
        """Keras's full shape, batch axis first: (None, 28, 28, 1)."""
        return (None, *self.per_sample_shape)

    @property
    def name(self):
        """The producing layer's name, with the output's index when it has several."""
        layer = self.node.layer
        return layer.name if len(self.node.outputs) == 1 else f"{layer.name}:{self.index}"

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from {self.node.layer.name!r}>"


class Node:
    """One call of ``layer``: the tensors it read (``inputs``) and the ones it made (``outputs``).

    ``takes_list`` says whether the layer was called on a list ([a, b]) rather than on one
    tensor; the model then hands it a list of arrays in the same order."""

    def __init__(self, layer, inputs, output_shapes, takes_list=False, options=None):
        self.layer = layer
        self.inputs = list(inputs)
        self.takes_list = takes_list
        self.options = dict(options) if options else {}
        self.outputs = [SymbolicTensor(shape, self, i) for i, shape in enumerate(output_shapes)]

    def __repr__(self):
        sources = ", ".join(t.name for t in self.inputs)
        return f"Node({self.layer.name!r} <- [{sources}])"


def as_symbolic(value):
    """The SymbolicTensor ``value`` stands for (an Input layer stands for its tensor), or None."""
    if isinstance(value, SymbolicTensor):
        return value
    tensor = getattr(value, "tensor", None)
    return tensor if isinstance(tensor, SymbolicTensor) else None


def is_symbolic(inputs):
    """Whether a layer call on ``inputs`` (one value or a list) should record a node."""
    if isinstance(inputs, (list, tuple)):
        return any(as_symbolic(item) is not None for item in inputs)
    return as_symbolic(inputs) is not None


def call(layer, inputs, options=None):
    """Record ``layer(inputs)`` as a node; returns its output tensor (a list if several).
    ``options``: the call's other arguments (a dict), for a layer with ``accept_call``."""
    takes_list = isinstance(inputs, (list, tuple))
    items = list(inputs) if takes_list else [inputs]
    tensors = [as_symbolic(item) for item in items]
    if any(tensor is None for tensor in tensors):
        raise HandnetError(
            f"layer {layer.name!r} was called on a mix of symbolic tensors and arrays: "
            "call it on Input tensors (building a model) or on arrays (computing now)"
        )
    if takes_list and not _takes_lists(layer):
        raise HandnetError(
            f"layer {layer.name!r} ({type(layer).__name__}) takes one tensor, called on a list "
            f"of {len(tensors)}"
        )
    if hasattr(layer, "accept_call"):
        layer.accept_call(options or {})
    elif options:
        raise HandnetError(
            f"layer {layer.name!r} ({type(layer).__name__}) takes no call arguments besides "
            f"its inputs, got {sorted(options)}"
        )
    shapes = [tensor.per_sample_shape for tensor in tensors]
    given = shapes if takes_list else shapes[0]
    # The shape the layer's weights are (or will be) built for: its own once built, else the
    # first call's (the weights are drawn later, when the model is made).
    expected = layer.input_shape if layer.built else getattr(layer, "_graph_input_shape", None)
    if expected is not None and _plain(expected) != _plain(given):
        state = "built" if layer.built else "already called"
        raise HandnetError(
            f"layer {layer.name!r} is {state} for inputs of shape {_full(expected)}, "
            f"called on {_full(given)}"
        )
    try:
        output = layer.compute_output_shape(given)
    except HandnetError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, OverflowError) as error:
        # A layer's shape rule meeting a shape it was never meant for (a Conv2D on flat rows, a
        # single layer called on a list): say which layer and which shapes.
        raise HandnetError(
            f"layer {layer.name!r} ({type(layer).__name__}) cannot take inputs of shape "
            f"{_full(given)} ({type(error).__name__}: {error})"
        ) from None
    output_shapes = list(output) if getattr(layer, "returns_list", False) else [output]
    for shape in output_shapes:
        if any(int(d) < 1 for d in shape):  # Dense(units=0), a forged Reshape: nothing to run
            raise HandnetError(
                f"layer {layer.name!r} ({type(layer).__name__}) would make outputs of shape "
                f"{_full(shape)} from {_full(given)}: every dimension must be >= 1"
            )
    if not layer.built:
        layer._graph_input_shape = given
    node = Node(layer, tensors, output_shapes, takes_list=takes_list, options=options)
    return node.outputs if getattr(layer, "returns_list", False) else node.outputs[0]


def _takes_lists(layer):
    """Whether ``layer`` is called on a list of tensors: a merge layer (it declares its
    ``arity``), a model (its ``input_tensors``; one with a single input takes [x] too) or an
    attention layer (``accept_call``: [query, value, …])."""
    return any(hasattr(layer, name) for name in ("arity", "input_names", "accept_call"))


def _plain(shape):
    """A per-sample shape, or a list of them, as nested tuples of ints (for comparing)."""
    if shape and isinstance(shape[0], (list, tuple)):
        return [tuple(s) for s in shape]
    return tuple(shape)


def _full(shape):
    plain = _plain(shape)
    if isinstance(plain, list):
        return [(None, *s) for s in plain]
    return (None, *plain)
