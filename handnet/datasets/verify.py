"""What a dataset must look like, and the check every source's arrays go through before use."""

import hashlib
from dataclasses import dataclass

import numpy as np

from .errors import DatasetError

SPLIT_NAMES = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class ArraySpec:
    """One array's expected shape, dtype and SHA-256 of its bytes in C order."""

    shape: tuple
    dtype: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """The four arrays of a dataset, and how many examples of each class y_train and y_test hold."""

    name: str
    arrays: dict
    class_counts: dict


def digit_images_spec(name, sha256, class_counts):
    """The MNIST layout (shared by Fashion-MNIST): 60,000 + 10,000 uint8 images of 28×28 and
    their uint8 labels; ``sha256`` maps each of SPLIT_NAMES to its digest."""
    shapes = {
        "x_train": (60000, 28, 28),
        "y_train": (60000,),
        "x_test": (10000, 28, 28),
        "y_test": (10000,),
    }
    arrays = {key: ArraySpec(shapes[key], "uint8", sha256[key]) for key in SPLIT_NAMES}
    return DatasetSpec(name=name, arrays=arrays, class_counts=class_counts)


def array_sha256(array):
    """SHA-256 hex digest of the array's values as bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def verify(arrays, spec):
    """Raise DatasetError unless ``arrays`` matches ``spec``.

    Checks, in order: the array names, each shape and dtype, the class counts, the SHA-256 digests.
    """
    if sorted(arrays) != sorted(spec.arrays):
        raise DatasetError(
            f"{spec.name}: expected arrays {sorted(spec.arrays)}, got {sorted(arrays)}"
        )
    for name, expected in spec.arrays.items():
        array = arrays[name]
        if array.shape != expected.shape or array.dtype != np.dtype(expected.dtype):
            raise DatasetError(
                f"{spec.name} {name}: expected {expected.dtype} {expected.shape}, "
                f"got {array.dtype} {array.shape}"
            )
    for name, expected_counts in spec.class_counts.items():
        counts = np.bincount(arrays[name], minlength=len(expected_counts)).tolist()
        if counts != list(expected_counts):
            raise DatasetError(
                f"{spec.name} {name}: expected class counts {list(expected_counts)}, got {counts}"
            )
    # Hashes last: wrong class counts tell the reader more than a wrong digest does.
    for name, expected in spec.arrays.items():
        digest = array_sha256(arrays[name])
        if digest != expected.sha256:
            raise DatasetError(
                f"{spec.name} {name}: expected sha256 {expected.sha256}, got {digest}"
            )
