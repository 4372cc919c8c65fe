"""Fuzz read_idx: any bytes, plain or gzipped, give the declared array or a DatasetError."""

import gzip
import math
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from handnet.datasets.idx import DTYPE_FOR_TYPE_CODE, read_idx, write_idx

from .harness import fuzz_settings, mutated, outcome, write_case


def idx_bytes(array, compress=False):
    path = write_case(b"", "seed.idx.gz" if compress else "seed.idx")
    write_idx(path, array)
    return path.read_bytes()


SEEDS = [
    idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5)),
    idx_bytes(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)),
    idx_bytes(np.arange(7, dtype=np.int16)),
]
GZIP_SEEDS = [idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5), compress=True)]


def check(path, declared_payload_limit):
    """read_idx's result, when it has one, holds exactly the bytes the header declares."""
    array = outcome(read_idx, path)
    if array is not None:
        assert array.dtype.isnative and 1 <= array.ndim <= 4
        assert array.nbytes <= declared_payload_limit


@fuzz_settings(400)
@given(st.binary(max_size=256))
def test_random_bytes(data):
    check(write_case(data, "random.idx"), len(data))


@fuzz_settings(500)
@given(st.sampled_from(SEEDS).flatmap(mutated))
def test_mutated_files(data):
    check(write_case(data, "mutated.idx"), len(data))


@fuzz_settings(300)
@given(st.sampled_from(GZIP_SEEDS).flatmap(lambda seed: mutated(seed, header_bytes=24)))
def test_mutated_gzip_files(data):
    check(write_case(data, "mutated.idx.gz"), 2**20)


@st.composite
def forged_headers(draw):
    """A well-formed magic number with any dims, and a payload of any length up to 64 bytes."""
    code = draw(st.sampled_from([*DTYPE_FOR_TYPE_CODE, 0x00, 0x0A, 0xFF]))
    ndim = draw(st.integers(0, 6))
    dims = draw(st.lists(st.integers(0, 2**32 - 1), min_size=ndim, max_size=ndim))
    payload = draw(st.binary(max_size=64))
    return bytes([0, 0, code, ndim]) + struct.pack(f">{ndim}I", *dims) + payload


@fuzz_settings(300)
@given(forged_headers(), st.booleans())
def test_forged_headers(data, compress):
    if compress:
        path = write_case(gzip.compress(data), "forged.idx.gz")
    else:
        path = write_case(data, "forged.idx")
    array = outcome(read_idx, path)
    if array is not None:
        ndim = data[3]
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        assert array.shape == shape
        assert math.prod(shape) * array.itemsize == len(data) - 4 - 4 * ndim
