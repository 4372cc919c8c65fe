"""Reading a .npz archive without trusting it: sizes checked before anything is allocated.

``np.load`` allocates each array from the shape in its .npy header before reading the data, so a
40-byte member declaring shape (2**40,) asks for terabytes; and it hands back members that are not
.npy files as raw bytes. ``read_npz`` opens the zip itself and, for every member, checks

    declared (uncompressed) size  <= what is left of the cap, summed over members
    .npy header                   a plain numeric dtype (never objects: no pickle), any shape
    payload                       exactly prod(shape) * itemsize bytes after the header

and only then reads the payload, whose size is now bounded by the member's real size.
"""

import math
import zipfile
import zlib
from tokenize import TokenError

import numpy as np
from numpy.lib import format as npy_format

from .errors import HandnetError

MAX_NPZ_BYTES = 2 * 2**30
_HEADER_READERS = {
    (1, 0): npy_format.read_array_header_1_0,
    (2, 0): npy_format.read_array_header_2_0,
}


class _Refused(Exception):
    """Why one archive cannot be read; read_npz turns it into a HandnetError naming the file."""


def read_npz(path, what=".npz archive", max_bytes=MAX_NPZ_BYTES):
    """{member name without ".npy": array} for every member of the .npz at ``path``.

    Raises HandnetError "<path> is not a readable <what>: <why>" when it is not a zip, a member is
    not a .npy array of numbers, a header disagrees with its payload, or the members add up to
    more than ``max_bytes``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            budget = max_bytes
            arrays = {}
            for info in archive.infolist():
                budget -= info.file_size
                if budget < 0:
                    raise _Refused(
                        f"its arrays add up to more than the {max_bytes:,} bytes handnet reads"
                    )
                arrays[info.filename.removesuffix(".npy")] = _read_member(archive, info)
            return arrays
    except _Refused as error:
        raise HandnetError(f"{path} is not a readable {what}: {error}") from None
    # ValueError: zipfile decoding a damaged member name (UnicodeDecodeError) or seeking wrong.
    except (
        zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError
    ) as error:
        raise HandnetError(f"{path} is not a readable {what}: damaged zip ({error})") from None


def _read_member(archive, info):
    name = info.filename
    with archive.open(info) as member:
        try:
            read_header = _HEADER_READERS.get(npy_format.read_magic(member))
            if read_header is None:
                raise ValueError("an .npy format version handnet does not read")
            shape, fortran_order, dtype = read_header(member)
        # NumPy parses the header with tokenize and ast.literal_eval, whose complaints vary.
        except (ValueError, SyntaxError, TokenError, RecursionError) as error:
            raise _Refused(f"member {name} is not an .npy array ({error})") from None
        if dtype.hasobject or dtype.kind not in "biuf":
            raise _Refused(
                f"member {name} holds dtype {dtype}; handnet reads arrays of numbers only"
            )
        expected = math.prod(shape) * dtype.itemsize
        got = info.file_size - member.tell()
        if got != expected:
            raise _Refused(
                f"member {name} declares shape {shape} of {dtype} = {expected:,} bytes, "
                f"but holds {got:,}"
            )
        data = bytearray(expected)
        if member.readinto(data) != expected:
            raise _Refused(f"member {name} is cut short")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
