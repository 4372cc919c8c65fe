"""A convolutional network on one page, forward and backward, in NumPy alone.

image 28×28×1 -> Conv 5×5, 16 filters, ReLU -> MaxPool 2×2 -> Dense 128, ReLU -> Dense 10
-> softmax cross-entropy, trained by mini-batch SGD with momentum. Images are channels-last
(N, H, W, C) and kernels (kh, kw, C, F), as in Keras and handnet, whose Conv2D, MaxPooling2D
and Dense layers tests/test_examples_from_scratch.py checks these gradients against.

    python examples/cnn_from_scratch.py [--epochs 3] [--train-limit 60000] [--seed 0]
    # -> test accuracy about 99 % after 3 epochs

MNIST comes from Keras's mnist.npz (arrays x_train, y_train, x_test, y_test): --data PATH,
else $MNIST_NPZ, else handnet's cache ($HANDNET_HOME or ~/.cache/handnet, /mnist.npz).
"""

import argparse
import os
import time
from pathlib import Path

# One BLAS thread unless told otherwise: these matrix products are small, and on a busy
# machine a second thread, waiting for the first, made every step ten times slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402  (after that line: OpenBLAS reads it as numpy loads)

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def load_mnist(path=None):
    """(x_train (60000, 28, 28, 1), y_train (60000,), x_test (10000, 28, 28, 1), y_test): pixels
    as float32 in [0, 1], labels as int64. From ``path``, else $MNIST_NPZ, else handnet's cache."""
    home = os.environ.get("HANDNET_HOME") or Path.home() / ".cache" / "handnet"
    path = Path(path or os.environ.get("MNIST_NPZ") or Path(home) / "mnist.npz")
    if not path.is_file():
        raise SystemExit(
            f"MNIST not found at {path}. Download Keras's mnist.npz ({KERAS_URL}) and pass\n"
            "--data PATH (or set MNIST_NPZ), or let handnet fetch and cache it:\n"
            '    python -c "import handnet; handnet.datasets.mnist.load_data()"'
        )
    with np.load(path, allow_pickle=False) as data:  # no pickle: a data file runs no code
        x_train, x_test = (data[k][..., None].astype(np.float32) / 255
                           for k in ("x_train", "x_test"))
        return x_train, data["y_train"].astype(np.int64), x_test, data["y_test"].astype(np.int64)


# -- convolution ----------------------------------------------------------------------------

def im2col(x, kh, kw):
    """x (N, H, W, C) -> columns (N, OH, OW, kh·kw·C), OH = H - kh + 1, OW = W - kw + 1.

    Row (n, i, j) holds the window x[n, i:i+kh, j:j+kw, :] flattened in the kernel's own
    (u, v, c) order, so that the convolution of every window with every filter becomes one
    matrix product. sliding_window_view makes the windows without copying; the reshape copies
    (each pixel appears in up to kh·kw windows): memory traded for one fast GEMM.
    """
    n, h, w, c = x.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, h - kh + 1, w - kw + 1, kh * kw * c)


def col2im(dcolumns, x_shape, kh, kw):
    """The adjoint of im2col: (N, OH, OW, kh·kw·C) -> (N, H, W, C). Every entry of a row is
    added back onto the pixel it was copied from; a pixel in several windows sums them all.
    One slice addition per kernel tap (u, v) instead of a loop over pixels."""
    n, h, w, c = x_shape
    oh, ow = h - kh + 1, w - kw + 1
    dcolumns = dcolumns.reshape(n, oh, ow, kh, kw, c)
    dx = np.zeros(x_shape, dcolumns.dtype)
    for u in range(kh):
        for v in range(kw):
            dx[:, u:u + oh, v:v + ow, :] += dcolumns[:, :, :, u, v, :]
    return dx


