"""A 3×3 convolution (and the 2×2 max pooling after it) by Winograd's minimal filtering
F(2×2, 3×3): the training (and large-batch inference) path of a fused Conv2D + MaxPooling2D
with C ≥ 8 channels, stride 1 (``applies``), and the training path of such a Conv2D alone
when its output is even (``applies_plain``).

Notation of ``handnet.fast.conv``: x (N, H, W, C), kernel g (3, 3, C, F), bias b (F,), the
valid convolution z (N, H - 2, W - 2, F) ("same" pads x first), pooled into (N, PH, PW, F),
PH = (H - 2) // 2. Pooling window (i, j) holds the four conv outputs z[n, 2i + p, 2j + q]
(p, q ∈ {0, 1}); they read the 4×4 input tile d = x[n, 2i : 2i + 4, 2j : 2j + 4, c]. So the
tiles of F(2×2, 3×3) — 2×2 outputs from a 4×4 tile — are exactly the pooling windows, and
only the outputs a window reads are computed.

The 1-D algorithm F(2, 3) computes two outputs y_p = Σ_u d_(p+u) g_u of a 3-tap filter from four
inputs with four multiplications, m_a = (Bᵀd)_a · (Gg)_a:

          [1  0 -1  0]          [ 1    0    0 ]
    Bᵀ =  [0  1  1  0]     G =  [1/2  1/2  1/2]     Aᵀ = [1  1  1  0]
          [0 -1  1  0]          [1/2 -1/2  1/2]          [0  1 -1 -1]
          [0  1  0 -1]          [ 0    0    1 ]

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]        (check: y_0 = m_0 + m_1 + m_2 = d_0 g_0 + d_1 g_1 + d_2 g_2)

Nesting it along rows and columns gives the 2-D tile, and the sum over channels is the one
place where the work is: with U = G g Gᵀ (4, 4, C, F) and V = Bᵀ d B (4, 4, tiles, C),

    M[a, b] = V[a, b] @ U[a, b]         (tiles, C) @ (C, F): 16 matrix products
    y       = Aᵀ M A                   (2, 2, tiles, F): the four conv outputs of each window

16 products of C×F where im2col's product is 9C×F over four times the rows: 2.25 times fewer
multiplications. Bᵀ, Aᵀ hold only 0 and ±1 and G halves, so the transforms are additions;
rounding stays within a small multiple of the direct sum's (tests/layers/test_winograd.py
derives the float32 bound). The bias goes into M[1, 1]: Aᵀ[p, 1] = 1 for both p, so it reaches
every output of the tile once, as an addend of the same sum. The max pooling is then the max
of the four slabs y[p, q], its winner the first (p, q) in row-major window order reaching it
(MaxPooling2D's tie rule), as ``fused.first_max``.

Backward, given the winners' gradient dy[p, q] = dbest · [winner = (p, q)] (the same
``fused.cell_major_to_winners``, whose slab order (p, q) this shares): each step above is
linear, so its gradient is its transpose —

    dM = A dy Aᵀ          dU[a, b] = V[a, b]ᵀ @ dM[a, b]       dV[a, b] = dM[a, b] @ U[a, b]ᵀ
    dg = Gᵀ dU G          db = Σ_tiles dM[1, 1]              dd = B dV Bᵀ, added back onto
                                                              each tile's 4×4 cells of dx

(tiles overlap by two rows and columns, so dx collects two tiles' contributions there).

Without a pooling after it (``applies_plain``: an even output), the same tiles cover z: the
last step of Aᵀ M A writes each tile's four outputs straight into z in the plain order
(``conv2d_forward``), and the backward pass reads each tile's dy straight from dz
(``conv2d_backward``); lenet's conv3 (12²×32 → 64, one thread) 8.9 / 12.0 ms forward /
backward against im2col's 8.4 / 16.8.

Layout: the batch goes through in chunks of a few images (``chunk_images``, about
CHUNK_BYTES of V a chunk) so that a chunk's transforms, products and max run in cache; every
chunk's arrays are views of one flat workspace the layer keeps (``Workspace``) and V of the
whole batch, (16, N, PH, PW, C), stays for the backward pass (its chunk g one contiguous slab
a transform entry). The transforms are NumPy passes over whole slabs: the input's columns
are first split into even and odd (two copies), after which every pass reads whole runs of
PW·C values instead of C.

Measured on lenet's conv2 + pooling (128 images of 26²×32, 32 filters, one thread): forward
18-25 against 33-42 ms and backward 30-36 against 52-71 ms for the im2col path
(``fused.cell_major_conv2d_max_pool_*``); see benchmarks/README.md "Session 8".
"""

