"""Data augmentation: random shifts, rotations, scalings and elastic distortions of image batches.

A digit moved by two pixels, turned by 8° or drawn 10 % larger is still the same digit. Training
on such variants (fresh ones every epoch) teaches the network that these changes do not matter,
which it cannot learn from 60,000 fixed images alone. Labels are unchanged; evaluation sees the
original images (``Sequential.fit`` applies ``augment`` to the training batches only).

    augment = handnet.augment.RandomAffine(rotation=10, shift=0.1, scale=(0.9, 1.1))
    model.fit(x, y, augment=augment, seed=0)

Every image of a batch gets its own transform, yet no Python loop runs over the images: the
transforms are arrays of N angles, scales and shifts, every output pixel's source point is
computed for the whole batch at once, and bilinear interpolation reads the four neighbours of
all those points with four NumPy gathers.

The warps themselves — affine source points q = A p + b, sampling at fractional points with
Keras's fill modes, its transpose, resizing — are functions of their own here, which the
augmentation layers (handnet.layers.augmentation: RandomRotation, RandomZoom, …) share: a warp
goes backwards, from each output pixel to the source point it reads, so that no output pixel is
left unfilled. Sampling is linear in the image, y = S x, so its adjoint (the backward pass of a
warp held fixed) is the transpose: each output's gradient is added back, with the same weights,
into the pixels it read (``sample_adjoint``).
"""

import math

import numpy as np

from .errors import HandnetError, InvalidInputError


# -- warps: shared with the augmentation layers (handnet.layers.augmentation) -------------
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


def _reads(rows, columns, interpolation, image_shape, fill_mode):
    """[(flat pixel number, inside mask or None, weight or None)] for each pixel a point reads:
    nearest reads the one rounded point (halves to even, as torch.round); bilinear its four
    neighbours, in Keras's order (r₀c₀, r₀c₁, r₁c₀, r₁c₁) with weights (1-a)(1-b), (1-a)b, …
    Pixel numbers index images.reshape(-1, C); the mask (constant fill only) says which corners
    lie inside the image. Each axis's indices are folded once and combined per corner."""
    n, height, width, _ = image_shape
    index_type = np.int32 if n * height * width < 2**31 else np.intp  # int32 gathers faster
    if interpolation == "nearest":
        row_nodes = [(np.rint(rows).astype(index_type), None)]
        column_nodes = [(np.rint(columns).astype(index_type), None)]
    else:
        top, left = np.floor(rows), np.floor(columns)
        a, b = rows - top, columns - left
        top, left = top.astype(index_type), left.astype(index_type)
        row_nodes = [(top, 1 - a), (top + 1, a)]
        column_nodes = [(left, 1 - b), (left + 1, b)]
    starts = (np.arange(n, dtype=index_type) * (height * width)).reshape(n, 1, 1)
    constant = fill_mode == "constant"
    row_parts = [
        (fix_index(r, height, fill_mode) * width + starts,
         ((r >= 0) & (r < height)) if constant else None, w)
        for r, w in row_nodes
    ]
    column_parts = [
        (fix_index(c, width, fill_mode), ((c >= 0) & (c < width)) if constant else None, w)
        for c, w in column_nodes
    ]
    reads = []
    for (row, row_inside, row_weight), (column, column_inside, column_weight) in (
        (r, c) for r in row_parts for c in column_parts
    ):
        inside = None if row_inside is None else row_inside & column_inside
        weight = None if row_weight is None else row_weight * column_weight
        reads.append((row + column, inside, weight))
    return reads


