"""Any picture of a digit -> a 28×28 input that looks like MNIST.

A network trained on MNIST has only seen digits prepared one way, so a photo or a drawing must
be prepared the same way before it is shown one (LeCun, Cortes & Burges, the MNIST page):

    1. grayscale in [0, 1], white ink on black (MNIST's polarity)
    2. crop to the bounding box of the ink
    3. scale, keeping the aspect ratio, so the longer side is 20 pixels (with antialiasing)
    4. place in a 28×28 field so that the centre of mass of the ink sits at pixel (14, 14)

MNIST's own digits have their centre of mass at (14.0 ± 0.29, 14.0 ± 0.29) in (row, column)
index coordinates, the spread of an integer shift; here the shift is subpixel.
"""

import io
import struct
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import HandnetError, InvalidInputError

SIZE = 28
BOX = 20
CENTRE = 14.0
#: Larger files are refused: a 40-megapixel photo is already far more than a digit needs, and
#: a tiny compressed file can claim billions of pixels (a "decompression bomb").
MAX_PIXELS = 40_000_000
#: Larger image files are refused before they are read: 40 megapixels as uncompressed RGBA.
MAX_FILE_BYTES = 4 * MAX_PIXELS + 2**20
#: Images are first shrunk to this many pixels on the longer side: still 100× the final size.
WORKING_SIZE = 2048
#: Pixels brighter than this (after inverting and stretching to [0, 1]) count as ink when
#: finding the bounding box; fainter ones are paper texture, JPEG noise or antialiasing.
INK_THRESHOLD = 0.3
#: Below this contrast between the darkest and brightest pixel the image holds no digit.
MIN_CONTRAST = 0.1


#: What Pillow's decoders raise, beyond the errors it means, on headers it never checked: a
#: TIFF whose StripOffsets are doubles reached file.seek(3.0e2) (TypeError, Pillow 13; found by
#: tests/fuzz/test_fuzz_images.py). An image from a user is untrusted data: these are its
#: damage too, reported as such.
DECODER_SLIPS = (TypeError, IndexError, KeyError, struct.error, ArithmeticError)


def load_image(source, max_pixels=None):
    """Open ``source`` — a file path, or the bytes of an image file (an upload) — with Pillow and
    decode it fully: a PIL image, turned upright by its EXIF tag.

    The size in the header is checked before any pixel is decoded. Raises HandnetError naming
    the file ("the image" for bytes) when it is missing, not an image, truncated, or over
    ``max_pixels`` pixels (default MAX_PIXELS).
    """
    if isinstance(source, (bytes, bytearray)):
        path, opened = "the image", io.BytesIO(source)
    else:
        path = opened = Path(source)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; make that an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(_in_memory(opened, path)) as image:
                width, height = image.size
                if width * height > limit:
                    raise HandnetError(
                        f"{path}: image of {width}×{height} pixels is larger than the "
                        f"{limit / 1e6:.3g} megapixels handnet reads"
                    )
                image.load()
                return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise HandnetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HandnetError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise HandnetError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise HandnetError(
            f"{path}: claims more pixels than handnet reads ({limit / 1e6:.3g} megapixels)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, *DECODER_SLIPS) as error:
        # Pillow reports truncated or corrupt data as any of these, depending on the format.
        raise HandnetError(f"{path}: cannot decode the image ({error})") from None


def read_digit(source, max_pixels=None):
    """A picture file (path or bytes) -> float32 (28, 28) in [0, 1]: load_image, then to_mnist.

    The one preparation that ``handnet predict`` and ``handnet serve`` both use.
    """
    return to_mnist(load_image(source, max_pixels))


def _in_memory(source, path):
    """The file as a BytesIO, from which Pillow never gets more bytes than exist: reading a real
    file, some plugins first allocate what a chunk header declares (a PNG IDAT: up to 4 GiB)."""
    if isinstance(source, io.BytesIO):
        return source
    size = source.stat().st_size
    if size > MAX_FILE_BYTES:
        raise HandnetError(
            f"{path}: a file of {size:,} bytes, more than the {MAX_FILE_BYTES:,} handnet reads"
        )
    return io.BytesIO(source.read_bytes())


def to_mnist(image):
    """A PIL image or a 2-D array (a digit, light or dark ink) -> float32 (28, 28) in [0, 1].

    Arrays may be floats in [0, 1] or integers / floats in 0..255. Raises InvalidInputError
    when the picture holds no ink.
    """
    gray = _grayscale(image)
    ink = _ink_on_black(gray)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = _scale_and_centre(ink)
    return digit / digit.max()


def _grayscale(image):
    """float32 (H, W) in [0, 1], 0 = black, at most WORKING_SIZE pixels on the longer side."""
    if isinstance(image, Image.Image):
        image = _flatten_transparency(image)
        if image.mode.startswith("I"):
            # 16-bit grayscale (PNG "I;16"): Pillow's convert("L") would clip, not rescale.
            gray = np.asarray(image, dtype=np.float32) / 65535
        else:
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
    else:
        gray = _array_to_unit_range(image)
    if max(gray.shape) > WORKING_SIZE:
        factor = WORKING_SIZE / max(gray.shape)
        size = (max(round(gray.shape[1] * factor), 1), max(round(gray.shape[0] * factor), 1))
        gray = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))
    return gray


