"""What the convolution layers share: argument checks, the activation after the linear part,
storing gradients, and the pieces of their ``explain`` formulas.

Every convolution layer computes y = f(z) with z linear in x and in its kernels; backward
first takes dz = dy · f'(z) (``pre_activation_gradient``), then the layer's own op.
"""

import numpy as np

from .. import activations, initializers, regularizers
from ..errors import HandnetError, InvalidInputError
from .base import Layer


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(value, name):
    """An int ≥ 1 (filters, groups, depth_multiplier), else a HandnetError naming it."""
    if not _is_int(value) or value < 1:
        raise HandnetError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def sequence_int(value, name):
    """Keras's 1-D ``kernel_size=3`` or ``(3,)``: one int ≥ 1."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if not _is_int(value) or value < 1:
        raise HandnetError(f"{name} must be a positive int or a 1-tuple of one, got {value!r}")
    return int(value)


def require_sequences(layer, input_shape):
    """Raise unless the per-sample shape is (steps, channels), as 1-D layers need."""
    if len(input_shape) != 2:
        raise InvalidInputError(
            f"{type(layer).__name__} {layer.name!r} expects sequences (steps, channels) per "
            f"sample, got per-sample shape {tuple(input_shape)}"
        )


def check_groups(groups, filters):
    """Keras's ``groups``: a positive int that divides ``filters``."""
    groups = positive_int(groups, "groups")
    if filters % groups:
        raise HandnetError(
            f"filters must split into groups={groups} equal groups, got filters={filters}"
        )
    return groups


def require_divisible(layer, channels, groups):
    if channels % groups:
        raise InvalidInputError(
            f"{type(layer).__name__} {layer.name!r}: the input's {channels} channels do not "
            f"split into groups={groups} equal groups"
        )


class Convolution(Layer):
    """Base of the convolution layers: activation, initializers and regularizers by Keras's
    argument names.  ``REGULARIZED`` maps each parameter to the attribute that holds its
    regularizer (Keras: ``depthwise_regularizer`` penalizes DepthwiseConv2D's "kernel")."""

    REGULARIZED = {"kernel": "kernel_regularizer", "bias": "bias_regularizer"}

    def __init__(self, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)

    def add_initialized(self, name, initializer, shape, rng):
        self.add_param(name, initializers.get(initializer)(shape, rng, self.dtype))

    def regularized_params(self):
        for key, attribute in self.REGULARIZED.items():
            regularizer = getattr(self, attribute, None)
            if regularizer is not None and key in self.params:
                yield key, regularizer

    def activate(self, z):
        """y = f(z); z is a fresh array, so a ReLU runs in place on it (its derivative reads
        [y > 0] = [z > 0], and z need not be kept beside y)."""
        if isinstance(self.activation, activations.ReLU):
            self._z = self._y = np.maximum(z, 0, out=z)
        else:
            self._z, self._y = z, self.activation.forward(z)
        return self._y

    def pre_activation_gradient(self, dy):
        """dz = dy · f'(z), a new array (dy is left alone)."""
        return self.activation.backward(dy, self._z, self._y)

    def store_gradients(self, **gradients):
        """grads[name][...] = value for each (the arrays optimizers hold stay the same), then
        the penalties' gradients."""
        for name, value in gradients.items():
            if value is not None and name in self.grads:
                self.grads[name][...] = value
        self.add_regularization_gradients()

    def regularizer_configs(self, *attributes):
        return {name: regularizers.serialize(getattr(self, name)) for name in attributes}

    def get_config(self):
        return {
            **super().get_config(),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
        }

    # -- explain -------------------------------------------------------------------------
    def activated(self, inner):
        """'f(inner)' for the layer's activation, 'inner' for the identity."""
        name = activations.serialize(self.activation)
        name = name["name"] if isinstance(name, dict) else name
        return inner if name in (None, "linear") else f"{name}({inner})"


def scaled(index, factor):
    """'t' or '2t': an index times a stride or a dilation, as the formulas write it."""
    return index if factor == 1 else f"{factor}{index}"


def source(padding):
    """'x', 'pad(x)' or 'causal_pad(x)': what the windows read."""
    return {"valid": "x", "same": "pad(x)", "causal": "causal_pad(x)"}[padding]


def depthwise_taps_2d(padding, strides, dilation, kernel="K"):
    """'Σ_(u,v) x[n, 2i+u, j+v, c] · K[u,v,c,m]': one channel's sum over the kernel taps."""
    (sh, sw), (dh, dw) = strides, dilation
    return (
        f"Σ_(u,v) {source(padding)}[n, {scaled('i', sh)}+{scaled('u', dh)}, "
        f"{scaled('j', sw)}+{scaled('v', dw)}, c] · {kernel}[u,v,c,m]"
    )


def depthwise_taps_1d(padding, stride, dilation, kernel="K"):
    """'Σ_u x[n, 2t+u, c] · K[u,c,m]'."""
    return (
        f"Σ_u {source(padding)}[n, {scaled('t', stride)}+{scaled('u', dilation)}, c]"
        f" · {kernel}[u,c,m]"
    )
