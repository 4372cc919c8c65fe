"""Layer pairs a Sequential runs as one step: Conv2D(activation="relu") → MaxPooling2D.

Max pooling commutes with a non-decreasing activation f (and the bias is added before both):

    maxpool(f(z)) = f(maxpool(z))

so the fused step pools first and applies f to p_h·p_w times fewer values, and computes the
convolution grouped by pooling window (``handnet.fast.fused``).  The layers themselves are
unchanged — each still runs alone — and their weights, gradients and configs are theirs.

Only ReLU and the identity are fused: for them f(max z) is exactly max f(z), and the gradient
reaches the same cell in both orders (where ReLU's zeros tie and the orders could pick different
cells, f' = 0 anyway).  Sigmoid or tanh are monotone too, but rounding can make distinct z equal
after f, and the two orders would then send a gradient to different cells.
"""

from .. import activations
from .conv2d import Conv2D
from .pooling import MaxPooling2D

FUSED_ACTIVATIONS = (activations.ReLU, activations.Linear)


def fusable(layer, next_layer):
    """Whether ``layer`` and ``next_layer`` run as one ConvMaxPool step: an ungrouped Conv2D
    with ReLU or no activation, then a MaxPooling2D with non-overlapping "valid" windows."""
    return (
        type(layer) is Conv2D
        and layer.groups == 1
        and type(layer.activation) in FUSED_ACTIVATIONS
        and type(next_layer) is MaxPooling2D
        and next_layer.padding == "valid"
        and next_layer.strides == next_layer.pool_size
    )


class ConvMaxPool:
    """One step of a Sequential: y = maxpool(f(conv(x))), the two layers run as one operation
    (``Conv2D.forward_max_pooled``).  Exposes what the model's backward pass asks of a layer."""

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool

    @property
    def needs_input_gradient(self):
        return self.conv.needs_input_gradient

    @needs_input_gradient.setter
    def needs_input_gradient(self, value):
        self.conv.needs_input_gradient = value

    @property
    def trainable(self):
        return self.conv.trainable

    @property
    def params(self):
        return self.conv.params

    @property
    def grads(self):
        return self.conv.grads

    def forward(self, x, training=False):
        return self.conv.forward_max_pooled(x, self.pool.pool_size, training=training)

    def backward(self, dy):
        return self.conv.backward_max_pooled(dy)

    def __repr__(self):
        return f"ConvMaxPool({self.conv.name!r}, {self.pool.name!r})"


def execution_steps(layers):
    """``layers`` as a Sequential runs them: each fusable pair replaced by one ConvMaxPool."""
    steps, index = [], 0
    while index < len(layers):
        if index + 1 < len(layers) and fusable(layers[index], layers[index + 1]):
            steps.append(ConvMaxPool(layers[index], layers[index + 1]))
            index += 2
        else:
            steps.append(layers[index])
            index += 1
    return steps
