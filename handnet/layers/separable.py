"""SeparableConv2D and SeparableConv1D: a depthwise convolution, then a 1×1 (pointwise) one."""

from .. import regularizers
from ..fast import separable
from .convolution_base import (
    Convolution,
    ImageWindow,
    SequenceWindow,
    depthwise_taps_1d,
    depthwise_taps_2d,
    positive_int,
    scaled,
    source,
)
from .base import BackwardStep, activation_gradient, batch, weight_gradient


class _Separable(Convolution):
    """The arguments and weights both separable layers share, by Keras's names: filters F,
    depth_multiplier M; weights depthwise_kernel, pointwise_kernel, bias (in that order).
    Build, forward and backward for both layers: the window (ImageWindow or SequenceWindow)
    and the op pair (``FORWARD``, ``BACKWARD``) are the subclass's."""

    REGULARIZED = {
        "depthwise_kernel": "depthwise_regularizer",
        "pointwise_kernel": "pointwise_regularizer",
        "bias": "bias_regularizer",
    }

    def __init__(
        self,
        filters,
        depth_multiplier,
        activation,
        use_bias,
        depthwise_initializer,
        pointwise_initializer,
        bias_initializer,
        depthwise_regularizer,
        pointwise_regularizer,
        bias_regularizer,
        **kwargs,
    ):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.filters = positive_int(filters, "filters")
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape, rng=None):
        self.require_input(input_shape)
        channels = int(input_shape[-1])
        window = self.window()
        depth = (*window, channels, self.depth_multiplier)
        point = (*(1,) * len(window), channels * self.depth_multiplier, self.filters)
        kernels = [
            ("depthwise_kernel", self.depthwise_initializer, depth),
            ("pointwise_kernel", self.pointwise_initializer, point),
        ]
        self.add_kernels_and_bias(rng, kernels, (self.filters,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self.output_window(input_shape), self.filters)

    def _weights(self):
        return self.params["depthwise_kernel"], self.params["pointwise_kernel"], self.bias_or_none()

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        z, self._d = self.FORWARD(x, *self._weights(), *self.window_options())
        return self.activate(z)

    def backward(self, dy):
        depthwise_kernel, pointwise_kernel, _ = self._weights()
        dx, ddepthwise, dpointwise, dbias = self.BACKWARD(
            self.pre_activation_gradient(dy),
            self._d,
            self._x,
            depthwise_kernel,
            pointwise_kernel,
            *self.window_options(),
            input_gradient=self.needs_input_gradient,
        )
        self.store_gradients(depthwise_kernel=ddepthwise, pointwise_kernel=dpointwise, bias=dbias)
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            **self.window_config(),
            "depth_multiplier": self.depth_multiplier,
            **self.initializer_configs(
                "depthwise_initializer", "pointwise_initializer", "bias_initializer"
            ),
            **self.regularizer_configs(
                "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer"
            ),
        }

    def _formula(self, position, taps):
        """'d[n,i,j,c·M+m] = Σ … · D[u,v,c,m];  y[n,i,j,f] = f(b[f] + Σ_k d[n,i,j,k] · P[k,f])'."""
        bias = "b[f] + " if self.use_bias else ""
        pointwise = self.activated(f"{bias}Σ_k d[n,{position},k] · P[k,f]")
        return f"d[n,{position},c·M+m] = {taps};  y[n,{position},f] = {pointwise}"

    def _backward_formulas(self, input_shape, position, taps, window):
        """The backward pass: the pointwise step's gradients, then the depthwise step's from
        dd = ∂L/∂d. ``taps`` is the window's index into x ("i+u, j+v"), ``window`` the
        kernel's ("u,v")."""
        output_shape = self.compute_output_shape(input_shape)
        steps, dz = activation_gradient(self.activation, output_shape)
        over = f"n,{position}"
        steps.append(weight_gradient(
            self, "pointwise_kernel", f"dP[k,f] = Σ_({over}) d[{over},k] · {dz}[{over},f]", "P"
        ))
        if self.use_bias:
            steps.append(weight_gradient(self, "bias", f"db[f] = Σ_({over}) {dz}[{over},f]", "b"))
        channels = input_shape[-1] * self.depth_multiplier
        steps.append(BackwardStep(
            None, f"dd[{over},k] = Σ_f {dz}[{over},f] · P[k,f]",
            batch((*output_shape[:-1], channels)),
        ))
        src = source(self.padding)
        steps.append(weight_gradient(
            self, "depthwise_kernel",
            f"dD[{window},c,m] = Σ_({over}) {src}[n, {taps}, c] · dd[{over},c·M+m]", "D",
        ))
        formula = f"d{src}[n, {taps}, c] += Σ_m D[{window},c,m] · dd[{over},c·M+m]"
        if src != "x":
            formula += f";  dx = d{src} without the padding"
        steps.append(BackwardStep("x", formula, batch(input_shape)))
        return steps


