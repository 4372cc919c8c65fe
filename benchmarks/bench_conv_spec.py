"""Loop specification vs vectorized path, images per second, for each new convolution and 1-D
pooling (handnet.ops.*_spec against the op the layer runs), forward + backward, float32.

Digit-sized inputs: 2-D ops see a 28×28 feature map of 8 channels (a digit after a first
convolution; a grouped or depthwise convolution of 1 channel would be trivial); the transposed
convolution upsamples 14×14×8 to 28×28 (stride 2); 1-D ops read a digit as 28 steps of its
28-pixel rows.  The loops run on a few images (they take ~0.1 s to seconds each), the
vectorized paths on a batch.

    cd benchmarks && ../.venv/bin/python bench_conv_spec.py [--threads 1] [--json out.json]
"""

import argparse

from common import best_of, print_table, set_threads, write_json


def cases(np):
    """(name, x shape per image, spec(x, dy) and fast(x, dy) callables, output shape)."""
    from handnet.fast import conv1d, conv_transpose, depthwise, grouped_conv, pool1d, separable
    from handnet.ops import (
        conv1d_spec,
        conv_transpose_spec,
        depthwise_spec,
        grouped_conv_spec,
        pool1d_spec,
        separable_spec,
    )

    rng = np.random.default_rng(0)

    def weights(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.1

    image, sequence = (28, 28, 8), (28, 28)
    k_grouped, b16 = weights(3, 3, 4, 16), weights(16)
    k_conv1d, k_grouped1d = weights(3, 28, 32), weights(3, 7, 32)
    b32 = weights(32)
    k_transpose, b4 = weights(3, 3, 4, 8), weights(4)
    k_depth, b16d = weights(3, 3, 8, 2), weights(16)
    k_depth1d, b56 = weights(5, 28, 2), weights(56)
    point, point1d, b24 = weights(1, 1, 16, 24), weights(1, 56, 24), weights(24)

    def grouped_fast(x, dy):
        y, cols = grouped_conv.conv2d_forward(x, k_grouped, b16, (1, 1), "same", (1, 1), 2)
        grouped_conv.conv2d_backward(dy, cols, k_grouped, x.shape, (1, 1), "same", (1, 1), 2)

    def grouped_loops(x, dy):
        grouped_conv_spec.conv2d_forward(x, k_grouped, b16, (1, 1), "same", (1, 1), 2)
        grouped_conv_spec.conv2d_backward(dy, x, k_grouped, (1, 1), "same", (1, 1), 2)

    def conv1d_pair(kernel, groups, padding):
        def fast(x, dy):
            _, cache = conv1d.conv1d_forward(x, kernel, b32, 1, padding, 1, groups)
            conv1d.conv1d_backward(dy, cache, kernel, 1, padding, 1, groups)

        def loops(x, dy):
            conv1d_spec.conv1d_forward(x, kernel, b32, 1, padding, 1, groups)
            conv1d_spec.conv1d_backward(dy, x, kernel, 1, padding, 1, groups)

        return loops, fast

    def transpose_fast(x, dy):
        conv_transpose.conv2d_transpose_forward(x, k_transpose, b4, (2, 2), "same")
        conv_transpose.conv2d_transpose_backward(dy, x, k_transpose, (2, 2), "same")

    def transpose_loops(x, dy):
        conv_transpose_spec.conv2d_transpose_forward(x, k_transpose, b4, (2, 2), "same")
        conv_transpose_spec.conv2d_transpose_backward(dy, x, k_transpose, (2, 2), "same")

    def depth_fast(x, dy):
        depthwise.depthwise_conv2d_forward(x, k_depth, b16d, (1, 1), "same")
        depthwise.depthwise_conv2d_backward(dy, x, k_depth, (1, 1), "same")

    def depth_loops(x, dy):
        depthwise_spec.depthwise_conv2d_forward(x, k_depth, b16d, (1, 1), "same")
        depthwise_spec.depthwise_conv2d_backward(dy, x, k_depth, (1, 1), "same")

    def depth1d_fast(x, dy):
        conv1d.depthwise_conv1d_forward(x, k_depth1d, b56, 1, "same")
        conv1d.depthwise_conv1d_backward(dy, x, k_depth1d, 1, "same")

    def depth1d_loops(x, dy):
        conv1d_spec.depthwise_conv1d_forward(x, k_depth1d, b56, 1, "same")
        conv1d_spec.depthwise_conv1d_backward(dy, x, k_depth1d, 1, "same")

    def separable_fast(x, dy):
        _, d = separable.separable_conv2d_forward(x, k_depth, point, b24, (1, 1), "same")
        separable.separable_conv2d_backward(dy, d, x, k_depth, point, (1, 1), "same")

    def separable_loops(x, dy):
        separable_spec.separable_conv2d_forward(x, k_depth, point, b24, (1, 1), "same")
        separable_spec.separable_conv2d_backward(dy, x, k_depth, point, (1, 1), "same")

    def separable1d_fast(x, dy):
        _, d = separable.separable_conv1d_forward(x, k_depth1d, point1d, b24, 1, "same")
        separable.separable_conv1d_backward(dy, d, x, k_depth1d, point1d, 1, "same")

    def separable1d_loops(x, dy):
        separable_spec.separable_conv1d_forward(x, k_depth1d, point1d, b24, 1, "same")
        separable_spec.separable_conv1d_backward(dy, x, k_depth1d, point1d, 1, "same")

    def max_pool_fast(x, dy):
        _, cache = pool1d.max_pool1d_forward(x, 2, 2)
        pool1d.max_pool1d_backward(dy, cache, 2, 2)

    def max_pool_loops(x, dy):
        pool1d_spec.max_pool1d_forward(x, 2, 2)
        pool1d_spec.max_pool1d_backward(dy, x, 2, 2)

    def avg_pool_fast(x, dy):
        pool1d.avg_pool1d_forward(x, 3, 1, "same")
        pool1d.avg_pool1d_backward(dy, x.shape, 3, 1, "same")

    def avg_pool_loops(x, dy):
        pool1d_spec.avg_pool1d_forward(x, 3, 1, "same")
        pool1d_spec.avg_pool1d_backward(dy, x, 3, 1, "same")

    return [
        ("Conv2D 3×3, 8→16, groups=2, same", image, grouped_loops, grouped_fast, (28, 28, 16)),
        ("Conv2DTranspose 3×3 s2, 8→4, same", (14, 14, 8), transpose_loops, transpose_fast,
         (28, 28, 4)),
        ("DepthwiseConv2D 3×3, ×2, same", image, depth_loops, depth_fast, (28, 28, 16)),
        ("SeparableConv2D 3×3 ×2 → 24, same", image, separable_loops, separable_fast,
         (28, 28, 24)),
        ("Conv1D k3, 28→32, valid", sequence, *conv1d_pair(k_conv1d, 1, "valid"), (26, 32)),
        ("Conv1D k3, 28→32, groups=4, causal", sequence, *conv1d_pair(k_grouped1d, 4, "causal"),
         (28, 32)),
        ("DepthwiseConv1D k5, ×2, same", sequence, depth1d_loops, depth1d_fast, (28, 56)),
        ("SeparableConv1D k5 ×2 → 24, same", sequence, separable1d_loops, separable1d_fast,
         (28, 24)),
        ("MaxPooling1D 2", sequence, max_pool_loops, max_pool_fast, (14, 28)),
        ("AveragePooling1D 3 s1, same", sequence, avg_pool_loops, avg_pool_fast, (28, 28)),
    ]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--spec-images", type=int, default=2, help="batch of the loops")
    parser.add_argument("--fast-images", type=int, default=128, help="batch of the fast path")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    set_threads(args.threads)
    import cpu  # beside this script
    import numpy as np

    rng = np.random.default_rng(1)
    rows = []
    for name, shape, loops, fast, out_shape in cases(np):
        rates = {}
        for label, function, batch, repeats in (
            ("spec", loops, args.spec_images, 1),
            ("fast", fast, args.fast_images, args.repeats),
        ):
            x = rng.standard_normal((batch, *shape)).astype(np.float32)
            dy = rng.standard_normal((batch, *out_shape)).astype(np.float32)
            function(x[:1], dy[:1])  # warm-up
            best, _ = best_of(lambda: function(x, dy), repeats)
            rates[label] = batch / best
        rows.append(
            {
                "op": name,
                "spec": rates["spec"],
                "fast": rates["fast"],
                "speedup": rates["fast"] / rates["spec"],
            }
        )
    info = cpu.describe()
    title = (
        f"Forward + backward, images/s, float32, {args.threads} thread(s): loops "
        f"({args.spec_images} images) vs vectorized ({args.fast_images}) — {cpu.headline(info)}"
    )
    columns = [
        ("op", "op", "{}"),
        ("spec", "loop spec", "{:.1f}"),
        ("fast", "vectorized", "{:.0f}"),
        ("speedup", "speed-up", "{:.0f}x"),
    ]
    print_table(title, rows, columns)
    write_json(args.json, {"machine": info, "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
