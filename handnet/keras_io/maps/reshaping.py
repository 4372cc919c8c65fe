"""The reshaping layers, both directions: Identity, Permute, RepeatVector, Cropping1D/2D,
ZeroPadding1D/2D, UpSampling1D/2D, and the resizing preprocessing layers Resizing and
CenterCrop. None has weights; their handnet configs are Keras's, and the 2-D ones (and
ZeroPadding1D) are channels_last only: channels_first is refused."""

from ... import layers
from ...layers.reshaping import INTERPOLATIONS
from ...layers.resizing import RESIZE_INTERPOLATIONS
from ..options import LayerMapping
from .registry import register


def options(*keys, data_format=False):
    """A from_keras reading ``keys`` as they are (and refusing channels_first)."""

    def from_keras(o):
        if data_format:
            o.data_format()
        return o.copy(*keys)

    return from_keras


def up_sampling2d_from_keras(o):
    o.data_format()
    return {
        **o.copy("size"),
        "interpolation": o.choice("interpolation", INTERPOLATIONS, "nearest"),
    }


def resizing_from_keras(o):
    """Keras's Resizing: bilinear or nearest, antialias off (its default), a constant fill."""
    o.data_format()
    if o.get("antialias", False):
        raise o.refused("antialias", True, "a wider filter when shrinking, not implemented "
                        "(handnet resizes as antialias=False)")  # fmt: skip
    return {
        **o.copy("height", "width", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "fill_value"),
        "interpolation": o.choice("interpolation", RESIZE_INTERPOLATIONS, "bilinear"),
        "fill_mode": o.choice("fill_mode", ("constant",), "constant"),
    }


def resizing_to_keras(layer, config):
    return {**config, "data_format": "channels_last"}


def same_config(layer, config):
    return config


def channels_last(layer, config):
    return {**config, "data_format": "channels_last"}


def zero_padding2d_to_keras(layer, config):
    return {"padding": [list(pair) for pair in layer.padding], "data_format": "channels_last"}


register(
    LayerMapping("Identity", layers.Identity, options(), same_config),
    LayerMapping("Permute", layers.Permute, options("dims"), same_config),
    LayerMapping("RepeatVector", layers.RepeatVector, options("n"), same_config),
    LayerMapping("Cropping1D", layers.Cropping1D, options("cropping"), same_config),
    LayerMapping("Cropping2D", layers.Cropping2D, options("cropping", data_format=True),
                 channels_last),
    LayerMapping("ZeroPadding1D", layers.ZeroPadding1D, options("padding", data_format=True),
                 channels_last),
    LayerMapping("ZeroPadding2D", layers.ZeroPadding2D, options("padding", data_format=True),
                 zero_padding2d_to_keras),
    LayerMapping("UpSampling1D", layers.UpSampling1D, options("size"), same_config),
    LayerMapping("UpSampling2D", layers.UpSampling2D, up_sampling2d_from_keras, channels_last),
    LayerMapping("Resizing", layers.Resizing, resizing_from_keras, resizing_to_keras),
    LayerMapping("CenterCrop", layers.CenterCrop, options("height", "width", data_format=True),
                 channels_last),
)