def conv_forward(x, kernel, bias):
    """z[n, i, j, f] = b[f] + Σ_{u, v, c} x[n, i + u, j + v, c] · K[u, v, c, f]
    ("valid" padding, stride 1):  x (N, H, W, C),  K (kh, kw, C, F),  z (N, OH, OW, F).
    Returns z and the columns, which the backward pass needs."""
    kh, kw, _, filters = kernel.shape
    columns = im2col(x, kh, kw)
    return columns @ kernel.reshape(-1, filters) + bias, columns


def conv_backward(dz, columns, kernel, x_shape, input_gradient=True):
    """(dx, dK, db) from dz = ∂L/∂z (N, OH, OW, F). z = columns @ K is a matrix product, so
        dK = columnsᵀ @ dz    (summed over every image and position),   db = Σ_{n, i, j} dz,
        dx = col2im(dz @ Kᵀ):  x[n, i + u, j + v, c] met K[u, v, c, f] in output (i, j), so
        dx[n, p, q, c] = Σ_{u, v, f} dz[n, p - u, q - v, f] · K[u, v, c, f]
    — a "full" convolution of dz (zero-padded by kh - 1, kw - 1) with the kernel flipped in
    both axes. col2im computes exactly that sum, without building the flipped kernel.
    ``input_gradient=False`` skips dx (None): the first layer's input is data, never trained."""
    kh, kw, channels, filters = kernel.shape
    dz_rows = dz.reshape(-1, filters)
    dkernel = (columns.reshape(-1, kh * kw * channels).T @ dz_rows).reshape(kernel.shape)
    dx = None
    if input_gradient:
        dx = col2im(dz_rows @ kernel.reshape(-1, filters).T, x_shape, kh, kw)
    return dx, dkernel, dz_rows.sum(axis=0)


# -- max pooling 2×2, stride 2 --------------------------------------------------------------

CELLS = ((0, 0), (0, 1), (1, 0), (1, 1))  # the offsets (u, v) of a 2×2 window, row-major


def maxpool_forward(x):
    """y[n, i, j, c] = max_{u, v < 2} x[n, 2i + u, 2j + v, c]:  (N, H, W, C) -> (N, H/2, W/2, C),
    H and W even. Also returns, for each cell (u, v), where that cell is its window's winner.
    x[:, u::2, v::2] is cell (u, v) of every window at once: four strided views, no copies."""
    cells = [x[:, u::2, v::2] for u, v in CELLS]
    y = np.maximum(np.maximum(cells[0], cells[1]), np.maximum(cells[2], cells[3]))
    # After a ReLU, windows of equal zeros are common, and exactly one cell of each must get
    # the gradient: the first maximum in row-major order (PyTorch's and handnet's choice).
    winners, unclaimed = [], np.ones(y.shape, bool)
    for cell in cells:
        winners.append(unclaimed & (cell == y))
        unclaimed &= ~winners[-1]
    return y, winners


def maxpool_backward(dy, winners):
    """dx: each dy[n, i, j, c] goes to its window's winning cell, every other cell gets 0
    (the others did not change the output, so nudging them changes nothing)."""
    n, oh, ow, c = dy.shape
    dx = np.empty((n, 2 * oh, 2 * ow, c), dy.dtype)
    for (u, v), won in zip(CELLS, winners):
        dx[:, u::2, v::2] = dy * won
    return dx


# -- the network ----------------------------------------------------------------------------

def init_params(rng, filters=16, hidden=128, kernel_size=5):
    """He initialization, W ~ N(0, 2 / fan_in), biases 0, as in mlp_from_scratch.py. A
    convolution's fan_in is kh·kw·C: the number of inputs of one output value."""
    flat = ((28 - kernel_size + 1) // 2) ** 2 * filters
    shapes = {"conv_kernel": (kernel_size, kernel_size, 1, filters),
              "dense_kernel": (flat, hidden), "output_kernel": (hidden, 10)}
    params = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1]))
        params[name] = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
        params[name.replace("kernel", "bias")] = np.zeros(shape[-1], np.float32)
    return params


