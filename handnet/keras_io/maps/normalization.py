"""BatchNormalization, both directions (the last axis; no renorm, regularizers or constraints)."""

from ... import layers
from ..options import LayerMapping, keras_initializers
from .registry import register

INITIALIZER_DEFAULTS = {
    "beta_initializer": "zeros",
    "gamma_initializer": "ones",
    "moving_mean_initializer": "zeros",
    "moving_variance_initializer": "ones",
}


def batch_normalization_from_keras(o):
    o.unset("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint")
    o.unset("renorm", "virtual_batch_size", "adjustment")
    # Ignored on purpose: renorm's settings (renorm is off), synchronized (only changes how
    # statistics are gathered across devices) and Keras 2's fused (an implementation choice).
    for key in ("renorm_clipping", "renorm_momentum", "synchronized", "fused"):
        o.get(key)
    axis = o.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise o.unsupported("axis", axis, "one axis, the last")
        axis = axis[0]
    return {
        "axis": axis,
        "momentum": o.get("momentum", 0.99),
        "epsilon": o.get("epsilon", 1e-3),
        "center": bool(o.get("center", True)),
        "scale": bool(o.get("scale", True)),
        **{key: o.initializer(key, default) for key, default in INITIALIZER_DEFAULTS.items()},
    }


def batch_normalization_to_keras(layer, config):
    return {
        **config,
        **keras_initializers(config, INITIALIZER_DEFAULTS),
        "beta_regularizer": None,
        "gamma_regularizer": None,
        "beta_constraint": None,
        "gamma_constraint": None,
        "synchronized": False,
    }


register(
    LayerMapping("BatchNormalization", layers.BatchNormalization,
                 batch_normalization_from_keras, batch_normalization_to_keras),
)
