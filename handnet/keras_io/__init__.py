"""Keras parity: read Keras models with NumPy and h5py alone, write them back, compare the two.

    model = handnet.from_keras("model.keras")      # or a legacy .h5; a handnet Sequential
    model.to_keras("back.keras")                    # keras.models.load_model opens it
    handnet.keras_io.load_any("model.npz")          # handnet .npz, .keras or .h5, by content

Keras itself is needed only to compare (``compare_keras``), never to read or write.
"""

from .commands import register_cli
from .importer import from_keras, load_any
from .layer_map import SUPPORTED_KERAS_CLASSES
from ..model import engine
from .writer import to_keras

engine.provide("to_keras", to_keras)

__all__ = ["SUPPORTED_KERAS_CLASSES", "from_keras", "load_any", "register_cli", "to_keras"]