def forward(params, x):
    """Logits (N, 10) and the cache of what backward needs."""
    z1, columns = conv_forward(x, params["conv_kernel"], params["conv_bias"])
    a1 = np.maximum(z1, 0)
    pooled, winners = maxpool_forward(a1)
    flat = pooled.reshape(len(x), -1)  # channels-last order, as Keras's and handnet's Flatten
    a2 = np.maximum(flat @ params["dense_kernel"] + params["dense_bias"], 0)
    logits = a2 @ params["output_kernel"] + params["output_bias"]
    return logits, (x.shape, columns, a1, winners, pooled.shape, flat, a2)


def softmax_cross_entropy(logits, labels):
    """Mean loss -1/N Σ_n log softmax(z)[n, y_n] and its gradient (softmax(z) - onehot(y)) / N.
    The row maximum is subtracted first so that exp cannot overflow (softmax ignores a shift)."""
    n = len(labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_p)
    dlogits[np.arange(n), labels] -= 1
    return -log_p[np.arange(n), labels].mean(), dlogits / n


def backward(params, cache, dlogits, input_gradient=False):
    """Gradients {name: ∂L/∂param} from dlogits = ∂L/∂logits, layer by layer in reverse.
    A ReLU passes the gradient where its output is positive. Training needs no gradient for
    the images; ``input_gradient=True`` adds it as "x" (to check conv_backward's dx)."""
    x_shape, columns, a1, winners, pooled_shape, flat, a2 = cache
    grads = {"output_kernel": a2.T @ dlogits, "output_bias": dlogits.sum(axis=0)}
    dz2 = (dlogits @ params["output_kernel"].T) * (a2 > 0)
    grads["dense_kernel"], grads["dense_bias"] = flat.T @ dz2, dz2.sum(axis=0)
    dpooled = (dz2 @ params["dense_kernel"].T).reshape(pooled_shape)
    dz1 = maxpool_backward(dpooled, winners) * (a1 > 0)
    dx, grads["conv_kernel"], grads["conv_bias"] = conv_backward(
        dz1, columns, params["conv_kernel"], x_shape, input_gradient)
    if input_gradient:
        grads["x"] = dx
    return grads


def accuracy(params, x, y, batch_size=500):
    """The fraction of images whose largest logit is their label (in batches: im2col of
    10,000 images at once would take 0.6 GB, the ReLU's output 0.4 GB more)."""
    hits = sum((forward(params, x[i:i + batch_size])[0].argmax(1) == y[i:i + batch_size]).sum()
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def train(x, y, epochs=3, batch_size=64, learning_rate=0.05, momentum=0.9, decay=0.5,
          seed=0, log=print):
    """Mini-batch SGD with momentum (v ← μ·v - η·g, w ← w + v), the learning rate multiplied
    by ``decay`` after each epoch. Returns the params."""
    rng = np.random.default_rng(seed)
    params, started = init_params(rng), time.perf_counter()
    velocities = {name: np.zeros_like(value) for name, value in params.items()}
    for epoch in range(epochs):
        order, losses = rng.permutation(len(x)), []
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            logits, cache = forward(params, x[batch])
            loss, dlogits = softmax_cross_entropy(logits, y[batch])
            for name, grad in backward(params, cache, dlogits).items():
                velocities[name] *= momentum
                velocities[name] -= learning_rate * grad
                params[name] += velocities[name]
            losses.append(loss)
        log(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, learning rate {learning_rate:.4f}, "
            f"{time.perf_counter() - started:.1f} s")
        learning_rate *= decay
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="mnist.npz (default: $MNIST_NPZ, else handnet's cache)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, help="train on the first N images only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = load_mnist(args.data)
    x_train, y_train = x_train[:args.train_limit], y_train[:args.train_limit]
    params = train(x_train, y_train, epochs=args.epochs, seed=args.seed)
    test_accuracy = accuracy(params, x_test, y_test)
    print(f"test accuracy {test_accuracy:.2%} on {len(x_test)} images, "
          f"{time.perf_counter() - start:.1f} s in all")
    return test_accuracy


if __name__ == "__main__":
    main()
