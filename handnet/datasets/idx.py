"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values in
C order, big-endian:

    magic   0x00 0x00 <type code> <number of dimensions>
    dims    d0 d1 ... (uint32, big-endian)
    payload d0 * d1 * ... values of the type's size

A name ending in ``.gz`` is read and written through gzip.
"""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError

DTYPE_FOR_TYPE_CODE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
TYPE_CODE_FOR_KIND_AND_SIZE = {
    (dtype.kind, dtype.itemsize): code for code, dtype in DTYPE_FOR_TYPE_CODE.items()
}
MAX_DIMENSIONS = 4
_CHUNK_BYTES = 1 << 22


def read_idx(path):
    """Read an IDX file (optionally ``.gz``) into a native-endian array of the declared shape.

    Returns an array of shape (d0, ..., dk), k < 4, of dtype uint8, int8, int16, int32, float32
    or float64.
    Raises DatasetError when the file is missing, its header is malformed, or the payload is not
    exactly d0 * ... * dk * itemsize bytes.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return _read_gzip_idx(path)
        with open(path, "rb") as file:
            return _read_plain_idx(path, file)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read it ({error.strerror or error})") from error


def write_idx(path, array):
    """Write an array of 1 to 4 dimensions as an IDX file (gzipped if ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    code = TYPE_CODE_FOR_KIND_AND_SIZE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        supported = ", ".join(
            str(dtype.newbyteorder("=")) for dtype in DTYPE_FOR_TYPE_CODE.values()
        )
        raise DatasetError(f"IDX stores {supported}; got an array of dtype {array.dtype}")
    if not 1 <= array.ndim <= MAX_DIMENSIONS:
        raise DatasetError(f"IDX stores 1 to {MAX_DIMENSIONS} dimensions; got shape {array.shape}")
    if not all(1 <= size < 2**32 for size in array.shape):
        raise DatasetError(
            f"IDX dimensions must be between 1 and 2**32 - 1; got shape {array.shape}"
        )
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=DTYPE_FOR_TYPE_CODE[code]).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as file:
        file.write(header + payload)


def _read_plain_idx(path, file):
    dtype, shape, header_size = _read_header(path, file)
    expected = math.prod(shape) * dtype.itemsize
    got = os.fstat(file.fileno()).st_size - header_size
    # Compare with the real file size first, so a forged header cannot make us allocate.
    if got != expected:
        raise _payload_size_error(path, shape, dtype, expected, f"{got} bytes")
    payload = bytearray(expected)
    got = file.readinto(payload)
    if got != expected:
        raise _payload_size_error(
            path, shape, dtype, expected, f"{got} bytes (the file shrank while read)"
        )
    return _to_array(payload, dtype, shape)


def _read_gzip_idx(path):
    try:
        with gzip.open(path, "rb") as file:
            dtype, shape, _ = _read_header(path, file)
            expected = math.prod(shape) * dtype.itemsize
            # The decompressed size is unknown until read: take at most expected + 1 bytes in chunks
            # so a gzip bomb or a forged header costs no more memory than the real data.
            payload = bytearray()
            while len(payload) <= expected:
                chunk = file.read(min(_CHUNK_BYTES, expected + 1 - len(payload)))
                if not chunk:
                    break
                payload += chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt gzip data ({error})") from error
    if len(payload) != expected:
        got = (
            f"{len(payload)} bytes"
            if len(payload) < expected
            else f"more than {expected} bytes (trailing data)"
        )
        raise _payload_size_error(path, shape, dtype, expected, got)
    return _to_array(payload, dtype, shape)


def _read_header(path, file):
    """Parse and check the magic number and dims; returns (dtype, shape, header size in bytes)."""
    magic = file.read(4)
    if len(magic) < 4:
        raise DatasetError(
            f"{path}: expected a 4-byte IDX magic number, got a file of {len(magic)} bytes"
        )
    zero_a, zero_b, code, ndim = magic
    if (zero_a, zero_b) != (0, 0):
        raise DatasetError(
            f"{path}: not an IDX file: magic number should start with 0x00 0x00, "
            f"got {magic.hex(' ')}"
        )
    if code not in DTYPE_FOR_TYPE_CODE:
        known = ", ".join(f"0x{known_code:02X}" for known_code in DTYPE_FOR_TYPE_CODE)
        raise DatasetError(f"{path}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    if not 1 <= ndim <= MAX_DIMENSIONS:
        raise DatasetError(f"{path}: expected 1 to {MAX_DIMENSIONS} dimensions, header says {ndim}")
    dims = file.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DatasetError(
            f"{path}: header declares {ndim} dimensions but the file ends inside them"
        )
    shape = struct.unpack(f">{ndim}I", dims)
    if 0 in shape:
        raise DatasetError(f"{path}: every dimension must be at least 1, header says {shape}")
    return DTYPE_FOR_TYPE_CODE[code], shape, 4 + 4 * ndim


def _payload_size_error(path, shape, dtype, expected, got):
    return DatasetError(
        f"{path}: header declares shape {shape} of {dtype.newbyteorder('=')} = {expected} "
        f"payload bytes, got {got}"
    )


def _to_array(payload, dtype, shape):
    """Wrap the bytes without copying, then convert to native byte order (a no-op for bytes)."""
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)
