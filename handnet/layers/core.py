"""Layers with no weights that only route or reshape data: Input, Flatten, Reshape, Activation."""

import numpy as np

from .. import activations
from ..errors import HandnetError
from .base import BackwardStep, Layer, activation_formula, batch
from .graph import Node


def _fixed_shape(name, shape):
    """An Input's per-sample shape as a tuple of ints >= 1, or a HandnetError naming what came:
    handnet sizes its buffers and plans from it, so a size left open (Keras's None for a
    sequence of any length) is refused."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, (str, bytes, dict)) or not hasattr(shape, "__iter__"):
        raise HandnetError(
            f"Input {name!r}: shape must be a tuple of sizes such as (28, 28, 1), got {shape!r}"
        )
    shape = tuple(shape)
    if any(d is None for d in shape):
        raise HandnetError(
            f"Input {name!r}: shape {shape} has unknown sizes; handnet needs every size "
            "but the batch fixed (pad sequences to one length, with Masking for the padding)"
        )
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
        raise HandnetError(f"Input {name!r}: sizes must be integers, got {shape}")
    if any(d < 1 for d in shape):
        raise HandnetError(f"Input {name!r}: every dimension must be >= 1, got {shape}")
    return tuple(int(d) for d in shape)


class Input(Layer):
    """Declares the per-sample input shape, e.g. Input((28, 28, 1)) for MNIST images.

    Placed first in a Sequential it fixes the shape the model expects; like Keras, the model
    does not list it among its layers. In the functional API it stands for its symbolic tensor
    ``Input(...).tensor`` of shape (None, *shape): ``Dense(10)(Input((784,)))`` records a node.
    """

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = _fixed_shape(self.name, shape)
        self.input_shape = self.output_shape = self.shape
        self.built = True
        self.tensor = Node(self, [], [self.shape]).outputs[0]

    def get_config(self):
        return {**super().get_config(), "shape": list(self.shape)}

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def explain(self):
        return "the input", f"x (N, {', '.join(map(str, self.shape))})"

    def explain_backward(self, input_shape):
        return [BackwardStep("x", "dx = dy   (the input: nothing before it to pass it to)",
                             batch(input_shape))]


class Flatten(Layer):
    """y = x.reshape(N, -1):  (N, d1, d2, …) -> (N, d1·d2·…);  dx = dy.reshape(x.shape).

    ``data_format="channels_first"`` is Keras's: x is read as (N, C, d2, …), its channel axis
    moved last before flattening, so that y is the vector a channels-last layout would give:
        y = x.transpose(0, 2, …, k, 1).reshape(N, -1),   dx = dy reshaped and transposed back.
    (handnet's own images are channels-last; the option is for Keras models that use it.)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise HandnetError(
                "Flatten data_format must be None, 'channels_last' or 'channels_first', got "
                f"{data_format!r}"
            )
        self.data_format = data_format or "channels_last"

    def _moves_channels(self):
        return self.data_format == "channels_first" and len(self.input_shape) > 1

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self.check_input(x)
        if self._moves_channels():
            x = x.transpose(0, *range(2, x.ndim), 1)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        if not self._moves_channels():
            return dy.reshape(-1, *self.input_shape)
        channels, *rest = self.input_shape
        moved = dy.reshape(-1, *rest, channels)
        return moved.transpose(0, moved.ndim - 1, *range(1, moved.ndim - 1))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        if self.data_format == "channels_first":
            return (
                "one row per sample, channels last first (Keras's channels_first)",
                "y = x.transpose(0, 2, …, 1).reshape(N, -1)",
            )
        return "one row per sample", "y = x.reshape(N, -1)"

    def explain_backward(self, input_shape):
        shape = ", ".join(map(str, input_shape))
        if self.data_format == "channels_first" and len(input_shape) > 1:
            channels, *rest = input_shape
            moved = ", ".join(map(str, (*rest, channels)))
            last = len(input_shape)
            order = ", ".join(map(str, (0, last, *range(1, last))))
            formula = f"dx = dy.reshape(N, {moved}).transpose({order})   (channels back first)"
        else:
            formula = f"dx = dy.reshape(N, {shape})   (the values in the same order)"
        return [BackwardStep("x", formula, batch(input_shape))]


class Reshape(Layer):
    """y = x.reshape(N, *target_shape);  one entry of target_shape may be -1 (inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        shape = list(self.target_shape)
        known = int(np.prod([d for d in shape if d != -1]))
        if shape.count(-1) == 1 and known and size % known == 0:
            shape[shape.index(-1)] = size // known
        if shape.count(-1) > 0 or int(np.prod(shape)) != size:
            raise HandnetError(
                f"Reshape {self.name!r}: cannot reshape per-sample shape {input_shape} "
                f"({size} values) to {self.target_shape}"
            )
        return tuple(shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape(x.shape[0], *self.output_shape)

    def backward(self, dy):
        return dy.reshape(-1, *self.input_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}

    def explain(self):
        return f"to {tuple(self.target_shape)}", "y = x.reshape(N, *target_shape)"

    def explain_backward(self, input_shape):
        shape = ", ".join(map(str, input_shape))
        return [BackwardStep("x", f"dx = dy.reshape(N, {shape})", batch(input_shape))]


class Activation(Layer):
    """y = f(x) elementwise (softmax: over the last axis);  dx = the activation's backward."""

    supports_masking = True  # a padded-sequence mask passes through, as in Keras

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        self._y = self.activation.forward(x)
        return self._y

    def backward(self, dy):
        return self.activation.backward(dy, self._x, self._y)

    def backward_pre_activation(self, dz):
        return dz

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}

    def explain(self):
        activation = self.get_config()["activation"]
        return str(activation), f"y = {activation_formula(activation, 'x')}"

    def explain_backward(self, input_shape):
        # The activation's derivative in this layer's names: its input z is x here.
        formula = self.activation.gradient.replace("dz", "dx").replace("z", "x")
        return [BackwardStep("x", f"{formula}   ({self.activation.name})", batch(input_shape))]
