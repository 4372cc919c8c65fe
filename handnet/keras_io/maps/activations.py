"""The activation layers ReLU, LeakyReLU, Softmax, ELU and PReLU, both directions."""

from ... import layers
from ..options import LayerMapping, keras_initializer
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


def elu_from_keras(o):
    return o.copy("alpha")


def prelu_from_keras(o):
    """PReLU's alpha (a weight) may carry a regularizer and a constraint in Keras; handnet's has
    neither, so both are refused unless unset."""
    o.unset("alpha_regularizer", "alpha_constraint")
    return {
        "alpha_initializer": o.initializer("alpha_initializer", "zeros"),
        **o.copy("shared_axes"),
    }


def prelu_to_keras(layer, config):
    return {
        **config,
        "alpha_initializer": keras_initializer(config.get("alpha_initializer"), "zeros"),
        "alpha_regularizer": None,
        "alpha_constraint": None,
    }


register(
    LayerMapping("ELU", layers.ELU, elu_from_keras, same_config),
    LayerMapping("PReLU", layers.PReLU, prelu_from_keras, prelu_to_keras),
    LayerMapping("ReLU", layers.ReLU, relu_from_keras, same_config),
    LayerMapping("LeakyReLU", layers.LeakyReLU, leaky_relu_from_keras, same_config),
    LayerMapping("Softmax", layers.Softmax, softmax_from_keras, same_config),
)
