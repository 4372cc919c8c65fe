"""Image augmentation layers (Keras's random preprocessing family), active only in training:

    RandomFlip(mode)                       mirrored left-right and/or upside down, p = ½ per image
    RandomRotation(factor)                 turned by θ ~ U(360°·lower, 360°·upper) about the centre
    RandomTranslation(height_f, width_f)   moved by U(lower, upper)·H rows and ·W columns
    RandomZoom(height_f, width_f)          scaled about the centre (> 0 zooms out, as Keras)
    RandomContrast(factor)                 (x - mean) · c + mean per image and channel, clipped
    RandomBrightness(factor, value_range)  x + δ per image, clipped to value_range
    RandomCrop(height, width)              a random (height, width) window, one per batch

Inference (``training=False``) is the identity, as in Keras, except RandomCrop, whose output
must have the shape it declares: it takes Keras's deterministic window (see RandomCrop).
Integer images (uint8) come out in the layer's float dtype, as Keras's do.

In training each image of a batch gets its own transform (RandomCrop: each batch, as Keras),
drawn from ``self.rng`` — seeded by ``seed`` or by ``fit(seed=...)`` — with Keras's
distributions but NumPy's draws: a seeded handnet run and a seeded Keras run transform their
images differently (docs/augmentation_layers.md). Given the same drawn parameters, the outputs
match Keras's (tests/keras/test_catalogue_augmentation_keras.py).

The geometric ones share their warps with handnet.augment's RandomAffine (its warp functions):
each output pixel p reads the source point q = A p + b of its image, bilinearly (or nearest)
interpolated, with Keras's fill modes outside the image.

Backward passes hold the drawn transform fixed. Each of these maps is linear in x (up to the
clip of contrast and brightness), so the backward pass is its exact transpose: a flip flips dy
back, a crop puts dy back in its window, a warp adds each output's gradient into the pixels it
read with the same weights (augment.sample_adjoint). They usually sit at a model's input,
where the engine asks for no ∂L/∂x; the backward passes are there for layers placed deeper.
"""

import math

import numpy as np

from .. import augment  # the warps, shared with RandomAffine
from ..errors import HandnetError
from .conv2d import require_images
from .base import BackwardStep, batch
from .noise import RandomLayer

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _factor_range(kind, name, factor, low, high, low_open=False, each_entry=True):
    """Keras's factor: f -> (-|f|, |f|) clipped below at ``low``, or a pair (a, b) -> sorted.
    A number must lie in [low, high] ((low, high] when ``low_open``); so must each entry of a
    pair (``each_entry``: RandomTranslation, RandomZoom), or else, as Keras's base layer checks
    a pair, only a <= high and b >= low (RandomRotation, RandomContrast, RandomBrightness)."""
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    message = f"{kind} {name} must be a number or a pair of numbers in {bounds}, got {factor!r}"
    if _number(factor):
        entries = [float(factor)]
    elif isinstance(factor, (list, tuple)) and len(factor) == 2 and all(map(_number, factor)):
        entries = [float(f) for f in factor]
    else:
        raise HandnetError(message)
    if not all(map(math.isfinite, entries)):
        raise HandnetError(message)
    if len(entries) == 2 and not each_entry:
        if entries[0] > high or entries[1] < low:
            raise HandnetError(message)
        return tuple(sorted(entries))
    for f in entries:
        if not ((f > low if low_open else f >= low) and f <= high):
            raise HandnetError(message)
    if len(entries) == 1:
        magnitude = abs(entries[0])
        return max(-magnitude, low), magnitude
    return tuple(sorted(entries))


def _choice(kind, name, value, choices):
    if value not in choices:
        raise HandnetError(f"{kind} {name} must be one of {', '.join(map(repr, choices))}, "
                           f"got {value!r}")
    return value


def _as_float(x, dtype):
    """Integer images (uint8 pixels) as the layer's float dtype, as Keras casts them to its
    compute dtype before anything else; float arrays are left as they are."""
    return x if x.dtype.kind == "f" else x.astype(dtype)


def _channels_last(kind, data_format):
    if data_format not in (None, "channels_last"):
        raise HandnetError(
            f"{kind}: handnet is channels-last; data_format must be None or 'channels_last', "
            f"got {data_format!r}"
        )
    return "channels_last"


