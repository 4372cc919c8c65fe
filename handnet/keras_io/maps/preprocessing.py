"""Normalization (Keras's preprocessing layer), both directions.

Its mean and variance are either in the config (given as arguments: the file has no arrays
for it) or, after ``adapt``, arrays of the layer — layers/<key>/vars/0, 1, 2 = mean, variance,
count — which handnet's layer keeps under the same names and order.
"""

from ... import layers
from ..options import LayerMapping
from .registry import register


def normalization_from_keras(o):
    return {**o.copy("axis", "mean", "variance"), "invert": bool(o.get("invert", False))}


def normalization_to_keras(layer, config):
    return config  # the layer's get_config is Keras's: axis, mean, variance, invert


register(
    LayerMapping("Normalization", layers.Normalization, normalization_from_keras,
                 normalization_to_keras),
)
