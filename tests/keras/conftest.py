"""Keras parity tests. Keras 3 runs on the torch backend, which must be chosen before keras is
first imported (tests that need Keras skip when it is missing; the ``oracle`` extra)."""

import importlib.util
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """PyTorch on one thread while these tests run: their tensors are small, and on a machine
    whose cores are busy, threads that spin waiting for each other made a one-epoch MNIST fit
    five times slower (65 s instead of 12 s)."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def keras_files_read_in_process(monkeypatch):
    """Every test here reads Keras files in this process (some lower the reader's caps with
    monkeypatch, which a child process would not see); see tests/conftest.py."""
    monkeypatch.setenv("HANDNET_KERAS_IN_PROCESS", "1")
