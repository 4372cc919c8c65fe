"""The normalizations, both directions: BatchNormalization (the last axis; no renorm),
LayerNormalization (any axes, rms_scaling), GroupNormalization and UnitNormalization. Keras's
regularizers and constraints on gamma and beta are refused unless unset: handnet has none."""

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


GAMMA_BETA = {"beta_initializer": "zeros", "gamma_initializer": "ones"}
UNSET_GAMMA_BETA = ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint")


def _gamma_beta_from_keras(o):
    o.unset(*UNSET_GAMMA_BETA)
    return {
        **o.copy("axis", "epsilon"),
        "center": bool(o.get("center", True)),
        "scale": bool(o.get("scale", True)),
        **{key: o.initializer(key, default) for key, default in GAMMA_BETA.items()},
    }


def layer_normalization_from_keras(o):
    return {**_gamma_beta_from_keras(o), "rms_scaling": bool(o.get("rms_scaling", False))}


def group_normalization_from_keras(o):
    return {**_gamma_beta_from_keras(o), **o.copy("groups")}


def gamma_beta_to_keras(layer, config):
    return {
        **config,
        **keras_initializers(config, GAMMA_BETA),
        **{key: None for key in UNSET_GAMMA_BETA},
    }


def unit_normalization_from_keras(o):
    return o.copy("axis")


def same_config(layer, config):
    return config


register(
    LayerMapping("LayerNormalization", layers.LayerNormalization, layer_normalization_from_keras,
                 gamma_beta_to_keras),
    LayerMapping("GroupNormalization", layers.GroupNormalization, group_normalization_from_keras,
                 gamma_beta_to_keras),
    LayerMapping("UnitNormalization", layers.UnitNormalization, unit_normalization_from_keras,
                 same_config),
    LayerMapping("BatchNormalization", layers.BatchNormalization,
                 batch_normalization_from_keras, batch_normalization_to_keras),
)
