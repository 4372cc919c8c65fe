"""The geometry of sliding windows along the spatial axes, shared by convolution and pooling.

Along one axis of length H, a window of size k with dilation d covers  k_eff = d·(k - 1) + 1
input cells and moves in steps of s (the stride):

    valid:  out = floor((H - k_eff) / s) + 1                          no padding
    same:   out = ceil(H / s),   pad = max((out - 1)·s + k_eff - H, 0),
            before = pad // 2,   after = pad - before

"same" puts the odd cell of padding after (bottom/right), exactly as TensorFlow and Keras do;
PyTorch's symmetric ``padding=`` cannot express that, which is why its oracle pads explicitly.
"""

import numpy as np

from ..errors import HandnetError, InvalidInputError

PADDINGS = ("valid", "same")
#: Kernel sizes, strides, dilation rates (and pool sizes) are at most this: far beyond any
#: image's, and small enough that a window's step in bytes stays an int64 (a file's forged
#: stride of 2**63 must be refused here, not overflow NumPy's strides when predicting).
MAX_WINDOW = 2**26


def window_geometry(size, window, stride, dilation=1, padding="valid"):
    """(out, pad_before, pad_after) of windows sliding along one axis of length ``size``."""
    extent = dilation * (window - 1) + 1
    if padding == "valid":
        if size < extent:
            raise InvalidInputError(
                f"a window of extent {extent} (size {window}, dilation {dilation}) does not fit in "
                f"an input of size {size} with padding='valid'"
            )
        return (size - extent) // stride + 1, 0, 0
    if padding == "same":
        out = -(-size // stride)
        pad = max((out - 1) * stride + extent - size, 0)
        return out, pad // 2, pad - pad // 2
    raise HandnetError(f"padding must be one of {PADDINGS}, got {padding!r}")


def window_geometry_2d(input_hw, window_hw, strides, dilation=(1, 1), padding="valid"):
    """Both spatial axes at once: ((OH, OW), ((top, bottom), (left, right)))."""
    rows = window_geometry(input_hw[0], window_hw[0], strides[0], dilation[0], padding)
    cols = window_geometry(input_hw[1], window_hw[1], strides[1], dilation[1], padding)
    return (rows[0], cols[0]), (rows[1:], cols[1:])


def pad_spatial(x, pads, value=0):
    """x (N, H, W, C) -> (N, top + H + bottom, left + W + right, C), new cells set to ``value``.

    ``pads`` = ((top, bottom), (left, right)).  Returns x itself when there is nothing to pad.
    """
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, h, w, c = x.shape
    out = np.full((n, top + h + bottom, left + w + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w] = x
    return out


def crop_spatial(x, pads):
    """The inverse view of ``pad_spatial``: x (N, Hp, Wp, C) without its padded border."""
    (top, bottom), (left, right) = pads
    return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def spatial_pair(value, name):
    """Keras's ``kernel_size=3`` or ``(3, 2)``: an int or a pair of ints, as two ints ≥ 1."""
    if _is_int(value):
        pair = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(pair) != 2 or not all(_is_int(v) and 1 <= v <= MAX_WINDOW for v in pair):
        raise HandnetError(
            f"{name} must be a positive int or a pair of positive ints (at most "
            f"{MAX_WINDOW:,}), got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def check_padding(padding):
    """Keras's padding argument, lower-cased ("valid" or "same")."""
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise HandnetError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return padding.lower()
