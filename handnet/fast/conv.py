"""Convolution, vectorized: im2col + one matrix product (the layers' fast path).

Same notation as the specification ``handnet.ops.conv_spec``: x (N, H, W, C), kernel K
(kh, kw, C, F), bias b (F,), z (N, OH, OW, F), stride s, dilation d, x zero-padded first
for "same".  D = kh·kw·C, M = N·OH·OW.

im2col lays every receptive field out as one row, in the order (u, v, c) of the kernel's own
first three axes, followed by a constant 1 when there is a bias:

    cols[(n, i, j), (u, v, c)] = x[n, i·s + u·d, j·s + v·d, c],   cols[·, D] = 1    cols (M, D + 1)

so that the whole convolution is one matrix product with the kernel as Keras stores it, the
bias being the weight of that constant input:

    z = cols @ [K.reshape(D, F); b]  =  Σ_{u,v,c} x[…] · K[u, v, c, :] + b             z (M, F)

Backward, given dz = ∂L/∂z reshaped to (M, F):

    [dK; db] = colsᵀ @ dz               (D + 1, F): rows 0…D-1 are dK, row D is db = Σ_rows dz
    dcols    = dz @ K.reshape(D, F)ᵀ    (M, D)
    dx       = col2im(dcols): every entry goes back to the input cell it was copied from,
               added up where receptive fields overlap (see ``col2im_matmul``).

The column of ones costs nothing measurable in the copy or the products, and saves two passes
over z (M·F values, the largest array of a first conv layer): the bias add and the db sum.

Below 8 input channels cols is stored column-major (cols.T (D + 1, M) C-contiguous: each tap
one run of M values), above row-major; the products take either as it is (see ``im2col``,
``weight_gradients``).

Pool-major row order (``pool_size`` = (p_h, p_w), for a max pooling with non-overlapping
"valid" windows fused onto the convolution, see ``handnet.fast.fused``): each image's rows come
in p_h·p_w blocks, block (pu, pv) holding the conv outputs at cell (pu, pv) of every window,

    row (n, pu, pv, i, j)  <->  conv output (n, i·p_h + pu, j·p_w + pv),   i < PH = OH // p_h,

so z.reshape(N, p_h·p_w, PH·PW·F)[:, t] is a run of whole contiguous slabs, one per image.
Conv outputs that fill no window (the last row or column when OH or OW is odd) get no row:
they are never computed.  Block (pu, pv) is itself the im2col of a convolution with strides
(p_h·s_h, p_w·s_w) whose first window starts at (pu·s_h, pv·s_w); ``pool_size`` = (1, 1) (the
default) is the plain order above.  (col2im takes the plain order only: slice-adds along
pool-major blocks made it 1.2x slower in all.)  ``cell_major_im2col`` puts the cell first
within chunks of images, rows (g, t, b, i, j): the fused training path's order.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..ops.padding import crop_spatial, pad_spatial, window_geometry_2d

# Below this many channels a receptive-field row is too short for one big strided copy to
# run well (C = 1 copies 3 values at a time, 4x slower measured); copying tap by tap moves
# whole image rows instead, into column-major cols (see ``im2col``).
_TAPWISE_IM2COL_BELOW_CHANNELS = 8

# The pool-major im2col copies a batch whose input holds more than the first figure a chunk of
# images of about the second at a time: lenet's conv2 (26²×32, batch 128, 11 MB of input) took
# 6.9-7.3 ms in chunks of 768 KiB (8 images) against 10.5-13.2 for the whole batch at once
# (256 KiB 8.2, 512 KiB 7.5, 1.5 MiB 9.1-10.4; the plain order 5.5). Below, chunks only add
# calls: cnn's conv2 (13²×32, 2.8 MB) took 1.28 ms whole, 1.3-3.0 in chunks of 32 to 4 images.
_IM2COL_CHUNKED_ABOVE_BYTES = 8 << 20
_IM2COL_CHUNK_BYTES = 768 << 10

# The backward pass goes through the batch in chunks of about this many bytes of cols and dz
# (see ``backward_chunks``); 1 to 4 MiB ran fastest, 16 MiB or the whole batch up to 1.3x slower.
CHUNK_BYTES = 4 << 20


def window_view(xp, window_hw, strides, dilation, out_hw):
    """A read-only view v (N, OH, OW, kh, kw, C) of the padded input xp (N, Hp, Wp, C) with
    v[n, i, j, u, v, c] = xp[n, i·s_h + u·d_h, j·s_w + v·d_w, c].  Nothing is copied."""
    n, _, _, c = xp.shape
    step_n, step_h, step_w, step_c = xp.strides
    return as_strided(
        xp,
        shape=(n, *out_hw, *window_hw, c),
        strides=(
            step_n,
            strides[0] * step_h,
            strides[1] * step_w,
            dilation[0] * step_h,
            dilation[1] * step_w,
            step_c,
        ),
        writeable=False,
    )


def tap_slices(tap, strides, dilation, out_hw):
    """The (rows, cols) slices of a padded input that kernel tap (u, v) meets at every output
    position: xp[:, rows, cols] (N, OH, OW, C) is x[n, i·s + u·d, j·s + v·d] for all (i, j)."""
    return tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, s, d, o in zip(tap, strides, dilation, out_hw)
    )


def tap_major_view(xp, window_hw, strides, dilation, pool_size, grid):
    """A read-only view t (kh, kw, C, N, p_h, p_w, GH, GW) of the padded input xp (N, Hp, Wp,
    C): t[u, v, c, n, pu, pv, i, j] = xp[n, (i·p_h + pu)·s_h + u·d_h, (j·p_w + pv)·s_w + v·d_w,
    c], the transpose of pool-major cols (plain cols for pool_size (1, 1)).  Nothing is
    copied."""
    n, _, _, c = xp.shape
    step_n, step_h, step_w, step_c = xp.strides
    return as_strided(
        xp,
        shape=(*window_hw, c, n, *pool_size, *grid),
        strides=(
            dilation[0] * step_h,
            dilation[1] * step_w,
            step_c,
            step_n,
            strides[0] * step_h,
            strides[1] * step_w,
            pool_size[0] * strides[0] * step_h,
            pool_size[1] * strides[1] * step_w,
        ),
        writeable=False,
    )


def _pool_blocks(out_hw, strides, pool_size):
    """(grid, steps): the windows per pool-major block (PH, PW) and the strides between them."""
    grid = (out_hw[0] // pool_size[0], out_hw[1] // pool_size[1])
    steps = (strides[0] * pool_size[0], strides[1] * pool_size[1])
    return grid, steps


def pool_major(a, pool_size):
    """The view (N, p_h, p_w, PH, PW, ...) of a (N, PH·p_h, PW·p_w, ...) in pool-major order:
    [n, pu, pv, i, j] = a[n, i·p_h + pu, j·p_w + pv].  Nothing is copied."""
    (p_h, p_w), (n, height, width) = pool_size, a.shape[:3]
    split = a.reshape(n, height // p_h, p_h, width // p_w, p_w, *a.shape[3:])
    return split.transpose(0, 2, 4, 1, 3, *range(5, split.ndim))


def im2col(
    x,
    window_hw,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
    ones_column=False,
    pool_size=(1, 1),
    reuse=None,
):
    """x (N, H, W, C) -> (cols, grid): cols (M, D), or (M, D + 1) ending in a column of ones
    with ``ones_column``, filled by one copy per pool-major block; grid = (OH, OW), or (PH, PW)
    with a ``pool_size``, the windows per block.

    cols is written into ``reuse`` when that array has its shape, dtype and memory order, else
    it is a fresh array.  (A layer passes its previous batch's cols: a fresh array this large
    page-faults on every batch, up to 10% of a training step measured.)

    Below 8 channels cols is column-major (cols.T is C-contiguous, (D [+ 1], M)): copied tap
    by tap, each tap (u, v, c) is then one contiguous run of M values, written in order, not
    M values D + 1 apart.  For the fast net's first layer (C = 1, 5×5, 24² pool-major) the
    copy took 1.10 against 1.88 ms, its weight gradient colsᵀ·dz 0.62 against 0.89 ms, the
    forward product 0.72 against 0.62 ms (batch 128, one thread); the products' results are
    bit-identical (OpenBLAS packs either order into the same blocks)."""
    n, height, width, channels = x.shape
    out_hw, pads = window_geometry_2d((height, width), window_hw, strides, dilation, padding)
    grid, steps = _pool_blocks(out_hw, strides, pool_size)
    xp = pad_spatial(x, pads)
    depth = window_hw[0] * window_hw[1] * channels
    shape = (n * pool_size[0] * pool_size[1] * grid[0] * grid[1], depth + ones_column)
    tapwise = channels < _TAPWISE_IM2COL_BELOW_CHANNELS
    cols = reuse
    if (
        cols is None
        or cols.shape != shape
        or cols.dtype != x.dtype
        or not (cols.T if tapwise else cols).flags.c_contiguous
    ):
        cols = np.empty(shape[::-1], dtype=x.dtype).T if tapwise else np.empty(shape, x.dtype)
    if tapwise:
        # Splitting axes never copies: taps[u, v, c] is the view of row (u, v, c) of cols.T.
        taps = cols.T[:depth].reshape(*window_hw, channels, n, *pool_size, *grid)
        # One copy of a view in that order: NumPy runs it along whole output rows, as a loop
        # over the taps would, without 25 Python-level copies (0.65 against 0.84 ms, C = 1,
        # 5×5, 24² pool-major, batch 128).
        np.copyto(taps, tap_major_view(xp, window_hw, strides, dilation, pool_size, grid))
    else:
        # Splitting axes never copies, so this is a view into cols.
        blocks = cols[:, :depth].reshape(n, *pool_size, *grid, *window_hw, channels)
        # Each pool-major block reads all of x: a batch larger than the cache is read from
        # memory p_h·p_w times, unless the blocks are copied a few images at a time.
        images = n
        if pool_size != (1, 1) and xp.nbytes > _IM2COL_CHUNKED_ABOVE_BYTES:
            images = max(1, _IM2COL_CHUNK_BYTES // max(xp[0].nbytes, 1))
        for start in range(0, n, images):
            part = slice(start, start + images)
            for pu, pv in np.ndindex(*pool_size):
                origin = xp[part, pu * strides[0] :, pv * strides[1] :]
                view = window_view(origin, window_hw, steps, dilation, grid)
                np.copyto(blocks[part, pu, pv], view)
    if ones_column:
        cols[:, depth] = 1
    return cols, grid


def cell_major_im2col(
    x,
    window_hw,
    strides=(1, 1),
    padding="valid",
    dilation=(1, 1),
    ones_column=False,
    pool_size=(2, 2),
    chunk=1,
    reuse=None,
):
    """``im2col`` in the cell-major row order, by chunks of ``chunk`` images (the last may hold
    fewer): the rows of chunk g come together, as (pu, pv, b, i, j) <-> conv output
    (g·chunk + b, i·p_h + pu, j·p_w + pv), i < PH, j < PW. Block t = (pu, pv) of a chunk holds
    window cell t of every window of its images, one run of chunk·PH·PW rows (the pool-major
    order, chunk = 1, has one run an image). (cols, (PH, PW)); cols column-major below 8
    channels as ``im2col``'s, written into ``reuse`` when it fits.

    The fused training path takes it (``fused.cell_major_conv2d_max_pool_forward``), with the
    backward pass's chunks (``cell_major_chunk_images``): a chunk's rows of cols and its dz are
    then both contiguous, and its max, winners and dz p_h·p_w whole slabs. Each chunk's copy
    also reads its images only (in cache: ``im2col`` cuts a large batch likewise)."""
    n, height, width, channels = x.shape
    out_hw, pads = window_geometry_2d((height, width), window_hw, strides, dilation, padding)
    grid, steps = _pool_blocks(out_hw, strides, pool_size)
    xp = pad_spatial(x, pads)
    depth = window_hw[0] * window_hw[1] * channels
    cell_rows = grid[0] * grid[1]
    shape = (pool_size[0] * pool_size[1] * n * cell_rows, depth + ones_column)
    tapwise = channels < _TAPWISE_IM2COL_BELOW_CHANNELS
    cols = reuse
    if (
        cols is None
        or cols.shape != shape
        or cols.dtype != x.dtype
        or not (cols.T if tapwise else cols).flags.c_contiguous
    ):
        cols = np.empty(shape[::-1], dtype=x.dtype).T if tapwise else np.empty(shape, x.dtype)
    if not tapwise:
        _copy_chunks_row_major(cols, xp, window_hw, strides, dilation, pool_size, grid, chunk)
    else:
        view = tap_major_view(xp, window_hw, strides, dilation, pool_size, grid)
        for start in range(0, n, chunk):
            part = slice(start, min(start + chunk, n))
            rows = slice(start * len(cols) // n, part.stop * len(cols) // n)
            # taps[u, v, c, pu, pv] is a run of count·PH·PW values of row (u, v, c) of cols.T.
            # One copy a chunk, its axes given in image order (b, pu, pv), which NumPy keeps
            # (the two arrays' strides disagree): it reads an image's cells together, as the
            # pool-major copy does. A copy a cell read each image p_h·p_w times apart: fast's
            # conv1 0.76-0.87 against 0.70-0.77 ms, cnn's 0.43-0.44 against 0.39.
            count = part.stop - part.start
            taps = cols.T[:depth, rows].reshape(*window_hw, channels, *pool_size, count, *grid)
            np.copyto(taps.transpose(0, 1, 2, 5, 3, 4, 6, 7), view[:, :, :, part])
    if ones_column:
        cols[:, depth] = 1
    return cols, grid


def _copy_chunks_row_major(cols, xp, window_hw, strides, dilation, pool_size, grid, chunk):
    """``cell_major_im2col``'s copy into row-major cols: one strided copy a window cell for
    several whole chunks at once (about _IM2COL_CHUNK_BYTES of images: each cell's copy reads
    them, and they stay in cache for the next cell), then the last, shorter chunk. A copy a
    cell and a chunk made 256 copies for lenet's conv2 (chunks of 2 images), each with its
    strided view to build."""
    n, channels = len(xp), xp.shape[-1]
    depth = window_hw[0] * window_hw[1] * channels
    rows_per_image = len(cols) // max(n, 1)
    steps = (strides[0] * pool_size[0], strides[1] * pool_size[1])
    whole = n // chunk
    together = max(1, _IM2COL_CHUNK_BYTES // max(chunk * xp[0].nbytes, 1))
    spans = [(start, min(start + together, whole), chunk) for start in range(0, whole, together)]
    if n % chunk:
        spans.append((whole, whole + 1, n % chunk))
    for first, last, count in spans:
        images = slice(first * chunk, first * chunk + (last - first) * count)
        rows = slice(images.start * rows_per_image, images.stop * rows_per_image)
        blocks = cols[rows, :depth].reshape(
            last - first, *pool_size, count, *grid, *window_hw, channels
        )
        for pu, pv in np.ndindex(*pool_size):
            origin = xp[images, pu * strides[0] :, pv * strides[1] :]
            view = window_view(origin, window_hw, steps, dilation, grid)
            np.copyto(blocks[:, pu, pv], view.reshape(last - first, count, *view.shape[1:]))


def cell_major_chunk_images(n, rows_per_image, width, filters, itemsize):
    """The chunk of ``cell_major_im2col`` for the training path: ``chunk_images``'s figure
    (about CHUNK_BYTES of cols and dz a chunk) from the shapes, before cols exists."""
    bytes_per_image = rows_per_image * (width + filters) * itemsize
    return min(max(n, 1), max(1, CHUNK_BYTES // max(bytes_per_image, 1)))


def col2im_matmul(dz, kernel, x_shape, strides=(1, 1), padding="valid", dilation=(1, 1), out=None):
    """dx (N, H, W, C) = col2im(dz @ K.reshape(D, F)ᵀ), computed tap by tap; dz (N, GH, GW, F)
    in the plain order.  Its grid may stop short of (OH, OW) (the fused pooling leaves the last
    row or column out): outputs it does not hold have a zero gradient.  Without padding dx is
    summed in ``out`` if given (the caller's array, say its chunk of the batch's dx: no copy).

    Column block (u, v) of dcols is dz @ K[u, v]ᵀ (M, C), and col2im adds it onto the cells
    that tap (u, v) read: dx[n, i·s + u·d, j·s + v·d, :] += block[(n, i, j), :].  Making each
    block by its own product gives a contiguous block, whose slice-add runs along whole image
    rows; slicing the blocks out of one big dcols adds C values at a time and took longer than
    the product itself (measured 1.6x slower in all for C = 32).  One strided slice-add per
    tap, and no ``np.add.at`` (unbuffered, an order of magnitude slower).
    """
    n, height, width, channels = x_shape
    kh, kw, _, filters = kernel.shape
    _, pads = window_geometry_2d((height, width), (kh, kw), strides, dilation, padding)
    (top, bottom), (left, right) = pads
    grid = dz.shape[1:3]
    dtype = np.result_type(dz, kernel)
    padded_shape = (n, top + height + bottom, left + width + right, channels)
    if out is not None and out.shape == padded_shape and out.dtype == dtype:
        dxp = out
        dxp[...] = 0
    else:
        dxp = np.zeros(padded_shape, dtype=dtype)
    dz = dz.reshape(-1, filters)
    block = np.empty((len(dz), channels), dtype=dtype)
    for u in range(kh):
        for v in range(kw):
            rows, columns = tap_slices((u, v), strides, dilation, grid)
            np.matmul(dz, kernel[u, v].T, out=block)
            dxp[:, rows, columns] += block.reshape(n, *grid, channels)
    if dxp is out:
        return out
    cropped = crop_spatial(dxp, pads)
    if out is None:
        return cropped
    out[...] = cropped
    return out


def kernel_matrix(kernel, bias=None):
    """[K.reshape(D, F); b]: the right-hand factor of z = cols @ weights, (D, F) or (D + 1, F)."""
    weights = kernel.reshape(-1, kernel.shape[-1])
    if bias is None:
        return weights
    return np.concatenate([weights, bias.reshape(1, -1)])


def conv2d_forward(
    x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1), reuse_cols=None
):
    """(z (N, OH, OW, F), cols) for x (N, H, W, C), kernel (kh, kw, C, F), bias (F,) or None.

    ``cols`` is what ``conv2d_backward`` needs (built in ``reuse_cols`` if that fits, see
    ``im2col``); z is a fresh array the caller may overwrite (an activation applied in place).
    """
    cols, out_hw = im2col(
        x, kernel.shape[:2], strides, padding, dilation, bias is not None, reuse=reuse_cols
    )
    z = cols @ kernel_matrix(kernel, bias)
    return z.reshape(x.shape[0], *out_hw, kernel.shape[-1]), cols


def weight_gradients(dz, cols):
    """colsᵀ @ dz = [dK.reshape(D, F); db], (D + 1, F), or (D, F) without a column of ones: the
    sums over the rows given, dz (M, F) in the rows' order of cols (M, D [+ 1])."""
    # The same product either way round; OpenBLAS sums the long axis M faster with the wider
    # factor on the right (measured 7.3 vs 8.6 ms for D + 1 = 289, F = 64; 26 vs 35 ms for F =
    # 32), so the narrow one goes left -- for row-major cols. Column-major cols (im2col below
    # 8 channels) goes left as it is: colsᵀ is then row-major (0.62 against 1.36 ms the other
    # way round, D + 1 = 26, F = 16, M = 51,200).
    column_major = cols.strides[0] == cols.itemsize  # also a slice of rows of such cols
    if cols.shape[1] > dz.shape[1] and not column_major:
        return (dz.T @ cols).T
    return cols.T @ dz


