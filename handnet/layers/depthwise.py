"""DepthwiseConv2D and DepthwiseConv1D: every channel convolved on its own, channels-last."""

from .. import regularizers
from ..fast import conv1d, depthwise
from .convolution_base import (
    Convolution,
    ImageWindow,
    SequenceWindow,
    depthwise_taps_1d,
    depthwise_taps_2d,
    positive_int,
    scaled,
)


class _Depthwise(Convolution):
    """Keras's depthwise arguments: depth_multiplier M, depthwise_initializer and
    depthwise_regularizer for the weight Keras calls "kernel".  Build, forward and backward
    for both layers: the window (ImageWindow or SequenceWindow) and the op pair
    (``FORWARD``, ``BACKWARD``) are the subclass's."""

    REGULARIZED = {"kernel": "depthwise_regularizer", "bias": "bias_regularizer"}

    def __init__(
        self,
        depth_multiplier,
        activation,
        use_bias,
        depthwise_initializer,
        bias_initializer,
        depthwise_regularizer,
        bias_regularizer,
        **kwargs,
    ):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape, rng=None):
        self.require_input(input_shape)
        channels = int(input_shape[-1])
        shape = (*self.window(), channels, self.depth_multiplier)
        kernels = [("kernel", self.depthwise_initializer, shape)]
        self.add_kernels_and_bias(rng, kernels, (channels * self.depth_multiplier,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self.output_window(input_shape), input_shape[-1] * self.depth_multiplier)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        z = self.FORWARD(x, self.params["kernel"], self.bias_or_none(), *self.window_options())
        return self.activate(z)

    def backward(self, dy):
        dx, dkernel, dbias = self.BACKWARD(
            self.pre_activation_gradient(dy),
            self._x,
            self.params["kernel"],
            *self.window_options(),
            input_gradient=self.needs_input_gradient,
        )
        self.store_gradients(kernel=dkernel, bias=dbias)
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            **self.window_config(),
            "depth_multiplier": self.depth_multiplier,
            **self.initializer_configs("depthwise_initializer", "bias_initializer"),
            **self.regularizer_configs("depthwise_regularizer", "bias_regularizer"),
        }

    def _explain(self, index_formula):
        bias = "b[c·M+m] + " if self.use_bias else ""
        inner = f"{bias}{index_formula}"
        return self.activated(inner)


class DepthwiseConv2D(ImageWindow, _Depthwise):
    """y = f(z),  z[n, i, j, c·M + m] = b[c·M + m]
                                      + Σ_{u, v} x[n, i·s + u·d, j·s + v·d, c] · K[u, v, c, m]

    Shapes (per sample): x (H, W, C), K = kernel (kh, kw, C, M) as Keras stores it
    (M = depth_multiplier), b = bias (C·M,), y (OH, OW, C·M); OH, OW as for Conv2D.  No
    channel mixes with another: it is a Conv2D with groups = C and the kernel reshaped to
    (kh, kw, 1, C·M), which is how PyTorch computes it.

    Backward, given dy = ∂L/∂y:  dz = dy · f'(z), then
        dK[u, v, c, m] = Σ_{n, i, j} x[n, i·s + u·d, j·s + v·d, c] · dz[n, i, j, c·M + m]
        db[c·M + m]    = Σ_{n, i, j} dz[n, i, j, c·M + m]
        dx[n, i·s + u·d, j·s + v·d, c] += Σ_m K[u, v, c, m] · dz[n, i, j, c·M + m]
    Loops in ``handnet.ops.depthwise_spec``; the layer runs ``handnet.fast.depthwise``, one
    broadcast multiply-add per kernel tap.
    """

    FORWARD = staticmethod(depthwise.depthwise_conv2d_forward)
    BACKWARD = staticmethod(depthwise.depthwise_conv2d_backward)

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier=1,
        dilation_rate=(1, 1),
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            depth_multiplier,
            activation,
            use_bias,
            depthwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            bias_regularizer,
            **kwargs,
        )
        self.set_window(kernel_size, strides, padding, dilation_rate)

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        headline = (
            f"depthwise {kh}×{kw}, {self.depth_multiplier} per channel, stride {sh}×{sw}, "
            f"{self.padding} padding"
        )
        taps = depthwise_taps_2d(self.padding, self.strides, self.dilation_rate)
        return headline, f"y[n,i,j,c·M+m] = {self._explain(taps)}"

    def explain_backward(self, input_shape):
        (sh, sw), (dh, dw) = self.strides, self.dilation_rate
        taps = f"{scaled('i', sh)}+{scaled('u', dh)}, {scaled('j', sw)}+{scaled('v', dw)}"
        return self.window_gradients(
            input_shape,
            "n,i,j,c·M+m",
            f"dK[u,v,c,m] = Σ_(n,i,j) {{src}}[n, {taps}, c] · {{dz}}[n,i,j,c·M+m]",
            f"{{dsrc}}[n, {taps}, c] += Σ_m K[u,v,c,m] · {{dz}}[n,i,j,c·M+m]",
        )


class DepthwiseConv1D(SequenceWindow, _Depthwise):
    """y = f(z),  z[n, t, c·M + m] = b[c·M + m] + Σ_u x[n, t·s + u·d, c] · K[u, c, m]

    Shapes (per sample): x (L, C), K = kernel (k, C, M) as Keras stores it, b = bias (C·M,),
    y (OL, C·M); OL as for Conv1D ("valid" or "same": Keras has no causal depthwise).

    Backward, given dy = ∂L/∂y:  dz = dy · f'(z), then
        dK[u, c, m] = Σ_{n, t} x[n, t·s + u·d, c] · dz[n, t, c·M + m]
        db[c·M + m] = Σ_{n, t} dz[n, t, c·M + m]
        dx[n, t·s + u·d, c] += Σ_m K[u, c, m] · dz[n, t, c·M + m]
    Loops in ``handnet.ops.conv1d_spec``; the layer runs DepthwiseConv2D's op on the sequence
    as an image one row high (``handnet.fast.conv1d``).
    """

    CAUSAL = False  # Keras has no causal depthwise
    FORWARD = staticmethod(conv1d.depthwise_conv1d_forward)
    BACKWARD = staticmethod(conv1d.depthwise_conv1d_backward)

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="valid",
        depth_multiplier=1,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            depth_multiplier,
            activation,
            use_bias,
            depthwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            bias_regularizer,
            **kwargs,
        )
        self.set_window(kernel_size, strides, padding, dilation_rate)

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        headline = (
            f"depthwise width {self.kernel_size}, {self.depth_multiplier} per channel, "
            f"stride {self.strides}, {self.padding} padding"
        )
        taps = depthwise_taps_1d(self.padding, self.strides, self.dilation_rate)
        return headline, f"y[n,t,c·M+m] = {self._explain(taps)}"

    def explain_backward(self, input_shape):
        taps = f"{scaled('t', self.strides)}+{scaled('u', self.dilation_rate)}"
        return self.window_gradients(
            input_shape,
            "n,t,c·M+m",
            f"dK[u,c,m] = Σ_(n,t) {{src}}[n, {taps}, c] · {{dz}}[n,t,c·M+m]",
            f"{{dsrc}}[n, {taps}, c] += Σ_m K[u,c,m] · {{dz}}[n,t,c·M+m]",
        )
