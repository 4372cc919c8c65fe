"""The two one-page networks of examples/ (issue 16): NumPy only, short, correct, and they learn.

- Their gradients equal those of handnet's own layers (Dense, Conv2D, MaxPooling2D, Flatten and
  the sparse softmax cross-entropy) given the same weights, input and labels: float64 to 1e-10,
  and the float32 the examples train in to 1e-5.
- Each file stays within its page (150 and 250 lines, every line counted) and imports nothing
  but the standard library and NumPy (read with ast, not grep: a comment does not count).
- Their command lines run, and say how to get MNIST when it is missing.
- They reach their accuracy: on a subset with a threshold (a second or two each, marked mnist),
  and in full (marked slow and mnist, and run in CI too: measured on 2 shared cores, the MLP's
  default run takes 9 s, 98.22 %, and the CNN's 31 s, 98.96 %).
"""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import handnet as hn
from handnet.datasets.cache import handnet_home, save_npz_atomic

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PAGE_LIMITS = {"mlp_from_scratch.py": 150, "cnn_from_scratch.py": 250}


def load_example(name):
    """Import examples/<name>.py as a module (examples/ is not a package). Its first lines set
    OPENBLAS_NUM_THREADS for its own command line: undone here, so that the child processes
    of the rest of the suite keep their defaults."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ):
        spec.loader.exec_module(module)
    return module


mlp = load_example("mlp_from_scratch")
cnn = load_example("cnn_from_scratch")


def handnet_backward(layers, x, labels):
    """Run handnet's layers forward on x, then backward from the sparse softmax cross-entropy of
    their logits: (loss, ∂L/∂logits, ∂L/∂x)."""
    a = x
    for layer in layers:
        a = layer.forward(a, training=True)
    loss = hn.losses.SparseCategoricalCrossentropy(from_logits=True)
    dy = dlogits = loss.gradient(labels, a)
    for layer in reversed(layers):
        dy = layer.backward(dy)
    return loss(labels, a), dlogits, dy


def built(layer, input_shape, dtype, **weights):
    """``layer`` built for per-sample ``input_shape`` in ``dtype``, holding ``weights``."""
    layer.cast(dtype)
    layer.build(input_shape, np.random.default_rng(0))
    for name, value in weights.items():
        assert layer.params[name].shape == value.shape, name
        layer.params[name][...] = value
    return layer


def tolerance(dtype):
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}


# -- gradients against handnet's layers ----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_gradients_equal_handnet_dense_layers(dtype):
    rng = np.random.default_rng(7)
    params = [[w.astype(dtype), b.astype(dtype)] for w, b in mlp.init_params((20, 16, 12, 10), rng)]
    for _, bias in params:  # non-zero biases, so that a wrong db cannot hide
        bias += rng.standard_normal(bias.shape).astype(dtype)
    x = rng.standard_normal((32, 20)).astype(dtype)
    labels = rng.integers(0, 10, 32)

    logits, inputs = mlp.forward(params, x)
    loss, dlogits = mlp.softmax_cross_entropy(logits, labels)
    grads = mlp.backward(params, inputs, dlogits)

    layers = [
        built(hn.layers.Dense(w.shape[1], activation="relu" if i < 2 else None), (w.shape[0],),
              dtype, kernel=w, bias=b)
        for i, (w, b) in enumerate(params)
    ]
    hn_loss, hn_dlogits, _ = handnet_backward(layers, x, labels)
    assert all(0.2 < (a > 0).mean() < 0.8 for a in inputs[1:])  # the ReLUs do cut
    np.testing.assert_allclose(loss, hn_loss, **tolerance(dtype))
    np.testing.assert_allclose(dlogits, hn_dlogits, **tolerance(dtype))
    for layer, (dw, db) in zip(layers, grads):
        assert dw.dtype == db.dtype == dtype
        np.testing.assert_allclose(dw, layer.grads["kernel"], **tolerance(dtype))
        np.testing.assert_allclose(db, layer.grads["bias"], **tolerance(dtype))


def cnn_layers(params, dtype):
    """handnet's twin of the example's network, holding the example's weights."""
    kernel = params["conv_kernel"]
    conv = hn.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], activation="relu")
    conv_out = (28 - kernel.shape[0] + 1, 28 - kernel.shape[1] + 1, kernel.shape[-1])
    pooled = (conv_out[0] // 2, conv_out[1] // 2, conv_out[2])
    hidden = params["dense_kernel"].shape[1]
    return [
        built(conv, (28, 28, 1), dtype, kernel=kernel, bias=params["conv_bias"]),
        built(hn.layers.MaxPooling2D(2), conv_out, dtype),
        built(hn.layers.Flatten(), pooled, dtype),
        built(hn.layers.Dense(hidden, activation="relu"), (int(np.prod(pooled)),), dtype,
              kernel=params["dense_kernel"], bias=params["dense_bias"]),
        built(hn.layers.Dense(10), (hidden,), dtype,
              kernel=params["output_kernel"], bias=params["output_bias"]),
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cnn_gradients_equal_handnet_layers(dtype):
    rng = np.random.default_rng(3)
    params = {k: v.astype(dtype) for k, v in cnn.init_params(rng, filters=6, hidden=16).items()}
    for name in ("conv_bias", "dense_bias", "output_bias"):
        params[name] += 0.1 * rng.standard_normal(params[name].shape).astype(dtype)
    x = rng.random((4, 28, 28, 1)).astype(dtype)
    labels = rng.integers(0, 10, 4)

    logits, cache = cnn.forward(params, x)
    loss, dlogits = cnn.softmax_cross_entropy(logits, labels)
    grads = cnn.backward(params, cache, dlogits, input_gradient=True)

    layers = cnn_layers(params, dtype)
    hn_loss, hn_dlogits, hn_dx = handnet_backward(layers, x, labels)
    conv, _, _, dense, output = layers
    np.testing.assert_allclose(loss, hn_loss, **tolerance(dtype))
    np.testing.assert_allclose(dlogits, hn_dlogits, **tolerance(dtype))
    expected = {
        "conv_kernel": conv.grads["kernel"], "conv_bias": conv.grads["bias"],
        "dense_kernel": dense.grads["kernel"], "dense_bias": dense.grads["bias"],
        "output_kernel": output.grads["kernel"], "output_bias": output.grads["bias"], "x": hn_dx,
    }
    assert grads.keys() == expected.keys()
    for name, value in expected.items():
        assert grads[name].dtype == dtype, name
        np.testing.assert_allclose(grads[name], value, **tolerance(dtype), err_msg=name)
    assert np.abs(grads["x"]).max() > 0


def test_cnn_conv_equals_handnet_conv2d_with_channels_and_input_gradient():
    """A convolution of several input channels (the network's has one), a 3×5 kernel."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 9, 8, 3))
    kernel, bias = rng.standard_normal((3, 5, 3, 4)), rng.standard_normal(4)
    dz = rng.standard_normal((2, 7, 4, 4))  # random upstream: a uniform one hides index errors
    dz_before = dz.copy()

    z, columns = cnn.conv_forward(x, kernel, bias)
    dx, dkernel, dbias = cnn.conv_backward(dz, columns, kernel, x.shape)

    layer = built(hn.layers.Conv2D(4, (3, 5)), (9, 8, 3), np.float64, kernel=kernel, bias=bias)
    np.testing.assert_allclose(z, layer.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, layer.backward(dz), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dkernel, layer.grads["kernel"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dbias, layer.grads["bias"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dz, dz_before)
    assert cnn.conv_backward(dz, columns, kernel, x.shape, input_gradient=False)[0] is None


def test_cnn_max_pool_breaks_ties_as_handnet_does():
    """Inputs of three values only: most windows hold a tie, and the gradient must go to the
    same cell (the first maximum in row-major order) as handnet's MaxPooling2D sends it."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (3, 6, 8, 2)).astype(np.float64)
    dy = rng.standard_normal((3, 3, 4, 2))

    y, winners = cnn.maxpool_forward(x)
    dx = cnn.maxpool_backward(dy, winners)

    layer = built(hn.layers.MaxPooling2D(2), (6, 8, 2), np.float64)
    np.testing.assert_array_equal(y, layer.forward(x))
    np.testing.assert_array_equal(dx, layer.backward(dy))
    assert (np.count_nonzero(dx.reshape(3, 3, 2, 4, 2, 2), axis=(2, 4)) == 1).all()


# -- one page, NumPy only -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PAGE_LIMITS))
def test_example_fits_its_page(name):
    lines = (EXAMPLES / name).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= PAGE_LIMITS[name], f"{name}: {len(lines)} lines"
    assert max(len(line) for line in lines) <= 100


@pytest.mark.parametrize("name", sorted(PAGE_LIMITS))
def test_example_imports_only_numpy_and_the_standard_library(name):
    tree = ast.parse((EXAMPLES / name).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            pytest.fail(f"{name}: __import__ call")
    assert "numpy" in imported
    assert "handnet" not in imported
    assert imported - {"numpy"} <= sys.stdlib_module_names, imported


# -- the command line ---------------------------------------------------------------------

def run_example(name, *arguments, **environment):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *arguments],
        capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", **environment},
    )


@pytest.mark.parametrize("name", sorted(PAGE_LIMITS))
def test_example_without_mnist_says_how_to_get_it(name, tmp_path):
    result = run_example(name, "--data", str(tmp_path / "missing.npz"))
    assert result.returncode == 1
    assert f"MNIST not found at {tmp_path / 'missing.npz'}" in result.stderr
    assert "handnet.datasets.mnist.load_data()" in result.stderr
    # Without --data: $MNIST_NPZ, then the cache under $HANDNET_HOME.
    result = run_example(name, HANDNET_HOME=str(tmp_path))
    assert f"MNIST not found at {tmp_path / 'mnist.npz'}" in result.stderr


# -- accuracy on real MNIST -----------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_npz(tmp_path_factory):
    """The path of Keras's mnist.npz, where the examples look for it: handnet's cache (which
    loading MNIST writes), or a copy in a temporary folder if the cache could not be written."""
    (x_train, y_train), (x_test, y_test) = hn.datasets.mnist.load_data(verbose=False)
    cached = handnet_home() / hn.datasets.mnist.CACHE_NAME
    if cached.is_file():
        return cached
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    save_npz_atomic(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def one_blas_thread():
    """One BLAS thread while the examples train, as their own command lines choose (they set
    OPENBLAS_NUM_THREADS before NumPy loads; here NumPy was loaded long before)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.mnist
def test_mlp_learns_on_a_subset(mnist_npz, one_blas_thread):
    """10,000 training images, 3 epochs (about 0.7 s of CPU): 93.0 % on the first 2,000 test
    images (seeds 0, 1, 2: 93.0, 93.25, 93.0 %; they are harder than the rest: 94.7 % on all
    10,000). Without learning (a zero learning rate) it scores 12 %."""
    x_train, y_train, x_test, y_test = mlp.load_mnist(mnist_npz)
    params = mlp.train(x_train[:10_000], y_train[:10_000], epochs=3, log=lambda line: None)
    assert mlp.accuracy(params, x_test[:2000], y_test[:2000]) >= 0.90


@pytest.mark.mnist
def test_cnn_learns_on_a_subset(mnist_npz, one_blas_thread):
    """5,000 training images, 1 epoch (about 1.5 s of CPU): about 93 % on the first 1,000 test
    images (seeds 0, 1, 2: 92.7, 93.6, 92.3 %; 94.1, 94.6, 93.7 % on all 10,000). Without
    learning (a zero learning rate) it scores 12 %."""
    x_train, y_train, x_test, y_test = cnn.load_mnist(mnist_npz)
    params = cnn.train(x_train[:5000], y_train[:5000], epochs=1, log=lambda line: None)
    assert cnn.accuracy(params, x_test[:1000], y_test[:1000]) >= 0.90


@pytest.mark.mnist
@pytest.mark.parametrize("name", sorted(PAGE_LIMITS))
def test_example_runs_from_the_command_line(name, mnist_npz):
    """python examples/<name> --epochs 1 --train-limit 1000, MNIST found through $MNIST_NPZ."""
    result = run_example(name, "--epochs", "1", "--train-limit", "1000",
                         MNIST_NPZ=str(mnist_npz))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("epoch 1: loss ")
    assert "test accuracy " in result.stdout and "on 10000 images" in result.stdout


@pytest.mark.slow
@pytest.mark.mnist
def test_mlp_reaches_97_5_percent(mnist_npz, one_blas_thread, capsys):
    """The MLP's default run, as ``python examples/mlp_from_scratch.py`` does it."""
    assert mlp.main(["--data", str(mnist_npz)]) >= 0.975


@pytest.mark.slow
@pytest.mark.mnist
def test_cnn_reaches_98_5_percent(mnist_npz, one_blas_thread, capsys):
    """The CNN's default run, as ``python examples/cnn_from_scratch.py`` does it."""
    assert cnn.main(["--data", str(mnist_npz)]) >= 0.985
