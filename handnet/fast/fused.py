"""Convolution and max pooling as one operation: the fast path of a Conv2D directly followed
by a MaxPooling2D whose windows do not overlap (strides = pool_size, "valid" padding).

Notation of ``handnet.fast.conv``; z (N, OH, OW, F) the convolution, pooled by p_h×p_w windows
into (N, PH, PW, F), PH = OH // p_h.  Each window holds p_h·p_w conv outputs, one per window
cell t = (pu, pv):

    z_t[n, i, j, f] = z[n, i·p_h + pu, j·p_w + pv, f]            z_t (N, PH, PW, F)

and the max pooling is an elementwise max over these p_h·p_w arrays:

    best[n, i, j, f] = max_t z_t[n, i, j, f]                      best (N, PH, PW, F)

Three ways to compute it, chosen by the layer (``Conv2D.forward_max_pooled``):

- **Training, 3×3 kernels** (stride 1, 2×2 windows, C ≥ 8): Winograd's F(2×2, 3×3), whose
  2×2 output tiles are the pooling windows (``handnet.fast.winograd``).
- **Training, any other shape**: im2col in the cell-major row order (``conv.cell_major_im2col``,
  ``cell_major_conv2d_max_pool_forward`` / ``_backward``): by chunks of images (the backward
  pass's, about CHUNK_BYTES of cols and dz each), and within a chunk cell by cell, rows (t, b,
  i, j), so that z_t, its max, the winners and dz_t are one contiguous slab a cell and a chunk
  (a strided run an image costs NumPy ~0.2-0.4 µs). The conv outputs no window reads (the last
  row or column when OH or OW is odd) get no row: they are never computed.
- **Inference** (``conv2d_max_pool_inference``): no winners, only the max, along a
  ``conv.Im2colLayout`` the layer keeps per input shape (at batch 1 the calls around the
  product cost as much as the product): pool-major cols (``conv.im2col``'s order: block (pu,
  pv) of each image's rows holds z_t, so the max runs along whole slabs), or, with stride 1,
  C ≥ 8 channels, F ≤ 64 filters and from 32 images on (``pairs_pay``), paired rows
  (``paired_conv2d_max_pool_forward``): two horizontally adjacent conv outputs a row of cols
  (``conv.paired_conv2d_forward``), whose copy is 2/3 of the pool-major one. From 16 images a
  3×3 layer runs Winograd's forward without winners instead (``winograd.INFERENCE_FROM_IMAGES``).
  A backward pass after an inference forward reruns the training forward first.

Backward, given dbest = ∂L/∂best: each window's gradient goes to its winner, the first cell t
reaching the max in row-major window order (MaxPooling2D's tie rule),

    dz_t = dbest · [winner = t]

then [dK; db] = colsᵀ @ dz in the same row order (the cell-major rows sum in another order
than the spec's: equal to rounding, tests/layers/test_cell_major.py), and dx = col2im of dz
put back in the plain row order (col2im runs 1.2x faster on that order, the copy included).
Training finds the winners in the forward pass, while z is still in cache. An activation
applied after the pooling is the layer's business; a ReLU's derivative [y > 0] can go into
the winners (``relu_winners``). cols, cells, the winners and dz are written into the previous
batch's arrays when given (only the layer's own backward pass reads them; fresh arrays of
this size page-fault on every step).
"""

import numpy as np

from ..ops.padding import window_geometry_2d
from . import conv
from .pool import first_max


# -- training in the cell-major row order -----------------------------------------------------
def cell_major_chunks(n, chunk, grid, cell_count):
    """(images, rows) slice pairs of ``conv.cell_major_im2col``'s chunks: a chunk's images and
    its rows of cols and of the conv outputs."""
    rows_per_image = cell_count * grid[0] * grid[1]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        yield slice(start, stop), slice(start * rows_per_image, stop * rows_per_image)