class _ImageAugmentation(RandomLayer):
    """Images (N, H, W, C) in, the same shape out; ``draw`` the random parameters of a batch,
    ``transform`` with given parameters (the tests give Keras's), identity at inference.
    Subclasses write ``draw(n)``, ``apply(x, parameters)`` and ``transform_backward(dy)``."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.data_format = _channels_last(type(self).__name__, data_format)
        self._active = False

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        return tuple(input_shape)

    def prepare(self, x):
        """x checked against the layer's input shape and, if integer (uint8 pixels), in the
        layer's float dtype: what every forward pass starts with (and fused.WarpChain's)."""
        self.check_input(x)
        return _as_float(x, self.dtype)

    def forward(self, x, training=False):
        x = self.prepare(x)
        self._active = bool(training)
        if not training:
            return x
        return self.transform(x, self.draw(len(x)))

    def transform(self, x, parameters):
        """y for the given random parameters (those ``draw`` gives, or Keras's in the tests);
        ``backward`` then goes through this transform."""
        self._active = True
        return self.apply(x, parameters)

    def backward(self, dy):
        return self.transform_backward(dy) if self._active else dy

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class RandomFlip(_ImageAugmentation):
    """Training: for each image n, u_n ~ U[0, 1) and the image is mirrored where u_n ≤ ½:

        "horizontal"               y[n, i, j] = x[n, i, W-1-j]   (left to right)
        "vertical"                 y[n, i, j] = x[n, H-1-i, j]   (upside down)
        "horizontal_and_vertical"  both at once, with the one draw (Keras's rule), so an image is
                                   either turned by 180° or left alone
    Backward: a flip is its own transpose, dx = dy flipped where x was.  Inference: y = x.
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _choice("RandomFlip", "mode", mode, FLIP_MODES)

    def draw(self, n):
        return {"flips": self.rng.random(n) <= 0.5}

    def _flip(self, x, flips):
        y = x.copy()
        if "horizontal" in self.mode:
            y[flips] = y[flips, :, ::-1]
        if "vertical" in self.mode:
            y[flips] = y[flips, ::-1]
        return y

    def apply(self, x, parameters):
        self._flips = np.asarray(parameters["flips"], dtype=bool).reshape(len(x))
        return self._flip(x, self._flips)

    def transform_backward(self, dy):
        return self._flip(dy, self._flips)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (f"in training, each image flipped ({self.mode}) with probability ½",
                "y[n] = flip(x[n]) if u_n ≤ ½ else x[n]  (inference: y = x)")

    def explain_backward(self, input_shape):
        formula = (
            "training: dx[n] = flip(dy[n]) where x[n] was flipped, else dy[n];  inference: dx = dy"
        )
        return [BackwardStep("x", formula, batch(input_shape))]


class _Warp(_ImageAugmentation):
    """A random affine warp per image: output pixel p reads q = A_n p + b_n (augment's), with
    ``interpolation`` ("bilinear" or "nearest") and ``fill_mode`` outside the image
    ("reflect", "wrap", "constant" with ``fill_value``, "nearest"). Backward: the transpose of
    the sampling, dx[pixel] = Σ of w · dy over the outputs that read it (a constant fill passes
    nothing back)."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        kind = type(self).__name__
        self.fill_mode = _choice(kind, "fill_mode", fill_mode, augment.FILL_MODES)
        self.interpolation = _choice(kind, "interpolation", interpolation, augment.INTERPOLATIONS)
        if not _number(fill_value) or not math.isfinite(fill_value):
            raise HandnetError(f"{kind} fill_value must be a finite number, got {fill_value!r}")
        self.fill_value = float(fill_value)

    def apply(self, x, parameters):
        """parameters: {"matrices": A (N, 2, 2), "offsets": b (N, 2)} in (row, column) terms."""
        height, width = x.shape[1:3]
        source = augment.source_points(
            np.asarray(parameters["matrices"], dtype=np.float64),
            np.asarray(parameters["offsets"], dtype=np.float64),
            height, width, x.dtype,
        )
        self._source, self._image_shape = source, x.shape
        return augment.sample(x, source[:, 0], source[:, 1], self.interpolation, self.fill_mode,
                           self.fill_value)

    def transform_backward(self, dy):
        source = self._source
        return augment.sample_adjoint(dy, self._image_shape, source[:, 0], source[:, 1],
                                   self.interpolation, self.fill_mode)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}

    def explain_backward(self, input_shape):
        """The same for every warp: the transpose of its sampling (augment.sample_adjoint)."""
        formula = (
            f"training: dx[n](q) = Σ_(p reads q) w_(p,q) · dy[n](p)   ({self.interpolation} "
            f"weights w of the forward's warp; {self.fill_mode} fill"
            + (", a constant passes nothing back" if self.fill_mode == "constant" else "")
            + ");  inference: dx = dy"
        )
        return [BackwardStep("x", formula, batch(input_shape))]


class RandomRotation(_Warp):
    """Training: θ_n ~ U(360°·lower, 360°·upper) per image, (lower, upper) from ``factor`` (a
    fraction of a full turn: 0.1 -> ±36°; a pair gives both ends), and image n turned
    counter-clockwise by θ_n about its centre c = ((H-1)/2, (W-1)/2):

        q = R(θ) (p - c) + c,     R(θ) = [[cos θ, sin θ], [-sin θ, cos θ]]   (row, column)

    Keras's _compute_affine_matrix, and handnet.augment's RandomAffine at scale 1 (the same
    augment.rotation_matrices).  Inference: y = x.
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _factor_range(
            "RandomRotation", "factor", factor, -1.0, 1.0, each_entry=False
        )

    def draw(self, n):
        angles = self.rng.uniform(self.factor[0] * 360, self.factor[1] * 360, n)
        return self.parameters(angles)

    def parameters(self, angles):
        """{"matrices", "offsets"} of rotations by ``angles`` (N,) degrees."""
        height, width = self.input_shape[:2]
        matrices = augment.rotation_matrices(angles, np.ones(len(angles)))
        return {"matrices": matrices, "offsets": augment.centered_offsets(matrices, height, width)}

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        low, high = (360 * f for f in self.factor)
        return (f"in training, each image rotated by U({low:g}°, {high:g}°), {self.fill_mode} fill",
                "y[n](p) = x[n](R(θ_n)(p - c) + c)  (inference: y = x)")


class RandomTranslation(_Warp):
    """Training: per image, a shift of t_n = (u·H, v·W) pixels (down, right) with
    u ~ U(height range), v ~ U(width range) (each ``factor`` a fraction f -> (-|f|, |f|), or a
    pair):  q = p - t_n.  Inference: y = x.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = _factor_range("RandomTranslation", "height_factor", height_factor,
                                           -1.0, 1.0)
        self.width_factor = _factor_range("RandomTranslation", "width_factor", width_factor,
                                          -1.0, 1.0)

    def draw(self, n):
        height, width = self.input_shape[:2]
        down = self.rng.uniform(*self.height_factor, n) * height  # Keras draws rows first
        right = self.rng.uniform(*self.width_factor, n) * width
        return self.parameters(np.stack([down, right], axis=1))

    def parameters(self, shifts):
        """{"matrices", "offsets"} of shifts (N, 2) = (down, right) pixels."""
        shifts = np.asarray(shifts, dtype=np.float64)
        return {"matrices": np.broadcast_to(np.eye(2), (len(shifts), 2, 2)), "offsets": -shifts}

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (f"in training, each image shifted by fractions {self.height_factor} of its "
                f"height and {self.width_factor} of its width, {self.fill_mode} fill",
                "y[n](p) = x[n](p - t_n)  (inference: y = x)")


class RandomZoom(_Warp):
    """Training: per image, z_h ~ U(1 + lower_h, 1 + upper_h) and z_w likewise (z_w = z_h when
    ``width_factor`` is None, keeping the aspect ratio), and

        q = diag(z_h, z_w) (p - c) + c,     c = ((H-1)/2, (W-1)/2)

    so z > 1 reads a larger area: a positive factor zooms *out* (Keras's convention), a
    negative one in. Factors are fractions in (-1, 1].  Inference: y = x.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = _factor_range("RandomZoom", "height_factor", height_factor, -1.0,
                                           1.0, low_open=True)
        self.width_factor = None if width_factor is None else _factor_range(
            "RandomZoom", "width_factor", width_factor, -1.0, 1.0, low_open=True
        )

    def draw(self, n):
        rows = self.rng.uniform(1 + self.height_factor[0], 1 + self.height_factor[1], n)
        columns = rows
        if self.width_factor is not None:
            columns = self.rng.uniform(1 + self.width_factor[0], 1 + self.width_factor[1], n)
        return self.parameters(np.stack([rows, columns], axis=1))

    def parameters(self, zooms):
        """{"matrices", "offsets"} of zooms (N, 2) = (z_h, z_w)."""
        height, width = self.input_shape[:2]
        zooms = np.asarray(zooms, dtype=np.float64)
        matrices = zooms[:, :, None] * np.eye(2)  # diag(z_h, z_w)
        return {"matrices": matrices, "offsets": augment.centered_offsets(matrices, height, width)}

    def get_config(self):
        width = None if self.width_factor is None else list(self.width_factor)
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": width}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (f"in training, each image zoomed (height factor {self.height_factor}, > 0 out), "
                f"{self.fill_mode} fill", "y[n](p) = x[n](Z_n (p - c) + c)  (inference: y = x)")


def _value_range(kind, value_range):
    if (not isinstance(value_range, (list, tuple)) or len(value_range) != 2
            or not all(_number(v) and math.isfinite(v) for v in value_range)):
        raise HandnetError(f"{kind} value_range must be a pair (low, high) of numbers, got "
                           f"{value_range!r}")
    return tuple(float(v) for v in value_range)


class RandomContrast(_ImageAugmentation):
    """Training: per image n, a contrast c_n ~ U(1 - lower, 1 + upper) and, with μ[n, c] the
    mean of channel c over the image's H × W pixels,

        z = (x - μ) · c_n + μ,      y = clip(z, value_range)

    Keras reads ``factor`` within [0, 1]: a number f gives (lower, upper) = (0, f) — so Keras 3
    only ever *raises* contrast from a single number — and a pair (a, b) gives (a, b).
    Backward: with m = [low ≤ z ≤ high] and g = dy · m,
        dx = c_n · g + (1 - c_n) · mean_{H×W}(g)       (μ's adjoint spreads a mean evenly)
    Inference: y = x.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_range(
            "RandomContrast", "factor", factor, 0.0, 1.0, each_entry=False
        )
        self.value_range = _value_range("RandomContrast", value_range)

    def draw(self, n):
        return {"contrast": self.rng.uniform(1 - self.factor[0], 1 + self.factor[1], n)}

    def apply(self, x, parameters):
        contrast = np.asarray(parameters["contrast"]).reshape(-1, 1, 1, 1).astype(x.dtype)
        mean = x.mean(axis=(1, 2), keepdims=True)
        z = (x - mean) * contrast + mean
        low, high = self.value_range
        self._contrast, self._inside = contrast, (z >= low) & (z <= high)
        return np.clip(z, low, high)

    def transform_backward(self, dy):
        g = dy * self._inside
        return g * self._contrast + g.mean(axis=(1, 2), keepdims=True) * (1 - self._contrast)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        low, high = 1 - self.factor[0], 1 + self.factor[1]
        return (f"in training, each image's contrast scaled by U({low:g}, {high:g}), clipped to "
                f"{self.value_range}", "y = clip((x - μ) · c + μ)  (inference: y = x)")

    def explain_backward(self, input_shape):
        low, high = self.value_range
        formula = (
            f"training: g = dy · [{low:g} ≤ z ≤ {high:g}],  dx = c_n · g + (1 - c_n) · "
            "mean_(i,j)(g)   (μ spreads its gradient evenly);  inference: dx = dy"
        )
        return [BackwardStep("x", formula, batch(input_shape))]


class RandomBrightness(_ImageAugmentation):
    """Training: per image n, δ_n = u · (high - low) with u ~ U(lower, upper) from ``factor``
    (f -> (-|f|, |f|), or a pair, within [-1, 1]) and (low, high) = ``value_range``:

        y = clip(x + δ_n, low, high)         dx = dy · [low ≤ x + δ_n ≤ high]

    Inference: y = x.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_range(
            "RandomBrightness", "factor", factor, -1.0, 1.0, each_entry=False
        )
        self.value_range = tuple(sorted(_value_range("RandomBrightness", value_range)))

    def draw(self, n):
        low, high = self.value_range
        return {"delta": self.rng.uniform(*self.factor, n) * (high - low)}

    def apply(self, x, parameters):
        delta = np.asarray(parameters["delta"]).reshape(-1, 1, 1, 1).astype(x.dtype)
        z = x + delta
        low, high = self.value_range
        self._inside = (z >= low) & (z <= high)
        return np.clip(z, low, high)

    def transform_backward(self, dy):
        return dy * self._inside

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        low, high = self.value_range
        return (f"in training, each image brightened by U{self.factor} × {high - low:g}, clipped "
                f"to {self.value_range}", "y = clip(x + δ_n)  (inference: y = x)")

    def explain_backward(self, input_shape):
        low, high = self.value_range
        formula = f"training: dx = dy · [{low:g} ≤ x + δ_n ≤ {high:g}];  inference: dx = dy"
        return [BackwardStep("x", formula, batch(input_shape))]


class RandomCrop(_ImageAugmentation):
    """(N, H, W, C) -> (N, height, width, C).

    Training, when the images are larger than the target both ways (H > height, W > width):
    one window per batch (Keras's rule: every image of a batch is cut at the same place; a
    batch split across threads by handnet.parallel draws one per part), its
    corner (i₀, j₀) drawn uniformly from [0, H - height] × [0, W - width]:

        y = x[:, i₀ : i₀ + height, j₀ : j₀ + width]         dx = dy put back in the window

    Otherwise (training on smaller images, and at inference) Keras's deterministic window: the
    largest window of the target's aspect ratio, centred, gives the corner

        h = min(H, ⌊W·height/width⌋),  w = min(W, ⌊H·width/height⌋)  (each at least 1)
        i₀ = ⌊(H - h)/2⌋,  j₀ = ⌊(W - w)/2⌋

    and the slice x[:, i₀ : i₀ + height, j₀ : j₀ + width] (cut at the image's edge) is resized
    to (height, width) bilinearly (augment.resize, torch's arithmetic: y = A s Bᵀ with A, B
    from augment.resize_matrix) when it came out smaller; backward: the slice's gradient
    Aᵀ dy B, put back in the window.

    Keras 3.x applies that window in training only: at inference its RandomCrop returns the
    input unchanged, larger than the shape it declares (its docstring promises the centred
    resize). handnet keeps its declared shape and applies the deterministic window at
    inference too, so a model's layers after it see (height, width) in both modes. Note that
    for images larger than the target this window starts at the aspect window's corner, not at
    the image's centre (Keras's arithmetic, kept as it is).
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise HandnetError(f"RandomCrop {name} must be an int >= 1, got {value!r}")
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        return (self.height, self.width, input_shape[2])

    def _random(self, height, width):
        return height > self.height and width > self.width

    def centred_corner(self, height, width):
        """Keras's deterministic (i₀, j₀) for images of height × width."""
        crop_height = max(min(height, int(float(width * self.height) / self.width)), 1)
        crop_width = max(min(width, int(float(height * self.width) / self.height)), 1)
        return int(float(height - crop_height) / 2), int(float(width - crop_width) / 2)

    def forward(self, x, training=False):
        x = self.prepare(x)
        if training and self._random(*x.shape[1:3]):
            return self.transform(x, self.draw(len(x)))
        return self.transform(x, {"corner": self.centred_corner(*x.shape[1:3])})

    def draw(self, n):
        height, width = self.input_shape[:2]
        if not self._random(height, width):
            return {"corner": self.centred_corner(height, width)}
        return {"corner": (int(self.rng.integers(0, height - self.height + 1)),
                           int(self.rng.integers(0, width - self.width + 1)))}

    def apply(self, x, parameters):
        top, left = (int(v) for v in parameters["corner"])
        window = x[:, top : top + self.height, left : left + self.width]
        self._window = (top, left, window.shape[1], window.shape[2])
        if window.shape[1:3] == (self.height, self.width):
            return window.copy()
        return augment.resize(window, self.height, self.width)

    def _matrices(self, slice_height, slice_width, dtype):
        rows = augment.resize_matrix(slice_height, self.height).astype(dtype)
        columns = augment.resize_matrix(slice_width, self.width).astype(dtype)
        return rows, columns

    def transform_backward(self, dy):
        top, left, slice_height, slice_width = self._window
        if (slice_height, slice_width) == (self.height, self.width):
            window = dy
        else:
            rows, columns = self._matrices(slice_height, slice_width, dy.dtype)
            along_rows = np.einsum("ip,nijc->npjc", rows, dy)
            window = np.einsum("jq,npjc->npqc", columns, along_rows)
        dx = np.zeros((len(dy), *self.input_shape), dtype=dy.dtype)
        dx[:, top : top + slice_height, left : left + slice_width] = window
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        return (f"a {self.height}×{self.width} window, random in training (one per batch), "
                "Keras's deterministic one at inference",
                f"y = x[:, i₀ : i₀ + {self.height}, j₀ : j₀ + {self.width}]")

    def explain_backward(self, input_shape):
        formula = (
            f"dx = zeros (N, {', '.join(map(str, input_shape))}) with dy put back in the "
            "window x[:, i₀ : i₀ + h, j₀ : j₀ + w]   (a resized slice: Aᵀ dy B there)"
        )
        return [BackwardStep("x", formula, batch(input_shape))]
