"""Skinny convolution products (issue 17 §2): the zoo's conv layers, forward, weight gradient
and input gradient, the layers' fast path against other ways to lay the same products out.

    nice -n 10 python benchmarks/bench_skinny.py [--batch 128] [--repeats 7] [--json F]

One BLAS thread, CPU time (time.process_time: other jobs on a shared machine disturb it least),
best of ``--repeats``, the variants of one layer alternating in one process. Shapes: every
3×3 "valid" stride-1 Conv2D of cnn, lenet and best (random data, batch ``--batch``); "pool"
marks a layer that runs fused with a 2×2 max pooling (pool-major rows, the last odd row and
column not computed), "nobias" best's convolutions (a BatchNormalization follows).

Variants (each checked against the fast path's result before it is timed):

forward  z = cols @ W
  base      handnet.fast.conv.im2col (pool-major when pooled) + one product: (M, D+1)(D+1, F)
  blk1x2    2 horizontally adjacent outputs a row: the row holds their 3×4×C patch and the
            kernel matrix is (12C+1, 2F) with zeros where a pixel's window misses a patch
            column: M/2 rows, 2F columns, 25 % of its multiplications by zero
  blk2x2    2×2 outputs a row (the pooling window, when pooled): 4×4×C patch, (16C+1, 4F),
            M/4 rows, 44 % of the multiplications by zero
dW  [dK; db] from the forward's cols and dz (M, F)
  base      handnet.fast.conv.weight_gradients chunk by chunk (conv.backward_chunks), as the
            layer runs it; colsT: colsᵀ @ dz; whole: one product over the whole batch
  blk2x2    blocked colsᵀ @ dz in blocked layout (16C+1, 4F), then the 4 blocks folded
dx  ∂L/∂x from dz
  base      handnet.fast.conv.col2im_matmul chunk by chunk: kh·kw products (M, F)(F, C) and
            as many strided slice-adds
  tconv     the transposed convolution: im2col of dz zero-padded by kh-1, kw-1 (valid), times
            the flipped kernel (kh·kw·F, C): one product (N·H·W, 9F)(9F, C), no slice-adds
  blk1x2    dz as (M/2, 2F) rows (its own layout) times each of the 12 patch taps' (2F, C)
            blocks of the 1×2 blocked kernel, 12 slice-adds (stride 2 along the width)
  blk2x2    dz in 2×2 blocked layout (M/4, 4F) times each of the 16 patch taps' (4F, C)
            blocks of the blocked kernel, 16 slice-adds of stride 2
inference  the layer's inference forward (Conv2D.forward / forward_max_pooled, training=False)
  before    conv.conv2d_forward, or fused.conv2d_max_pool_inference along pool-major cols
  after     conv.paired_conv2d_forward, or fused.paired_conv2d_max_pool_forward (blk1x2 rows)
winograd  F(2×2, 3×3), C ≥ 32 only: the 16 products (T, C)(C, F) of T = N·⌈OH/2⌉·⌈OW/2⌉
          tiles alone (a lower bound on its time), then the whole forward pass with the
          input and output transforms (NumPy passes over strided tile views) and the kernel's
          transform G g Gᵀ

--models cnn lenet best: then model.predict of ``--images`` random images, the paired
inference path against the plain one (conv.pairs_apply patched to say no), alternating.

GFLOP/s are useful multiply-adds × 2 ÷ time (zeros not counted); "done" counts what ran.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import set_threads  # noqa: E402

set_threads(1)

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

import cpu  # noqa: E402
from handnet.fast import conv, fused  # noqa: E402

# (name, (H, W, C), F, fused 2×2 max pooling, bias)
LAYERS = [
    ("cnn.conv1", (28, 28, 1), 32, True, True),
    ("cnn.conv2", (13, 13, 32), 64, True, True),
    ("lenet.conv1", (28, 28, 1), 32, False, True),
    ("lenet.conv2", (26, 26, 32), 32, True, True),
    ("lenet.conv3", (12, 12, 32), 64, False, True),
    ("lenet.conv4", (10, 10, 64), 64, True, True),
    ("best.conv2", (26, 26, 32), 32, False, False),
    ("best.conv4", (10, 10, 64), 64, False, False),
]
KH = KW = 3


def timed(function):
    start = time.process_time()
    function()
    return time.process_time() - start


def race(variants, repeats):
    """{name: best CPU seconds}, the variants alternating round by round."""
    for function in variants.values():
        function()  # warm-up: pages, caches
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeats):
        for name, function in variants.items():
            best[name] = min(best[name], timed(function))
    return best


def sgemm_process_time(n, repeats):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    seconds = race({"sq": lambda: np.matmul(a, a, out=out)}, repeats)["sq"]
    return 2 * n**3 / seconds / 1e9


# -- blocked im2col: bh×bw outputs a row --------------------------------------------------------
def blocked_cols(x, block, grid, bias, out=None):
    """cols (N·GH·GW, ph·pw·C [+1]): row (n, g, h) holds x[n, g·bh : g·bh + ph, h·bw : ..., :],
    ph = kh + bh - 1, the patch of the bh×bw outputs (g·bh + i, h·bw + j)."""
    n, _, _, c = x.shape
    (bh, bw), (gh, gw) = block, grid
    ph, pw = KH + bh - 1, KW + bw - 1
    depth = ph * pw * c
    shape = (n * gh * gw, depth + bias)
    cols = out if out is not None else np.empty(shape, dtype=x.dtype)
    view = cols[:, :depth].reshape(n, gh, gw, ph, pw, c)
    if c < 8:
        for a in range(ph):
            for b in range(pw):
                view[..., a, b, :] = x[:, a : a + bh * gh : bh, b : b + bw * gw : bw]
    else:
        sn, sh, sw, sc = x.strides
        window = as_strided(x, (n, gh, gw, ph, pw, c), (sn, bh * sh, bw * sw, sh, sw, sc))
        np.copyto(view, window)
    if bias:
        cols[:, depth] = 1
    return cols


def blocked_kernel(kernel, bias, block):
    """Kb (ph·pw·C [+1], bh·bw·F): Kb[(a, b, c), (i, j, f)] = K[a - i, b - j, c, f], else 0."""
    _, _, c, f = kernel.shape
    bh, bw = block
    ph, pw = KH + bh - 1, KW + bw - 1
    kb = np.zeros((ph, pw, c, bh, bw, f), dtype=kernel.dtype)
    for i in range(bh):
        for j in range(bw):
            kb[i : i + KH, j : j + KW, :, i, j, :] = kernel
    kb = kb.reshape(ph * pw * c, bh * bw * f)
    if bias is not None:
        kb = np.concatenate([kb, np.tile(bias, bh * bw)[None]])
    return kb


def fold_blocked_dw(dwb, c, f, block, bias):
    """dW (9C [+1], F) from the blocked (ph·pw·C [+1], bh·bw·F) gradient: the sum over the
    block's outputs (i, j) of their kernel's rows (a - i, b - j)."""
    bh, bw = block
    ph, pw = KH + bh - 1, KW + bw - 1
    depth = ph * pw * c
    blocks = dwb[:depth].reshape(ph, pw, c, bh, bw, f)
    dw = np.zeros((KH, KW, c, f), dtype=dwb.dtype)
    for i in range(bh):
        for j in range(bw):
            dw += blocks[i : i + KH, j : j + KW, :, i, j, :]
    dw = dw.reshape(-1, f)
    if bias:
        dw = np.concatenate([dw, dwb[depth].reshape(bh * bw, f).sum(0, keepdims=True)])
    return dw


# -- Winograd F(2×2, 3×3), forward: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 4×4 input tile d --------
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)


def winograd_kernel(kernel):
    """U (16, C, F): G g Gᵀ for every (c, f)."""
    u = np.einsum("ai,ijcf,bj->abcf", WINOGRAD_G, kernel, WINOGRAD_G)
    return np.ascontiguousarray(u.reshape(16, *kernel.shape[2:]))


def _bt(d, out):
    """Bᵀ along one axis given as its four slices d: out[0..3] = d0-d2, d1+d2, d2-d1, d1-d3."""
    np.subtract(d[0], d[2], out=out[0])
    np.add(d[1], d[2], out=out[1])
    np.subtract(d[2], d[1], out=out[2])
    np.subtract(d[1], d[3], out=out[3])


def winograd_forward(x, u, bias, tiles_hw):
    """The 2×2 output tiles y (2, 2, N·TH·TW, F) of a valid 3×3 convolution: input transform
    on a strided view of the 4×4 tiles, the 16 products (T, C)(C, F), output transform."""
    n, _, _, c = x.shape
    th, tw = tiles_hw
    sn, sh, sw, sc = x.strides
    d = as_strided(x, (n, th, tw, 4, 4, c), (sn, 2 * sh, 2 * sw, sh, sw, sc))
    r = np.empty((4, n, th, tw, 4, c), np.float32)
    _bt([d[:, :, :, i] for i in range(4)], r)
    v = np.empty((4, 4, n, th, tw, c), np.float32)
    for i in range(4):
        _bt([r[i][..., j, :] for j in range(4)], v[i])
    m = np.matmul(v.reshape(16, -1, c), u).reshape(4, 4, -1, u.shape[-1])
    s = np.empty((2, 4, *m.shape[2:]), np.float32)  # Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]
    np.add(m[0], m[1], out=s[0])
    s[0] += m[2]
    np.subtract(m[1], m[2], out=s[1])
    s[1] -= m[3]
    y = np.empty((2, 2, *m.shape[2:]), np.float32)
    for a in range(2):
        np.add(s[a, 0], s[a, 1], out=y[a, 0])
        y[a, 0] += s[a, 2]
        np.subtract(s[a, 1], s[a, 2], out=y[a, 1])
        y[a, 1] -= s[a, 3]
    if bias is not None:
        y += bias
    return y


def chunks(n, bytes_per_image):
    size = max(1, conv.CHUNK_BYTES // bytes_per_image)
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def measure(layer, batch, repeats, rng):
    name, (h, w, c), f, pooled, has_bias = layer
    x = rng.standard_normal((batch, h, w, c), dtype=np.float32)
    kernel = rng.standard_normal((KH, KW, c, f), dtype=np.float32) * 0.1
    bias = rng.standard_normal(f, dtype=np.float32) if has_bias else None
    oh, ow = h - KH + 1, w - KW + 1
    if pooled:  # the fused path computes only the outputs a window reads
        oh, ow = oh // 2 * 2, ow // 2 * 2
    pool = (2, 2) if pooled else (1, 1)
    m, depth = batch * oh * ow, KH * KW * c
    useful = 2 * m * depth * f  # multiply-adds of the convolution, ×2
    weights = conv.kernel_matrix(kernel, bias)
    rows = {}

    # -- forward --------------------------------------------------------------------------
    cols, _ = conv.im2col(x, (KH, KW), ones_column=has_bias, pool_size=pool)
    z = cols @ weights
    fwd = {"base": lambda: np.matmul(
        conv.im2col(x, (KH, KW), ones_column=has_bias, pool_size=pool, reuse=cols)[0],
        weights, out=z)}
    done = {"base": 2 * len(cols) * cols.shape[1] * f}
    product_only = {"base": lambda: np.matmul(cols, weights, out=z)}
    plain_z = conv.conv2d_forward(x, kernel, bias)[0][:, :oh, :ow]
    for label, block in (("blk1x2", (1, 2)), ("blk2x2", (2, 2))):
        if oh % block[0] or ow % block[1]:
            continue
        grid = (oh // block[0], ow // block[1])
        kb = blocked_kernel(kernel, bias, block)
        bcols = blocked_cols(x, block, grid, has_bias)
        bz = bcols @ kb
        got = bz.reshape(batch, *grid, *block, f).transpose(0, 1, 3, 2, 4, 5)
        np.testing.assert_allclose(got.reshape(plain_z.shape), plain_z, rtol=1e-4, atol=1e-4)
        fwd[label] = (lambda b=block, g=grid, k=kb, bc=bcols, o=bz:
                      np.matmul(blocked_cols(x, b, g, has_bias, out=bc), k, out=o))
        product_only[label] = lambda k=kb, bc=bcols, o=bz: np.matmul(bc, k, out=o)
        done[label] = 2 * bcols.shape[0] * bcols.shape[1] * kb.shape[1]
    for kind, variants in (("forward", fwd), ("fwd product", product_only)):
        for label, seconds in race(variants, repeats).items():
            rows[(kind, label)] = (seconds, useful, done[label])

    # -- what the layer runs for inference: before (pool-major im2col) and after (paired) ------
    buffers = {}
    if pooled:
        layout = conv.Im2colLayout(x.shape, x.dtype, kernel.shape[:2], pool_size=(2, 2),
                                   ones_column=bias is not None)

        def before():
            best, buffers["plain"], buffers["cells"], _ = fused.conv2d_max_pool_inference(
                x, kernel, bias, layout, (2, 2), buffers.get("plain"), buffers.get("cells"))
            return best

        def after():
            best, buffers["paired"] = fused.paired_conv2d_max_pool_forward(
                x, kernel, bias, reuse_cols=buffers.get("paired"))
            return best
    else:
        def before():
            z, buffers["plain"] = conv.conv2d_forward(x, kernel, bias,
                                                      reuse_cols=buffers.get("plain"))
            return z

        def after():
            z, buffers["paired"] = conv.paired_conv2d_forward(x, kernel, bias,
                                                              reuse_cols=buffers.get("paired"))
            return z
    window = ((KH, KW), (1, 1), "valid", (1, 1))
    grid = fused.pooled_grid(x.shape, *window, pool) if pooled else None
    if conv.pairs_apply(x.shape, *window, grid):
        same = np.array_equal(before(), after())
        np.testing.assert_allclose(after(), before(), rtol=1e-4, atol=1e-4)
        for label, seconds in race({"before": before, "after (paired)": after}, repeats).items():
            tag = f"{label}, bit-identical {same}" if label != "before" else label
            ran = done["base" if label == "before" else "blk1x2"]
            rows[("inference", tag)] = (seconds, useful, ran)

    # -- dW ---------------------------------------------------------------------------------
    dz = rng.standard_normal((batch, oh, ow, f), dtype=np.float32)
    dz_rows = (conv.pool_major(dz, pool).reshape(-1, f) if pooled else dz.reshape(-1, f)).copy()
    per_image = len(cols) // batch
    parts = chunks(batch, per_image * (cols.shape[1] + f) * 4)

    def dw_base():
        dw = np.zeros((cols.shape[1], f), dtype=np.float32)
        for p in parts:
            r = slice(p.start * per_image, p.stop * per_image)
            dw += conv.weight_gradients(dz_rows[r], cols[r])
        return dw

    reference_dw = cols.T.astype(np.float64) @ dz_rows
    dwv = {"base": dw_base, "colsT whole": lambda: cols.T @ dz_rows,
           "dzT whole": lambda: (dz_rows.T @ cols).T}
    dw_done = {k: 2 * len(cols) * cols.shape[1] * f for k in dwv}
    if oh % 2 == 0 and ow % 2 == 0:
        block, grid = (2, 2), (oh // 2, ow // 2)
        bcols = blocked_cols(x, block, grid, has_bias)
        # dz in blocked layout: row (n, g, h), columns (i, j, f) = dz[n, 2g + i, 2h + j, f]
        dzb = dz.reshape(batch, grid[0], 2, grid[1], 2, f).transpose(0, 1, 3, 2, 4, 5)
        dzb = np.ascontiguousarray(dzb).reshape(-1, 4 * f)
        bper = len(bcols) // batch
        bparts = chunks(batch, bper * (bcols.shape[1] + 4 * f) * 4)

        def dw_blocked():
            dwb = np.zeros((bcols.shape[1], 4 * f), dtype=np.float32)
            for p in bparts:
                r = slice(p.start * bper, p.stop * bper)
                dwb += conv.weight_gradients(dzb[r], bcols[r])
            return fold_blocked_dw(dwb, c, f, block, has_bias)

        dwv["blk2x2"] = dw_blocked
        dw_done["blk2x2"] = 2 * len(bcols) * bcols.shape[1] * 4 * f
    for label, function in dwv.items():
        np.testing.assert_allclose(function(), reference_dw, rtol=1e-3, atol=1e-2)
    for label, seconds in race(dwv, repeats).items():
        rows[("dW", label)] = (seconds, useful, dw_done[label])

    # -- dx (not for a first layer: C = 1 needs none) --------------------------------------------
    if c > 1:
        x_per_image = h * w * c * 4
        dz_parts = chunks(batch, oh * ow * (depth + f) * 4)
        dx = np.empty_like(x)

        def dx_base():
            for p in dz_parts:
                dx[p] = conv.col2im_matmul(dz[p], kernel, dx[p].shape)
            return dx

        flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2).reshape(KH * KW * f, c).copy()
        pad = ((0, 0), (KH - 1, KH - 1 + h - KH + 1 - oh), (KW - 1, KW - 1 + w - KW + 1 - ow),
               (0, 0))
        t_parts = chunks(batch, h * w * (KH * KW * f + c) * 4)
        t_bufs = {}

        def dx_tconv():
            for p in t_parts:
                dzp = np.pad(dz[p], pad)
                tcols, _ = conv.im2col(dzp, (KH, KW), reuse=t_bufs.get(p.stop - p.start))
                t_bufs[p.stop - p.start] = tcols
                np.matmul(tcols, flipped, out=dx[p].reshape(-1, c))
            return dx

        dxv = {"base": dx_base, "tconv": dx_tconv}
        dx_done = {"base": 2 * m * f * c * KH * KW,
                   "tconv": 2 * batch * h * w * KH * KW * f * c}
        if ow % 2 == 0:  # 1×2: dz rows (n, i, j) of 2F, 3×4 patch taps
            kp = blocked_kernel(kernel, None, (1, 2)).reshape(3, 4, c, 2 * f)
            kp_t = [[np.ascontiguousarray(kp[a, b].T) for b in range(4)] for a in range(3)]
            pw_ = ow // 2
            p_parts = chunks(batch, oh * pw_ * (12 * c + 2 * f) * 4)
            dz_pairs = dz.reshape(-1, 2 * f)

            def dx_paired():
                for p in p_parts:
                    n = p.stop - p.start
                    dxp = np.zeros((n, h, w, c), dtype=np.float32)
                    rows_ = dz_pairs[p.start * oh * pw_ : p.stop * oh * pw_]
                    for a in range(3):
                        for b in range(4):
                            blk = rows_ @ kp_t[a][b]
                            dxp[:, a : a + oh, b : b + 2 * pw_ : 2] += blk.reshape(n, oh, pw_, c)
                    dx[p] = dxp
                return dx

            dxv["blk1x2"] = dx_paired
            dx_done["blk1x2"] = 2 * (m // 2) * 2 * f * c * 12
        if oh % 2 == 0 and ow % 2 == 0:
            kb = blocked_kernel(kernel, None, (2, 2)).reshape(4, 4, c, 4 * f)
            kb_t = [[np.ascontiguousarray(kb[a, b].T) for b in range(4)] for a in range(4)]
            gh, gw = oh // 2, ow // 2
            b_parts = chunks(batch, gh * gw * (16 * c + 4 * f) * 4)

            def dx_blocked():
                for p in b_parts:
                    n = p.stop - p.start
                    dxp = np.zeros((n, h, w, c), dtype=np.float32)
                    rows_ = dzb[p.start * gh * gw : p.stop * gh * gw]
                    for a in range(4):
                        for b in range(4):
                            blk = rows_ @ kb_t[a][b]
                            dxp[:, a : a + 2 * gh : 2, b : b + 2 * gw : 2] += blk.reshape(
                                n, gh, gw, c)
                    dx[p] = dxp
                return dx

            dxv["blk2x2"] = dx_blocked
            dx_done["blk2x2"] = 2 * (m // 4) * 4 * f * c * 16
        reference_dx = conv.col2im_matmul(dz, kernel, x.shape)
        for label, function in dxv.items():
            np.testing.assert_allclose(function(), reference_dx, rtol=1e-3, atol=1e-3)
        for label, seconds in race(dxv, repeats).items():
            rows[("dx", label)] = (seconds, useful, dx_done[label])
        del x_per_image

    # -- Winograd F(2×2, 3×3): the 16 products alone ---------------------------------------------
    if c >= 32:
        tiles = batch * -(-oh // 2) * -(-ow // 2)
        u = rng.standard_normal((tiles, c), dtype=np.float32)
        v = rng.standard_normal((c, f), dtype=np.float32)
        out = np.empty((tiles, f), dtype=np.float32)

        def products():
            for _ in range(16):
                np.matmul(u, v, out=out)

        th, tw = oh // 2, ow // 2  # oh, ow even for every such layer of the zoo
        y = winograd_forward(x, winograd_kernel(kernel), bias, (th, tw))
        got = y.reshape(2, 2, batch, th, tw, f).transpose(2, 3, 0, 4, 1, 5)
        np.testing.assert_allclose(got.reshape(plain_z.shape), plain_z, rtol=1e-4, atol=1e-4)

        def winograd():  # as the layer would run it: U, then z or the pooled max
            y = winograd_forward(x, winograd_kernel(kernel), bias, (th, tw))
            if pooled:
                return y.reshape(4, -1).max(axis=0)
            return np.ascontiguousarray(
                y.reshape(2, 2, batch, th, tw, f).transpose(2, 3, 0, 4, 1, 5))

        wino = race({"winograd products": products, "base product": product_only["base"],
                     "winograd": winograd, "base": fwd["base"]}, repeats)
        rows[("forward", "winograd 16 products")] = (
            wino["winograd products"], useful, 2 * 16 * tiles * c * f)
        rows[("forward", "base product (same race)")] = (wino["base product"], useful,
                                                         done["base"])
        rows[("forward", "winograd, transforms too")] = (
            wino["winograd"], useful, 2 * 16 * tiles * c * f)
        rows[("forward", "base, im2col too (same race)")] = (wino["base"], useful, done["base"])
    return rows


def predict_race(names, images, repeats):
    """{model: {variant: best CPU seconds for model.predict of ``images`` random images}}."""
    from unittest import mock

    from handnet.zoo import architectures

    results = {}
    for name in names:
        model = architectures.build(name, seed=0)
        model.build()
        x = np.random.default_rng(0).random((images, *model.input_shape), dtype=np.float32)

        def plain():
            with mock.patch.object(conv, "pairs_apply", lambda *a, **k: False):
                return model.predict(x)

        def paired():
            return model.predict(x)

        np.testing.assert_allclose(paired(), plain(), rtol=1e-4, atol=1e-5)
        results[name] = race({"plain": plain, "paired": paired}, repeats)
        results[name]["max |Δp|"] = float(np.abs(paired() - plain()).max())
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", nargs="*", help="names (default: all; none: no layer)")
    parser.add_argument("--models", nargs="*", default=[], help="predict: cnn lenet best")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    info = cpu.describe()
    info["sgemm_process_time_gflops"] = {
        n: round(sgemm_process_time(n, args.repeats), 1) for n in (1024, 2048)}
    print(cpu.headline(info), "| one thread, CPU time: sgemm", info["sgemm_process_time_gflops"])
    rng = np.random.default_rng(0)
    results = []
    predictions = predict_race(args.models, args.images, args.repeats)
    for name, times in predictions.items():
        print(f"predict {name}, {args.images} images: plain {times['plain'] * 1e3:.1f} ms, "
              f"paired {times['paired'] * 1e3:.1f} ms (×{times['plain'] / times['paired']:.2f}),"
              f" max |Δ probability| {times['max |Δp|']:.1e}")
    for layer in LAYERS:
        if args.layers is not None and layer[0] not in args.layers:
            continue
        name, shape, f, pooled, has_bias = layer
        tag = f"{name} {shape}->{f}" + (" pool" if pooled else "") + ("" if has_bias else " nobias")
        print(f"\n{tag}")
        for (kind, label), (seconds, useful, done) in measure(layer, args.batch, args.repeats,
                                                              rng).items():
            print(f"  {kind:12s} {label:26s} {seconds * 1e3:8.2f} ms  "
                  f"{useful / seconds / 1e9:6.1f} GFLOP/s useful  {done / seconds / 1e9:6.1f} done"
                  f"  ({done / useful:.2f}× the multiply-adds)")
            results.append({"layer": name, "input": shape, "filters": f, "pooled": pooled,
                            "bias": has_bias, "pass": kind, "variant": label,
                            "ms": round(seconds * 1e3, 3),
                            "gflops_useful": round(useful / seconds / 1e9, 2),
                            "gflops_done": round(done / seconds / 1e9, 2)})
        sys.stdout.flush()
    if args.json:
        payload = {"machine": info, "batch": args.batch, "repeats": args.repeats,
                   "results": results, "predict": predictions, "images": args.images}
        Path(args.json).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
