"""Max, average and global pooling over steps (1D) and images (2D), both directions
(channels_last only); the global ones with keepdims."""

from ... import layers
from ..options import LayerMapping
from .registry import register


def pooling_from_keras(o):
    o.data_format()
    # pool_size left out takes the layer's default: 2 steps, or (2, 2) pixels.
    return {
        **o.copy("pool_size"),
        "strides": o.get("strides"),
        "padding": o.choice("padding", ("valid", "same"), "valid"),
    }


def pooling_to_keras(layer, config):
    return {**config, "data_format": "channels_last"}  # sizes as the layer's config lists them


def global_pooling_from_keras(o):
    o.data_format()
    return {"keepdims": bool(o.get("keepdims", False))}


def global_pooling_to_keras(layer, config):
    return {**config, "data_format": "channels_last"}


register(
    LayerMapping("MaxPooling1D", layers.MaxPooling1D, pooling_from_keras, pooling_to_keras),
    LayerMapping("AveragePooling1D", layers.AveragePooling1D, pooling_from_keras,
                 pooling_to_keras),
    LayerMapping("GlobalAveragePooling1D", layers.GlobalAveragePooling1D,
                 global_pooling_from_keras, global_pooling_to_keras),
    LayerMapping("GlobalMaxPooling1D", layers.GlobalMaxPooling1D, global_pooling_from_keras,
                 global_pooling_to_keras),
    LayerMapping("MaxPooling2D", layers.MaxPooling2D, pooling_from_keras, pooling_to_keras),
    LayerMapping("AveragePooling2D", layers.AveragePooling2D, pooling_from_keras,
                 pooling_to_keras),
    LayerMapping("GlobalAveragePooling2D", layers.GlobalAveragePooling2D,
                 global_pooling_from_keras, global_pooling_to_keras),
    LayerMapping("GlobalMaxPooling2D", layers.GlobalMaxPooling2D, global_pooling_from_keras,
                 global_pooling_to_keras),
)
