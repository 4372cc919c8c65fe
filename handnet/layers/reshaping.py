"""Layers that move values around without weights (Keras's reshaping family, and Identity):

    Identity                      y = x
    Permute(dims)                 the per-sample axes reordered
    RepeatVector(n)               (N, D) -> (N, n, D)
    Cropping1D, Cropping2D        steps, or rows and columns, cut off the ends
    ZeroPadding1D                 zero steps added at both ends (ZeroPadding2D: zero_padding.py)
    UpSampling1D, UpSampling2D    each step / pixel repeated, or (2D) bilinear interpolation

Each backward is the adjoint (the transpose) of its forward, a linear map: what was copied is
summed back, what was cut off gets gradient 0, what was padded is dropped.

handnet is channels-last, as Keras is by default: sequences (N, steps, features), images
(N, height, width, channels). Layers with Keras's ``data_format`` argument accept None and
"channels_last" and refuse "channels_first" by name.
"""

import numpy as np

from .. import augment
from ..errors import HandnetError, InvalidInputError
from .base import BackwardStep, Layer, batch
from .conv2d import require_images

INTERPOLATIONS = ("nearest", "bilinear")


def _is_count(value, minimum=0):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def _pair(value, what, minimum=0):
    """Keras's standardize_tuple: n -> (n, n), (a, b) -> (a, b), every entry >= minimum."""
    if _is_count(value, minimum):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
        _is_count(v, minimum) for v in value
    ):
        return int(value[0]), int(value[1])
    raise HandnetError(f"{what} must be an int or a pair of ints >= {minimum}, got {value!r}")


def _channels_last(layer_name, data_format):
    if data_format not in (None, "channels_last"):
        raise HandnetError(
            f"{layer_name}: handnet is channels-last; data_format must be None or "
            f"'channels_last', got {data_format!r}"
        )
    return "channels_last"


def _require_sequences(layer, input_shape):
    if len(input_shape) != 2:
        raise InvalidInputError(
            f"{type(layer).__name__} {layer.name!r} expects sequences (steps, features) per "
            f"sample, got per-sample shape {tuple(input_shape)}"
        )


class Identity(Layer):
    """y = x;  dx = dy. (Each returned as a new array, as every handnet layer returns them: the
    graph engine may sum gradients into an array in place.)"""

    def forward(self, x, training=False):
        self.check_input(x)
        return x.copy()

    def backward(self, dy):
        return dy.copy()

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return "passes its input through", "y = x"

    def explain_backward(self, input_shape):
        formula = "dx = dy   (a copy)"
        return [BackwardStep("x", formula, batch(input_shape))]


