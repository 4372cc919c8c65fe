"""Dense, both directions: Keras's options are handnet's, plus constraints Keras alone has."""

from ... import layers
from ..options import LayerMapping, keras_activation, keras_initializers, keras_regularizer
from .registry import register


def dense_from_keras(o):
    return {"units": o.get("units"), **o.weighted_options()}


def weighted_to_keras(layer, config):
    """The options Dense and Conv2D share, from the layer's get_config."""
    return {
        **config,
        "activation": keras_activation(layer, layer.activation),
        **keras_initializers(config, {"kernel_initializer": "glorot_uniform",
                                      "bias_initializer": "zeros"}),
        "kernel_regularizer": keras_regularizer(config.get("kernel_regularizer")),
        "bias_regularizer": keras_regularizer(config.get("bias_regularizer")),
        "kernel_constraint": None,
        "bias_constraint": None,
    }


def dense_to_keras(layer, config):
    return weighted_to_keras(layer, config)  # Keras's Dense config has no activity_regularizer


register(LayerMapping("Dense", layers.Dense, dense_from_keras, dense_to_keras))