import numpy as np

from ..ops.padding import crop_spatial, pad_spatial, window_geometry_2d
from . import conv
from .pool import first_max

# Interpolation points 0, 1, -1 and ∞ (Lavin & Gray, "Fast Algorithms for Convolutional
# Neural Networks", 2015, §4.1).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])

# From this many input channels: below, the 16 products of C×F are too thin for the BLAS and
# the transforms cost more than they save (the cnn's first layer, C = 1, keeps im2col).
FROM_CHANNELS = 8

# A chunk holds about this many bytes of V (16·PH·PW·C values an image): about this CPU's L2
# (1 MiB a core). One thread ran lenet's conv2 fastest at 1 MiB (forward + backward 48 ms;
# 512 KiB 60, 2 MiB 58, 4 MiB 66). Session 8 took 2 MiB for the parts of a step on two threads,
# where each NumPy call holds the GIL and fewer, larger calls won (36 ms against 44 at 1 MiB);
# with the parts in processes (training.parallel.ProcessSplitter) 1 MiB wins there too:
# lenet's step 62.7-70.5 ms against 75.2-78.8 at 2 MiB and 78.4 at 512 KiB (three
# alternations, best of 8 rounds of 20 steps); cnn's within noise (17.1-20.8 ms all three).
CHUNK_BYTES = 1 << 20

# Inference runs F(2×2, 3×3) from this many images: below, im2col's one product and max cost
# less than the transforms' calls (lenet's conv2, one thread: 1 image 0.15 against 0.26 ms, 8
# images equal, 16 2.8 against 2.4, 64 paired rows 15.2 against 10.9).
INFERENCE_FROM_IMAGES = 16


def applies(x_shape, window_hw, strides, padding, dilation, pool_size, groups=1):
    """Whether F(2×2, 3×3) runs this Conv2D + max pooling: a 3×3 kernel, stride 1, dilation
    1, no groups, 2×2 pooling windows, C ≥ FROM_CHANNELS, at least one window."""
    if tuple(window_hw) != (3, 3) or tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
        return False
    if tuple(pool_size) != (2, 2) or groups != 1 or x_shape[-1] < FROM_CHANNELS:
        return False
    (out_h, out_w), _ = window_geometry_2d(x_shape[1:3], window_hw, strides, dilation, padding)
    return out_h >= 2 and out_w >= 2


def kernel_transform(kernel):
    """U = G g Gᵀ, (16, C, F): entry 4a + b is U[a, b]."""
    g = G.astype(kernel.dtype)
    u = np.einsum("au,uvcf,bv->abcf", g, kernel, g)
    return np.ascontiguousarray(u.reshape(16, *kernel.shape[2:]))


