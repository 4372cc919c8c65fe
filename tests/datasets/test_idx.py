import gzip
import struct
import tracemalloc

import numpy as np
import pytest

from handnet.datasets import DatasetError
from handnet.datasets.idx import read_idx, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-128, 0, 127], dtype=np.int8),
        np.array([[-300, 2], [3, 30000]], dtype=np.int16),
        np.array([-(2**31), 2**31 - 1], dtype=np.int32),
        np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 2, 2, 2),
        np.array([np.pi, -np.e], dtype=np.float64),
    ],
    ids=["uint8", "int8", "int16", "int32", "float32", "float64"],
)
def test_write_then_read_gives_back_the_same_array(tmp_path, array, suffix):
    path = tmp_path / f"data-idx{array.ndim}-ubyte{suffix}"
    write_idx(path, array)
    loaded = read_idx(path)
    assert loaded.dtype == array.dtype and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)
    loaded[...] = 0  # the caller owns a writable array


def test_file_layout_is_big_endian_idx(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([1, 256], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 2) + struct.pack(
        ">2h", 1, 256
    )


def _idx_bytes(type_code, shape, payload):
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_truncated_payload_is_refused_with_expected_and_got_sizes(tmp_path, compress):
    data = _idx_bytes(0x08, (3, 4), bytes(11))
    path = tmp_path / ("short.gz" if compress else "short")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DatasetError, match=r"short.*12 payload bytes, got 11 bytes"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_trailing_bytes_are_refused(tmp_path, compress):
    data = _idx_bytes(0x08, (3, 4), bytes(13))
    path = tmp_path / ("long.gz" if compress else "long")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(
        DatasetError, match=r"long.*12 payload bytes, got (13 bytes|more than 12 bytes)"
    ):
        read_idx(path)


def test_bad_magic_is_refused(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(path)


def test_unknown_type_code_is_refused(tmp_path):
    path = tmp_path / "odd-type"
    path.write_bytes(_idx_bytes(0x0A, (2,), bytes(2)))
    with pytest.raises(DatasetError, match="unknown IDX type code 0x0A"):
        read_idx(path)


@pytest.mark.parametrize("ndim", [0, 5])
def test_number_of_dimensions_outside_1_to_4_is_refused(tmp_path, ndim):
    path = tmp_path / "dims"
    path.write_bytes(bytes([0, 0, 0x08, ndim]) + bytes(4 * ndim + 8))
    with pytest.raises(DatasetError, match=f"1 to 4 dimensions, header says {ndim}"):
        read_idx(path)


def test_zero_dimension_is_refused(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(_idx_bytes(0x08, (0, 28), b""))
    with pytest.raises(DatasetError, match="at least 1"):
        read_idx(path)


def test_file_shorter_than_header_is_refused(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="got a file of 2 bytes"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_huge_declared_size_in_a_tiny_file_is_refused_without_allocating(tmp_path, compress):
    data = _idx_bytes(
        0x08, (2**15, 2**15), bytes(64)
    )  # header declares 1 GiB, the file holds 64 bytes
    path = tmp_path / ("bomb.gz" if compress else "bomb")
    path.write_bytes(gzip.compress(data) if compress else data)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=f"{2**30} payload bytes, got 64 bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**30 // 16


def test_gzip_with_a_wrong_checksum_is_a_dataset_error(tmp_path):
    good = gzip.compress(_idx_bytes(0x08, (100,), bytes(range(100))))
    path = tmp_path / "corrupt.gz"
    crc_position = len(good) - 8
    path.write_bytes(
        good[:crc_position] + bytes([good[crc_position] ^ 0xFF]) + good[crc_position + 1 :]
    )
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(path)


def test_gz_name_on_a_plain_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(_idx_bytes(0x08, (2,), bytes(2)))
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(path)


def test_gzip_cut_short_is_a_dataset_error(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_idx_bytes(0x08, (1000,), bytes(1000)))[:-12])
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(path)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros(3, dtype=np.uint16), "dtype uint16"),
        (np.zeros((1,) * 5, dtype=np.uint8), r"1 to 4 dimensions"),
        (np.zeros((0, 3), dtype=np.uint8), "between 1 and"),
    ],
)
def test_write_idx_refuses_what_idx_cannot_hold(tmp_path, array, message):
    with pytest.raises(DatasetError, match=message):
        write_idx(tmp_path / "out", array)