class SeparableConv2D(ImageWindow, _Separable):
    """y = f(z),  z = pointwise(depthwise(x, D), P) + b

        d[n, i, j, c·M + m] = Σ_{u, v} x[n, i·s + u·d, j·s + v·d, c] · D[u, v, c, m]
        z[n, i, j, f]       = b[f] + Σ_{k < C·M} d[n, i, j, k] · P[0, 0, k, f]

    Shapes (per sample): x (H, W, C), D = depthwise_kernel (kh, kw, C, M), P =
    pointwise_kernel (1, 1, C·M, F), b = bias (F,) — Keras's names, shapes and order —
    d (OH, OW, C·M), y (OH, OW, F); OH, OW as for Conv2D.  The depthwise step has no bias
    and no activation of its own.  kh·kw·C·M + C·M·F weights instead of Conv2D's kh·kw·C·F.

    Backward, given dy = ∂L/∂y:  dz = dy · f'(z), R = N·OH·OW rows, then
        dP = d.reshape(R, C·M)ᵀ @ dz.reshape(R, F),   db = Σ_rows dz
        dd = dz.reshape(R, F) @ P.reshape(C·M, F)ᵀ
        dD, dx: DepthwiseConv2D's backward from dd (see ``handnet.layers.depthwise``)
    Loops in ``handnet.ops.separable_spec``; the layer runs ``handnet.fast.separable``.
    """

    FORWARD = staticmethod(separable.separable_conv2d_forward)
    BACKWARD = staticmethod(separable.separable_conv2d_backward)

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        dilation_rate=(1, 1),
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            filters,
            depth_multiplier,
            activation,
            use_bias,
            depthwise_initializer,
            pointwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            pointwise_regularizer,
            bias_regularizer,
            **kwargs,
        )
        self.set_window(kernel_size, strides, padding, dilation_rate)

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        headline = (
            f"{self.filters} filters, depthwise {kh}×{kw} ({self.depth_multiplier} per channel)"
            f" then 1×1, stride {sh}×{sw}, {self.padding} padding"
        )
        taps = depthwise_taps_2d(self.padding, self.strides, self.dilation_rate, "D")
        return headline, self._formula("i,j", taps)

    def explain_backward(self, input_shape):
        (sh, sw), (dh, dw) = self.strides, self.dilation_rate
        taps = f"{scaled('i', sh)}+{scaled('u', dh)}, {scaled('j', sw)}+{scaled('v', dw)}"
        return self._backward_formulas(input_shape, "i,j", taps, "u,v")


class SeparableConv1D(SequenceWindow, _Separable):
    """y = f(z),  z = pointwise(depthwise(x, D), P) + b, along a sequence

        d[n, t, c·M + m] = Σ_u x[n, t·s + u·d, c] · D[u, c, m]
        z[n, t, f]       = b[f] + Σ_{k < C·M} d[n, t, k] · P[0, k, f]

    Shapes (per sample): x (L, C), D = depthwise_kernel (k, C, M), P = pointwise_kernel
    (1, C·M, F), b = bias (F,), y (OL, F); OL as for Conv1D ("valid" or "same").

    Backward as SeparableConv2D's, with R = N·OL rows (``handnet.fast.separable``; loops in
    ``handnet.ops.separable_spec``).
    """

    CAUSAL = False
    FORWARD = staticmethod(separable.separable_conv1d_forward)
    BACKWARD = staticmethod(separable.separable_conv1d_backward)

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            filters,
            depth_multiplier,
            activation,
            use_bias,
            depthwise_initializer,
            pointwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            pointwise_regularizer,
            bias_regularizer,
            **kwargs,
        )
        self.set_window(kernel_size, strides, padding, dilation_rate)

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        headline = (
            f"{self.filters} filters, depthwise width {self.kernel_size} "
            f"({self.depth_multiplier} per channel) then 1×1, stride {self.strides}, "
            f"{self.padding} padding"
        )
        taps = depthwise_taps_1d(self.padding, self.strides, self.dilation_rate, "D")
        return headline, self._formula("t", taps)

    def explain_backward(self, input_shape):
        taps = f"{scaled('t', self.strides)}+{scaled('u', self.dilation_rate)}"
        return self._backward_formulas(input_shape, "t", taps, "u")
