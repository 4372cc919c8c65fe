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
"""

import math

import numpy as np

from .errors import HandnetError, InvalidInputError
from .ops import warp
from .ops.warp import bilinear_sample


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
    matrices = warp.rotation_matrices(angles, np.asarray(scales).reshape(n), mirrors)
    shifts = np.asarray(shifts, dtype=np.float64).reshape(n, 2)
    offsets = warp.centered_offsets(matrices, height, width, shifts)
    source = warp.source_points(matrices, offsets, height, width, compute)
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
