"""Datasets as NumPy arrays, loaded like ``keras.datasets``.

(x_train, y_train), (x_test, y_test) = mnist.load_data()       # or fashion_mnist
"""

from . import fashion_mnist, mnist
from .errors import DatasetError

__all__ = ["DatasetError", "fashion_mnist", "mnist"]
