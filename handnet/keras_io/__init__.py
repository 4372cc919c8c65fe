"""Keras parity: read Keras models with NumPy and h5py alone, write them back, compare the two.

    model = handnet.from_keras("model.keras")      # or a legacy .h5: a Sequential, or a Model
                                                    # (any graph: inputs, outputs, shared layers,
                                                    # nested models, merges)
    model.to_keras("back.keras")                    # keras.models.load_model opens it
    handnet.keras_io.load_any("model.npz")          # handnet .npz, .keras or .h5, by content

    reader.py     the file's config and weight arrays (zip + HDF5, sizes checked)
    isolated.py   the reader in a child process with a time limit (the default)
    importer.py   the handnet model, built through the public API
    maps/         each layer family's mapping, import and export side by side
    options.py    what the mappings share (KerasOptions: nothing unsupported is dropped)
    writer.py     the .keras file of a handnet model
    compare.py    handnet vs Keras node by node (needs Keras)
    check.py      reference outputs in a handnet file, re-run with NumPy alone
    commands.py   import-keras, export-keras, compare-keras, check

Keras itself is needed only to compare (``compare_keras``) and to store reference outputs,
never to read or write.
"""

from .commands import register_cli
from .importer import from_keras, load_any
from .layer_map import SUPPORTED_KERAS_CLASSES
from ..model import engine
from .writer import to_keras

engine.provide("to_keras", to_keras)

__all__ = ["SUPPORTED_KERAS_CLASSES", "from_keras", "load_any", "register_cli", "to_keras"]