def cell_major_conv2d_max_pool_forward(
    x,
    kernel,
    bias=None,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
    pool_size=(2, 2),
    reuse_cols=None,
    reuse_cells=None,
    reuse_winner=None,
):
    """(best, cols, cells, winner): the training forward in the cell-major row order, by the
    backward pass's chunks of images (``conv.cell_major_im2col``, ``cell_major_chunks``).
    cells (M, F) the conv outputs in that order: chunk g's rows, reshaped (p_h·p_w, images,
    PH, PW, F), hold z_t as one contiguous slab a window cell t, so the max and the winners are
    p_h·p_w whole-array passes a chunk (the pool-major slabs are one strided run an image,
    ~0.2-0.4 µs a run). best (N, PH, PW, F) fresh; winner (N, PH, PW, F) the first cell
    reaching the max; cols, cells and winner written into the ``reuse_*`` arrays that fit."""
    filters, cell_count = kernel.shape[-1], pool_size[0] * pool_size[1]
    out_hw, _ = window_geometry_2d(x.shape[1:3], kernel.shape[:2], strides, dilation, padding)
    grid = (out_hw[0] // pool_size[0], out_hw[1] // pool_size[1])
    width = int(np.prod(kernel.shape[:3])) + (bias is not None)
    rows_per_image = cell_count * grid[0] * grid[1]
    chunk = conv.cell_major_chunk_images(
        len(x), rows_per_image, width, filters, np.dtype(x.dtype).itemsize
    )
    cols, grid = conv.cell_major_im2col(
        x,
        kernel.shape[:2],
        strides,
        padding,
        dilation,
        bias is not None,
        pool_size,
        chunk,
        reuse_cols,
    )
    weights = conv.kernel_matrix(kernel, bias)
    dtype = np.result_type(cols, weights)
    shape = (len(cols), filters)
    fits = (
        reuse_cells is not None
        and reuse_cells.shape == shape
        and reuse_cells.dtype == dtype
        and reuse_cells.flags.c_contiguous
    )
    cells = reuse_cells if fits else np.empty(shape, dtype=dtype)
    label = np.min_scalar_type(cell_count - 1)
    pooled = (len(x), *grid, filters)
    winner = reuse_winner
    if winner is None or winner.shape != pooled or winner.dtype != label:
        winner = np.empty(pooled, dtype=label)
    best = np.empty(pooled, dtype=dtype)
    # One product for the batch, unless cells outgrows the cache: then a chunk at a time, so
    # that first_max reads each chunk's cells while they are still there.
    if cells.nbytes > FORWARD_CHUNKED_ABOVE_BYTES:
        for images, rows in cell_major_chunks(len(x), chunk, grid, cell_count):
            np.matmul(cols[rows], weights, out=cells[rows])
            slabs = cells[rows].reshape(cell_count, images.stop - images.start, *pooled[1:])
            first_max(slabs, winner[images], out=best[images])
        return best, cols, cells, winner
    np.matmul(cols, weights, out=cells)
    # The max over all whole chunks at once (slab t of chunk g: one run a chunk), then the
    # last, shorter one: a call a chunk made 64 for lenet's conv2 (chunks of 2 images).
    whole = len(x) // chunk * chunk
    spans = [(slice(0, whole), chunk), (slice(whole, len(x)), len(x) - whole)]
    for images, count in spans:
        if images.stop == images.start:
            continue
        rows = slice(images.start * rows_per_image, images.stop * rows_per_image)
        groups = (images.stop - images.start) // count
        slabs = cells[rows].reshape(groups, cell_count, count, *pooled[1:]).swapaxes(0, 1)
        shape = (groups, count, *pooled[1:])
        first_max(slabs, winner[images].reshape(shape), out=best[images].reshape(shape))
    return best, cols, cells, winner


def cell_major_conv2d_max_pool_backward(
    dbest,
    cols,
    cells,
    winner,
    kernel,
    x_shape,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
    pool_size=(2, 2),
    input_gradient=True,
    reuse_dz=None,
    first_cell=0,
):
    """(dx or None, dkernel, dbias or None) after ``cell_major_conv2d_max_pool_forward``, chunk
    by chunk of its layout: dz (p_h·p_w, images, PH, PW, F) in ``reuse_dz``
    (``cell_major_dz_workspace``) when it fits, dz_t one slab; [dK; db] += colsᵀ @ dz over the
    chunk's rows (one product a chunk); dx = col2im of dz put in the plain order.
    ``first_cell``: the label of window cell 0 in winner (1 for ``relu_winners``, whose 0
    means no cell); winner None: found here from cells."""
    filters, cell_count = kernel.shape[-1], pool_size[0] * pool_size[1]
    pooled = dbest.shape[1:]
    dtype = np.result_type(dbest, kernel)
    dx = np.empty(x_shape, dtype=dtype) if input_gradient else None
    dweights = np.zeros((cols.shape[1], filters), dtype=dtype)
    chunk = conv.cell_major_chunk_images(
        len(dbest), len(cols) // max(len(dbest), 1), cols.shape[1], filters, cols.itemsize
    )
    fits = (
        reuse_dz is not None
        and reuse_dz.size >= cell_count * chunk * dbest[0].size
        and reuse_dz.dtype == dbest.dtype
        and reuse_dz.flags.c_contiguous
    )
    for images, rows in cell_major_chunks(len(dbest), chunk, pooled[:2], cell_count):
        count = images.stop - images.start
        if winner is None:
            slabs = cells[rows].reshape(cell_count, count, *pooled)
            _, chunk_winner = first_max(slabs)
        else:
            chunk_winner = winner[images]
        dz = None
        if fits:  # the first values of the workspace: contiguous for a short last chunk too
            dz = reuse_dz.reshape(-1)[: cell_count * count * dbest[0].size]
            dz = dz.reshape(cell_count, count, *pooled)
        dz = cell_major_to_winners(
            dbest[images], chunk_winner, cell_count, dz, first_cell if winner is not None else 0
        )
        dweights += conv.weight_gradients(dz.reshape(-1, filters), cols[rows])
        if input_gradient:
            conv.col2im_matmul(
                cell_major_plain_order(dz, pool_size),
                kernel,
                dx[images].shape,
                strides,
                padding,
                dilation,
                out=dx[images],
            )
    return (dx, *conv.split_weight_gradients(dweights, kernel.shape))


def cell_major_dz_workspace(winner, cols, filters, dtype, reuse=None):
    """``reuse_dz`` for ``cell_major_conv2d_max_pool_backward``: room for one chunk's dz
    (p_h·p_w, images, PH, PW, F), flat, the same memory every chunk; ``reuse`` if it fits.
    winner (N, PH, PW, F) or any array of the pooled shape."""
    n = len(winner)
    per_image = len(cols) // max(n, 1) * filters  # p_h·p_w·PH·PW·F
    chunk = conv.cell_major_chunk_images(
        n, len(cols) // max(n, 1), cols.shape[1], filters, cols.itemsize
    )
    size = chunk * per_image
    if reuse is not None and reuse.shape == (size,) and reuse.dtype == dtype:
        return reuse
    return np.empty(size, dtype=dtype)


def cell_major_to_winners(dbest, winner, window_cells, out=None, first_cell=0):
    """dz (p_h·p_w, N, PH, PW, F) in cell-major order: dz[t] = dbest · [winner = t +
    first_cell], one contiguous slab a cell, written into ``out`` (C-contiguous) if given."""
    dz = out
    if dz is None:
        dz = np.empty((window_cells, *dbest.shape), dtype=dbest.dtype)
    for cell in range(window_cells):
        np.multiply(dbest, winner == cell + first_cell, out=dz[cell])
    return dz


def cell_major_plain_order(dz, pool_size):
    """dz (p_h·p_w, N, PH, PW, F) in cell-major order -> (N, PH·p_h, PW·p_w, F), a copy:
    [n, i·p_h + pu, j·p_w + pv] = dz[(pu, pv), n, i, j]."""
    _, n, grid_h, grid_w, filters = dz.shape
    plain = np.empty((n, grid_h * pool_size[0], grid_w * pool_size[1], filters), dtype=dz.dtype)
    cells = dz.reshape(*pool_size, n, grid_h, grid_w, filters)
    conv.pool_major(plain, pool_size)[...] = cells.transpose(2, 0, 1, 3, 4, 5)
    return plain


def relu_winners(y, winner, window_cells, reuse=None):
    """The winners through a ReLU after the pooling, y = max(best, 0): winner + 1 where y > 0,
    else 0 (no cell: f' = 0 there, [y > 0] as ``activations.ReLU``), for the backward pass's
    ``first_cell=1``; written into ``reuse`` if it fits, else None when the labels would not
    fit winner's dtype.

    dz_t = dy · [winner = t] · [y > 0] is then one product a cell, not dbest = dy · [y > 0]
    first: that pass wrote a fresh float array the size of y; this one, bytes."""
    if window_cells >= np.iinfo(winner.dtype).max:
        return None
    fits = reuse is not None and reuse.shape == winner.shape and reuse.dtype == winner.dtype
    live = np.add(winner, 1, out=reuse if fits else None)
    return np.multiply(live, y > 0, out=live)


def pooled_grid(x_shape, window_hw, strides, padding, dilation, pool_size):
    """(OH', OW') = (PH·p_h, PW·p_w): the conv outputs the pooling windows read."""
    (out_h, out_w), _ = window_geometry_2d(x_shape[1:3], window_hw, strides, dilation, padding)
    return out_h // pool_size[0] * pool_size[0], out_w // pool_size[1] * pool_size[1]


# The training forward runs its product and first_max chunk by chunk (the backward pass's
# chunks) when cells holds more than this: measured on the pool-major path this replaced, cnn's
# conv1 (cells 11 MB, batch 128) 2.04 against 2.79 ms for both (chunks of 16 images; 8: 2.29,
# 32: 2.22); fast's conv1 (3.3 MB) was slower in chunks (1.52-1.88 against 1.19).
FORWARD_CHUNKED_ABOVE_BYTES = 8 << 20

# The paired inference path from this many input channels on: there im2col makes one strided
# copy a pool-major block, 1.6-1.8x slower than the plain order's, and the paired rows' copy
# is 2/3 of the plain one. Below, im2col copies tap by tap and is already cheap, and the max
# over paired rows (F values at a time, not whole slabs) cost more than the copy saved: cnn's
# conv1 (C = 1) took 3.6 ms paired against 1.5 (batch 64, benchmarks/bench_skinny.py).
PAIRED_FROM_CHANNELS = 8

# ... and from this many images, for at most this many filters. Against the pool-major cols
# copied by one strided view (conv.Im2colLayout, not im2col's copy a block), paired rows ran
# 1.15-1.7x slower at batch 1-8 for every shape measured, and for F = 64 at every batch up to
# 256 (cnn's conv2 1.03-1.09x, lenet's conv4 1.05-1.13x slower); for F = 32 they ran 1.05-1.15x
# faster from batch 32 on (lenet's conv2 26²×32: 0.86-0.93), 1.05-1.15x slower below. (Those
# layer timings ran on a shared machine.) Whole predicts of 1,000 images in a quiet window,
# the two limits alternating in one process, put F = 64 back: with 2 threads (parts of 64
# images) lenet 4,154 against 3,702 img/s (best of 10; medians 3,441 and 2,890), cnn 19,239
# against 18,458; with one thread lenet the same (2,267 and 2,288), cnn 10,316 against 9,925.
PAIRED_FROM_IMAGES = 32
PAIRED_UP_TO_FILTERS = 64


def pairs_pay(x_shape, window_hw, strides, padding, dilation, pool_size, filters=None):
    """Whether a Conv2D + max pooling runs paired rows for inference (``inference_layout``):
    stride 1, dilation 1, PW·p_w even (``conv.pairs_apply``), C ≥ PAIRED_FROM_CHANNELS, at
    least PAIRED_FROM_IMAGES images and (``filters`` given) F ≤ PAIRED_UP_TO_FILTERS."""
    if x_shape[-1] < PAIRED_FROM_CHANNELS or x_shape[0] < PAIRED_FROM_IMAGES:
        return False
    if filters is not None and filters > PAIRED_UP_TO_FILTERS:
        return False
    grid = pooled_grid(x_shape, window_hw, strides, padding, dilation, pool_size)
    return conv.pairs_apply(x_shape, window_hw, strides, padding, dilation, out_hw=grid)


def paired_conv2d_max_pool_forward(
    x, kernel, bias=None, padding="valid", pool_size=(2, 2), reuse_cols=None
):
    """(best (N, PH, PW, F), cols) for inference, stride 1 and dilation 1, when PW·p_w is
    even (``conv.pairs_apply``; the layer runs the same along a ``conv.Im2colLayout``,
    ``conv2d_max_pool_inference``, where ``pairs_pay``): the conv outputs the windows read by
    ``conv.paired_conv2d_forward`` (two output pixels a row of cols, plain order), then the
    max over each window. Nothing for a backward pass: winners are found by the training
    forward, which the layer reruns if a backward follows."""
    grid = pooled_grid(x.shape, kernel.shape[:2], (1, 1), padding, (1, 1), pool_size)
    z, cols = conv.paired_conv2d_forward(x, kernel, bias, padding, grid, reuse_cols)
    (p_h, p_w), (height, width) = pool_size, grid
    windows = z.reshape(len(x), height // p_h, p_h, width // p_w, p_w, kernel.shape[-1])
    # One elementwise max per window row, then per column: (N, PH, PW, F) fresh. A reduction
    # over axes (2, 4) at once ran 1.5-2x slower (5.3 against 3.1 ms for cnn's conv1).
    return _max_over(_max_over(windows, 2), 3), cols


def _max_over(a, axis):
    """A fresh array: the maximum of ``a`` over ``axis``, by one np.maximum per entry."""
    take = [a[(slice(None),) * axis + (i,)] for i in range(a.shape[axis])]
    if len(take) == 1:
        return take[0].copy()
    best = np.maximum(take[0], take[1])
    for other in take[2:]:
        np.maximum(best, other, out=best)
    return best


# -- inference with the geometry worked out once (conv.Im2colLayout) ------------------------
def inference_layout(
    x_shape, dtype, window_hw, strides, padding, dilation, pool_size, use_bias, filters
):
    """The ``conv.Im2colLayout`` an inference forward of a Conv2D + max pooling runs for this
    input shape: paired rows where ``pairs_pay``, else pool-major cols."""
    if pairs_pay(x_shape, window_hw, strides, padding, dilation, pool_size, filters):
        grid = pooled_grid(x_shape, window_hw, strides, padding, dilation, pool_size)
        return conv.Im2colLayout(
            x_shape, dtype, window_hw, padding=padding, ones_column=use_bias, paired=True,
            out_hw=grid,
        )  # fmt: skip
    return conv.Im2colLayout(
        x_shape, dtype, window_hw, strides, padding, dilation, pool_size, ones_column=use_bias
    )


def conv2d_max_pool_inference(
    x, kernel, bias, layout, pool_size, reuse_cols=None, reuse_z=None, reuse_weights=None
):
    """(best (N, PH, PW, F) fresh, cols, z, weights): the max pooling of the convolution for
    an inference pass, along ``layout`` (``inference_layout``): paired rows (then as
    ``paired_conv2d_max_pool_forward``) or pool-major cols (``conv.im2col`` with
    ``pool_size``: z is then cells (N, p_h·p_w, PH, PW, F), and best their max over axis 1).
    The same cols, weights and products as those, so the same best bit for bit; cols, the
    product z and the weight matrix are
    written into the arrays given when they fit (the previous call's: only this function reads
    them, and a fresh z page-faults on every call)."""
    cols = layout.fill(x, reuse_cols)
    filters = kernel.shape[-1]
    if layout.paired:
        weights = conv.paired_kernel_matrix(kernel, bias, reuse_weights)
    else:
        weights = conv.kernel_matrix_in(kernel, bias, reuse_weights)
    shape = (len(cols), weights.shape[1])
    dtype = np.result_type(cols, weights)
    z = reuse_z
    if z is None or z.size != shape[0] * shape[1] or z.dtype != dtype or not z.flags.c_contiguous:
        z = np.empty(shape, dtype=dtype)
    z = z.reshape(shape)
    np.matmul(cols, weights, out=z)
    n, (height, width) = len(x), layout.grid
    if layout.paired:
        (p_h, p_w) = pool_size
        windows = z.reshape(n, height // p_h, p_h, width // p_w, p_w, filters)
        # One elementwise max per window row, then per column (see
        # paired_conv2d_max_pool_forward).
        return _max_over(_max_over(windows, 2), 3), cols, z, weights
    cells = z.reshape(n, pool_size[0] * pool_size[1], height, width, filters)
    return cells.max(axis=1), cols, cells, weights
