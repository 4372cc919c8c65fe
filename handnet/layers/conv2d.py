"""Conv2D: the 2-D convolution layer, channels-last as Keras."""

import numpy as np

from .. import activations, regularizers

from ..fast import conv, fused, winograd
from ..fast import grouped_conv
from .base import activation_formula
from .convolution_base import (
    Convolution,
    ImageWindow,
    check_groups,
    require_divisible,
    require_images,
    scaled,
)

__all__ = ["Conv2D", "require_images"]  # require_images: where the image layers import it


class Conv2D(ImageWindow, Convolution):
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
    (see ``handnet.layers.fused``); a 3×3 kernel with stride 1, 2×2 windows and C ≥ 8 trains
    by Winograd's F(2×2, 3×3), whose 2×2 output tiles are the pooling windows
    (``handnet.fast.winograd``: 2.25 times fewer multiplications, the same result to rounding),
    and predicts so from 16 images on (a 3×3 Conv2D alone, stride 1, C ≥ 8, with an even
    output trains by it too: ``winograd.applies_plain``); for other inference shapes, with
    stride 1, C ≥ 8, F ≤ 64 and from 32 images on, two conv outputs a row of cols
    (``handnet.fast.fused.pairs_pay``).
    Inference works out the geometry of each input shape once (``handnet.fast.conv.Im2colLayout``)
    and rebuilds the weight matrix on every call, in the same array (so it never serves weights
    older than the kernel's, which optimizers and set_weights change in place).
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
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.filters = int(filters)
        self.set_window(kernel_size, strides, padding, dilation_rate)
        self.groups = check_groups(groups, self.filters)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._cols = None  # im2col of the last input: backward needs it, the next batch reuses it
        self._dz = None  # ∂L/∂z of the last backward pass with a ReLU: the next one reuses it
        self._cells = None  # the same for the conv outputs of a fused pooling (forward_max_pooled)
        self._dcells = None  # and for their gradient in backward_max_pooled
        self._winner = None  # the window cell each pooled max came from (training)
        self._live_winner = None  # the same through the ReLU (backward_max_pooled)
        self._paired_cols = None  # the same for inference's two-pixel rows (conv.paired_im2col)
        self._paired_z = None  # their product (inference: only the forward reads it)
        self._rerun_input = None  # x of an inference forward, if a backward follows it
        self._tiles = None  # Winograd's V of the last training forward (fast.winograd)
        self._winograd_memory = None  # and its workspace, one flat array
        self._inference_weights = None  # [K; b] (or K₂) of the last inference forward
        # conv.Im2colLayout by input shape and window (inference); they hold no arrays, so a
        # replica (which drops only the arrays) may share them.
        self._layouts = {}

    def build(self, input_shape, rng=None):
        self.require_input(input_shape)
        require_divisible(self, int(input_shape[-1]), self.groups)
        kernel_shape = (*self.kernel_size, int(input_shape[-1]) // self.groups, self.filters)
        kernels = [("kernel", self.kernel_initializer, kernel_shape)]
        self.add_kernels_and_bias(rng, kernels, (self.filters,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*self.output_window(input_shape), self.filters)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        bias = self.bias_or_none()
        if self.groups > 1:
            z, self._group_cols = grouped_conv.conv2d_forward(
                x, self.params["kernel"], bias, *self.window_options(), self.groups
            )
            return self.activate(z)
        if not training:
            # The same cols and product, the geometry worked out once per input shape: at
            # batch 1 the calls around the product cost as much as the product.
            self._tiles = None
            z, self._cols, self._inference_weights = conv.conv2d_inference(
                x,
                self.params["kernel"],
                bias,
                self._layout(x, None),
                reuse_cols=self._cols,
                reuse_weights=self._inference_weights,
            )
            return self.activate(z)
        if winograd.applies_plain(x.shape, self.kernel_size, *self.window_options(), 1):
            z, self._tiles, self._winograd_memory = winograd.conv2d_forward(
                x,
                self.params["kernel"],
                bias,
                self.padding,
                reuse_tiles=self._tiles,
                reuse_memory=self._winograd_memory,
            )
            return self.activate(z)
        self._tiles = None
        z, self._cols = conv.conv2d_forward(
            x,
            self.params["kernel"],
            bias,
            self.strides,
            self.padding,
            self.dilation_rate,
            reuse_cols=self._cols,
        )
        return self.activate(z)

    def backward(self, dy):
        if isinstance(self.activation, activations.ReLU) and self.groups == 1:
            # dz = dy · [y > 0] (activations.ReLU), into the previous batch's dz: it never
            # leaves the backward pass, and a fresh array this size page-faults every batch.
            dz = self._dz
            if dz is None or dz.shape != dy.shape or dz.dtype != dy.dtype:
                dz = self._dz = np.empty_like(dy)
            return self.backward_pre_activation(np.multiply(dy, self._y > 0, out=dz))
        return self.backward_pre_activation(self.pre_activation_gradient(dy))

    def backward_pre_activation(self, dz):
        """Backward from dz = ∂L/∂z (N, OH, OW, F), skipping the activation."""
        if self.groups > 1:
            dx, dkernel, dbias = grouped_conv.conv2d_backward(
                dz,
                self._group_cols,
                self.params["kernel"],
                self._x_shape,
                *self.window_options(),
                self.groups,
                input_gradient=self.needs_input_gradient,
                use_bias=self.use_bias,
            )
            self._store_gradients(dkernel, dbias)
            return dx
        if self._tiles is not None:  # after a Winograd forward (fast.winograd)
            dx, dkernel, dbias, self._winograd_memory = winograd.conv2d_backward(
                dz,
                self._tiles,
                self.params["kernel"],
                self._x_shape,
                self.padding,
                input_gradient=self.needs_input_gradient,
                use_bias=self.use_bias,
                reuse_memory=self._winograd_memory,
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
        bias = self.bias_or_none()
        if not training:
            return self.activate(self._max_pooled_inference(x, pool_size, bias))
        self._rerun_input = None
        return self.activate(self._training_max_pooled(x, pool_size, bias))

    def _training_max_pooled(self, x, pool_size, bias):
        """maxpool(z) and the winners for a training forward (or before a backward pass that
        follows an inference forward): by Winograd's F(2×2, 3×3) where
        ``handnet.fast.winograd.applies``, else im2col in the cell-major order
        (``fused.cell_major_conv2d_max_pool_forward``)."""
        kernel = self.params["kernel"]
        window = (self.kernel_size, *self.window_options())
        if winograd.applies(x.shape, *window, pool_size, self.groups):
            best, self._tiles, self._winner, self._winograd_memory = (
                winograd.conv2d_max_pool_forward(
                    x,
                    kernel,
                    bias,
                    self.padding,
                    reuse_tiles=self._tiles,
                    reuse_winner=self._winner,
                    reuse_memory=self._winograd_memory,
                )
            )
            return best
        self._tiles = None
        # cells (p_h·p_w, N, PH, PW, F) by chunks: fused.cell_major_conv2d_max_pool_forward
        best, self._cols, self._cells, self._winner = fused.cell_major_conv2d_max_pool_forward(
            x,
            kernel,
            bias,
            self.strides,
            self.padding,
            self.dilation_rate,
            pool_size,
            reuse_cols=self._cols,
            reuse_cells=self._cells,
            reuse_winner=self._winner,
        )
        return best

    def _max_pooled_inference(self, x, pool_size, bias):
        """maxpool(z) for an inference pass, no winners (a backward pass after it reruns the
        training forward first): Winograd's forward from ``winograd.INFERENCE_FROM_IMAGES``
        images where it applies, else ``fused.conv2d_max_pool_inference`` along paired rows
        (where ``fused.pairs_pay``) or pool-major cols."""
        kernel = self.params["kernel"]
        window = (self.kernel_size, *self.window_options())
        self._rerun_input = x
        if len(x) >= winograd.INFERENCE_FROM_IMAGES and winograd.applies(
            x.shape, *window, pool_size, self.groups
        ):
            best, _, _, self._winograd_memory = winograd.conv2d_max_pool_forward(
                x, kernel, bias, self.padding, False, reuse_memory=self._winograd_memory
            )
            return best
        layout = self._layout(x, pool_size)
        if layout.paired:
            best, self._paired_cols, self._paired_z, self._inference_weights = (
                fused.conv2d_max_pool_inference(
                    x,
                    kernel,
                    bias,
                    layout,
                    pool_size,
                    self._paired_cols,
                    self._paired_z,
                    self._inference_weights,
                )
            )
            return best
        best, self._cols, self._cells, self._inference_weights = fused.conv2d_max_pool_inference(
            x, kernel, bias, layout, pool_size, self._cols, self._cells, self._inference_weights
        )
        return best

    def _layout(self, x, pool_size):
        """The ``conv.Im2colLayout`` of an inference forward on x (made on the first call
        with its shape, dtype and window; ``pool_size`` None: the layer alone)."""
        key = (x.shape, x.dtype, pool_size, self.use_bias, self.kernel_size,
               *self.window_options())  # fmt: skip
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= 8:  # a few shapes are in use at a time
                self._layouts.clear()
            window = (self.kernel_size, *self.window_options())
            if pool_size is None:
                layout = conv.Im2colLayout(x.shape, x.dtype, *window, ones_column=self.use_bias)
            else:
                layout = fused.inference_layout(
                    x.shape, x.dtype, *window, pool_size, self.use_bias, self.filters
                )
            self._layouts[key] = layout
        return layout

    def backward_max_pooled(self, dy):
        """dx from dy = ∂L/∂y (N, PH, PW, F) after ``forward_max_pooled``; fills grads.

        With a ReLU, its derivative [y > 0] goes into the winners (``fused.relu_winners``)
        rather than into a product dy · [y > 0] first: the same dz, one pass fewer."""
        if self._rerun_input is not None:  # after an inference forward: no winners yet
            self._training_max_pooled(self._rerun_input, self._pool_size, self.bias_or_none())
            self._rerun_input = None
        cell_count = self._pool_size[0] * self._pool_size[1]
        winner, first_cell = self._winner, 0
        live = None
        if isinstance(self.activation, activations.ReLU):
            live = fused.relu_winners(self._y, winner, cell_count, self._live_winner)
        if live is not None:
            self._live_winner, dbest, winner, first_cell = live, dy, live, 1
        else:
            dbest = self.pre_activation_gradient(dy)
        kernel = self.params["kernel"]
        if self._tiles is not None:
            dx, dkernel, dbias, self._winograd_memory = winograd.conv2d_max_pool_backward(
                dbest,
                self._tiles,
                winner,
                kernel,
                self._x_shape,
                self.padding,
                input_gradient=self.needs_input_gradient,
                first_cell=first_cell,
                use_bias=self.use_bias,
                reuse_memory=self._winograd_memory,
            )
            self._store_gradients(dkernel, dbias)
            return dx
        # ∂L/∂cells (cell-major), one chunk at a time, in the same memory batch after batch.
        self._dcells = fused.cell_major_dz_workspace(
            winner, self._cols, self.filters, dbest.dtype, self._dcells
        )
        dx, dkernel, dbias = fused.cell_major_conv2d_max_pool_backward(
            dbest,
            self._cols,
            self._cells,
            winner,
            kernel,
            self._x_shape,
            self.strides,
            self.padding,
            self.dilation_rate,
            self._pool_size,
            input_gradient=self.needs_input_gradient,
            reuse_dz=self._dcells,
            first_cell=first_cell,
        )
        self._store_gradients(dkernel, dbias)
        return dx

    def _store_gradients(self, dkernel, dbias):
        self.store_gradients(kernel=dkernel, bias=dbias)

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

    def explain_backward(self, input_shape):
        (sh, sw), (dh, dw) = self.strides, self.dilation_rate
        taps = f"{scaled('i', sh)}+{scaled('u', dh)}, {scaled('j', sw)}+{scaled('v', dw)}"
        # groups: output f reads only its group's channels, g = f // (F/G)
        channel = "g·C/G + c" if self.groups > 1 else "c"
        over = "Σ_(f in c's group)" if self.groups > 1 else "Σ_f"
        # With stride 1 that scatter is a "full" convolution of dz with the flipped kernel
        # (with stride s, of dz spread out with s - 1 zeros between its cells).
        flipped = "   (= dz full-convolved with K flipped)" if self.strides == (1, 1) else ""
        return self.window_gradients(
            input_shape,
            "n,i,j,f",
            f"dK[u,v,c,f] = Σ_(n,i,j) {{src}}[n, {taps}, {channel}] · {{dz}}[n,i,j,f]",
            f"{{dsrc}}[n, {taps}, {channel}] += {over} K[u,v,c,f] · {{dz}}[n,i,j,f]" + flipped,
        )
