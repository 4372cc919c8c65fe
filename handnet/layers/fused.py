"""Layers the execution plan runs as one step.

**Conv2D(activation="relu") → MaxPooling2D** (ConvMaxPool), exact:

Max pooling commutes with a non-decreasing activation f (and the bias is added before both):

    maxpool(f(z)) = f(maxpool(z))

so the fused step pools first and applies f to p_h·p_w times fewer values, and computes the
convolution grouped by pooling window (``handnet.fast.fused``).  The layers themselves are
unchanged — each still runs alone — and their weights, gradients and configs are theirs.

Only ReLU and the identity are fused: for them f(max z) is exactly max f(z), and the gradient
reaches the same cell in both orders (where ReLU's zeros tie and the orders could pick different
cells, f' = 0 anyway).  Sigmoid or tanh are monotone too, but rounding can make distinct z equal
after f, and the two orders would then send a gradient to different cells.

**Consecutive warps** (WarpChain): RandomRotation → RandomTranslation → RandomZoom, as
augmentation at a model's input. In training each output pixel p of warp i reads the point
q = A_i p + b_i of warp i's input, so a chain of k warps reads x at

    q = A_1(A_2(… (A_k p + b_k) …) + b_2) + b_1 = A p + b,   A = A_1 A_2 … A_k

and the fused step samples x once at q, instead of k times in a row. Each layer still draws its
own parameters, in order, from its own generator: the same draws as unfused. Not bit-exact, and
meant not to be: one bilinear interpolation blurs a digit once, where k interpolate it k times
(a linear image, which bilinear interpolation reproduces exactly, comes out the same both ways
away from the border: tests/layers/test_fused_warps.py). Fused only with constant fill, where
the two differ also at the border: unfused, a point that leaves the image between two warps
reads the fill, fused it reads the image. At inference every warp is the identity, fused or not.
``model.compile(fuse=False)`` runs the layers one by one, as Keras does.
"""

import numpy as np

from .. import activations
from .augmentation import RandomRotation, RandomTranslation, RandomZoom
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


WARPS = (RandomRotation, RandomTranslation, RandomZoom)


def warps_fusable(layer, next_layer):
    """Whether ``next_layer`` can join ``layer``'s WarpChain: both geometric augmentation layers
    with a constant fill of the same value and the same interpolation."""
    return (
        type(layer) in WARPS
        and type(next_layer) in WARPS
        and layer.fill_mode == next_layer.fill_mode == "constant"
        and layer.fill_value == next_layer.fill_value
        and layer.interpolation == next_layer.interpolation
    )


class WarpChain:
    """One step for warps[0] → warps[1] → …, images (N, H, W, C) in and out. In training,
    y[n](p) = x[n](A_n p + b_n) at the composed map (module docstring), sampled once with the
    first warp's interpolation and fill; at inference, y = x. Backward: the transpose of that
    sampling, dx[pixel] = Σ w · dy over the outputs that read the pixel."""

    trainable = False

    def __init__(self, warps):
        self.warps = list(warps)
        self.params, self.grads = {}, {}  # the warps learn nothing
        self._active = False

    @property
    def needs_input_gradient(self):
        return self.warps[0].needs_input_gradient

    @needs_input_gradient.setter
    def needs_input_gradient(self, value):
        for warp in self.warps:
            warp.needs_input_gradient = value

    def composed(self, parameters):
        """{"matrices": A (N, 2, 2), "offsets": b (N, 2)} of q = A p + b from each warp's
        parameters, first warp first: M ← M ∘ M_i, i.e. A ← A·A_i, b ← A·b_i + b."""
        matrices, offsets = None, None
        for step in parameters:
            a_i = np.asarray(step["matrices"], dtype=np.float64)
            b_i = np.asarray(step["offsets"], dtype=np.float64)
            if matrices is None:
                matrices, offsets = a_i, b_i
            else:
                offsets = np.einsum("nij,nj->ni", matrices, b_i) + offsets
                matrices = matrices @ a_i
        return {"matrices": matrices, "offsets": offsets}

    def forward(self, x, training=False):
        first = self.warps[0]
        if not training:
            self._active = False
            for warp in self.warps:
                x = warp.forward(x, training=False)
            return x
        x = first.prepare(x)
        self._active = True
        return first.transform(x, self.composed([warp.draw(len(x)) for warp in self.warps]))

    def backward(self, dy):
        return self.warps[0].transform_backward(dy) if self._active else dy

    def __repr__(self):
        return f"WarpChain({', '.join(repr(warp.name) for warp in self.warps)})"


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