def split_weight_gradients(dweights, kernel_shape):
    """(dkernel (kh, kw, C, F), dbias (F,) or None) from [dK.reshape(D, F); db]."""
    depth = int(np.prod(kernel_shape[:3]))
    dbias = dweights[depth] if len(dweights) > depth else None
    return dweights[:depth].reshape(kernel_shape), dbias


def chunk_images(n, cols, filters):
    """How many images a chunk of ``backward_chunks`` holds (at most; the last may hold fewer)."""
    rows_per_image = len(cols) // max(n, 1)
    bytes_per_image = rows_per_image * (cols.shape[1] + filters) * cols.itemsize
    return min(max(n, 1), max(1, CHUNK_BYTES // max(bytes_per_image, 1)))


def backward_chunks(n, cols, filters):
    """(images, rows) slice pairs that cut a batch of n images into chunks of about
    CHUNK_BYTES of cols and dz each, ``rows`` being the chunk's rows of cols (im2col keeps an
    image's rows together, in either order).

    A backward pass run chunk by chunk keeps each chunk's dz, blocks and dx in cache between
    the products and the adds, and makes no temporary larger than a chunk (fresh arrays the
    size of the batch page-fault again on every step).
    """
    rows_per_image = len(cols) // max(n, 1)
    size = chunk_images(n, cols, filters)
    for start in range(0, n, size):
        stop = min(start + size, n)
        yield slice(start, stop), slice(start * rows_per_image, stop * rows_per_image)


def conv2d_backward(
    dz, cols, kernel, x_shape, strides=(1, 1), padding="valid", dilation=(1, 1), input_gradient=True
):
    """(dx or None, dkernel, dbias or None) from dz = ∂L/∂z (N, OH, OW, F) and the forward's
    cols (whose column of ones, if there is one, yields dbias), chunk by chunk of the batch
    (``backward_chunks``).

    With ``input_gradient=False`` (the first layer: nobody needs ∂L/∂x) the col2im products
    are skipped and dx is None.
    """
    filters = kernel.shape[-1]
    dtype = np.result_type(dz, kernel)
    dx = np.empty(x_shape, dtype=dtype) if input_gradient else None
    dweights = np.zeros((cols.shape[1], filters), dtype=dtype)
    for images, rows in backward_chunks(len(dz), cols, filters):
        dweights += weight_gradients(dz[images].reshape(-1, filters), cols[rows])
        if input_gradient:
            col2im_matmul(
                dz[images], kernel, dx[images].shape, strides, padding, dilation, dx[images]
            )
    return (dx, *split_weight_gradients(dweights, kernel.shape))


# -- inference: two outputs a row ------------------------------------------------------------
def pairs_apply(x_shape, window_hw, strides, padding, dilation, out_hw=None):
    """Whether ``paired_conv2d_forward`` computes this convolution: stride 1, dilation 1, and
    an even number of output columns (all OW of them, or the ``out_hw`` a pooling reads)."""
    if tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
        return False
    full_hw, _ = window_geometry_2d(x_shape[1:3], window_hw, strides, dilation, padding)
    return (out_hw or full_hw)[1] % 2 == 0


def paired_im2col(x, window_hw, padding="valid", ones_column=False, out_hw=None, reuse=None):
    """x (N, H, W, C) -> (cols, out_hw) for stride 1, dilation 1: row (n, i, j), j < OW/2,
    holds the kh×(kw + 1)×C patch that output pixels (i, 2j) and (i, 2j + 1) read (x padded),

        cols[(n, i, j), (a, b, c)] = x[n, i + a, 2j + b, c],   b < kw + 1     cols (M/2, D₂ [+1])

    D₂ = kh·(kw + 1)·C, then a constant 1 with ``ones_column``. ``out_hw`` (OH', OW'), OW'
    even, at most the convolution's (OH, OW), default all of it: only those outputs get a row
    (a pooling leaves the last row or column out). Written into ``reuse`` if it fits."""
    n, height, width, channels = x.shape
    kh, pw = window_hw[0], window_hw[1] + 1
    full_hw, pads = window_geometry_2d((height, width), window_hw, (1, 1), (1, 1), padding)
    out_h, out_w = out_hw or full_hw
    if out_w % 2 or out_h > full_hw[0] or out_w > full_hw[1]:
        raise ValueError(f"paired_im2col: {out_hw} is not an even part of {full_hw}")
    xp = pad_spatial(x, pads)
    grid_w = out_w // 2
    depth = kh * pw * channels
    shape = (n * out_h * grid_w, depth + ones_column)
    cols = reuse
    if cols is None or cols.shape != shape or cols.dtype != x.dtype:
        cols = np.empty(shape, dtype=x.dtype)
    blocks = cols[:, :depth].reshape(n, out_h, grid_w, kh, pw, channels)
    if channels < _TAPWISE_IM2COL_BELOW_CHANNELS:  # see im2col
        for a in range(kh):
            for b in range(pw):
                blocks[..., a, b, :] = xp[:, a : a + out_h, b : b + 2 * grid_w : 2]
    else:
        step_n, step_h, step_w, step_c = xp.strides
        window = as_strided(
            xp,
            shape=(n, out_h, grid_w, kh, pw, channels),
            strides=(step_n, step_h, 2 * step_w, step_h, step_w, step_c),
            writeable=False,
        )
        np.copyto(blocks, window)
    if ones_column:
        cols[:, depth] = 1
    return cols, (out_h, out_w)


def paired_kernel_matrix(kernel, bias=None, out=None):
    """K₂ (D₂ [+1], 2F), the right-hand factor for ``paired_im2col``'s rows: column block
    p ∈ {0, 1} is output pixel 2j + p's kernel, shifted by p patch columns, zeros elsewhere,

        K₂[(a, b, c), (p, f)] = K[a, b - p, c, f]  for 0 ≤ b - p < kw,  else 0

    (then the bias under both blocks). A quarter (kw = 3) of its products are by zero; the
    nonzero terms of each output's sum come in the order (u, v, c) of z = cols @ W's, the bias
    last, so where the BLAS sums the whole row in one pass the result is bit-identical.

    Written whole (its zeros too) into ``out`` when that has its shape and dtype: a layer
    passes the one it built on the previous call. Rebuilt on every call all the same, so it
    never holds older weights than the kernel's (an optimizer or a user may write into the
    kernel in place). A fresh K₂ made the product after it 4-8x slower at batch 1 (cnn's conv2:
    240-460 against 51-57 µs, its freshly faulted pages; building it in place takes 8-11 µs)."""
    kh, kw, channels, filters = kernel.shape
    shape = (kh * (kw + 1) * channels + (bias is not None), 2 * filters)
    fits = (
        out is not None
        and out.shape == shape
        and out.dtype == kernel.dtype
        and out.flags.c_contiguous
    )
    matrix = out if fits else np.empty(shape, dtype=kernel.dtype)
    paired = matrix[: shape[0] - (bias is not None)].reshape(kh, kw + 1, channels, 2, filters)
    paired[:, :kw, :, 0] = kernel
    paired[:, kw, :, 0] = 0
    paired[:, 1:, :, 1] = kernel
    paired[:, 0, :, 1] = 0
    if bias is not None:
        matrix[-1].reshape(2, filters)[...] = bias
    return matrix


def paired_conv2d_forward(x, kernel, bias=None, padding="valid", out_hw=None, reuse_cols=None):
    """(z (N, OH', OW', F), cols): the convolution (stride 1, dilation 1) as
    ``paired_im2col`` @ ``paired_kernel_matrix``; the inference path of a Conv2D fused with a
    max pooling (``fused.paired_conv2d_max_pool_forward``).

    Why: with F = 32 or 64 filters z = cols @ W is a skinny product. OpenBLAS runs (M/2, D₂)
    (D₂, 2F) in the time of (M, D)(D, F) (its rate rises by about the third more it multiplies,
    the zeros), but the copy into cols moves (kw + 1)/(2·kw) = 2/3 as much, in longer runs:
    lenet's conv2 + pooling 1.07x faster, conv4 1.09-1.13x (benchmarks/bench_skinny.py,
    benchmarks/README.md "Session 6"). Not for training: the weight gradient from paired rows
    ran slower and sums in another order. ``out_hw`` (OH', OW' even) as ``paired_im2col``; z
    comes in the plain order (n, i, j): row (n, i, j) of the product is z[n, i, 2j : 2j + 2].
    """
    cols, (out_h, out_w) = paired_im2col(
        x, kernel.shape[:2], padding, bias is not None, out_hw, reuse_cols
    )
    z = cols @ paired_kernel_matrix(kernel, bias)
    return z.reshape(len(x), out_h, out_w, kernel.shape[-1]), cols


# -- inference: what depends on the input's shape only, worked out once ---------------------
class Im2colLayout:
    """Where every entry of one input shape's cols comes from: the cols of ``im2col`` (plain
    or pool-major order, column-major below 8 channels) or of ``paired_im2col`` (``paired``,
    for the ``out_hw`` a pooling reads), always with the column of ones (a layer without bias
    uses the shorter matrix: ``ones_column`` False). Made once per input shape (a layer keeps
    the ones it met, see ``Conv2D``), ``fill`` then copies x into cols through one strided
    view and nothing else: no geometry, no view building in Python on each call.

    The values are those of ``im2col``/``paired_im2col`` (tests/layers/test_conv_spec_vs_fast.py
    compares them entry by entry), in the same memory order, so every product of them is the
    same. Batch-1 inference runs mostly on per-call work (cnn's Conv2D + pooling 13²×32: its
    product 42 µs, the copy 4, the calls around them as much again): ``fill`` builds its
    view with ``np.ndarray`` (0.4 µs) rather than ``as_strided`` (3.3 µs), one view a call,
    where ``im2col`` builds one a pool-major block (4 for 2×2)."""

    def __init__(
        self,
        x_shape,
        dtype,
        window_hw,
        strides=(1, 1),
        padding="valid",
        dilation=(1, 1),
        pool_size=(1, 1),
        ones_column=True,
        paired=False,
        out_hw=None,
    ):
        n, height, width, channels = x_shape
        full_hw, self.pads = window_geometry_2d(
            (height, width), window_hw, strides, dilation, padding
        )
        (top, bottom), (left, right) = self.pads
        self.padded = top + bottom + left + right > 0
        self.dtype = np.dtype(dtype)
        # The strides of the padded input, C-contiguous (``fill`` makes it so)
        step_c = self.dtype.itemsize
        step_w = channels * step_c
        step_h = (left + width + right) * step_w
        step_n = (top + height + bottom) * step_h
        self.padded_shape = (n, top + height + bottom, left + width + right, channels)
        (kh, kw), (s_h, s_w), (d_h, d_w) = window_hw, strides, dilation
        self.tapwise, self.paired = False, bool(paired)
        if paired:
            if tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
                raise ValueError("Im2colLayout: paired rows need stride 1 and dilation 1")
            out_h, out_w = out_hw or full_hw
            if out_w % 2 or out_h > full_hw[0] or out_w > full_hw[1]:
                raise ValueError(f"Im2colLayout: {out_hw} is not an even part of {full_hw}")
            self.grid = (out_h, out_w)
            self.depth = kh * (kw + 1) * channels
            self.source_shape = (n, out_h, out_w // 2, kh, kw + 1, channels)
            self.source_strides = (step_n, step_h, 2 * step_w, step_h, step_w, step_c)
            rows = n * out_h * (out_w // 2)
        else:
            (p_h, p_w) = pool_size
            self.grid = (full_hw[0] // p_h, full_hw[1] // p_w)
            grid_h, grid_w = self.grid
            self.depth = kh * kw * channels
            self.tapwise = channels < _TAPWISE_IM2COL_BELOW_CHANNELS  # see im2col
            axes = {
                "n": (n, step_n),
                "pool": ((p_h, s_h * step_h), (p_w, s_w * step_w)),
                "grid": ((grid_h, p_h * s_h * step_h), (grid_w, p_w * s_w * step_w)),
                "taps": ((kh, d_h * step_h), (kw, d_w * step_w), (channels, step_c)),
            }
            if self.tapwise:  # the transpose: (kh, kw, C, n, p_h, p_w, GH, GW)
                order = [*axes["taps"], axes["n"], *axes["pool"], *axes["grid"]]
            else:  # (n, p_h, p_w, GH, GW, kh, kw, C)
                order = [axes["n"], *axes["pool"], *axes["grid"], *axes["taps"]]
            self.source_shape = tuple(size for size, _ in order)
            self.source_strides = tuple(step for _, step in order)
            rows = n * p_h * p_w * grid_h * grid_w
        self.ones_column = bool(ones_column)
        self.shape = (rows, self.depth + self.ones_column)
        self.x_shape = tuple(x_shape)

    def fits(self, cols):
        """Whether ``cols`` (None, or a previous call's) can be written into."""
        return (
            cols is not None
            and cols.shape == self.shape
            and cols.dtype == self.dtype
            and (cols.T if self.tapwise else cols).flags.c_contiguous
        )

    def fill(self, x, reuse=None):
        """cols for x (of this layout's shape and dtype), written into ``reuse`` if it fits."""
        if x.shape != self.x_shape or x.dtype != self.dtype:
            raise ValueError(
                f"Im2colLayout of {self.x_shape} {self.dtype}: got {x.shape} {x.dtype}"
            )
        xp = pad_spatial(x, self.pads) if self.padded else x
        if not xp.flags.c_contiguous:
            xp = np.ascontiguousarray(xp)  # the strides above are those of a C-ordered xp
        cols = reuse
        if not self.fits(cols):
            shape = self.shape[::-1] if self.tapwise else self.shape
            cols = np.empty(shape, dtype=self.dtype)
            cols = cols.T if self.tapwise else cols
        if self.tapwise:
            target = cols.T[: self.depth].reshape(self.source_shape)
        else:
            target = cols[:, : self.depth].reshape(self.source_shape)
        # np.ndarray checks the view against xp's buffer: no read outside it is possible.
        source = np.ndarray(self.source_shape, xp.dtype, xp, 0, self.source_strides)
        np.copyto(target, source)
        if self.ones_column:
            cols[:, self.depth] = 1
        return cols


def kernel_matrix_in(kernel, bias=None, out=None):
    """``kernel_matrix``: K.reshape(D, F) itself without a bias, else [K.reshape(D, F); b]
    written into ``out`` when that has its shape and dtype (the previous call's: rewritten
    on every call, so never older than the weights), else into a fresh array."""
    weights = kernel.reshape(-1, kernel.shape[-1])
    if bias is None:
        return weights
    shape = (len(weights) + 1, weights.shape[1])
    dtype = np.result_type(weights, bias)
    if out is None or out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        out = np.empty(shape, dtype=dtype)
    out[:-1] = weights
    out[-1] = bias
    return out


def conv2d_inference(x, kernel, bias, layout, reuse_cols=None, reuse_weights=None):
    """(z (N, OH, OW, F) fresh, cols, weights): ``conv2d_forward`` for an inference pass, with
    the geometry of ``layout`` (an ``Im2colLayout`` of x's shape, plain order) and the weight
    matrix written into ``reuse_weights`` (``kernel_matrix_in``). The same cols and the same
    product, so the same z bit for bit."""
    cols = layout.fill(x, reuse_cols)
    weights = kernel_matrix_in(kernel, bias, reuse_weights)
    z = cols @ weights
    return z.reshape(len(x), *layout.grid, kernel.shape[-1]), cols, weights
