"""handnet: neural networks written by hand in NumPy, for handwritten digits.

    import handnet as hn
    model = hn.Sequential([hn.layers.Input((784,)), hn.layers.Dense(256, activation="relu"),
                           hn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=hn.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
"""

from . import (
    activations,
    augment,
    datasets,
    initializers,
    layers,
    losses,
    optimizers,
    regularizers,
    schedules,
    training,
    zoo,
)
from .errors import HandnetError, InvalidInputError
from .gradcheck import gradcheck
from .keras_io import from_keras
from .model import Model, Sequential
from .saving import load_model
from .training import callbacks  # hn.callbacks: EarlyStopping, BackupAndRestore, …

__version__ = "0.1.0"

__all__ = [
    "HandnetError",
    "InvalidInputError",
    "Model",
    "Sequential",
    "activations",
    "augment",
    "callbacks",
    "datasets",
    "from_keras",
    "gradcheck",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "optimizers",
    "regularizers",
    "schedules",
    "training",
    "zoo",
]