class Permute(Layer):
    """y[n, i₁, …, i_k] = x[n, j₁, …, j_k] with the per-sample axes reordered by ``dims``: output
    axis a is input axis dims[a - 1] (axes counted from 1, the batch axis 0 stays put).

    Shapes: x (N, d₁, …, d_k) -> y (N, d_dims[0], …, d_dims[k-1]); dims=(2, 1) swaps the two
    axes of (N, T, D), giving (N, D, T).  Backward: dx = dy with the inverse permutation.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dims, (list, tuple)) or not all(_is_count(d, 1) for d in dims):
            raise HandnetError(f"Permute dims must be a list of ints >= 1, got {dims!r}")
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise HandnetError(
                f"Permute dims must reorder 1…{len(dims)}, each once (the batch axis 0 stays), "
                f"got {tuple(dims)}"
            )
        self.dims = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise InvalidInputError(
                f"Permute {self.name!r} with dims {self.dims} expects {len(self.dims)} axes per "
                f"sample, got per-sample shape {tuple(input_shape)}"
            )
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.transpose(0, *self.dims).copy()  # a new array even for dims = (1, 2, …)

    def backward(self, dy):
        inverse = np.argsort((0, *self.dims))
        return dy.transpose(*inverse).copy()

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        order = ", ".join(map(str, (0, *self.dims)))
        return f"axes reordered to {self.dims}", f"y = transpose(x, ({order}))"

    def explain_backward(self, input_shape):
        inverse = ", ".join(map(str, np.argsort((0, *self.dims))))
        formula = f"dx = transpose(dy, ({inverse}))   (the inverse permutation)"
        return [BackwardStep("x", formula, batch(input_shape))]


class RepeatVector(Layer):
    """y[n, t, :] = x[n, :] for t = 1…n:  (N, D) -> (N, n, D).

    Backward: each x[n] was used n times, so dx[n] = Σ_t dy[n, t].
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not _is_count(n, 1):
            raise HandnetError(f"RepeatVector n must be an int >= 1, got {n!r}")
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise InvalidInputError(
                f"RepeatVector {self.name!r} expects vectors (features,) per sample, got "
                f"per-sample shape {tuple(input_shape)}"
            )
        return (self.n, *input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return np.repeat(x[:, None, :], self.n, axis=1)

    def backward(self, dy):
        return dy.sum(axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return f"each vector repeated {self.n} times", "y[n, t, :] = x[n, :]"

    def explain_backward(self, input_shape):
        formula = f"dx[n, :] = Σ_(t<{self.n}) dy[n, t, :]   (x[n] was used {self.n} times)"
        return [BackwardStep("x", formula, batch(input_shape))]


class Cropping1D(Layer):
    """y = x[:, start : T - end, :]:  (N, T, C) -> (N, T - start - end, C), with
    ``cropping`` = (start, end), or one int for both.

    Backward: dx = dy put back in place, zeros on the cropped steps.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pair(cropping, "Cropping1D cropping")

    def compute_output_shape(self, input_shape):
        _require_sequences(self, input_shape)
        steps = input_shape[0] - sum(self.cropping)
        if steps <= 0:
            raise HandnetError(
                f"Cropping1D {self.name!r}: cropping {self.cropping} leaves no steps of "
                f"{input_shape[0]}"
            )
        return (steps, input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        start = self.cropping[0]
        return x[:, start : start + self.output_shape[0]].copy()

    def backward(self, dy):
        dx = np.zeros((dy.shape[0], *self.input_shape), dtype=dy.dtype)
        start = self.cropping[0]
        dx[:, start : start + self.output_shape[0]] = dy
        return dx

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        start, end = self.cropping
        return f"{start} steps cut at the start, {end} at the end", f"y = x[:, {start}:T-{end}, :]"

    def explain_backward(self, input_shape):
        start, kept = self.cropping[0], input_shape[0] - sum(self.cropping)
        formula = f"dx = zeros with dx[:, {start}:{start + kept}, :] = dy   (cut steps get 0)"
        return [BackwardStep("x", formula, batch(input_shape))]


class Cropping2D(Layer):
    """y = x[:, top : H - bottom, left : W - right, :]:
    (N, H, W, C) -> (N, H - top - bottom, W - left - right, C).

    ``cropping`` in Keras's three forms: n (all four sides), (rows, columns) (each symmetric),
    or ((top, bottom), (left, right)).  Backward: dy put back in place, zeros on the border.
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        if _is_count(cropping):
            cropping = (cropping, cropping)
        if not isinstance(cropping, (list, tuple)) or len(cropping) != 2:
            raise HandnetError(
                "Cropping2D cropping must be an int, (rows, columns) or ((top, bottom), "
                f"(left, right)) of ints >= 0, got {cropping!r}"
            )
        self.cropping = (
            _pair(cropping[0], "Cropping2D cropping's rows"),
            _pair(cropping[1], "Cropping2D cropping's columns"),
        )
        self.data_format = _channels_last("Cropping2D", data_format)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        height, width, channels = input_shape
        rows, columns = height - sum(self.cropping[0]), width - sum(self.cropping[1])
        if rows <= 0 or columns <= 0:
            raise HandnetError(
                f"Cropping2D {self.name!r}: cropping {self.cropping} leaves nothing of images "
                f"{height}×{width}"
            )
        return (rows, columns, channels)

    def _window(self):
        (top, _), (left, _) = self.cropping
        rows, columns, _ = self.output_shape
        return slice(top, top + rows), slice(left, left + columns)

    def forward(self, x, training=False):
        self.check_input(x)
        rows, columns = self._window()
        return x[:, rows, columns].copy()

    def backward(self, dy):
        dx = np.zeros((dy.shape[0], *self.input_shape), dtype=dy.dtype)
        rows, columns = self._window()
        dx[:, rows, columns] = dy
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "cropping": [list(pair) for pair in self.cropping],
            "data_format": self.data_format,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        (top, bottom), (left, right) = self.cropping
        return (
            f"cropping {[list(pair) for pair in self.cropping]}",
            f"y = x[:, {top}:H-{bottom}, {left}:W-{right}, :]",
        )

    def explain_backward(self, input_shape):
        (top, bottom), (left, right) = self.cropping
        rows = f"{top}:{input_shape[0] - bottom}"
        columns = f"{left}:{input_shape[1] - right}"
        formula = f"dx = zeros with dx[:, {rows}, {columns}, :] = dy   (the border gets 0)"
        return [BackwardStep("x", formula, batch(input_shape))]


class ZeroPadding1D(Layer):
    """y = x with zero steps before and after:  (N, T, C) -> (N, start + T + end, C), with
    ``padding`` = (start, end), or one int for both.  Backward: dx = dy without the padding."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pair(padding, "ZeroPadding1D padding")
        self.data_format = _channels_last("ZeroPadding1D", data_format)

    def compute_output_shape(self, input_shape):
        _require_sequences(self, input_shape)
        return (input_shape[0] + sum(self.padding), input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        start, end = self.padding
        y = np.zeros((x.shape[0], *self.output_shape), dtype=x.dtype)
        y[:, start : start + x.shape[1]] = x
        return y

    def backward(self, dy):
        start = self.padding[0]
        return dy[:, start : start + self.input_shape[0]].copy()

    def get_config(self):
        return {
            **super().get_config(),
            "padding": list(self.padding),
            "data_format": self.data_format,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        start, end = self.padding
        return f"{start} zero steps before, {end} after", "y = [0…0, x, 0…0] along the steps"

    def explain_backward(self, input_shape):
        start = self.padding[0]
        formula = f"dx = dy[:, {start}:{start + input_shape[0]}, :]   (the padding dropped)"
        return [BackwardStep("x", formula, batch(input_shape))]


class UpSampling1D(Layer):
    """y[n, t, :] = x[n, t // s, :]:  each step repeated s = ``size`` times,
    (N, T, C) -> (N, s·T, C).

    Backward: each x step fed s outputs, so dx[n, t] = Σ_{k<s} dy[n, s·t + k].
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not _is_count(size, 1):
            raise HandnetError(f"UpSampling1D size must be an int >= 1, got {size!r}")
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        _require_sequences(self, input_shape)
        return (self.size * input_shape[0], input_shape[1])

    def forward(self, x, training=False):
        self.check_input(x)
        return np.repeat(x, self.size, axis=1)

    def backward(self, dy):
        steps, channels = self.input_shape
        return dy.reshape(dy.shape[0], steps, self.size, channels).sum(axis=2)

    def get_config(self):
        return {**super().get_config(), "size": self.size}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return f"each step repeated {self.size} times", f"y[n, t, :] = x[n, t // {self.size}, :]"

    def explain_backward(self, input_shape):
        s = self.size
        formula = f"dx[n, t, :] = Σ_(k<{s}) dy[n, {s}t + k, :]   (x[n, t] fed {s} steps)"
        return [BackwardStep("x", formula, batch(input_shape))]


class UpSampling2D(Layer):
    """Images enlarged by integer factors (s_h, s_w) = ``size``:
    (N, H, W, C) -> (N, s_h·H, s_w·W, C).

    nearest:   y[n, i, j, c] = x[n, i // s_h, j // s_w, c]  (each pixel an s_h × s_w block);
               dx[n, p, q, c] = Σ of dy over the block of (p, q)
    bilinear:  y[n, i, j, c] = Σ_{p, q} A[i, p] · B[j, q] · x[n, p, q, c]  with A = the rows'
               interpolation matrix (s_h·H, H), B = the columns' (s_w·W, W)
               (``augment.resize_matrix``: Keras's resize, antialias off, half-pixel centers,
               edges clamped); each output pixel mixes its 2 × 2 nearest input pixels. The
               map is linear, so
               dx[n, p, q, c] = Σ_{i, j} A[i, p] · B[j, q] · dy[n, i, j, c]   (dx = Aᵀ dy B).
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = _pair(size, "UpSampling2D size", minimum=1)
        self.data_format = _channels_last("UpSampling2D", data_format)
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            raise HandnetError(
                f"UpSampling2D interpolation must be one of {INTERPOLATIONS} in handnet, got "
                f"{interpolation!r}"
            )
        self.interpolation = interpolation.lower()

    def _matrices(self, dtype):
        """(A, B), built on first use: a replica starts without its caches (Layer.replica)."""
        if getattr(self, "_rows", None) is None:
            height, width, _ = self.input_shape
            self._rows = augment.resize_matrix(height, self.size[0] * height)
            self._columns = augment.resize_matrix(width, self.size[1] * width)
        return self._rows.astype(dtype, copy=False), self._columns.astype(dtype, copy=False)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        height, width, channels = input_shape
        return (self.size[0] * height, self.size[1] * width, channels)

    def forward(self, x, training=False):
        self.check_input(x)
        if self.interpolation == "nearest":
            return np.repeat(np.repeat(x, self.size[0], axis=1), self.size[1], axis=2)
        rows, columns = self._matrices(x.dtype)
        along_rows = np.einsum("ip,npqc->niqc", rows, x)
        return np.einsum("jq,niqc->nijc", columns, along_rows)

    def backward(self, dy):
        height, width, channels = self.input_shape
        if self.interpolation == "nearest":
            blocks = dy.reshape(dy.shape[0], height, self.size[0], width, self.size[1], channels)
            return blocks.sum(axis=(2, 4))
        rows, columns = self._matrices(dy.dtype)
        along_rows = np.einsum("ip,nijc->npjc", rows, dy)
        return np.einsum("jq,npjc->npqc", columns, along_rows)

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "data_format": self.data_format,
            "interpolation": self.interpolation,
        }

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        sh, sw = self.size
        if self.interpolation == "nearest":
            return f"each pixel repeated {sh}×{sw}", f"y[n,i,j,c] = x[n, i // {sh}, j // {sw}, c]"
        return (
            f"{sh}×{sw} larger by bilinear interpolation (half-pixel centers)",
            "y[n,i,j,c] = Σ_(p,q) A[i,p] · B[j,q] · x[n,p,q,c]   (A, B: 1-D interpolation weights)",
        )

    def explain_backward(self, input_shape):
        sh, sw = self.size
        if self.interpolation == "nearest":
            formula = f"dx[n,p,q,c] = Σ_(a<{sh}, b<{sw}) dy[n, {sh}p + a, {sw}q + b, c]"
        else:
            formula = "dx[n,p,q,c] = Σ_(i,j) A[i,p] · B[j,q] · dy[n,i,j,c]   (dx = Aᵀ dy B)"
        return [BackwardStep("x", formula, batch(input_shape))]
