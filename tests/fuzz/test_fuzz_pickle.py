"""Fuzz the restricted unpickler (Nielsen's mnist.pkl.gz): any bytes give arrays or a
DatasetError, and no pickle, however damaged, gets a global outside the allow-list called."""

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handnet.datasets import DatasetError
from handnet.datasets.safe_pickle import safe_load_pickle

from .harness import fuzz_settings, memory_guard, mutated, outcome, write_case

SEEDS = [
    pickle.dumps((np.arange(12, dtype=np.float32).reshape(3, 4), np.arange(3)), protocol=protocol)
    for protocol in (2, 4, 5)
]


def load_file(path):
    with open(path, "rb") as file:
        return safe_load_pickle(file)


def named(path):
    """safe_load_pickle reads a stream and names no file; the caller adds the name."""
    try:
        return load_file(path)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from None


@fuzz_settings(300)
@given(st.binary(max_size=256))
def test_random_bytes(data):
    outcome(named, write_case(data, "random.pkl"))


@fuzz_settings(600)
@given(st.sampled_from(SEEDS).flatmap(lambda seed: mutated(seed, header_bytes=len(seed))))
def test_mutated_pickles(data):
    outcome(named, write_case(data, "mutated.pkl"))


def test_a_reconstruct_call_with_a_huge_shape_is_refused_before_allocating():
    """numpy's _reconstruct(ndarray, shape, dtype) allocates ``shape``; NumPy's own pickles
    always pass (0,), a hostile one passes (2**40,)."""
    reconstruct = np.empty(0).__reduce__()[0]

    class Forged:
        def __reduce__(self):
            return reconstruct, (np.ndarray, (2**40,), b"b")

    path = write_case(pickle.dumps(Forged(), protocol=2), "forged.pkl")
    with (
        memory_guard(),
        pytest.raises(DatasetError, match=r"refused: _reconstruct\(.*\(1099511627776,\)"),
    ):
        load_file(path)
