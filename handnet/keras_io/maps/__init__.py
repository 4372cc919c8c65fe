"""Each layer family's Keras mapping, import and export side by side, one file a family:

    dense.py          Dense                       core.py       Flatten, Reshape, Dropout,
    conv.py           Conv2D, ZeroPadding2D                     Activation, Rescaling
    pooling.py        Max/Average/Global pooling  activations.py  ReLU, LeakyReLU, Softmax
    normalization.py  BatchNormalization          merging.py    Add, …, Concatenate, Dot
    recurrent.py      SimpleRNN, LSTM, GRU, Bidirectional

Each registers its ``LayerMapping``s (handnet.keras_io.options) with ``registry``. Each handnet
layer keeps its weights in Keras's order (kernel, bias; gamma, beta, moving_mean,
moving_variance), so "vars/0, 1, …" of a .keras file map onto ``layer.weights()`` in order.
"""

from . import activations, conv, core, dense, merging, normalization, pooling, recurrent
from .registry import (
    BY_HANDNET_CLASS,
    CODE_LAYERS,
    KERAS_LAYERS,
    batch_shapes,
    keras_layer_entry,
    layer_from_keras,
    layer_to_keras,
    supported_keras_classes,
    unknown_layer_error,
)

FAMILIES = (activations, conv, core, dense, merging, normalization, pooling, recurrent)

__all__ = [
    "BY_HANDNET_CLASS", "CODE_LAYERS", "FAMILIES", "KERAS_LAYERS", "batch_shapes",
    "keras_layer_entry", "layer_from_keras", "layer_to_keras", "supported_keras_classes",
    "unknown_layer_error",
]
