"""Unpickle NumPy arrays without letting the file run code.

A pickle names the functions that rebuild its objects, and unpickling calls them: a file that
names ``os.system`` runs a shell command. This unpickler resolves only the few names that NumPy's
own array pickles use; any other name stops the load before anything is called.
"""

import io
import pickle
import struct

import numpy as np

from .errors import DatasetError

#: Nielsen's MNIST pickle is 220 MB once decompressed.
MAX_PICKLE_BYTES = 2**30
_CHUNK_BYTES = 1 << 22

# Ask NumPy for the function its own pickles name, so this works whichever module holds it,
# without importing numpy.core (deprecated in NumPy 2, it warns).
_RECONSTRUCT = np.empty(0).__reduce__()[0]


def _latin1_encode(text, encoding):
    """Protocol-2 pickles from Python 3 store bytes as ``_codecs.encode(text, 'latin1')``."""
    if encoding != "latin1":
        raise DatasetError(
            f"pickle refused: _codecs.encode with encoding {encoding!r}, only 'latin1' is allowed"
        )
    return text.encode("latin1")


def _empty_array(subtype, shape, dtype):
    """NumPy's pickles rebuild an array as ``_reconstruct(ndarray, (0,), b'b')`` and then set its
    state; _reconstruct allocates ``shape``, so any other shape (a forged (2**40,)) is refused."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise DatasetError(
            f"pickle refused: _reconstruct({subtype!r}, {shape!r}, ...); "
            "NumPy's own pickles pass (ndarray, (0,))"
        )
    return _RECONSTRUCT(subtype, shape, dtype)


ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,  # name in pickles from NumPy 1.x
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,  # name in pickles from NumPy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle._Unpickler):
    """An Unpickler that resolves only the globals in ALLOWED_GLOBALS and refuses every other.

    It extends Python's own pure-Python unpickler, not the C one: before Python 3.14 the C one
    allocates a bytes object of whatever length a BINBYTES8 or FRAME opcode declares before
    reading it (a 20-byte file can ask for 2**62 bytes); the Python one reads what is there,
    except for BYTEARRAY8, overridden here. Reading from memory, a read never exceeds the data.
    """

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
            raise DatasetError(
                f"pickle refused: it names {module}.{name}; only {allowed} are allowed"
            ) from None

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_bytearray8(self):
        """BYTEARRAY8 without Python's preallocation of the declared length."""
        (length,) = struct.unpack("<Q", self.read(8))
        data = self.read(length)
        if len(data) != length:
            raise DatasetError(
                f"pickle refused: BYTEARRAY8 declares {length:,} bytes, the file ends first"
            )
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def persistent_load(self, pid):
        raise DatasetError(f"pickle refused: it asks for persistent object {pid!r}")


def safe_load_pickle(fileobj):
    """Load one pickle of NumPy arrays (in tuples, lists, dicts...) from a binary file.

    Python 2 strings are decoded as latin-1, which maps each byte to itself, so arrays pickled by
    Python 2 (like Nielsen's mnist.pkl.gz) come back with their bytes intact.
    Raises DatasetError if the pickle names any other global, is malformed, or is larger than
    MAX_PICKLE_BYTES.
    """
    # Read it all first, in chunks: a length an opcode declares is then compared with the bytes
    # that exist (an in-memory read never asks for more), and a gzip bomb stops at the cap.
    chunks, size = [], 0
    while chunk := fileobj.read(_CHUNK_BYTES):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_PICKLE_BYTES:
            raise DatasetError(
                f"pickle refused: larger than the {MAX_PICKLE_BYTES:,} bytes handnet reads"
            )
    try:
        return RestrictedUnpickler(io.BytesIO(b"".join(chunks)), encoding="latin1").load()
    except DatasetError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        struct.error,
        OverflowError,
        RecursionError,
        SystemError,  # NumPy's dtype.__setstate__ on some malformed states
    ) as error:
        raise DatasetError(
            f"not a valid pickle of NumPy arrays: {type(error).__name__}: {error}"
        ) from error
