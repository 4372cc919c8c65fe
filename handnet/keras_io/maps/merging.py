"""The merge layers, both directions: Add, Subtract, Multiply, Average, Maximum, Minimum (no
options), Concatenate (axis) and Dot (axes, normalize). Their get_config is Keras's."""

from ... import layers
from ..options import LayerMapping
from .registry import register


def no_options(o):
    return {}


def concatenate_from_keras(o):
    return {"axis": o.get("axis", -1)}


def dot_from_keras(o):
    return {"axes": o.get("axes"), "normalize": bool(o.get("normalize", False))}


def same_config(layer, config):
    return config


register(
    *(
        LayerMapping(name, getattr(layers, name), no_options, same_config)
        for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
    ),
    LayerMapping("Concatenate", layers.Concatenate, concatenate_from_keras, same_config),
    LayerMapping("Dot", layers.Dot, dot_from_keras, same_config),
)
