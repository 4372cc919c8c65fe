"""The noise and regularization layers, both directions: SpatialDropout1D/2D, GaussianNoise,
GaussianDropout, AlphaDropout and ActivityRegularization. In inference each is the identity
(as in Keras); their options are handnet's under Keras's names.

Keras's SpatialDropout1D/2D take no ``trainable`` (their __init__ has name and dtype only), so
their export leaves it out: Keras could not rebuild them otherwise.
"""

from ... import layers
from ..options import LayerMapping
from .registry import register


def options(*keys, data_format=False):
    def from_keras(o):
        if data_format:
            o.data_format()
        return o.copy(*keys)

    return from_keras


def same_config(layer, config):
    return config


def alpha_dropout_from_keras(o):
    return o.copy("rate", "noise_shape", "seed")


NAME_AND_DTYPE = ("name", "dtype")

register(
    LayerMapping("SpatialDropout1D", layers.SpatialDropout1D, options("rate", "seed"),
                 same_config, keras_common=NAME_AND_DTYPE),
    LayerMapping("SpatialDropout2D", layers.SpatialDropout2D,
                 options("rate", "seed", data_format=True), same_config,
                 keras_common=NAME_AND_DTYPE),
    LayerMapping("GaussianNoise", layers.GaussianNoise, options("stddev", "seed"), same_config),
    LayerMapping("GaussianDropout", layers.GaussianDropout, options("rate", "seed"),
                 same_config),
    LayerMapping("AlphaDropout", layers.AlphaDropout, alpha_dropout_from_keras, same_config),
    LayerMapping("ActivityRegularization", layers.ActivityRegularization, options("l1", "l2"),
                 same_config),
)
