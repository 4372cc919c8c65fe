"""Conv2D: the 2-D convolution layer, channels-last as Keras."""

import numpy as np

from .. import activations, initializers, regularizers
from ..fast import conv, fused
from ..fast import grouped_conv
from ..ops.padding import check_padding, spatial_pair, window_geometry_2d
from .base import Layer, activation_formula
from .convolution_base import check_groups, require_divisible, require_images


class Conv2D(Layer):
    """y = f(z),  z[n, i, j, f] = b[f] + Σ_{u, v, c} x[n, i·s + u·d, j·s + v·d, c] · K[u, v, c, f]

    Shapes (per sample):  x (H, W, C),  K = kernel (kh, kw, C, F) as Keras stores it,
    b = bias (F,),  y (OH, OW, F)  with, along each axis (s = stride, d = dilation),
        valid:  OH = floor((H - d·(kh - 1) - 1) / s) + 1
        same:   OH = ceil(H / s), the input zero-padded by max((OH - 1)·s + d·(kh - 1) + 1 - H, 0),
                the odd cell at the bottom/right (TensorFlow's split).

    Backward, given dy = ∂L/∂y:  dz = dy · f'(z), then
        dK[u, v, c, f] = Σ_{n, i, j} x[n, i·s + u·d, j·s + v·d, c] · dz[n, i, j, f]
        db[f]          = Σ_{n, i, j} dz[n, i, j, f]
        dx[n, i·s + u·d, j·s + v·d, c] += Σ_f K[u, v, c, f] · dz[n, i, j, f]
    The loops of ``handnet.ops.conv_spec`` say exactly this; the layer runs the equivalent
    im2col + one matrix product of ``handnet.fast.conv``.  A ReLU is applied in place on z.

    groups = G > 1 (Keras's grouped convolution): K is (kh, kw, C/G, F), and output f, in
    group g = f // (F/G), reads only input channels g·C/G … (g + 1)·C/G - 1 — the sums over c
    above run over those, and dx[…, c] collects only its own group's filters.  G independent
    convolutions side by side (``handnet.fast.grouped_conv``, loops in ``grouped_conv_spec``).
    In a Sequential, a MaxPooling2D right after it runs fused with it: ``forward_max_pooled``
    (see ``handnet.layers.fused``).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        dilation_rate=(1, 1),
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = spatial_pair(kernel_size, "kernel_size")
        self.strides = spatial_pair(strides, "strides")
        self.padding = check_padding(padding)
        self.dilation_rate = spatial_pair(dilation_rate, "dilation_rate")
        self.groups = check_groups(groups, self.filters)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._cols = None  # im2col of the last input: backward needs it, the next batch reuses it

    def build(self, input_shape, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        require_images(self, input_shape)
        require_divisible(self, int(input_shape[-1]), self.groups)
        kernel_shape = (*self.kernel_size, int(input_shape[-1]) // self.groups, self.filters)
        init_kernel = initializers.get(self.kernel_initializer)
        self.add_param("kernel", init_kernel(kernel_shape, rng, self.dtype))
        if self.use_bias:
            init_bias = initializers.get(self.bias_initializer)
            self.add_param("bias", init_bias((self.filters,), rng, self.dtype))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (out_h, out_w), _ = window_geometry_2d(
            input_shape[:2], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        return (out_h, out_w, self.filters)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        bias = self.params["bias"] if self.use_bias else None
        if self.groups > 1:
            z, self._group_cols = grouped_conv.conv2d_forward(
                x, self.params["kernel"], bias, *self._geometry(), self.groups
            )
            return self._activate(z)
        z, self._cols = conv.conv2d_forward(
            x,
            self.params["kernel"],
            bias,
            self.strides,
            self.padding,
            self.dilation_rate,
            reuse_cols=self._cols,
        )
        return self._activate(z)

    def _geometry(self):
        return self.strides, self.padding, self.dilation_rate

    def _activate(self, z):
        if isinstance(self.activation, activations.ReLU):
            # In place: ReLU's derivative is readable from y alone ([y > 0] = [z > 0]), so z —
            # the layer's largest array — need not be kept beside y.
            self._z = self._y = np.maximum(z, 0, out=z)
        else:
            self._z, self._y = z, self.activation.forward(z)
        return self._y

    def backward(self, dy):
        return self.backward_pre_activation(self.activation.backward(dy, self._z, self._y))

    def backward_pre_activation(self, dz):
        """Backward from dz = ∂L/∂z (N, OH, OW, F), skipping the activation."""
        if self.groups > 1:
            dx, dkernel, dbias = grouped_conv.conv2d_backward(
                dz,
                self._group_cols,
                self.params["kernel"],
                self._x_shape,
                *self._geometry(),
                self.groups,
                input_gradient=self.needs_input_gradient,
                use_bias=self.use_bias,
            )
            self._store_gradients(dkernel, dbias)
            return dx
        dx, dkernel, dbias = conv.conv2d_backward(
            dz,
            self._cols,
            self.params["kernel"],
            self._x_shape,
            self.strides,
            self.padding,
            self.dilation_rate,
            input_gradient=self.needs_input_gradient,
        )
        self._store_gradients(dkernel, dbias)
        return dx

    # -- fused with the max pooling that follows (run by Sequential, see layers.fused) -------
    def forward_max_pooled(self, x, pool_size, training=False):
        """y = f(maxpool(z)) (N, PH, PW, F): this layer followed by a max pooling with
        non-overlapping "valid" p_h×p_w windows, in one operation (``handnet.fast.fused``).

        Equal to maxpool(f(z)) for a non-decreasing f (ReLU, linear): f moves past the max and
        runs on p_h·p_w times fewer values, and the conv outputs no window reads are skipped.
        """
        self.check_input(x)
        self._x_shape, self._pool_size = x.shape, pool_size
        bias = self.params["bias"] if self.use_bias else None
        best, self._cols, self._cells, self._winner = fused.conv2d_max_pool_forward(
            x,
            self.params["kernel"],
            bias,
            self.strides,
            self.padding,
            self.dilation_rate,
            pool_size,
            reuse_cols=self._cols,
            find_winners=training,
        )
        return self._activate(best)

    def backward_max_pooled(self, dy):
        """dx from dy = ∂L/∂y (N, PH, PW, F) after ``forward_max_pooled``; fills grads."""
        dbest = self.activation.backward(dy, self._z, self._y)
        dx, dkernel, dbias = fused.conv2d_max_pool_backward(
            dbest,
            self._cols,
            self._cells,
            self._winner,
            self.params["kernel"],
            self._x_shape,
            self.strides,
            self.padding,
            self.dilation_rate,
            self._pool_size,
            input_gradient=self.needs_input_gradient,
        )
        self._store_gradients(dkernel, dbias)
        return dx

    def _store_gradients(self, dkernel, dbias):
        self.grads["kernel"][...] = dkernel
        if self.use_bias:
            self.grads["bias"][...] = dbias
        self.add_regularization_gradients()

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    def explain(self):
        (sh, sw), (dh, dw) = self.strides, self.dilation_rate
        row = "i" if sh == 1 else f"{sh}i"
        col = "j" if sw == 1 else f"{sw}j"
        u = "u" if dh == 1 else f"{dh}u"
        v = "v" if dw == 1 else f"{dw}v"
        source = "x" if self.padding == "valid" else "pad(x)"
        bias = "b[f] + " if self.use_bias else ""
        kh, kw = self.kernel_size
        headline = f"{self.filters} filters {kh}×{kw}, stride {sh}×{sw}, {self.padding} padding"
        inner = f"{bias}Σ_(u,v,c) {source}[n, {row}+{u}, {col}+{v}, c] · K[u,v,c,f]"
        activation = self.get_config()["activation"]
        return headline, f"y[n,i,j,f] = {activation_formula(activation, inner)}"
