"""Resizing and CenterCrop: images brought to a fixed size, as Keras's preprocessing layers do it
(``keras.layers.Resizing``, ``keras.layers.CenterCrop``; on Keras's torch backend their resize
is F.interpolate with antialias off).

Both are linear maps of the input, one 1-D interpolation matrix an axis:

    y[n, i, j, c] = Σ_{p, q} A[i, p] · B[j, q] · x'[n, p, q, c]        y = A x' Bᵀ per image

with A (h, H') for the rows and B (w, W') for the columns (``interpolation_matrix``), x' the
image, or a window of it, or the image in a frame. Output cell o of an axis of size S' → s:

    bilinear:  the input point t = (o + ½) · S'/s - ½ (half-pixel centres, clamped at 0);
               k = ⌊t⌋, λ = t - k:  (1 - λ) · x[k] + λ · x[k + 1]   (k + 1 clamped at S' - 1)
    nearest:   x[min(⌊(o + ½) · S'/s⌋, S' - 1)]                      (torch's "nearest-exact")

so every row of A sums to 1. Backward, the adjoint: dx' = Aᵀ dy B, put back where x' came from
(0 on the image outside a window; a frame's own cells dropped).
"""

import numpy as np

from .. import augment
from ..errors import HandnetError
from .base import BackwardStep, Layer, batch
from .conv2d import require_images
from .reshaping import _channels_last

RESIZE_INTERPOLATIONS = ("bilinear", "nearest")


def interpolation_matrix(size_in, size_out, interpolation, dtype):
    """A (size_out, size_in) in ``dtype``, the weights of one axis as the forward pass applies
    them: bilinear ``augment.resize_matrix`` (torch's arithmetic step by step in ``dtype``),
    nearest one 1 a row, at ``nearest_indices``."""
    if interpolation == "bilinear":
        return augment.resize_matrix(size_in, size_out, dtype)
    matrix = np.zeros((size_out, size_in), dtype=dtype)
    matrix[np.arange(size_out), nearest_indices(size_in, size_out)] = 1
    return matrix


def nearest_indices(size_in, size_out):
    """min(⌊(o + ½) · size_in/size_out⌋, size_in - 1) for each output cell o, computed as
    torch's CPU kernel does: the scale in float32, the product in float64, floored in float32."""
    scale = np.float32(size_in) / np.float32(size_out)
    points = ((np.arange(size_out) + 0.5) * np.float64(scale)).astype(np.float32)
    return np.minimum(np.floor(points).astype(np.int64), size_in - 1)


def aspect_window(height, width, target_height, target_width):
    """Keras's crop_to_aspect_ratio box (top, left, rows, columns): the largest window of the
    target's aspect ratio, centred: rows = min(H, ⌊W·h/w⌋), columns = min(W, ⌊H·w/h⌋) (each
    at least 1), top = ⌊(H - rows)/2⌋, left = ⌊(W - columns)/2⌋."""
    rows = max(min(height, int(float(width * target_height) / target_width)), 1)
    columns = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - rows) / 2), int(float(width - columns) / 2), rows, columns


def aspect_frame(height, width, target_height, target_width):
    """Keras's pad_to_aspect_ratio frame (top, left, rows, columns): the image centred in the
    smallest frame of the target's aspect ratio, rows = max(H, ⌊W·h/w⌋), columns = max(W,
    ⌊H·w/h⌋), top = ⌊(rows - H)/2⌋, left = ⌊(columns - W)/2⌋; Keras pads top and bottom (left
    and right) by the same ``top`` (``left``) cells, so the frame is H + 2·top high."""
    rows = max(height, int(float(width * target_height) / target_width))
    columns = max(width, int(float(height * target_width) / target_height))
    top, left = int(float(rows - height) / 2), int(float(columns - width) / 2)
    return top, left, height + 2 * top, width + 2 * left


