"""Flatten, Reshape, Dropout, Activation, Rescaling, Embedding and Masking, both directions.
Embedding's table is its one weight ("embeddings", (input_dim, output_dim)); its integer
inputs arrive as floats (handnet casts a model's inputs to its dtype, exact below 2**24)."""

from ... import layers
from ..options import (
    LayerMapping,
    keras_activation,
    keras_initializer,
    keras_regularizer,
)
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


def embedding_from_keras(o):
    o.unset("embeddings_constraint", "activity_regularizer", "sparse", "lora_rank")
    o.unset("quantization_config")
    o.get("input_length")  # Keras 2: the sequence length, which the input shape already fixes
    return {
        **o.copy("input_dim", "output_dim"),
        "embeddings_initializer": o.initializer("embeddings_initializer", "uniform"),
        "embeddings_regularizer": o.regularizer("embeddings_regularizer"),
        "mask_zero": bool(o.get("mask_zero", False)),
    }


def embedding_to_keras(layer, config):
    return {
        **config,
        "embeddings_initializer": keras_initializer(config.get("embeddings_initializer"),
                                                    "uniform"),
        "embeddings_regularizer": keras_regularizer(config.get("embeddings_regularizer")),
        "activity_regularizer": None,
        "embeddings_constraint": None,
    }


def masking_from_keras(o):
    return o.copy("mask_value")


def same_config(layer, config):
    return config


register(
    LayerMapping("Embedding", layers.Embedding, embedding_from_keras, embedding_to_keras),
    LayerMapping("Masking", layers.Masking, masking_from_keras, same_config),
    LayerMapping("Flatten", layers.Flatten, flatten_from_keras, flatten_to_keras),
    LayerMapping("Reshape", layers.Reshape, reshape_from_keras, reshape_to_keras),
    LayerMapping("Dropout", layers.Dropout, dropout_from_keras, dropout_to_keras),
    LayerMapping("Activation", layers.Activation, activation_from_keras, activation_to_keras),
    LayerMapping("Rescaling", layers.Rescaling, rescaling_from_keras, rescaling_to_keras),
)
