"""Unpickle NumPy arrays without letting the file run code.

A pickle names the functions that rebuild its objects, and unpickling calls them: a file that
names ``os.system`` runs a shell command. This unpickler resolves only the few names that NumPy's
own array pickles use; any other name stops the load before anything is called. And it checks
the states NumPy's __setstate__ would trust: only dtypes of numbers and bytes, each array's
bytes exactly its shape's (an object array built from a file's bytes crashed the process).
"""

import io
import math
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


class _ArrayClass:
    """What the name numpy.ndarray resolves to: a token that _empty_array accepts for the class.
    NumPy's pickles only pass ndarray to _reconstruct; the class itself, called by REDUCE,
    NEWOBJ or INST, would allocate whatever shape the file names (a forged (2**36,) asked for
    64 GiB), and this token cannot be called."""

    __slots__ = ()

    def __repr__(self):
        return "numpy.ndarray"

    def __call__(self, *args, **kwargs):
        raise DatasetError(
            "pickle refused: it calls numpy.ndarray(...) itself; NumPy's own pickles pass the "
            "class to _reconstruct"
        )


_ARRAY_CLASS = _ArrayClass()


def _empty_array(subtype, shape, dtype):
    """NumPy's pickles rebuild an array as ``_reconstruct(ndarray, (0,), b'b')`` and then set its
    state; _reconstruct allocates ``shape``, so any other shape (a forged (2**40,)) is refused."""
    if subtype is not _ARRAY_CLASS or tuple(shape) != (0,):
        raise DatasetError(
            f"pickle refused: _reconstruct({subtype!r}, {shape!r}, ...); "
            "NumPy's own pickles pass (ndarray, (0,))"
        )
    return _RECONSTRUCT(np.ndarray, shape, dtype)


def _is_plain(dtype):
    """Numbers, booleans and byte strings: no objects, fields or subarrays. An object dtype
    would make NumPy take an array's bytes from the file for pointers (loading "works"; reading
    or freeing the array crashes the process, or worse); no array of digits needs fields or
    subarrays."""
    return not dtype.hasobject and dtype.fields is None and dtype.subdtype is None


def _plain_dtype(*args):
    """np.dtype(...), for a plain dtype only (_is_plain)."""
    dtype = np.dtype(*args)
    if not _is_plain(dtype):
        raise DatasetError(f"pickle refused: dtype {dtype}; only plain numbers and bytes are read")
    return dtype


def _check_dtype_state(dtype, state):
    """A dtype's BUILD state must be what NumPy itself writes for that plain dtype, but for the
    byte order: its flags (which say, among others, whether items hold references) are not the
    file's to choose."""
    expected = dtype.__reduce__()[2]
    if not (
        isinstance(state, tuple) and len(state) == len(expected) and state[0] == expected[0]
        and state[1] in ("<", ">", "|", "=") and state[2:] == expected[2:]
    ):  # fmt: skip
        raise DatasetError(
            f"pickle refused: dtype {dtype} with the state {state!r}; NumPy writes {expected!r}"
        )


def _check_array_state(state):
    """An array's BUILD state must be (1, shape, a plain dtype, is_fortran, exactly its bytes)."""
    if isinstance(state, tuple) and len(state) == 5:
        version, shape, dtype, fortran, data = state
        if (
            version == 1 and type(fortran) is bool
            and isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
            and isinstance(dtype, np.dtype) and _is_plain(dtype)
            and isinstance(data, (bytes, bytearray, str))  # str: Python 2's, latin-1
            and len(data) == math.prod(shape) * dtype.itemsize
        ):  # fmt: skip
            return
    summary = state if not isinstance(state, tuple) else tuple(
        f"<{type(v).__name__} of {len(v):,}>" if isinstance(v, (bytes, bytearray, str)) else v
        for v in state
    )
    raise DatasetError(
        f"pickle refused: an array's state {summary!r}; NumPy writes (1, shape, dtype, "
        "is_fortran, the shape's bytes) for an array of numbers"
    )


ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,  # name in pickles from NumPy 1.x
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,  # name in pickles from NumPy 2.x
    ("numpy", "ndarray"): _ARRAY_CLASS,  # for _reconstruct's first argument only
    ("numpy", "dtype"): _plain_dtype,
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

    def load_build(self):
        """BUILD, on an array or a dtype only (all NumPy's pickles build; on anything else it
        would set attributes, on this module's functions too), with the state checked first
        where NumPy's __setstate__ would trust it (_check_dtype_state, _check_array_state)."""
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        elif isinstance(inst, np.ndarray):
            _check_array_state(state)
        else:
            raise DatasetError(
                f"pickle refused: it sets the state of {type(inst).__name__} {inst!r:.60}; "
                "only arrays' and dtypes' are set"
            )
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build

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
