"""Fuzz the predict path for pictures: load_image then to_mnist. Any bytes give a float32 28×28
image in [0, 1], or a HandnetError naming the file (or, for a picture with no ink, saying so)."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from handnet.errors import HandnetError, InvalidInputError
from handnet.preprocess import load_image, to_mnist

from .harness import fuzz_settings, memory_guard, mutated, outcome, time_limit, write_case

# Pillow warns about the damage it skips over in TIFF tags and EXIF; the property is what counts.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def digit(mode):
    image = Image.new("L", (40, 32), 230)
    ImageDraw.Draw(image).line([(10, 6), (30, 6), (18, 28)], fill=20, width=4)
    return image.convert(mode)


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


SEEDS = {
    "png": encoded(digit("L"), "PNG"),
    "rgba.png": encoded(digit("RGBA"), "PNG"),
    "16bit.png": encoded(digit("I;16"), "PNG"),
    "jpg": encoded(digit("RGB"), "JPEG"),
    "gif": encoded(digit("P"), "GIF", transparency=0),
    "bmp": encoded(digit("RGB"), "BMP"),
    "tiff": encoded(digit("F"), "TIFF"),
    "webp": encoded(digit("RGB"), "WEBP"),
}


def read_digit(path):
    """What ``handnet predict`` does with a picture file, up to the model."""
    try:
        return to_mnist(load_image(path))
    except InvalidInputError as error:  # a picture without ink is the user's, not the file's
        raise HandnetError(f"{path}: {error}") from None


def check(path):
    pixels = outcome(read_digit, path)
    if pixels is not None:
        assert pixels.shape == (28, 28) and pixels.dtype == np.float32
        assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1


@fuzz_settings(200)
@given(
    st.binary(max_size=512),
    st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM"]),
)
def test_random_bytes(data, magic):
    check(write_case(magic + data, "random.img"))


@fuzz_settings(600)
@given(st.sampled_from(sorted(SEEDS)).flatmap(lambda kind: mutated(SEEDS[kind], header_bytes=48)))
def test_mutated_images(data):
    check(write_case(data, "mutated.img"))


def png_declaring(width, height, bit_depth=8, colour_type=0):
    """A PNG whose header declares width × height, followed by a tiny (wrong-sized) image."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff" * 8))
        + chunk(b"IEND", b"")
    )


@fuzz_settings(200)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**31 - 1),
    st.sampled_from([1, 2, 4, 8, 16]),
    st.sampled_from([0, 2, 3, 4, 6]),
)
def test_huge_declared_dimensions(width, height, bit_depth, colour_type):
    check(write_case(png_declaring(width, height, bit_depth, colour_type), "declared.png"))


@fuzz_settings(300)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
        elements={"allow_nan": True, "allow_infinity": True},
    )
)
def test_arrays_handed_to_to_mnist(array):
    """to_mnist on an array: a valid digit or an InvalidInputError, never a raw numpy error."""
    with memory_guard(), time_limit():
        try:
            pixels = to_mnist(array)
        except InvalidInputError:
            return
    assert pixels.shape == (28, 28) and pixels.dtype == np.float32
    assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1
