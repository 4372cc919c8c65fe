"""Max, average and global pooling, both directions (channels_last only)."""

from ... import layers
from ..options import LayerMapping
from .registry import register


def pooling_from_keras(o):
    o.data_format()
    return {
        "pool_size": o.get("pool_size", (2, 2)),
        "strides": o.get("strides"),
        "padding": o.choice("padding", ("valid", "same"), "valid"),
    }


def pooling_to_keras(layer, config):
    return {
        **config,
        "pool_size": list(layer.pool_size),
        "strides": list(layer.strides),
        "data_format": "channels_last",
    }


def global_pooling_from_keras(o):
    o.data_format()
    return {"keepdims": bool(o.get("keepdims", False))}


def global_pooling_to_keras(layer, config):
    return {**config, "data_format": "channels_last"}


register(
    LayerMapping("MaxPooling2D", layers.MaxPooling2D, pooling_from_keras, pooling_to_keras),
    LayerMapping("AveragePooling2D", layers.AveragePooling2D, pooling_from_keras,
                 pooling_to_keras),
    LayerMapping("GlobalAveragePooling2D", layers.GlobalAveragePooling2D,
                 global_pooling_from_keras, global_pooling_to_keras),
    LayerMapping("GlobalMaxPooling2D", layers.GlobalMaxPooling2D, global_pooling_from_keras,
                 global_pooling_to_keras),
)
