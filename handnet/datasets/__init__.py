"""Datasets as NumPy arrays, loaded like ``keras.datasets``.

(x_train, y_train), (x_test, y_test) = mnist.load_data()       # or fashion_mnist

``DATASETS`` names them as the commands do (``--dataset mnist|fashion``).
"""

from dataclasses import dataclass

from . import fashion_mnist, mnist
from .errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    """A data set by the name the commands use: its title in plots and reports, its loader,
    and its class names (None: the digits 0..9)."""

    title: str
    module: object
    class_names: tuple | None = None

    def load_data(self, *args, **kwargs):
        """((x_train, y_train), (x_test, y_test)), from the module's ``load_data``."""
        return self.module.load_data(*args, **kwargs)


DATASETS = {
    "mnist": Dataset("MNIST", mnist),
    "fashion": Dataset("Fashion-MNIST", fashion_mnist, fashion_mnist.CLASS_NAMES),
}

__all__ = ["DATASETS", "Dataset", "DatasetError", "fashion_mnist", "mnist"]