def sample(images, rows, columns, interpolation="bilinear", fill_mode="constant", fill_value=0.0):
    """images (N, H, W, C) read at points (rows, columns), each (N, H', W') -> (N, H', W', C),
    as keras.ops.image.map_coordinates reads them:

        y[n, i, j] = Σ_corners w · (I[n, fix(r), fix(c)] if inside or fill_mode != "constant"
                                    else fill_value)

    with the corners and weights of ``interpolation`` (see ``_reads``) and fix() the index
    rule of ``fill_mode``. Constant fill is per corner: a point half outside mixes the image
    with fill_value. Bilinear with a zero fill is ``bilinear_sample``, the fast path."""
    if interpolation == "bilinear" and fill_mode == "constant" and fill_value == 0:
        return bilinear_sample(images, rows, columns)
    n, height, width, channels = images.shape
    pixels = images.reshape(-1, channels)
    dtype = images.dtype
    result = None
    for index, inside, weight in _reads(rows, columns, interpolation, images.shape, fill_mode):
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
    for index, inside, weight in _reads(rows, columns, interpolation, image_shape, fill_mode):
        if inside is not None:  # an outside corner's index is clipped: it passes back 0
            weight = inside if weight is None else weight * inside
        contribution = flat_dy if weight is None else flat_dy * weight.reshape(-1, 1)
        index = index.reshape(-1)
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


def resize_matrix(size_in, size_out, dtype=np.float64):
    """The (size_out, size_in) matrix A of 1-D linear interpolation with half-pixel centres, as
    torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)
    computes it (Keras's image.resize on the torch backend):

        output cell o sits at  s = (o + ½) · size_in / size_out - ½  in input coordinates,
        clamped at 0;  i = ⌊s⌋,  λ = s - i,  A[o, i] += 1 - λ,  A[o, min(i + 1, size_in - 1)] += λ

    its weights those of ``resize_weights`` in ``dtype`` (so A applies exactly what ``resize``
    does). A resize of images is then y = A x Bᵀ along rows and columns, its adjoint
    dx = Aᵀ dy B.
    """
    low, high, w_low, w_high = resize_weights(size_in, size_out, dtype)
    matrix = np.zeros((size_out, size_in), dtype=dtype)
    cells = np.arange(size_out)
    np.add.at(matrix, (cells, low), w_low)
    np.add.at(matrix, (cells, high), w_high)
    return matrix


# -- RandomAffine's transform ------------------------------------------------------------------
def affine_transform(images, angles, scales, shifts, displacements=None, mirrors=None):
    """Mirror image n left to right where ``mirrors[n]`` is true, rotate it by ``angles[n]``
    degrees (counter-clockwise) and scale it by ``scales[n]`` about its centre, then shift it by
    ``shifts[n]`` = (down, right) pixels.

    images (N, H, W) or (N, H, W, C); angles, scales (N,); shifts (N, 2); mirrors (N,) booleans
    or None -> same shape and dtype.

    Each output pixel p = (row, column) takes its value from the source point

        q = A (p - c - t) + c,    A = R(θ) / s,    R(θ) = [[cos θ,  sin θ],
                                                            [-sin θ, cos θ]]

    (the inverse of "rotate by θ, scale by s about the centre c = ((H-1)/2, (W-1)/2), then move
    by t"; rows grow downwards, so this R turns the picture counter-clockwise, as np.rot90).
    ``displacements`` (N, 2, H, W), if given, is added to q: a per-pixel (row, column) offset
    (the elastic distortion). The value at q is interpolated bilinearly, 0 outside the image.
    Going from each output pixel back to its source, rather than pushing input pixels forward,
    leaves no output pixel unfilled. A mirror M = diag(1, -1) about the centre comes first, so
    its inverse comes last: q = M A (p - c - t) + c, that is A with its column row negated.
    """
    images, restore = _as_channels_last(images)
    n, height, width, _ = images.shape
    compute = _compute_dtype(images.dtype)
    matrices = rotation_matrices(angles, np.asarray(scales).reshape(n), mirrors)
    shifts = np.asarray(shifts, dtype=np.float64).reshape(n, 2)
    offsets = centered_offsets(matrices, height, width, shifts)
    source = source_points(matrices, offsets, height, width, compute)
    if displacements is not None:
        source += np.asarray(displacements, dtype=compute).reshape(n, 2, height, width)
    warped = bilinear_sample(images.astype(compute, copy=False), source[:, 0], source[:, 1])
    return restore(warped)


