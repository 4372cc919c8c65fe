"""Pooling, vectorized (the layers' fast path); ``handnet.ops.pool_spec`` is the specification.

x (N, H, W, C) -> y (N, OH, OW, C).  Both poolings are separable, so each runs as two 1-D
passes — along the columns (axis 2), then along the rows (axis 1):

    max:      a[n, h, j, c] = max_v x[n, h, j·s_w + v, c]
              y[n, i, j, c] = max_u a[n, i·s_h + u, j, c]
    average:  the same with sums, then y /= (number of real cells in the window)

A 1-D pass over a window of k taps is k strided slices of the input, one per tap, so the
work is O(k) whole-array operations whatever the stride, and overlapping windows need nothing
special.  Columns go first for max pooling because of ties: the column pass keeps the
leftmost maximum of each window row and the row pass the topmost of those, which is the first
maximum in row-major window order — the cell PyTorch's max_pool2d sends the gradient to.

"same" padding: max pooling pads with -inf (a padded cell never wins); average pooling pads
with zeros and divides by the count of real cells, as Keras does.  A window always holds at
least one real cell (see ``handnet.ops.padding``), so no count is 0.
"""

import numpy as np

from ..ops.padding import crop_spatial, pad_spatial, window_geometry_2d


def _taps(axis, window, stride, out):
    """Index tuples for axis 1 or 2 of an (N, H, W, C) array: tap t selects positions
    t, t + s, …, t + (out - 1)·s, the t-th cell of each of the ``out`` windows."""
    for tap in range(window):
        index = [slice(None)] * 4
        index[axis] = slice(tap, tap + (out - 1) * stride + 1, stride)
        yield tuple(index)


def _gradient_along(dwindows, axis, window, stride, size):
    """The array a 1-D backward pass fills: of length ``size`` on ``axis``, zeros except where
    the windows tile the axis exactly (then every cell gets written and zeroing is wasted)."""
    shape = list(dwindows.shape)
    shape[axis] = size
    tiles = stride == window and dwindows.shape[axis] * stride == size
    return (np.empty if tiles else np.zeros)(shape, dtype=dwindows.dtype)


def first_max(taps, reuse_winner=None, out=None):
    """(best, winner) over a sequence of equally shaped arrays: best = their elementwise max (a
    fresh array, or ``out``), winner = the index of the first array that holds it (earliest on
    ties), written into ``reuse_winner`` when that has its shape and dtype (a fresh array of
    this size page-faults on every call: first_max took 1.05 against 0.58 ms a step of the
    fast net, glibc's malloc left to return memory or not)."""
    dtype = np.min_scalar_type(len(taps) - 1)
    winner = reuse_winner
    if winner is None or winner.shape != taps[0].shape or winner.dtype != dtype:
        winner = np.empty(taps[0].shape, dtype=dtype)
    if len(taps) == 1:
        winner[...] = 0
        if out is None:
            return taps[0].copy(), winner
        np.copyto(out, taps[0])
        return out, winner
    greater = np.greater(taps[1], taps[0])  # strict: on a tie the earlier tap keeps the maximum
    best = np.maximum(taps[0], taps[1], out=out)
    np.copyto(winner, greater)
    scaled = np.empty_like(winner) if len(taps) > 2 else None
    for tap in range(2, len(taps)):
        np.greater(taps[tap], best, out=greater)
        np.maximum(best, taps[tap], out=best)
        # Taps come in order, so the winner is the last tap that beat all before it.  (Masked
        # writes — np.copyto(where=), np.where — are several times slower than this arithmetic.)
        np.multiply(greater, dtype.type(tap), out=scaled)
        np.maximum(winner, scaled, out=winner)
    return best, winner


def _max_along(x, axis, window, stride, out):
    """(best, winner): the max over each 1-D window and the tap that holds it, the earliest
    tap on ties."""
    return first_max([x[index] for index in _taps(axis, window, stride, out)])


def _max_along_backward(dbest, winner, axis, window, stride, size):
    """Send each window's gradient to its winning tap; ``size``: the input's length on ``axis``."""
    dx = _gradient_along(dbest, axis, window, stride, size)
    for tap, index in enumerate(_taps(axis, window, stride, dbest.shape[axis])):
        if stride < window:  # overlapping windows: a cell may win in several
            dx[index] += dbest * (winner == tap)
        else:
            np.multiply(dbest, winner == tap, out=dx[index])
    return dx


def _sum_along(x, axis, window, stride, out):
    taps = _taps(axis, window, stride, out)
    total = x[next(taps)].copy()
    for index in taps:
        total += x[index]
    return total


def _sum_along_backward(dtotal, axis, window, stride, size):
    dx = _gradient_along(dtotal, axis, window, stride, size)
    for index in _taps(axis, window, stride, dtotal.shape[axis]):
        if stride < window:
            dx[index] += dtotal
        else:
            dx[index] = dtotal
    return dx


def max_pool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """(y (N, OH, OW, C), cache) — ``cache`` holds the winning taps for the backward pass."""
    (out_h, out_w), pads = window_geometry_2d(x.shape[1:3], pool_size, strides, padding=padding)
    xp = pad_spatial(x, pads, value=-np.inf)
    a, winner_in_row = _max_along(xp, 2, pool_size[1], strides[1], out_w)
    y, winner_row = _max_along(a, 1, pool_size[0], strides[0], out_h)
    return y, (xp.shape, pads, winner_in_row, winner_row)


def max_pool2d_backward(dy, cache, pool_size=(2, 2), strides=(2, 2)):
    """dx (N, H, W, C): each dy[n, i, j, c] lands on the first maximum of its window."""
    xp_shape, pads, winner_in_row, winner_row = cache
    da = _max_along_backward(dy, winner_row, 1, pool_size[0], strides[0], xp_shape[1])
    dxp = _max_along_backward(da, winner_in_row, 2, pool_size[1], strides[1], xp_shape[2])
    return crop_spatial(dxp, pads)


def _window_counts(x_shape, pool_size, strides, padding, dtype):
    """(OH, OW, 1): how many real (unpadded) cells each window covers."""
    (out_h, out_w), ((top, _), (left, _)) = window_geometry_2d(
        x_shape[1:3], pool_size, strides, padding=padding
    )
    counts = []
    for out, size, window, stride, before in zip(
        (out_h, out_w), x_shape[1:3], pool_size, strides, (top, left)
    ):
        start = np.arange(out) * stride - before
        counts.append(np.minimum(start + window, size) - np.maximum(start, 0))
    return np.multiply.outer(*counts)[:, :, None].astype(dtype)


def avg_pool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    (out_h, out_w), pads = window_geometry_2d(x.shape[1:3], pool_size, strides, padding=padding)
    xp = pad_spatial(x, pads)
    a = _sum_along(xp, 2, pool_size[1], strides[1], out_w)
    y = _sum_along(a, 1, pool_size[0], strides[0], out_h)
    y /= _window_counts(x.shape, pool_size, strides, padding, y.dtype)
    return y


def avg_pool2d_backward(dy, x_shape, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """dx (N, H, W, C): each cell of a window receives dy / (real cells in the window)."""
    _, pads = window_geometry_2d(x_shape[1:3], pool_size, strides, padding=padding)
    (top, bottom), (left, right) = pads
    dtotal = dy / _window_counts(x_shape, pool_size, strides, padding, dy.dtype)
    da = _sum_along_backward(dtotal, 1, pool_size[0], strides[0], top + x_shape[1] + bottom)
    dxp = _sum_along_backward(da, 2, pool_size[1], strides[1], left + x_shape[2] + right)
    return crop_spatial(dxp, pads)
