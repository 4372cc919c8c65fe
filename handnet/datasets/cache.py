"""Where handnet keeps datasets it has fetched, and how it writes and reads them safely."""

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_writer
from ..errors import HandnetError
from ..npz import read_npz
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
    """Load every array of a ``.npz`` file into a dict, refusing pickled objects and headers that
    declare more than the file holds (handnet.npz.read_npz checks sizes before allocating).

    Raises DatasetError if the file is missing, is not a valid ``.npz``, or holds pickled objects.
    """
    try:
        return read_npz(path, what=".npz file")
    except HandnetError as error:
        raise DatasetError(str(error)) from error
