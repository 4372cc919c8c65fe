"""What the convolution layers share: argument checks, the window arguments (ImageWindow,
SequenceWindow: parsing, output size, config), building kernels and bias, the activation after
the linear part, storing gradients, config pieces, and the pieces of their ``explain`` formulas.
Each layer's own file keeps its math: its op calls and its docstring.

Every convolution layer computes y = f(z) with z linear in x and in its kernels; backward
first takes dz = dy · f'(z) (``pre_activation_gradient``), then the layer's own op.
"""

import numpy as np

from .. import activations, initializers, regularizers
from ..errors import HandnetError, InvalidInputError
from ..ops.padding import MAX_WINDOW, check_padding, spatial_pair, window_geometry_2d
from ..ops.padding1d import check_sequence_padding, sequence_geometry
from .base import BackwardStep, Layer, activation_gradient, batch
from .base import weight_gradient


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
    if not _is_int(value) or not 1 <= value <= MAX_WINDOW:
        raise HandnetError(
            f"{name} must be a positive int or a 1-tuple of one (at most {MAX_WINDOW:,}), got "
            f"{value!r}"
        )
    return int(value)


def require_sequences(layer, input_shape):
    """Raise unless the per-sample shape is (steps, channels), as 1-D layers need."""
    if len(input_shape) != 2:
        raise InvalidInputError(
            f"{type(layer).__name__} {layer.name!r} expects sequences (steps, channels) per "
            f"sample, got per-sample shape {tuple(input_shape)}"
        )


def require_images(layer, input_shape):
    """Raise unless the per-sample shape is (height, width, channels), as image layers need."""
    if len(input_shape) != 3:
        raise InvalidInputError(
            f"{type(layer).__name__} {layer.name!r} expects images (height, width, channels) per "
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

    def add_kernels_and_bias(self, rng, kernels, bias_shape):
        """Each (name, initializer, shape) of ``kernels``, then (use_bias) the bias, drawn in
        that order from rng (a fresh generator when None)."""
        rng = rng if rng is not None else np.random.default_rng()
        for name, initializer, shape in kernels:
            self.add_initialized(name, initializer, shape, rng)
        if self.use_bias:
            self.add_initialized("bias", self.bias_initializer, bias_shape, rng)

    def bias_or_none(self):
        return self.params["bias"] if self.use_bias else None

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

    def initializer_configs(self, *attributes):
        return {name: getattr(self, name) for name in attributes}

    # -- explain -------------------------------------------------------------------------
    def activated(self, inner):
        """'f(inner)' for the layer's activation, 'inner' for the identity."""
        name = activations.serialize(self.activation)
        name = name["name"] if isinstance(name, dict) else name
        return inner if name in (None, "linear") else f"{name}({inner})"

    def window_gradients(self, input_shape, index, dkernel, dx):
        """The backward lines every convolution shares: dz (the activation), then dK, db and dx,
        the last two from their templates, which write ``{dz}`` for the gradient at z (dy when
        there is no activation), ``{src}`` for what the windows read (x, pad(x)) and
        ``{dsrc}`` for its gradient (dx, or dpad(x), whose padding dx then drops). ``index``
        is the output's index ("n,i,j,f"): db sums dz over all of it but its channel."""
        output_shape = self.compute_output_shape(input_shape)
        steps, dz = activation_gradient(self.activation, output_shape)
        src = source(self.padding)
        names = {"dz": dz, "src": src, "dsrc": f"d{src}" if src != "x" else "dx"}
        steps.append(weight_gradient(self, "kernel", dkernel.format(**names), "K"))
        if self.use_bias:
            summed, channel = index.rsplit(",", 1)
            dbias = f"db[{channel}] = Σ_({summed}) {dz}[{index}]"
            steps.append(weight_gradient(self, "bias", dbias, "b"))
        formula = dx.format(**names)
        if src != "x":
            formula += f";  dx = d{src} without the padding"
        steps.append(BackwardStep("x", formula, batch(input_shape)))
        return steps


class ImageWindow:
    """Keras's 2-D window arguments, each a pair: kernel_size, strides, dilation_rate; and
    padding "valid" or "same".  Output size along each axis as Conv2D's."""

    def set_window(self, kernel_size, strides, padding, dilation_rate):
        self.kernel_size = spatial_pair(kernel_size, "kernel_size")
        self.strides = spatial_pair(strides, "strides")
        self.padding = check_padding(padding)
        self.dilation_rate = spatial_pair(dilation_rate, "dilation_rate")

    def require_input(self, input_shape):
        require_images(self, input_shape)

    def window(self):
        return self.kernel_size

    def output_window(self, input_shape):
        """(OH, OW) for a per-sample input shape (H, W, C)."""
        (out_h, out_w), _ = window_geometry_2d(
            input_shape[:2], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        return out_h, out_w

    def window_options(self):
        return self.strides, self.padding, self.dilation_rate

    def window_config(self):
        return {
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
        }


class SequenceWindow:
    """Keras's 1-D window arguments, each one int (or a 1-tuple): kernel_size, strides,
    dilation_rate; padding "valid", "same" or (``CAUSAL``) "causal".  Output length as
    Conv1D's."""

    CAUSAL = True

    def set_window(self, kernel_size, strides, padding, dilation_rate):
        self.kernel_size = sequence_int(kernel_size, "kernel_size")
        self.strides = sequence_int(strides, "strides")
        self.padding = check_sequence_padding(padding, causal=self.CAUSAL)
        self.dilation_rate = sequence_int(dilation_rate, "dilation_rate")

    def require_input(self, input_shape):
        require_sequences(self, input_shape)

    def window(self):
        return (self.kernel_size,)

    def output_window(self, input_shape):
        """(OL,) for a per-sample input shape (L, C)."""
        out, _, _ = sequence_geometry(
            input_shape[0], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        return (out,)

    def window_options(self):
        return self.strides, self.padding, self.dilation_rate

    def window_config(self):
        return {
            "kernel_size": [self.kernel_size],
            "strides": [self.strides],
            "padding": self.padding,
            "dilation_rate": [self.dilation_rate],
        }


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
