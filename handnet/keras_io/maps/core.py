"""Flatten, Reshape, Dropout, Activation and Rescaling, both directions."""

from ... import layers
from ..options import LayerMapping, keras_activation
from .registry import register


def flatten_from_keras(o):
    # channels_first flattens in (C, H, W) order: handnet's Flatten does that too.
    return {"data_format": o.choice("data_format", (None, "channels_last", "channels_first"),
                                    None)}


def flatten_to_keras(layer, config):
    return config  # data_format included


def reshape_from_keras(o):
    return {"target_shape": o.get("target_shape")}


def reshape_to_keras(layer, config):
    return {**config, "target_shape": list(layer.target_shape)}


def dropout_from_keras(o):
    o.unset("noise_shape")
    return {"rate": o.get("rate"), "seed": o.get("seed")}


def dropout_to_keras(layer, config):
    return {**config, "noise_shape": None}


def activation_from_keras(o):
    return {"activation": o.activation()}


def activation_to_keras(layer, config):
    return {"activation": keras_activation(layer, layer.activation)}


def rescaling_from_keras(o):
    return {"scale": o.get("scale"), "offset": o.get("offset", 0.0)}


def rescaling_to_keras(layer, config):
    return {"scale": layer.scale, "offset": layer.offset}


register(
    LayerMapping("Flatten", layers.Flatten, flatten_from_keras, flatten_to_keras),
    LayerMapping("Reshape", layers.Reshape, reshape_from_keras, reshape_to_keras),
    LayerMapping("Dropout", layers.Dropout, dropout_from_keras, dropout_to_keras),
    LayerMapping("Activation", layers.Activation, activation_from_keras, activation_to_keras),
    LayerMapping("Rescaling", layers.Rescaling, rescaling_from_keras, rescaling_to_keras),
)
