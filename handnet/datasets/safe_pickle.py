"""Unpickle NumPy arrays without letting the file run code.

A pickle names the functions that rebuild its objects, and unpickling calls them: a file that
names ``os.system`` runs a shell command. This unpickler resolves only the few names that NumPy's
own array pickles use; any other name stops the load before anything is called.
"""

import pickle

import numpy as np

from .errors import DatasetError

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


ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # name in pickles from NumPy 1.x
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # name in pickles from NumPy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals in ALLOWED_GLOBALS and refuses every other."""

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
            raise DatasetError(
                f"pickle refused: it names {module}.{name}; only {allowed} are allowed"
            ) from None

    def persistent_load(self, pid):
        raise DatasetError(f"pickle refused: it asks for persistent object {pid!r}")


def safe_load_pickle(fileobj):
    """Load one pickle of NumPy arrays (in tuples, lists, dicts...) from a binary file.

    Python 2 strings are decoded as latin-1, which maps each byte to itself, so arrays pickled by
    Python 2 (like Nielsen's mnist.pkl.gz) come back with their bytes intact.
    Raises DatasetError if the pickle names any other global or is malformed.
    """
    try:
        return RestrictedUnpickler(fileobj, encoding="latin1").load()
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
    ) as error:
        raise DatasetError(
            f"not a valid pickle of NumPy arrays: {type(error).__name__}: {error}"
        ) from error