def _flatten_transparency(image):
    """Drop the alpha channel by compositing onto a background that contrasts with the ink.

    A canvas drawing is often dark strokes on a transparent background (whose hidden colour is
    arbitrary, often black), so the strokes' own brightness decides: dark ink goes on white.
    """
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
    if alpha.min() == 1:
        return rgba.convert("RGB")
    luminance = np.asarray(rgba.convert("L"), dtype=np.float32) / 255
    ink_brightness = float((luminance * alpha).sum() / max(alpha.sum(), 1e-6))
    background = (255, 255, 255, 255) if ink_brightness < 0.5 else (0, 0, 0, 255)
    return Image.alpha_composite(Image.new("RGBA", rgba.size, background), rgba).convert("RGB")


def _array_to_unit_range(image):
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or array.dtype.kind not in "biuf" or min(array.shape, default=0) == 0:
        raise InvalidInputError(
            "expected a 2-D grayscale image (H, W) of numbers, "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InvalidInputError("the image contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 255:
        raise InvalidInputError(f"pixel values must lie in [0, 1] or 0..255, got {low} to {high}")
    return array / 255 if high > 1 else array


def _ink_on_black(gray):
    """Invert dark-on-light pictures, then stretch so the background is 0 and the ink peaks at 1.

    The border decides the polarity: a digit fills the middle of its picture, so the border
    pixels are background; their median ignores a stroke that touches the edge.
    """
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    if background > 0.5:
        gray, background = 1 - gray, 1 - background
    peak = float(gray.max())
    if peak - background < MIN_CONTRAST:
        raise InvalidInputError(
            "no ink found: the image is blank (no stroke stands out from the background)"
        )
    return np.clip((gray - background) / (peak - background), 0, 1)


def _scale_and_centre(ink):
    """Resample the cropped ink into 28×28 in one step: longer side BOX pixels, centre of mass
    at CENTRE.

    Pillow's resize(box=...) maps a source rectangle onto the output with an antialiasing
    filter, and the rectangle may start at fractional coordinates, so scaling and the subpixel
    shift happen in one interpolation (no second blur). In Pillow's coordinates pixel i covers
    [i, i + 1), so index-space point c sits at c + 0.5; output pixel CENTRE must come from the
    source's centre of mass:  x0 + (CENTRE + 0.5) / s = c + 0.5,  s = BOX / longer side.
    """
    height, width = ink.shape
    scale = BOX / max(height, width)
    total = float(ink.sum())
    com_row = float(np.arange(height) @ ink.sum(axis=1)) / total
    com_col = float(np.arange(width) @ ink.sum(axis=0)) / total
    # Zero padding so the source rectangle (SIZE / scale wide) never leaves the image.
    pad = math.ceil((CENTRE + 1) / scale) + 1
    padded = np.pad(ink, pad)
    left = com_col + 0.5 + pad - (CENTRE + 0.5) / scale
    top = com_row + 0.5 + pad - (CENTRE + 0.5) / scale
    box = (left, top, left + SIZE / scale, top + SIZE / scale)
    resized = Image.fromarray(padded.astype(np.float32)).resize(
        (SIZE, SIZE), Image.Resampling.BILINEAR, box=box
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def prepare_images(images, input_shape):
    """uint8 images (N, 28, 28) in 0..255 -> float32 (N, *input_shape) in [0, 1].

    Dividing by 255 puts the pixels on the scale the initializers assume (inputs of order 1);
    the reshape gives each architecture its layout: (784,) for an MLP, (28, 28, 1) for a CNN.
    """
    images = np.asarray(images)
    if images.ndim < 2 or math.prod(images.shape[1:]) != math.prod(input_shape):
        raise InvalidInputError(
            f"images of shape {images.shape} cannot feed a model whose input is (None, "
            f"{', '.join(map(str, input_shape))})"
        )
    scale = np.float32(1 / 255) if images.dtype == np.uint8 else np.float32(1)
    return (images.astype(np.float32) * scale).reshape(len(images), *input_shape)
