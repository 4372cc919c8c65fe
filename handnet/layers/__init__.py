"""Every handnet layer, importable as ``handnet.layers.Dense`` and so on."""

from ..errors import HandnetError
from .base import Layer
from .core import Activation, Flatten, Input, Reshape
from .dense import Dense
from .dropout import Dropout

LAYERS = {cls.__name__: cls for cls in (Activation, Dense, Dropout, Flatten, Input, Reshape)}


def register(cls):
    """Make a layer class known to ``load_model`` (used by the layer families' modules)."""
    LAYERS[cls.__name__] = cls
    return cls


def deserialize(spec):
    """A layer from {"class_name": ..., "config": {...}} as written by ``Sequential.get_config``."""
    class_name = spec.get("class_name")
    if class_name not in LAYERS:
        raise HandnetError(f"unknown layer type {class_name!r}; handnet has {sorted(LAYERS)}")
    return LAYERS[class_name].from_config(spec.get("config", {}))


__all__ = ["Layer", *sorted(LAYERS), "deserialize", "register"]
