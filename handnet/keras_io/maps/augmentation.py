"""The image augmentation layers, both directions: RandomFlip, RandomRotation,
RandomTranslation, RandomZoom, RandomContrast, RandomCrop and RandomBrightness. In inference
each is the identity, except RandomCrop (a centre crop to height × width, as in Keras); in
training they draw from their seed. Their options are handnet's under Keras's names; fill
modes and interpolations handnet lacks are refused by name, and channels_first is refused.
"""

from ... import layers
from ...layers.augmentation import FLIP_MODES
from ... import augment
from ..options import LayerMapping
from .registry import register

#: Keras's call(data, training=True) for these (its BaseImagePreprocessingLayer's, so also the
#: deterministic Resizing and CenterCrop of maps/reshaping.py): a functional model's file
#: records training=True in each of their calls, the default, which Keras's fit and predict
#: override with their own flag (models/functional.py, operation_fn) as handnet's fit and
#: predict do.
TRAINING_BY_DEFAULT = ("RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                       "RandomContrast", "RandomCrop", "RandomBrightness", "Resizing",
                       "CenterCrop")


def options(*keys):
    def from_keras(o):
        o.data_format()
        return o.copy("seed", *keys)

    return from_keras


def flip_from_keras(o):
    return {**options()(o), "mode": o.choice("mode", FLIP_MODES, "horizontal_and_vertical")}


def affine(*keys):
    """RandomRotation, RandomTranslation, RandomZoom: resampled images."""

    def from_keras(o):
        return {
            **options("fill_value", *keys)(o),
            "fill_mode": o.choice("fill_mode", augment.FILL_MODES, "reflect"),
            "interpolation": o.choice("interpolation", augment.INTERPOLATIONS, "bilinear"),
        }

    return from_keras


def same_config(layer, config):
    return config  # data_format included


register(
    LayerMapping("RandomFlip", layers.RandomFlip, flip_from_keras, same_config),
    LayerMapping("RandomRotation", layers.RandomRotation, affine("factor"), same_config),
    LayerMapping("RandomTranslation", layers.RandomTranslation,
                 affine("height_factor", "width_factor"), same_config),
    LayerMapping("RandomZoom", layers.RandomZoom, affine("height_factor", "width_factor"),
                 same_config),
    LayerMapping("RandomContrast", layers.RandomContrast, options("factor", "value_range"),
                 same_config),
    LayerMapping("RandomCrop", layers.RandomCrop, options("height", "width"), same_config),
    LayerMapping("RandomBrightness", layers.RandomBrightness, options("factor", "value_range"),
                 same_config),
)
