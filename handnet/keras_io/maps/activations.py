"""The activation layers ReLU, LeakyReLU and Softmax, both directions."""

from ... import layers
from ..options import LayerMapping
from .registry import register


def relu_from_keras(o):
    return {
        "max_value": o.get("max_value"),
        "negative_slope": o.get("negative_slope", 0.0),
        "threshold": o.get("threshold", 0.0),
    }


def leaky_relu_from_keras(o):
    # Keras 2 called the slope "alpha"; both default to 0.3 in the layer.
    return {"negative_slope": o.get("negative_slope", o.get("alpha", 0.3))}


def softmax_from_keras(o):
    return {"axis": o.get("axis", -1)}


def same_config(layer, config):
    """The layer's own get_config is Keras's: same keys, same values."""
    return config


register(
    LayerMapping("ReLU", layers.ReLU, relu_from_keras, same_config),
    LayerMapping("LeakyReLU", layers.LeakyReLU, leaky_relu_from_keras, same_config),
    LayerMapping("Softmax", layers.Softmax, softmax_from_keras, same_config),
)
