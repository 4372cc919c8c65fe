"""The geometry of a transposed convolution (Keras's Conv2DTranspose rules), along one axis.

A transposed convolution scatters each of the n input cells through a kernel of extent
k_eff = d·(k - 1) + 1 placed every s cells, onto a "full" line of length

    full = (n - 1)·s + k_eff

and the output is a window of that line: ``crop_before`` cells dropped at the start and
``crop_after`` at the end (a negative ``crop_after`` appends that many zeros instead).
Keras's sizes, with the output padding op (``None``: Keras's default):

    valid:  op = max(k_eff, s) - k_eff if None;   out = (n - 1)·s + k_eff + op
            crop_before = 0,  crop_after = -op
    same:   pad = s + k_eff - 2 if op is None, else k_eff + (k_eff mod 2) - 2 + op
            before = min(ceil(pad / 2), k_eff - 1),   after = pad - before
            crop_before = k_eff - 1 - before,   crop_after = k_eff - 1 - after
            (so out = n·s with op None, else (n - 1)·s + (k_eff mod 2) + op)

Read as a Conv2D (the adjoint, see ``handnet.fast.conv_transpose``): a convolution of an input
of length ``out``, zero-padded by crop_before before and max(crop_after, 0) after, with
kernel k, stride s, dilation d, has exactly n outputs — the cells past ``full`` are read by
no window.
"""

import numpy as np

from ..errors import HandnetError, InvalidInputError


def transpose_geometry(size, window, stride, dilation=1, padding="valid", output_padding=None):
    """(out, crop_before, crop_after, full) of a transposed convolution along one axis."""
    extent = dilation * (window - 1) + 1
    full = (size - 1) * stride + extent
    if padding == "valid":
        extra = max(extent, stride) - extent if output_padding is None else output_padding
        before, after = extent - 1, extent - 1 + extra
    elif padding == "same":
        if output_padding is None:
            pad = stride + extent - 2
        else:
            pad = extent + extent % 2 - 2 + output_padding
        before = min(pad // 2 + pad % 2, extent - 1)
        after = pad - before
    else:
        raise HandnetError(f"padding must be one of ('valid', 'same'), got {padding!r}")
    crop_before, crop_after = extent - 1 - before, extent - 1 - after
    out = full - crop_before - crop_after
    if out < 1:
        raise InvalidInputError(
            f"a transposed convolution of {size} input cells (kernel {window}, stride {stride}, "
            f"dilation {dilation}, padding {padding!r}, output_padding {output_padding}) "
            f"would have {out} output cells"
        )
    return out, crop_before, crop_after, full


def transpose_geometry_2d(input_hw, window_hw, strides, dilation, padding, output_padding):
    """Both spatial axes: ((OH, OW), ((crop_top, crop_bottom), (crop_left, crop_right)),
    (full_h, full_w)); ``output_padding`` None or a pair."""
    pads = (None, None) if output_padding is None else output_padding
    rows, cols = (
        transpose_geometry(n, k, s, d, padding, op)
        for n, k, s, d, op in zip(input_hw, window_hw, strides, dilation, pads)
    )
    return (rows[0], cols[0]), (rows[1:3], cols[1:3]), (rows[3], cols[3])


def crop_full(full, crops, out_hw):
    """The output window (N, OH, OW, F) of the full line (N, full_h, full_w, F): rows
    crop_top … crop_top + OH - 1 (zeros past the end of ``full``), columns alike."""
    (top, _), (left, _) = crops
    rows = min(out_hw[0], full.shape[1] - top)
    cols = min(out_hw[1], full.shape[2] - left)
    out = np.zeros((full.shape[0], *out_hw, full.shape[3]), dtype=full.dtype)
    out[:, :rows, :cols] = full[:, top : top + rows, left : left + cols]
    return out


def uncrop(dy, crops, full_hw):
    """The adjoint of ``crop_full``: dy (N, OH, OW, F) put back on the full line (N, full_h,
    full_w, F) at its window, zeros elsewhere; the cells of dy past the full line are dropped
    (they came from no input)."""
    (top, _), (left, _) = crops
    rows = min(dy.shape[1], full_hw[0] - top)
    cols = min(dy.shape[2], full_hw[1] - left)
    dfull = np.zeros((dy.shape[0], *full_hw, dy.shape[3]), dtype=dy.dtype)
    dfull[:, top : top + rows, left : left + cols] = dy[:, :rows, :cols]
    return dfull
