"""Shared fixtures: the oracles (PyTorch, Keras) when installed, and tiny data sets and models.
What a test needs from outside (data sets, a browser) is looked for by ../conftest.py, which the
learner's path in docs/learn shares.
"""

import os

import numpy as np
import pytest

import handnet as hn


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