def _size(value, layer, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise HandnetError(f"{layer} {name} must be an int >= 1, got {value!r}")
    return int(value)


class Resizing(Layer):
    """(N, H, W, C) -> (N, height, width, C): each image resized by ``interpolation``
    ("bilinear", Keras's default, or "nearest"; see the module's docstring):

        y = A x' Bᵀ,   dx' = Aᵀ dy B

    x' is the image (stretched to the new size), or with ``crop_to_aspect_ratio`` its largest
    centred window of the target's aspect ratio (``aspect_window``; dx is 0 outside it), or with
    ``pad_to_aspect_ratio`` the image centred in a frame of that ratio whose cells hold
    ``fill_value`` (``aspect_frame``; the frame's gradient is dropped).

    Keras's antialias=True (a wider filter when shrinking) and its other interpolations
    (bicubic, lanczos, area) are not implemented and refused by name.
    """

    def __init__(
        self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
        data_format=None, **kwargs,
    ):  # fmt: skip
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.height, self.width = _size(height, kind, "height"), _size(width, kind, "width")
        if not isinstance(interpolation, str) or interpolation not in RESIZE_INTERPOLATIONS:
            raise HandnetError(
                f"{kind} interpolation must be one of {RESIZE_INTERPOLATIONS} in handnet, got "
                f"{interpolation!r}"
            )
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise HandnetError(
                f"{kind}: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True"
            )
        if fill_mode != "constant":
            raise HandnetError(f"{kind} fill_mode must be 'constant' (Keras's only one), got "
                               f"{fill_mode!r}")  # fmt: skip
        if antialias:
            raise HandnetError(
                f"{kind}: antialias=True (a wider filter when shrinking) is not implemented; "
                "handnet resizes with antialias=False, Keras's default"
            )
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, float(fill_value)
        self.data_format = _channels_last(kind, data_format)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        return (self.height, self.width, input_shape[2])

    def _source(self, height, width):
        """("window" or "frame" or "image", (top, left, rows, columns)) of x', and whether it
        is resized (False: x' is the output itself)."""
        if self.crop_to_aspect_ratio:
            return "window", aspect_window(height, width, self.height, self.width), True
        if self.pad_to_aspect_ratio:
            return "frame", aspect_frame(height, width, self.height, self.width), True
        return "image", (0, 0, height, width), True

    def _matrices(self, rows, columns, dtype):
        return (interpolation_matrix(rows, self.height, self.interpolation, dtype),
                interpolation_matrix(columns, self.width, self.interpolation, dtype))

    def forward(self, x, training=False):
        self.check_input(x)
        kind, (top, left, rows, columns), resized = self._source(*x.shape[1:3])
        if kind == "frame":
            source = np.full((len(x), rows, columns, x.shape[3]), self.fill_value, x.dtype)
            source[:, top : top + x.shape[1], left : left + x.shape[2]] = x
        else:
            source = x[:, top : top + rows, left : left + columns]
        if not resized:
            return source.copy()
        if self.interpolation == "nearest":
            rows_read = nearest_indices(rows, self.height)
            return source[:, rows_read][:, :, nearest_indices(columns, self.width)]
        return augment.resize(source, self.height, self.width)  # torch's order of the sums

    def backward(self, dy):
        height, width, _ = self.input_shape
        kind, (top, left, rows, columns), resized = self._source(height, width)
        if resized:
            a, b = self._matrices(rows, columns, dy.dtype)
            dy = np.einsum("jq,nijc->niqc", b, dy)
            dy = np.einsum("ip,niqc->npqc", a, dy)
        if kind == "frame":
            return dy[:, top : top + height, left : left + width].copy()
        if kind == "image":
            return dy  # A, B applied: a fresh array
        dx = np.zeros((len(dy), *self.input_shape), dtype=dy.dtype)
        dx[:, top : top + rows, left : left + columns] = dy
        return dx

    def get_config(self):
        return {
            **super().get_config(), "height": self.height, "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
            "fill_value": self.fill_value, "antialias": False, "data_format": self.data_format,
        }  # fmt: skip

    def _described_source(self):
        if self.crop_to_aspect_ratio:
            return "x' = the centred window of the target's aspect ratio"
        if self.pad_to_aspect_ratio:
            return f"x' = the image framed to the target's aspect ratio with {self.fill_value:g}"
        return "x' = the image"

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (
            f"resized to {self.height}×{self.width}, {self.interpolation} (half-pixel centres)",
            f"y[n,i,j,c] = Σ_(p,q) A[i,p] · B[j,q] · x'[n,p,q,c];  {self._described_source()}",
        )

    def explain_backward(self, input_shape):
        formula = "dx' = Aᵀ dy B   (the adjoint), put back where x' came from"
        return [BackwardStep("x", formula, batch(input_shape))]


class CenterCrop(Resizing):
    """(N, H, W, C) -> (N, height, width, C), Keras's CenterCrop: when the images are at least
    as large as the target both ways, the centred window

        y = x[:, i₀ : i₀ + height, j₀ : j₀ + width],  i₀ = ⌊(H - height)/2⌋, j₀ = ⌊(W - width)/2⌋

    (dx: dy put back in the window, 0 elsewhere); otherwise, as Keras's smart_resize, the
    largest centred window of the target's aspect ratio resized bilinearly (Resizing with
    crop_to_aspect_ratio=True): y = A x' Bᵀ, dx' = Aᵀ dy B."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(height, width, crop_to_aspect_ratio=True, data_format=data_format,
                         **kwargs)  # fmt: skip

    def _source(self, height, width):
        if height >= self.height and width >= self.width:
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return "window", (top, left, self.height, self.width), False
        return super()._source(height, width)

    def get_config(self):
        config = Layer.get_config(self)
        return {**config, "height": self.height, "width": self.width,
                "data_format": self.data_format}  # fmt: skip

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        if self.input_shape is not None:
            height, width, _ = self.input_shape
            kind, (top, left, _, _), resized = self._source(height, width)
            if not resized:
                return (
                    f"the centred {self.height}×{self.width} window",
                    f"y = x[:, {top}:{top + self.height}, {left}:{left + self.width}, :]",
                )
        return super().explain()

    def explain_backward(self, input_shape):
        height, width, _ = input_shape
        _, (top, left, _, _), resized = self._source(height, width)
        if resized:
            return super().explain_backward(input_shape)
        window = f"dx[:, {top}:{top + self.height}, {left}:{left + self.width}, :] = dy"
        return [BackwardStep("x", f"dx = zeros with {window}   (the rest gets 0)",
                             batch(input_shape))]  # fmt: skip
