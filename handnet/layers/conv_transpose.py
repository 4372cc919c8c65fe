"""Conv2DTranspose: the transposed 2-D convolution ("deconvolution"), channels-last as Keras."""

import numpy as np

from .. import regularizers
from ..errors import HandnetError
from ..fast import conv_transpose
from ..ops.transpose_padding import transpose_geometry_2d
from .base import BackwardStep, activation_gradient, batch, weight_gradient
from .convolution_base import Convolution, ImageWindow, positive_int, scaled


def _output_padding(value, strides):
    """None, or a pair of ints 0 ≤ op < stride (Keras's rule: a larger one would add output
    cells that no input reaches)."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
        or not all(0 <= v < s for v, s in zip(pair, strides))
    ):
        raise HandnetError(
            f"output_padding must be None or a pair of ints each ≥ 0 and below its stride "
            f"{strides}, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


class Conv2DTranspose(ImageWindow, Convolution):
    """y = f(z),  z = convᵀ(x, K) + b: the adjoint (transpose) of Conv2D's linear map.

    A Conv2D over an input of size (OH, OW, F) with kernel K read as (kh, kw, F, C) maps it to
    (H, W, C); as a matrix it is some A (H·W·C × OH·OW·F).  This layer applies Aᵀ:

        forward   z = Aᵀ x   = Conv2D's input-gradient, with dz := x
        backward  dx = A dz  = Conv2D's forward pass over dz (the kernel unchanged)
                  dK         = Conv2D's kernel gradient with its input := dz, its dz := x

    Written out (s = stride, d = dilation; ``handnet.ops.conv_transpose_spec`` as loops):

        full[n, i·s + u·d, j·s + v·d, f] += Σ_c K[u, v, f, c] · x[n, i, j, c]
        z[n, p, q, f] = b[f] + full[n, p + top, q + left, f]   (0 past the end of full)

        dfull = dz placed back at (top, left) in zeros of full's shape
        dx[n, i, j, c]  = Σ_{u, v, f} K[u, v, f, c] · dfull[n, i·s + u·d, j·s + v·d, f]
        dK[u, v, f, c]  = Σ_{n, i, j} dfull[n, i·s + u·d, j·s + v·d, f] · x[n, i, j, c]
        db[f]           = Σ_{n, p, q} dz[n, p, q, f]

    Shapes (per sample): x (H, W, C), K = kernel (kh, kw, F, C) as Keras stores it (outputs
    before inputs), b = bias (F,), y (OH, OW, F), along each axis with k_eff = d·(k - 1) + 1
    and op = output_padding (Keras's rules, ``handnet.ops.transpose_padding``):
        valid:  OH = (H - 1)·s + k_eff + op,   op defaulting to max(k_eff, s) - k_eff
        same:   OH = H·s (op None), else (H - 1)·s + (k_eff mod 2) + op
    The layer runs ``handnet.fast.conv_transpose``: Conv2D's col2im and im2col, swapped.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        output_padding=None,
        dilation_rate=(1, 1),
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
        self.output_padding = _output_padding(output_padding, self.strides)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape, rng=None):
        self.require_input(input_shape)
        kernel_shape = (*self.kernel_size, self.filters, int(input_shape[-1]))
        kernels = [("kernel", self.kernel_initializer, kernel_shape)]
        self.add_kernels_and_bias(rng, kernels, (self.filters,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (out_h, out_w), _, _ = transpose_geometry_2d(
            input_shape[:2],
            self.kernel_size,
            self.strides,
            self.dilation_rate,
            self.padding,
            self.output_padding,
        )
        return (out_h, out_w, self.filters)

    def _options(self):
        return self.strides, self.padding, self.output_padding, self.dilation_rate

    def forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        z = conv_transpose.conv2d_transpose_forward(
            x, self.params["kernel"], self.bias_or_none(), *self._options()
        )
        return self.activate(z)

    def backward(self, dy):
        dx, dkernel, dbias = conv_transpose.conv2d_transpose_backward(
            self.pre_activation_gradient(dy),
            self._x,
            self.params["kernel"],
            *self._options(),
            input_gradient=self.needs_input_gradient,
        )
        self.store_gradients(kernel=dkernel, bias=dbias)
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "dilation_rate": list(self.dilation_rate),
            **self.initializer_configs("kernel_initializer", "bias_initializer"),
            **self.regularizer_configs("kernel_regularizer", "bias_regularizer"),
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        (dh, dw) = self.dilation_rate
        extra = "" if self.output_padding is None else f", output_padding {self.output_padding}"
        headline = (
            f"{self.filters} filters {kh}×{kw} transposed, stride {sh}×{sw}, "
            f"{self.padding} padding{extra} (the adjoint of Conv2D)"
        )
        bias = "b[f] + " if self.use_bias else ""
        formula = (
            f"full[n, {scaled('i', sh)}+{scaled('u', dh)}, {scaled('j', sw)}+{scaled('v', dw)}, f]"
            f" += Σ_c K[u,v,f,c] · x[n,i,j,c];  y = {self.activated(bias + 'crop(full)')}"
        )
        return headline, formula

    def explain_backward(self, input_shape):
        (sh, sw), (dh, dw) = self.strides, self.dilation_rate
        taps = f"{scaled('i', sh)}+{scaled('u', dh)}, {scaled('j', sw)}+{scaled('v', dw)}"
        steps, dz = activation_gradient(self.activation, self.compute_output_shape(input_shape))
        steps.append(
            BackwardStep(None, f"dfull = {dz} put back at (top, left) in zeros of full's shape", ())
        )
        steps.append(weight_gradient(
            self, "kernel", f"dK[u,v,f,c] = Σ_(n,i,j) dfull[n, {taps}, f] · x[n,i,j,c]", "K"
        ))
        if self.use_bias:
            steps.append(weight_gradient(self, "bias", f"db[f] = Σ_(n,p,q) {dz}[n,p,q,f]", "b"))
        formula = f"dx[n,i,j,c] = Σ_(u,v,f) K[u,v,f,c] · dfull[n, {taps}, f]   (Conv2D over dfull)"
        steps.append(BackwardStep("x", formula, batch(input_shape)))
        return steps
