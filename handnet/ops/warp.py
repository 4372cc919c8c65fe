"""Geometric warps of image batches: affine maps, sampling at fractional points, resizing.

Shared by handnet.augment (RandomAffine, applied to batches by ``fit``) and the augmentation
layers (handnet.layers.augmentation: RandomRotation, RandomZoom, …). A warp goes backwards,
from each output pixel p = (row, column) to the source point it reads,

    q = A p + b        A (N, 2, 2), b (N, 2): one affine map per image,

so that no output pixel is left unfilled, and reads the image there by interpolation. No Python
loop runs over the images: every output pixel's source point is computed for the whole batch in
one matrix product, and the interpolation is a handful of NumPy gathers.

Sampling is linear in the image, y = S x, so its adjoint (the backward pass of a warp held
fixed) is the transpose: each output's gradient is added back, with the same weights, into the
pixels it read (``sample_adjoint``).
"""

import numpy as np

INTERPOLATIONS = ("nearest", "bilinear")
#: Keras's names for what a point outside the image reads (keras.ops.image.affine_transform):
#:   constant  fill_value                 (k k k k | a b c d | k k k k)
#:   reflect   mirrored about the edge    (d c b a | a b c d | d c b a)
#:   wrap      the opposite side          (a b c d | a b c d | a b c d)
#:   nearest   the edge pixel repeated    (a a a a | a b c d | d d d d)
FILL_MODES = ("constant", "reflect", "wrap", "nearest")


def rotation_matrices(angles, scales, mirrors=None):
    """A = R(θ) / s (N, 2, 2) in float64, in (row, column) coordinates, for angles θ in degrees:

        R(θ) = [[cos θ,  sin θ],
                [-sin θ, cos θ]]

    Rows grow downwards, so q = A p (the source of output pixel p) turns the picture
    counter-clockwise by θ and scales it by s. A mirror M = diag(1, -1) (left to right) applied
    first has its inverse last: A with its column entries negated, where ``mirrors[n]``."""
    radians = np.deg2rad(np.asarray(angles, dtype=np.float64)).reshape(-1)
    n = len(radians)
    inverse_scale = 1 / np.asarray(scales, dtype=np.float64).reshape(n)
    cos, sin = np.cos(radians) * inverse_scale, np.sin(radians) * inverse_scale
    matrices = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)  # (N, 2, 2)
    if mirrors is not None:
        matrices[:, 1] *= np.where(np.asarray(mirrors, dtype=bool).reshape(n), -1.0, 1.0)[:, None]
    return matrices


def centered_offsets(matrices, height, width, shifts=None):
    """b (N, 2) such that q = A (p - c - t) + c = A p + b: the map A about the image's centre
    c = ((H - 1)/2, (W - 1)/2), after a shift by t = ``shifts`` (N, 2) = (down, right) pixels
    (none when None)."""
    center = np.array([(height - 1) / 2, (width - 1) / 2])
    moved = center if shifts is None else center + np.asarray(shifts, dtype=np.float64)
    return center - np.einsum("nij,nj->ni", matrices, np.broadcast_to(moved, (len(matrices), 2)))


def source_points(matrices, offsets, height, width, dtype):
    """q = A p + b for every pixel p of an (H, W) output -> (N, 2, H, W) (rows, columns) in
    ``dtype``: one matrix product for every pixel of every image."""
    n = len(matrices)
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"))  # (2, H, W)
    source = matrices.astype(dtype) @ grid.reshape(2, -1).astype(dtype)  # (N, 2, H·W)
    return source.reshape(n, 2, height, width) + offsets.astype(dtype)[:, :, None, None]