def gaussian_smoothing_matrix(size, sigma, dtype=np.float64):
    """G (size, size) with (G u)[i] = Σ_k g(i - k) u[k]: a 1-D convolution with the normalized
    Gaussian g(d) ∝ exp(-d² / 2σ²), |d| ≤ ⌊4σ + ½⌋, and zeros beyond the ends (as
    scipy.ndimage.gaussian_filter with mode="constant"). As a matrix it smooths a whole batch
    of fields in one product: G_H @ u @ G_Wᵀ smooths u (N, H, W) along both axes."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    distance = np.arange(size)[:, None] - np.arange(size)[None, :]
    inside = np.abs(distance) <= radius
    return np.where(inside, taps[np.clip(distance + radius, 0, 2 * radius)], 0).astype(dtype)


def elastic_displacements(rng, n, height, width, alpha, sigma, dtype=np.float32):
    """Simard et al. (2003): random fields u ~ U(-1, 1) per pixel, smoothed by a Gaussian of
    width σ and scaled by α, one (row, column) pair per image -> (N, 2, H, W) in pixels.
    With a small σ neighbouring pixels move independently (noise); a large σ averages the
    field out to almost nothing; in between (σ ≈ 4–6, α ≈ 30) strokes bend as hands vary."""
    dtype = np.dtype(dtype)
    fields = rng.random((n, 2, height, width), dtype=dtype) * dtype.type(2) - dtype.type(1)
    along_rows = gaussian_smoothing_matrix(height, sigma, dtype)
    along_columns = gaussian_smoothing_matrix(width, sigma, dtype)
    return (along_rows @ fields @ along_columns.T) * dtype.type(alpha)


class RandomAffine:
    """Random shifts, rotations, scalings and (optionally) elastic distortions, drawn anew for
    each image of every batch.

    rotation   angle θ ~ U(-rotation, rotation) degrees
    shift      fraction of the height and width: t ~ U(-shift·H, shift·H) rows and
               U(-shift·W, shift·W) columns; a pair gives (height fraction, width fraction)
    scale      s ~ U(low, high) for scale=(low, high); > 1 enlarges
    elastic    (α, σ): add a smooth random displacement field (see ``elastic_displacements``);
               (34, 4) is Simard et al.'s setting for MNIST
    flip       probability of mirroring an image left to right: a shirt's mirror image is a
               shirt, a digit's is not (keep it 0 for digits)
    seed       a generator of its own; without it the generator passed to ``__call__`` (fit's,
               so that fit's seed fixes the whole run) is used
    image_shape  (H, W) or (H, W, C) of flat inputs (N, H·W·C), such as an MLP's rows of 784

    ``augment(x, rng)`` takes (N, H, W) or (N, H, W, C) (or flat rows with ``image_shape``) and
    returns an array of the same shape and dtype. None or 0 turns a part off.
    """

    def __init__(
        self,
        rotation=10.0,
        shift=0.1,
        scale=(0.9, 1.1),
        elastic=None,
        flip=0.0,
        seed=None,
        image_shape=None,
    ):
        self.rotation = _non_negative("rotation", rotation or 0.0)
        shift = (shift, shift) if shift is None or np.isscalar(shift) else tuple(shift)
        if len(shift) != 2:
            raise HandnetError(f"shift must be a fraction or a (height, width) pair, got {shift}")
        self.shift = tuple(_non_negative("shift", s or 0.0) for s in shift)
        if any(s >= 1 for s in self.shift):
            raise HandnetError(f"shift fractions must be below 1, got {self.shift}")
        self.scale = _range("scale", (1.0, 1.0) if scale is None else scale)
        self.elastic = None if elastic is None else _elastic(elastic)
        self.flip = _non_negative("flip", flip or 0.0)
        if self.flip > 1:
            raise HandnetError(f"flip is a probability between 0 and 1, got {self.flip}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)

    def __call__(self, x, rng=None):
        """A randomly transformed copy of the batch x; labels need no change."""
        rng = self.rng if rng is None or self.seed is not None else rng
        x = np.asarray(x)
        images = x.reshape(len(x), *self.image_shape) if self.image_shape else x
        _as_channels_last(images)  # refuses other shapes before drawing anything
        n, height, width = images.shape[:3]
        angles = rng.uniform(-self.rotation, self.rotation, n)
        scales = rng.uniform(*self.scale, n)
        shifts = rng.uniform(-1, 1, (n, 2)) * np.array(self.shift) * np.array([height, width])
        displacements = None
        if self.elastic is not None:
            compute = _compute_dtype(x.dtype)
            displacements = elastic_displacements(rng, n, height, width, *self.elastic, compute)
        # Drawn last and only when asked for: runs without flips keep their random streams.
        mirrors = rng.random(n) < self.flip if self.flip else None
        warped = affine_transform(images, angles, scales, shifts, displacements, mirrors)
        return warped.reshape(x.shape)

    def get_config(self):
        return {
            "rotation": self.rotation,
            "shift": list(self.shift),
            "scale": list(self.scale),
            "elastic": None if self.elastic is None else list(self.elastic),
            "flip": self.flip,
            "seed": self.seed,
            "image_shape": None if self.image_shape is None else list(self.image_shape),
        }

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"RandomAffine({args})"


def parse_settings(text):
    """RandomAffine arguments from command-line text: "on" (the defaults), "off" (None), or
    e.g. "rotation=15,shift=0.1,scale=0.9:1.1,elastic=34:4,flip=0.5" — parts not named keep their
    defaults, "none" turns one off, and a:b is a pair."""
    text = text.strip().lower()
    if text in ("on", ""):
        return {}
    if text in ("off", "none"):
        return None
    settings = {}
    for part in text.split(","):
        key, equals, value = (piece.strip() for piece in part.partition("="))
        if key not in ("rotation", "shift", "scale", "elastic", "flip") or not equals:
            raise HandnetError(
                f"augmentation settings are key=value pairs among rotation, shift, scale, "
                f"elastic and flip (e.g. rotation=10,scale=0.9:1.1), got {part!r}"
            )
        try:
            numbers = None if value == "none" else [float(v) for v in value.split(":")]
        except ValueError:
            message = f"augmentation {key}: expected a number or a:b, got {value!r}"
            raise HandnetError(message) from None
        settings[key] = numbers if numbers is None or len(numbers) > 1 else numbers[0]
    RandomAffine(**settings)  # refuses bad values now, not when training starts
    return settings


def _as_channels_last(images):
    """images (N, H, W) or (N, H, W, C) -> ((N, H, W, C), a function giving results the input's
    shape and dtype back)."""
    images = np.asarray(images)
    if images.ndim not in (3, 4) or images.dtype.kind not in "fiu":
        raise InvalidInputError(
            f"augmentation expects a batch of images (N, H, W) or (N, H, W, C) of numbers, got "
            f"shape {images.shape} and dtype {images.dtype}"
            + (" (flat rows need image_shape, e.g. (28, 28))" if images.ndim == 2 else "")
        )
    shape, dtype = images.shape, images.dtype

    def restore(result):
        result = result.reshape(shape)
        if dtype.kind in "iu":  # interpolated values between two integers: round them back
            limits = np.iinfo(dtype)
            result = np.clip(np.rint(result), limits.min, limits.max)
        return result.astype(dtype, copy=False)

    return images.reshape(*shape[:3], -1), restore


def _compute_dtype(dtype):
    """float64 images are warped in float64, all others in float32 (and cast back)."""
    return np.dtype(np.float64 if dtype == np.float64 else np.float32)


def _non_negative(name, value):
    value = float(value)
    if not value >= 0 or not math.isfinite(value):
        raise HandnetError(f"{name} must be a finite number ≥ 0, got {value}")
    return value


def _pair(name, pair, meaning):
    if np.ndim(pair) != 1 or len(pair) != 2:
        raise HandnetError(f"{name} must be a pair {meaning}, got {pair!r}")
    return float(pair[0]), float(pair[1])


def _range(name, pair):
    low, high = _pair(name, pair, "(low, high)")
    if not 0 < low <= high or not math.isfinite(high):
        raise HandnetError(f"{name} must be a range (low, high) with 0 < low ≤ high, got {pair}")
    return low, high


def _elastic(pair):
    alpha, sigma = _pair("elastic", pair, "(alpha, sigma)")
    if not alpha >= 0 or not sigma > 0:
        raise HandnetError(f"elastic must be (alpha ≥ 0, sigma > 0), got {pair}")
    return alpha, sigma
