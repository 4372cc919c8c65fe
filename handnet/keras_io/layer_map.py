"""The names this module always offered, now kept by the per-family mappings in
``handnet.keras_io.maps`` (one file a family) and ``handnet.keras_io.options``."""

from .maps import BY_HANDNET_CLASS, KERAS_LAYERS, keras_layer_entry, layer_from_keras
from .maps import layer_to_keras, supported_keras_classes
from .options import KerasOptions, LayerMapping, dtype_policy

#: Every Keras class import accepts.
SUPPORTED_KERAS_CLASSES = supported_keras_classes()

__all__ = [
    "BY_HANDNET_CLASS", "KERAS_LAYERS", "SUPPORTED_KERAS_CLASSES", "KerasOptions",
    "LayerMapping", "dtype_policy", "keras_layer_entry", "layer_from_keras", "layer_to_keras",
]
