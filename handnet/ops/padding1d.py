"""Windows along the one axis of a sequence x (N, L, C): ``padding`` adds "causal" to the 2-D
rules of ``handnet.ops.padding`` (valid, same), and 1-D arrays run through the 2-D paths as
images one row high.

    causal:  pad = d·(k - 1) cells before, none after, then "valid":  out = floor((L - 1) / s) + 1
             — output t reads x[t·s - d·(k - 1)] … x[t·s] only: nothing from the future.
"""

import numpy as np

from ..errors import HandnetError
from .padding import window_geometry

SEQUENCE_PADDINGS = ("valid", "same", "causal")


def sequence_geometry(size, window, stride, dilation=1, padding="valid"):
    """(out, pad_before, pad_after) of windows along a sequence of length ``size``."""
    if padding == "causal":
        before = dilation * (window - 1)
        out, _, _ = window_geometry(size + before, window, stride, dilation, "valid")
        return out, before, 0
    return window_geometry(size, window, stride, dilation, padding)


def check_sequence_padding(padding, causal=True):
    """Keras's padding argument for a 1-D layer, lower-cased; "causal" only where allowed."""
    allowed = SEQUENCE_PADDINGS if causal else SEQUENCE_PADDINGS[:2]
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise HandnetError(f"padding must be one of {allowed}, got {padding!r}")
    return padding.lower()


def as_image(x, window, dilation, padding):
    """(x4, padding_2d, before): the sequence x (N, L, C) as an image x4 (N, 1, L', C) one row
    high, for the 2-D paths.  A "causal" sequence is zero-padded here by ``before`` = d·(k - 1)
    cells on the left and then runs as "valid" (its dx is dx4[:, 0, before:])."""
    if padding != "causal":
        return x[:, None], padding, 0
    before = dilation * (window - 1)
    n, length, channels = x.shape
    padded = np.zeros((n, 1, before + length, channels), dtype=x.dtype)
    padded[:, 0, before:] = x
    return padded, "valid", before