def bilinear_sample(images, rows, columns):
    """images (N, H, W, C) read at fractional points (rows, columns), each (N, H', W')
    -> (N, H', W', C), 0 outside the image.

    With r₀ = ⌊r⌋, c₀ = ⌊c⌋, a = r - r₀, b = c - c₀ and I the image:
        I(r, c) = (1 - a) · [(1 - b) I[r₀, c₀]   + b I[r₀, c₀+1]]
                +      a · [(1 - b) I[r₀+1, c₀] + b I[r₀+1, c₀+1]]
    """
    n, height, width, channels = images.shape
    # A zero border (1 pixel before, 2 after) and points clipped to [-1, H] × [-1, W]: every
    # neighbour is then inside the padded array, and a point beyond the border reads only zeros,
    # so no per-point "is it inside?" mask is needed.
    padded = np.pad(images, ((0, 0), (1, 2), (1, 2), (0, 0)))
    row_length = width + 3
    pixels = padded.reshape(-1, channels)
    rows = np.clip(rows, -1, height) + 1
    columns = np.clip(columns, -1, width) + 1
    top, left = np.floor(rows), np.floor(columns)
    a, b = (rows - top)[..., None], (columns - left)[..., None]
    index_type = np.int32 if len(pixels) < 2**31 else np.intp  # int32 gathers faster
    image_size = padded.shape[1] * row_length
    image_starts = (np.arange(n, dtype=index_type) * image_size).reshape(n, 1, 1)
    corner = (top * row_length + left).astype(index_type) + image_starts  # where I[r₀, c₀] is
    upper = np.take(pixels, corner, axis=0) * (1 - b) + np.take(pixels, corner + 1, axis=0) * b
    corner += row_length
    lower = np.take(pixels, corner, axis=0) * (1 - b) + np.take(pixels, corner + 1, axis=0) * b
    return upper * (1 - a) + lower * a


def fix_index(index, size, fill_mode):
    """Integer pixel indices (any, possibly outside [0, size)) -> the pixel each reads under
    ``fill_mode`` (constant: clipped, the caller masks them; see FILL_MODES)."""
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "reflect":
        # Half-sample symmetric: … 1 0 | 0 1 … size-1 | size-1 size-2 …, period 2·size.
        folded = index % (2 * size)
        return np.where(folded < size, folded, 2 * size - 1 - folded)
    return np.clip(index, 0, size - 1)


def _corners(rows, columns, interpolation):
    """[(row index, column index, weight or None)]: the pixels a point reads, and how much.
    Nearest reads the one rounded point (halves to even, as torch.round); bilinear its four
    neighbours, in Keras's order (r₀c₀, r₀c₁, r₁c₀, r₁c₁) with weights (1-a)(1-b), (1-a)b, …"""
    if interpolation == "nearest":
        return [(np.rint(rows).astype(np.int64), np.rint(columns).astype(np.int64), None)]
    top, left = np.floor(rows), np.floor(columns)
    a, b = rows - top, columns - left
    top, left = top.astype(np.int64), left.astype(np.int64)
    return [
        (top, left, (1 - a) * (1 - b)),
        (top, left + 1, (1 - a) * b),
        (top + 1, left, a * (1 - b)),
        (top + 1, left + 1, a * b),
    ]


def _gather_indices(row, column, n, height, width, fill_mode):
    """Flat pixel numbers (into images.reshape(-1, C)) of the indices, and for ``constant`` the
    mask of those inside the image (None otherwise)."""
    inside = None
    if fill_mode == "constant":
        inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
    row, column = fix_index(row, height, fill_mode), fix_index(column, width, fill_mode)
    starts = (np.arange(n, dtype=np.int64) * (height * width)).reshape(n, 1, 1)
    return starts + row * width + column, inside


def sample(images, rows, columns, interpolation="bilinear", fill_mode="constant", fill_value=0.0):
    """images (N, H, W, C) read at points (rows, columns), each (N, H', W') -> (N, H', W', C),
    as keras.ops.image.map_coordinates reads them:

        y[n, i, j] = Σ_corners w · (I[n, fix(r), fix(c)] if inside or fill_mode != "constant"
                                    else fill_value)

    with the corners and weights of ``interpolation`` (see ``_corners``) and fix() the index
    rule of ``fill_mode``. Constant fill is per corner: a point half outside mixes the image
    with fill_value. Bilinear with a zero fill is ``bilinear_sample``, the fast path."""
    if interpolation == "bilinear" and fill_mode == "constant" and fill_value == 0:
        return bilinear_sample(images, rows, columns)
    n, height, width, channels = images.shape
    pixels = images.reshape(-1, channels)
    dtype = images.dtype
    result = None
    for row, column, weight in _corners(rows, columns, interpolation):
        index, inside = _gather_indices(row, column, n, height, width, fill_mode)
        value = np.take(pixels, index, axis=0)
        if inside is not None:
            value = np.where(inside[..., None], value, dtype.type(fill_value))
        if weight is not None:
            value = value * weight[..., None].astype(dtype, copy=False)
        result = value if result is None else result + value
    return result


