"""preprocess: any picture of a digit -> an MNIST-like 28×28 input, and safe image loading."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from handnet import preprocess
from handnet.errors import HandnetError, InvalidInputError
from handnet.preprocess import load_image, to_mnist


def centre_of_mass(image):
    """(row, column) of the intensity-weighted mean pixel index."""
    total = image.sum()
    rows, cols = np.arange(image.shape[0]), np.arange(image.shape[1])
    return image.sum(axis=1) @ rows / total, image.sum(axis=0) @ cols / total


def ink_box(image, threshold=0.3):
    """(height, width) of the bounding box of the pixels above ``threshold``."""
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def drawn_seven(size=280, offset=(0, 0), width=None):
    """A white "7" on black, drawn at any size (a stand-in for a digit without MNIST)."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    s = size / 28
    dx, dy = offset
    points = [(7 * s + dx, 6 * s + dy), (20 * s + dx, 6 * s + dy), (12 * s + dx, 23 * s + dy)]
    draw.line(points, fill=255, width=width or max(int(2.5 * s), 1), joint="curve")
    return image


def correlation(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# -- the output's form ----------------------------------------------------------------------


def test_output_is_float32_28x28_in_unit_range():
    digit = to_mnist(drawn_seven())
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert digit.min() >= 0 and digit.max() == pytest.approx(1)


@pytest.mark.parametrize("offset", [(0, 0), (-60, -50), (70, 40)])
def test_centre_of_mass_lands_on_14_14(offset):
    """Wherever the digit sits in the picture, its centre of mass ends at (14, 14), as in MNIST."""
    row, col = centre_of_mass(to_mnist(drawn_seven(offset=offset)))
    assert abs(row - 14) < 0.5 and abs(col - 14) < 0.5
    assert abs(row - 14) < 0.1 and abs(col - 14) < 0.1  # the shift is subpixel


def test_longer_side_is_scaled_to_20_pixels_keeping_the_aspect_ratio():
    bar = np.zeros((300, 300), dtype=np.uint8)
    bar[50:250, 130:170] = 255  # 200 tall, 40 wide: a "1"
    height, width = ink_box(to_mnist(bar))
    assert height in (20, 21)  # the antialiased edge may add a row
    assert 4 <= width <= 5  # 200:40 = 20:4
    wide = to_mnist(bar.T)
    assert ink_box(wide) == (width, height)


def test_polarity_dark_on_light_and_light_on_dark_give_the_same_input():
    light_ink = drawn_seven()
    dark_ink = Image.eval(light_ink, lambda value: 255 - value)
    np.testing.assert_allclose(to_mnist(dark_ink), to_mnist(light_ink), atol=1e-5)


def test_grey_paper_and_grey_ink_are_stretched_to_black_and_white():
    photo = np.asarray(
        Image.eval(drawn_seven(), lambda value: 200 - value * 120 // 255)
    )  # ink 80, paper 200
    np.testing.assert_allclose(to_mnist(photo), to_mnist(drawn_seven()), atol=0.02)


def test_transparent_canvas_drawing():
    """Dark strokes on a transparent background (what a web canvas exports) read as ink."""
    alpha = drawn_seven()
    canvas = Image.new("RGBA", alpha.size, (0, 0, 0, 0))
    canvas.putalpha(alpha)  # black strokes, transparent elsewhere (the hidden colour is black too)
    np.testing.assert_allclose(to_mnist(canvas), to_mnist(drawn_seven()), atol=1e-3)


def test_accepts_rgb_16_bit_and_arrays():
    reference = to_mnist(drawn_seven())
    np.testing.assert_allclose(to_mnist(drawn_seven().convert("RGB")), reference, atol=1e-5)
    sixteen_bit = Image.fromarray(np.asarray(drawn_seven(), dtype=np.uint16) * 257)
    np.testing.assert_allclose(to_mnist(sixteen_bit), reference, atol=1e-3)
    as_floats = np.asarray(drawn_seven(), dtype=np.float64) / 255
    np.testing.assert_allclose(to_mnist(as_floats), reference, atol=1e-5)


def test_round_trip_of_a_centred_28x28_digit():
    """A digit already prepared the MNIST way comes back (almost) unchanged after upscaling to
    280×280 and inverting: the steps undo each other."""
    original = to_mnist(drawn_seven())
    big = Image.fromarray((255 - original * 255).astype(np.uint8)).resize(
        (280, 280), Image.Resampling.BICUBIC
    )
    assert correlation(to_mnist(big), original) > 0.97


@pytest.mark.mnist
def test_round_trip_of_mnist_test_digits():
    """Real MNIST digits, upscaled to 280×280 and turned dark-on-light, come back close to the
    originals. (MNIST shifted its digits by whole pixels, so they sit up to half a pixel off
    the exact centre of mass that to_mnist produces: correlations stay a little below 1.)"""
    from handnet.datasets import mnist

    _, (x_test, _) = mnist.load_data(verbose=False)
    correlations = []
    for original in x_test[:20]:
        big = Image.fromarray(255 - original).resize((280, 280), Image.Resampling.BICUBIC)
        correlations.append(correlation(to_mnist(big), original / 255))
    assert min(correlations) > 0.88
    assert np.mean(correlations) > 0.93


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blank", [np.zeros((50, 50)), np.full((50, 50), 255, np.uint8), np.full((9, 9), 0.5)]
)
def test_blank_image_says_no_ink(blank):
    with pytest.raises(InvalidInputError, match="no ink found"):
        to_mnist(blank)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 3)), "2-D grayscale"),
        (np.array(["a", "b"]), "2-D grayscale"),
        (np.full((4, 4), 300.0), "0..255"),
        (np.full((4, 4), np.nan), "NaN"),
    ],
)
def test_bad_arrays_are_refused(bad, message):
    with pytest.raises(InvalidInputError, match=message):
        to_mnist(bad)


def test_load_image_reads_a_png_upright(tmp_path):
    path = tmp_path / "seven.png"
    drawn_seven().save(path)
    image = load_image(path)
    assert image.size == (280, 280)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(drawn_seven()))


def test_load_image_missing_file(tmp_path):
    with pytest.raises(HandnetError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png")


def test_load_image_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(HandnetError, match="notes.png: not an image"):
        load_image(path)


def test_load_image_truncated_file(tmp_path):
    path = tmp_path / "cut.png"
    drawn_seven().save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(HandnetError, match="cut.png"):
        load_image(path)


def test_load_image_refuses_too_many_pixels(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (30, 20)).save(path)
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 599)
    with pytest.raises(HandnetError, match="big.png: image of 30×20 pixels is larger"):
        load_image(path)


def test_load_image_turns_a_decompression_bomb_into_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (30, 20)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses over twice this
    with pytest.raises(HandnetError, match="bomb.png: claims more pixels"):
        load_image(path)
