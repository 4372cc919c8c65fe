"""Conv2D and ZeroPadding2D, both directions (channels_last only: channels_first is refused)."""

from ... import layers
from ..options import LayerMapping
from .dense import weighted_to_keras
from .registry import register


def conv2d_from_keras(o):
    o.data_format()
    o.choice("groups", (1,), 1)
    return {
        "filters": o.get("filters"),
        "kernel_size": o.get("kernel_size"),
        "strides": o.get("strides", (1, 1)),
        "padding": o.choice("padding", ("valid", "same"), "valid"),
        "dilation_rate": o.get("dilation_rate", (1, 1)),
        **o.weighted_options(),
    }


def conv2d_to_keras(layer, config):
    return {
        **weighted_to_keras(layer, config),
        "kernel_size": list(layer.kernel_size),
        "strides": list(layer.strides),
        "dilation_rate": list(layer.dilation_rate),
        "data_format": "channels_last",
        "groups": 1,
        "activity_regularizer": None,
    }


def zero_padding_from_keras(o):
    o.data_format()
    return {"padding": o.get("padding", (1, 1))}


def zero_padding_to_keras(layer, config):
    return {"padding": [list(pair) for pair in layer.padding], "data_format": "channels_last"}


register(
    LayerMapping("Conv2D", layers.Conv2D, conv2d_from_keras, conv2d_to_keras),
    LayerMapping("ZeroPadding2D", layers.ZeroPadding2D, zero_padding_from_keras,
                 zero_padding_to_keras),
)