def chunk_images(n, grid, channels, itemsize):
    """Images a chunk: about CHUNK_BYTES of V, at least one, at most n."""
    per_image = 16 * grid[0] * grid[1] * channels * itemsize
    return min(max(n, 1), max(1, CHUNK_BYTES // max(per_image, 1)))


class Workspace:
    """The arrays of one chunk, all views of one flat array ``memory`` (the layer keeps it
    and passes it back: fresh arrays page-fault on every step). Made for a padded input
    (n, Hp, Wp, C), F filters, ``chunk`` images."""

    def __init__(self, padded_shape, filters, chunk, dtype, memory=None):
        n, height, width, channels = padded_shape
        grid_h, grid_w = (height - 2) // 2, (width - 2) // 2
        tiles = chunk * grid_h * grid_w
        shapes = {
            "even": (chunk, height, grid_w + 1, channels),  # x[:, :, 0::2] (2·PW + 2 columns)
            "odd": (chunk, height, grid_w + 1, channels),  # x[:, :, 1::2]
            "columns": (4, chunk, height, grid_w, channels),  # Bᵀ along the columns
            "m": (16, tiles, filters),  # the products M (dM backward)
            "rows": (8, tiles, filters),  # Aᵀ M of the output transform (dy's sums backward)
            "cells": (4, tiles, filters),  # y, the four conv outputs a window (dy backward)
            "dv": (16, tiles, channels),
            "v": (16, chunk, grid_h, grid_w, channels),  # V of a chunk (inference)
        }
        sizes = {key: int(np.prod(shape)) for key, shape in shapes.items()}
        total = sum(sizes.values())
        if memory is None or memory.size != total or memory.dtype != dtype:
            memory = np.empty(total, dtype=dtype)
        self.memory, self.chunk, self.grid = memory, chunk, (grid_h, grid_w)
        start = 0
        for key, shape in shapes.items():
            setattr(self, key, memory[start : start + sizes[key]].reshape(shape))
            start += sizes[key]

    @classmethod
    def like(cls, padded_shape, filters, dtype, memory=None):
        grid = ((padded_shape[1] - 2) // 2, (padded_shape[2] - 2) // 2)
        chunk = chunk_images(padded_shape[0], grid, padded_shape[3], np.dtype(dtype).itemsize)
        return cls(padded_shape, filters, chunk, dtype, memory)


def _chunks(n, chunk):
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


def input_transform(x, work, out):
    """V = Bᵀ d B of every tile of x (n, H, W, C), n ≤ the chunk, into out (16, n, PH, PW, C):
    along the columns first (on the even and odd columns, copied apart), then the rows, each
    step one NumPy call for all four entries (larger calls run two threads at once: a call
    of a few thousand values holds the GIL for most of its time)."""
    n = len(x)
    grid_h, grid_w = work.grid
    even, odd, columns = work.even[:n], work.odd[:n], work.columns[:, :n]
    np.copyto(even, x[:, :, 0 : 2 * grid_w + 2 : 2])
    np.copyto(odd, x[:, :, 1 : 2 * grid_w + 2 : 2])
    # column 2j + s of tile j: s = 0, 1, 2, 3 -> even[j], odd[j], even[j + 1], odd[j + 1]
    _apply_b_t(even[:, :, :grid_w], odd[:, :, :grid_w], even[:, :, 1:], odd[:, :, 1:], columns)
    # row 2i + r of tile i, for the four column entries b at once: out[a, b] = V[a, b]
    rows = [columns[:, :, r : r + 2 * grid_h : 2] for r in range(4)]
    _apply_b_t(*rows, out.reshape(4, 4, *out.shape[1:]))
    return out


def _apply_b_t(d0, d1, d2, d3, out):
    """out[a] = (Bᵀ d)_a: d0 - d2, d1 + d2, d2 - d1, d1 - d3."""
    np.subtract(d0, d2, out=out[0])
    np.add(d1, d2, out=out[1])
    np.subtract(d2, d1, out=out[2])
    np.subtract(d1, d3, out=out[3])


def output_transform(m, rows, out):
    """y = Aᵀ M A: m (16, T, F) -> out (2, 2, images, PH, PW, F) (T = images·PH·PW), entry
    (p, q) the output (p, q) of every tile, any strides (a view of z in the plain order, or
    the max's four slabs); rows (8, T, F) holds Aᵀ M. One call a step for all entries, as
    ``input_transform``."""
    m = m.reshape(4, 4, *out.shape[2:])
    rows = rows.reshape(2, 4, *out.shape[2:])
    _apply_a_t(m[0], m[1], m[2], m[3], rows[0], rows[1])  # (Aᵀ M)[p, b], all b
    _apply_a_t(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], out[:, 0], out[:, 1])  # all p
    return out


def _apply_a_t(m0, m1, m2, m3, out0, out1):
    """(Aᵀ m): out0 = m0 + m1 + m2, out1 = m1 - m2 - m3."""
    np.add(m0, m1, out=out0)
    out0 += m2
    np.subtract(m1, m2, out=out1)
    out1 -= m3


def _tile_products(xp, u, bias, work, v):
    """M (16, T, F) of a chunk of the padded input xp (images, Hp, Wp, C): V = Bᵀ d B into v
    (16, images, PH, PW, C), M = V @ U (16 products), the bias added into M[1, 1] (Aᵀ[p, 1] =
    1 for both p: one addend of every output of the tile)."""
    rows = len(xp) * work.grid[0] * work.grid[1]
    input_transform(xp, work, v)
    m = np.matmul(v.reshape(16, rows, -1), u, out=work.m[:, :rows])
    if bias is not None:
        m[5] += bias
    return m


def _padded(x_shape, padding):
    """(padded shape, pads) of a 3×3 stride-1 convolution's input."""
    (_, pads) = window_geometry_2d(x_shape[1:3], (3, 3), (1, 1), (1, 1), padding)
    (top, bottom), (left, right) = pads
    n, height, width, channels = x_shape
    return (n, top + height + bottom, left + width + right, channels), pads


def _start(x, kernel, padding, memory):
    """(xp, work, U) of a forward pass: x padded (and cast to the result's dtype), the
    workspace (in ``memory`` if it fits), G g Gᵀ."""
    (_, pads) = _padded(x.shape, padding)
    dtype = np.result_type(x, kernel)
    xp = pad_spatial(x.astype(dtype, copy=False), pads)
    work = Workspace.like(xp.shape, kernel.shape[-1], dtype, memory)
    return xp, work, kernel_transform(kernel.astype(dtype, copy=False))


def _fresh(array, shape, dtype):
    """``array`` if it has this shape and dtype (a previous call's), else a new one."""
    if array is None or array.shape != shape or array.dtype != dtype:
        return np.empty(shape, dtype=dtype)
    return array


def conv2d_max_pool_forward(
    x, kernel, bias=None, padding="valid", find_winners=True, reuse_tiles=None,
    reuse_winner=None, reuse_memory=None,
):  # fmt: skip
    """(best, tiles, winner, memory) for x (N, H, W, C), kernel (3, 3, C, F), bias (F,) or
    None: best (N, PH, PW, F) the max pooling of the convolution, fresh; with
    ``find_winners`` (training) tiles = V (16, N, PH, PW, C) and winner (N, PH, PW, F) for the
    backward pass, written into ``reuse_tiles`` and ``reuse_winner`` when they fit, else
    (inference) both None, V kept a chunk at a time and only the max taken; memory the
    workspace's flat array (``reuse_memory`` if it fits)."""
    xp, work, u = _start(x, kernel, padding, reuse_memory)
    (n, filters), (grid_h, grid_w), dtype = (len(x), kernel.shape[-1]), work.grid, xp.dtype
    pooled = (n, grid_h, grid_w, filters)
    tiles = winner = None
    if find_winners:
        tiles = _fresh(reuse_tiles, (16, n, grid_h, grid_w, xp.shape[-1]), dtype)
        winner = _fresh(reuse_winner, pooled, np.uint8)
    best = np.empty(pooled, dtype=dtype)
    for images in _chunks(n, work.chunk):
        count = images.stop - images.start
        rows = count * grid_h * grid_w
        v = work.v[:, :count] if tiles is None else tiles[:, images]
        m = _tile_products(xp[images], u, bias, work, v)
        cells = work.cells[:, :rows].reshape(2, 2, count, grid_h, grid_w, filters)
        cells = output_transform(m, work.rows[:, :rows], cells).reshape(4, *cells.shape[2:])
        if find_winners:
            first_max(cells, winner[images], out=best[images])
        else:
            np.maximum(cells[0], cells[1], out=best[images])
            np.maximum(best[images], cells[2], out=best[images])
            np.maximum(best[images], cells[3], out=best[images])
    return best, tiles, winner, work.memory


def conv2d_max_pool_backward(
    dbest, tiles, winner, kernel, x_shape, padding="valid", input_gradient=True, first_cell=0,
    use_bias=True, reuse_memory=None,
):  # fmt: skip
    """(dx or None, dkernel, dbias or None, memory) from dbest (N, PH, PW, F) and the
    forward's tiles and winner; ``first_cell`` the label of window cell 0 in winner (1 for
    ``fused.relu_winners``, whose 0 means no cell)."""
    filters = kernel.shape[-1]

    def dy_of(images, work):  # dy[p, q] = dbest · [winner = (p, q)], into the workspace
        count = images.stop - images.start
        dy = work.cells[:, : count * work.grid[0] * work.grid[1]]
        dy = dy.reshape(4, count, *work.grid, filters)
        for cell in range(4):
            np.multiply(dbest[images], winner[images] == cell + first_cell, out=dy[cell])
        return dy.reshape(2, 2, *dy.shape[1:])

    dtype = np.result_type(dbest, kernel)
    options = (padding, input_gradient, use_bias, dtype, reuse_memory)
    return _backward(dy_of, tiles, kernel, x_shape, *options)


def applies_plain(x_shape, window_hw, strides, padding, dilation, groups=1):
    """Whether F(2×2, 3×3) trains this Conv2D without a pooling after it: ``applies``'s
    kernel, stride, dilation, groups and channels, and an even number of output rows and
    columns (the 2×2 tiles cover z exactly)."""
    if not applies(x_shape, window_hw, strides, padding, dilation, (2, 2), groups):
        return False
    (out_h, out_w), _ = window_geometry_2d(x_shape[1:3], window_hw, strides, dilation, padding)
    return out_h % 2 == 0 and out_w % 2 == 0


def conv2d_forward(x, kernel, bias=None, padding="valid", reuse_tiles=None, reuse_memory=None):
    """(z, tiles, memory): z (N, OH, OW, F) the convolution, fresh, OH and OW even
    (``applies_plain``), its tile (i, j) the outputs z[:, 2i : 2i + 2, 2j : 2j + 2] written
    straight from Aᵀ M A; tiles = V (16, N, OH/2, OW/2, C) for the backward pass."""
    xp, work, u = _start(x, kernel, padding, reuse_memory)
    (n, filters), (grid_h, grid_w), dtype = (len(x), kernel.shape[-1]), work.grid, xp.dtype
    tiles = _fresh(reuse_tiles, (16, n, grid_h, grid_w, xp.shape[-1]), dtype)
    z = np.empty((n, 2 * grid_h, 2 * grid_w, filters), dtype=dtype)
    for images in _chunks(n, work.chunk):
        m = _tile_products(xp[images], u, bias, work, tiles[:, images])
        output_transform(m, work.rows[:, : m.shape[1]], _tile_view(z[images]))
    return z, tiles, work.memory


def conv2d_backward(dz, tiles, kernel, x_shape, padding="valid", input_gradient=True,
                    use_bias=True, reuse_memory=None):  # fmt: skip
    """(dx or None, dkernel, dbias or None, memory) from dz = ∂L/∂z (N, OH, OW, F) after
    ``conv2d_forward``: each tile's dy read straight from dz."""
    dz = np.ascontiguousarray(dz)
    options = (padding, input_gradient, use_bias, np.result_type(dz, kernel), reuse_memory)
    return _backward(lambda images, _: _tile_view(dz[images]), tiles, kernel, x_shape, *options)


def _tile_view(z):
    """The view (2, 2, n, OH/2, OW/2, F) of z (n, OH, OW, F): [p, q, :, i, j] = z[:, 2i + p,
    2j + q], ``conv.pool_major``'s 2×2 view with the window cell first."""
    return conv.pool_major(z, (2, 2)).transpose(1, 2, 0, 3, 4, 5)


def _backward(dy_of, tiles, kernel, x_shape, padding, input_gradient, use_bias, dtype, memory):
    """(dx or None, dkernel, dbias or None, memory): the backward pass of either layout, chunk
    by chunk, ``dy_of(images, work)`` giving a chunk's dy (2, 2, images, PH, PW, F)."""
    backward = _Backward(tiles, kernel, x_shape, padding, input_gradient, use_bias, dtype, memory)
    for images in _chunks(x_shape[0], backward.work.chunk):
        backward.chunk(images, dy_of(images, backward.work))
    return (*backward.result(), backward.work.memory)


class _Backward:
    """A chunk's dy (2, 2, images, PH, PW, F) -> dM = A dy Aᵀ, db += Σ dM[1, 1], dU += Vᵀ dM,
    and dx's chunk from dV = dM Uᵀ; then the sums' results."""

    def __init__(self, tiles, kernel, x_shape, padding, input_gradient, use_bias, dtype, memory):
        padded, self.pads = _padded(x_shape, padding)
        self.tiles, self.dtype = tiles, dtype
        self.channels, self.filters = kernel.shape[2:]
        self.work = Workspace.like(padded, self.filters, dtype, memory)
        self.dxp = np.empty(padded, dtype=dtype) if input_gradient else None
        self.du = np.zeros((16, self.channels, self.filters), dtype=dtype)
        self.dbias = np.zeros(self.filters, dtype=dtype) if use_bias else None
        self.u_t = kernel_transform(kernel).transpose(0, 2, 1)

    def chunk(self, images, dy):
        work, grid = self.work, self.work.grid
        count = images.stop - images.start
        rows = count * grid[0] * grid[1]
        dm = _output_transform_backward(dy, work, rows)
        if self.dbias is not None:
            self.dbias += np.ones(rows, dtype=self.dtype) @ dm[5]
        v = self.tiles[:, images].reshape(16, rows, self.channels)
        self.du += np.matmul(v.transpose(0, 2, 1), dm)
        if self.dxp is not None:
            dv = np.matmul(dm, self.u_t, out=work.dv[:, :rows])
            dv = dv.reshape(16, count, *grid, self.channels)
            _input_transform_backward(dv, work, self.dxp[images])

    def result(self):
        """(dx or None, dkernel, dbias or None): dg = Gᵀ dU G; dx without the padding."""
        g = G.astype(self.dtype)
        du = self.du.reshape(4, 4, self.channels, self.filters)
        dkernel = np.einsum("au,abcf,bv->uvcf", g, du, g)
        dx = None
        if self.dxp is not None:  # a copy without the padding ("same"), or dxp itself
            dx = np.ascontiguousarray(crop_spatial(self.dxp, self.pads))
        return dx, dkernel, self.dbias


def _output_transform_backward(dy, work, rows):
    """dM = A dy Aᵀ (16, T, F) from dy (2, 2, images, PH, PW, F) (entry (p, q), any strides):
    along q first (e = dy A's rows, both p at once), then along p (all b at once)."""
    e = work.rows[:, :rows].reshape(2, 4, *dy.shape[2:])
    dm = work.m[:, :rows].reshape(4, 4, *dy.shape[2:])
    _apply_a(dy[:, 0], dy[:, 1], e.swapaxes(0, 1))  # e[p, b] = (dy[p] A)_b
    _apply_a(e[0], e[1], dm)  # dm[a, b] = (A e[:, b])_a
    return dm.reshape(16, rows, -1)


def _apply_a(y0, y1, out):
    """out[a] = (A y)_a: y0, y0 + y1, y0 - y1, -y1."""
    np.copyto(out[0], y0)
    np.add(y0, y1, out=out[1])
    np.subtract(y0, y1, out=out[2])
    np.negative(y1, out=out[3])


def _input_transform_backward(dv, work, dx):
    """dx (n, H, W, C) = Σ over tiles of B dV Bᵀ put back on the tile's 4×4 cells, the exact
    transpose of ``input_transform``: the rows first (into ``work.columns``, all four column
    entries at once), then the columns (into the even and odd columns), then the two
    interleaved into dx. dv is overwritten."""
    n = len(dx)
    grid_h, grid_w = work.grid
    columns = work.columns[:, :n]
    _apply_b(*dv.reshape(4, 4, *dv.shape[1:]), columns, axis=2, count=grid_h)
    even, odd = work.even[:n], work.odd[:n]
    _apply_b(*columns, (even, odd), axis=2, count=grid_w, last_axis=True)
    np.copyto(dx[:, :, 0 : 2 * grid_w + 2 : 2], even)
    np.copyto(dx[:, :, 1 : 2 * grid_w + 2 : 2], odd)
    dx[:, :, 2 * grid_w + 2 :] = 0


def _apply_b(v0, v1, v2, v3, out, axis, count, last_axis=False):
    """The transpose of ``_apply_b_t`` along ``axis`` of ``out``, tiles ``count`` apart by 2:
    tile k's inputs d_s sit at 2k + s, so d0, d2 land on the even positions (k and k + 1), d1,
    d3 on the odd ones:  dd0 = v0,  dd1 = v1 - v2 + v3,  dd2 = v1 + v2 - v0,  dd3 = -v3.
    ``out`` an array whose positions along ``axis`` interleave (the rows), or the pair (even,
    odd) of arrays (the columns, ``last_axis``: then ``axis`` is theirs); v1 is overwritten."""
    if last_axis:
        even, odd = out
    else:
        index = [slice(None)] * out.ndim
        index[axis] = slice(0, 2 * count + 2, 2)
        even = out[tuple(index)]
        index[axis] = slice(1, 2 * count + 2, 2)
        odd = out[tuple(index)]
        index[axis] = slice(2 * count + 2, None)
        out[tuple(index)] = 0  # rows no tile reads (H - 2 odd)
    first, last, rest = ([slice(None)] * even.ndim for _ in range(3))
    first[axis], last[axis], rest[axis] = slice(0, count), count, slice(1, None)
    first, last, rest = tuple(first), tuple(last), tuple(rest)
    np.subtract(v1, v2, out=odd[first])
    odd[first] += v3
    odd[last] = 0
    odd[rest] -= v3
    v1 += v2
    v1 -= v0
    np.copyto(even[first], v0)
    even[last] = 0
    even[rest] += v1
