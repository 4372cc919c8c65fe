"""Fashion-MNIST (Zalando's clothes), loaded like ``keras.datasets.fashion_mnist.load_data()``.

Sources, in order: the cache ``$HANDNET_HOME/fashion_mnist.npz``; a folder the user names
(``data_dir`` or ``$HANDNET_FASHION_MNIST_DIR``); Keras's download (the four gzipped IDX files
``keras.datasets.fashion_mnist`` fetches); Debian's package ``dataset-fashion-mnist`` in
/usr/share/datasets/fashion-mnist. All hold the four IDX files; whatever a source gives must
match the shapes, class counts and SHA-256 digests below before it is used or cached.

The downloaded files have no SHA-256 of their own here: Keras publishes none (its ``get_file``
gets no ``file_hash``), and Debian's files, the only copy at hand, are not byte for byte the
official ones (their gzip headers carry no file name and Debian's build date; their MD5s are not
those of Zalando's README), so the bytes Keras serves cannot be hashed from them. The decoded
arrays are what is checked, as for every source.
"""

import os
import tempfile
from pathlib import Path

from .cache import handnet_home
from .download import download
from .sources import Source, folder_source, load_first_valid, load_folder
from .verify import digit_images_spec

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# In the order keras.datasets.fashion_mnist downloads them.
KERAS_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
KERAS_TIMEOUT_SECONDS = 10
DATA_DIR_VARIABLE = "HANDNET_FASHION_MNIST_DIR"
DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"
CACHE_NAME = "fashion_mnist.npz"
# Label k names CLASS_NAMES[k].
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# SHA-256 of each array's bytes in C order, computed once from the real data.
SHA256 = {
    "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
SPEC = digit_images_spec(
    "Fashion-MNIST",
    SHA256,
    class_counts={"y_train": (6000,) * 10, "y_test": (1000,) * 10},
)


def load_data(data_dir=None, *, cache=True, verbose=True):
    """Load Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``.

    x_train uint8 (60000, 28, 28), y_train uint8 (60000,), x_test uint8 (10000, 28, 28),
    y_test uint8 (10000,); pixels 0..255, labels 0..9 naming CLASS_NAMES, in the official order.
    ``data_dir`` (else ``$HANDNET_FASHION_MNIST_DIR``) names a folder with the four IDX files.
    ``cache=False`` neither reads nor writes ``$HANDNET_HOME/fashion_mnist.npz``. ``verbose``
    prints one line per source tried on stderr. Raises DatasetError, listing every source, if
    none works.
    """
    sources = []
    folder = data_dir or os.environ.get(DATA_DIR_VARIABLE)
    if folder:
        sources.append(folder_source(folder))
    sources.append(Source(f"Keras download ({KERAS_BASE_URL})", lambda: fetch_keras_files(verbose)))
    sources.append(folder_source(DEBIAN_FOLDER))
    cache_path = handnet_home() / CACHE_NAME
    how_to_supply = (
        "To supply Fashion-MNIST: `apt-get install dataset-fashion-mnist` (Debian, Ubuntu), "
        "or put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and pass it as "
        f"data_dir=... or {DATA_DIR_VARIABLE}."
    )
    return load_first_valid(
        SPEC,
        sources,
        cache_path=cache_path if cache else None,
        verbose=verbose,
        how_to_supply=how_to_supply,
    )


def fetch_keras_files(verbose=True):
    """Download Keras's four gzipped IDX files to a temporary folder and return their arrays.

    The first file that fails (no network: a name lookup fails at once, a silent network after
    KERAS_TIMEOUT_SECONDS) ends the attempt with a DatasetError; the arrays are checked by the
    caller (load_first_valid), not here.
    """
    with tempfile.TemporaryDirectory(prefix="handnet-fashion-mnist-") as folder:
        for name in KERAS_FILES:
            download(
                KERAS_BASE_URL + name,
                Path(folder) / name,
                None,
                timeout=KERAS_TIMEOUT_SECONDS,
                progress=verbose,
            )
        return load_folder(folder)