def sample_adjoint(dy, image_shape, rows, columns, interpolation="bilinear", fill_mode="constant"):
    """The transpose of ``sample`` for fixed points: dx (N, H, W, C) for dy (N, H', W', C),
    dx[pixel] = Σ over the (output, corner) pairs that read the pixel of w · dy[output]. A
    constant fill's value does not depend on x, so a corner outside passes nothing back."""
    n, height, width, channels = image_shape
    dx = np.zeros((n * height * width, channels), dtype=dy.dtype)
    flat_dy = dy.reshape(-1, channels)
    for row, column, weight in _corners(rows, columns, interpolation):
        index, inside = _gather_indices(row, column, n, height, width, fill_mode)
        contribution = flat_dy if weight is None else flat_dy * weight.reshape(-1, 1)
        index = index.reshape(-1)
        if inside is not None:
            keep = inside.reshape(-1)
            index, contribution = index[keep], contribution[keep]
        for channel in range(channels):  # bincount sums repeated indices, one channel at a time
            dx[:, channel] += np.bincount(
                index, contribution[:, channel], minlength=len(dx)
            ).astype(dy.dtype, copy=False)
    return dx.reshape(image_shape)


def resize_weights(size_in, size_out, dtype):
    """(low, high, w_low, w_high), each (size_out,): output cell o of a 1-D linear resize reads
    w_low[o]·u[low[o]] + w_high[o]·u[high[o]] (the formula of ``resize_matrix``), computed in
    ``dtype`` step by step as torch's CPU kernel writes them: scale = size_in / size_out,
    s = max(scale·(o + ½) - ½, 0), low = min(⌊s⌋, size_in - 1), λ = clip(s - low, 0, 1),
    high = min(low + 1, size_in - 1), w = (1 - λ, λ). (In float32 about one result in ten still
    differs from torch's in the last bit: its vectorized kernel rounds some steps otherwise.)"""
    dtype = np.dtype(dtype)
    scale = dtype.type(size_in) / dtype.type(size_out)
    cells = np.arange(size_out).astype(dtype) + dtype.type(0.5)
    source = np.maximum(scale * cells - dtype.type(0.5), dtype.type(0))
    low = np.minimum(source.astype(np.int64), size_in - 1)
    weight_high = np.clip(source - low.astype(dtype), 0, 1).astype(dtype)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, dtype.type(1) - weight_high, weight_high


def resize(images, height, width):
    """images (N, H, W, C) -> (N, height, width, C) by bilinear interpolation with half-pixel
    centres (``resize_weights``), columns first and then rows, as torch's
    interpolate(mode="bilinear", align_corners=False) sums them."""
    dtype = images.dtype
    low, high, w_low, w_high = resize_weights(images.shape[2], width, dtype)
    columns = images[:, :, low] * w_low[:, None] + images[:, :, high] * w_high[:, None]
    low, high, w_low, w_high = resize_weights(images.shape[1], height, dtype)
    return columns[:, low] * w_low[:, None, None] + columns[:, high] * w_high[:, None, None]


def resize_matrix(size_in, size_out):
    """The (size_out, size_in) matrix A of 1-D linear interpolation with half-pixel centres, as
    torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)
    computes it (Keras's image.resize on the torch backend):

        output cell o sits at  s = (o + ½) · size_in / size_out - ½  in input coordinates,
        clamped at 0;  i = ⌊s⌋,  λ = s - i,  A[o, i] += 1 - λ,  A[o, min(i + 1, size_in - 1)] += λ

    A resize of images is then y = A x Bᵀ along rows and columns, and its adjoint dx = Aᵀ dy B.
    """
    source = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    source = np.maximum(source, 0.0)
    low = np.minimum(np.floor(source).astype(int), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    weight_high = source - low
    matrix = np.zeros((size_out, size_in))
    cells = np.arange(size_out)
    np.add.at(matrix, (cells, low), 1 - weight_high)
    np.add.at(matrix, (cells, high), weight_high)
    return matrix
