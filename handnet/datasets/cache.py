"""Where handnet keeps datasets it has fetched, and how it writes and reads them safely."""

import os
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_writer
from .errors import DatasetError


def handnet_home():
    """The cache folder: ``$HANDNET_HOME`` when set and not empty, else ``~/.cache/handnet``."""
    home = os.environ.get("HANDNET_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "handnet"


def save_npz_atomic(path, **arrays):
    """Save arrays to an uncompressed ``.npz``; ``path`` is always the old or the whole new file."""
    with atomic_writer(path) as file:
        np.savez(file, **arrays)


def load_npz(path):
    """Load every array of a ``.npz`` file into a dict, refusing pickled objects.

    Raises DatasetError if the file is missing, is not a valid ``.npz``, or holds pickled objects.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(
                f"{path}: expected a .npz archive of named arrays, got a single .npy array"
            )
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except DatasetError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise DatasetError(
            f"{path}: not a readable .npz file ({type(error).__name__}: {error})"
        ) from error
