"""Conv1D: the 1-D convolution layer over sequences, channels-last as Keras."""

from .. import regularizers
from ..fast import conv1d
from .convolution_base import (
    Convolution,
    SequenceWindow,
    check_groups,
    positive_int,
    require_divisible,
    scaled,
    source,
)


class Conv1D(SequenceWindow, Convolution):
    """y = f(z),  z[n, t, f] = b[f] + Σ_{u, c < C/G} x[n, t·s + u·d, g·C/G + c] · K[u, c, f]

    Shapes (per sample):  x (L, C),  K = kernel (k, C/G, F) as Keras stores it,  b = bias (F,),
    y (OL, F);  G = groups, output f in group g = f // (F/G) reading only that group's C/G
    inputs (G = 1: all of them).  Along the sequence (s = stride, d = dilation):
        valid:   OL = floor((L - d·(k - 1) - 1) / s) + 1
        same:    OL = ceil(L / s), zero-padded as Conv2D does (the odd cell after)
        causal:  d·(k - 1) zeros before, none after: OL = floor((L - 1) / s) + 1, and output t
                 reads x up to t·s only (for autoregressive models)

    Backward, given dy = ∂L/∂y:  dz = dy · f'(z), then
        dK[u, c, f] = Σ_{n, t} x[n, t·s + u·d, g·C/G + c] · dz[n, t, f]
        db[f]       = Σ_{n, t} dz[n, t, f]
        dx[n, t·s + u·d, g·C/G + c] += Σ_{f in group g} K[u, c, f] · dz[n, t, f]
    ``handnet.ops.conv1d_spec`` writes this as loops; the layer runs ``handnet.fast.conv1d``,
    which treats the sequence as an image one row high.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.filters = positive_int(filters, "filters")
        self.set_window(kernel_size, strides, padding, dilation_rate)
        self.groups = check_groups(groups, self.filters)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape, rng=None):
        self.require_input(input_shape)
        require_divisible(self, int(input_shape[-1]), self.groups)
        kernel_shape = (self.kernel_size, int(input_shape[-1]) // self.groups, self.filters)
        kernels = [("kernel", self.kernel_initializer, kernel_shape)]
        self.add_kernels_and_bias(rng, kernels, (self.filters,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self.output_window(input_shape), self.filters)

    def _options(self):
        return (*self.window_options(), self.groups)

    def forward(self, x, training=False):
        self.check_input(x)
        kernel, bias = self.params["kernel"], self.bias_or_none()
        z, self._cache = conv1d.conv1d_forward(x, kernel, bias, *self._options())
        return self.activate(z)

    def backward(self, dy):
        dx, dkernel, dbias = conv1d.conv1d_backward(
            self.pre_activation_gradient(dy),
            self._cache,
            self.params["kernel"],
            *self._options(),
            input_gradient=self.needs_input_gradient,
            use_bias=self.use_bias,
        )
        self.store_gradients(kernel=dkernel, bias=dbias)
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            **self.window_config(),
            "groups": self.groups,
            **self.initializer_configs("kernel_initializer", "bias_initializer"),
            **self.regularizer_configs("kernel_regularizer", "bias_regularizer"),
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        groups = f", {self.groups} groups" if self.groups > 1 else ""
        headline = (
            f"{self.filters} filters of width {self.kernel_size}, stride {self.strides}, "
            f"dilation {self.dilation_rate}, {self.padding} padding{groups}"
        )
        channel = "g·C/G + c" if self.groups > 1 else "c"
        bias = "b[f] + " if self.use_bias else ""
        inner = (
            f"{bias}Σ_(u,c) {source(self.padding)}[n, {scaled('t', self.strides)}+"
            f"{scaled('u', self.dilation_rate)}, {channel}] · K[u,c,f]"
        )
        return headline, f"y[n,t,f] = {self.activated(inner)}"

    def explain_backward(self, input_shape):
        taps = f"{scaled('t', self.strides)}+{scaled('u', self.dilation_rate)}"
        channel = "g·C/G + c" if self.groups > 1 else "c"  # g = f // (F/G), f's group
        over = "Σ_(f in group g)" if self.groups > 1 else "Σ_f"
        return self.window_gradients(
            input_shape,
            "n,t,f",
            f"dK[u,c,f] = Σ_(n,t) {{src}}[n, {taps}, {channel}] · {{dz}}[n,t,f]",
            f"{{dsrc}}[n, {taps}, {channel}] += {over} K[u,c,f] · {{dz}}[n,t,f]",
        )
