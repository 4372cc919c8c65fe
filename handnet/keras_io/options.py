"""What every layer family's Keras mapping shares: reading a Keras config option by option, and
writing handnet values (activations, initializers, regularizers, dtypes) the way Keras does.

Import reads a layer's Keras config with ``KerasOptions``. An option handnet does not implement,
set to anything but its neutral value (channels_first, groups > 1, a constraint, an activity
regularizer, …), is refused with an error naming the layer, the option and what handnet
supports — never silently dropped, since the numbers would then differ. Initializers are the
exception: they only matter before the file's weights are loaded, so an initializer handnet
lacks falls back to the layer's default.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .. import activations, initializers
from ..errors import HandnetError
from ..layers.base import (
    snake_case,  # Keras's rule: GlorotUniform -> glorot_uniform, Conv2D -> conv2d
)

#: Activation names as Keras writes them -> handnet's name. Keras 2 wrote "softmax_v2" at times.
KERAS_ACTIVATIONS = {name: name for name in activations.ACTIVATIONS} | {"softmax_v2": "softmax"}
#: The activation strings Keras 3 writes that handnet refuses, each with its reason.
REFUSED_ACTIVATIONS = {
    "glu": "it halves the last axis (a gated linear unit: a · sigmoid(b) of its two halves), so "
           "a layer's output would not have the size its config says; handnet's activations "
           "keep the shape",
    "sparsemax": "handnet has no sparsemax (a projection onto the simplex, by sorting)",
    "threshold": "Keras's threshold(x, threshold, default_value) needs two numbers a string "
                 "cannot carry; use a ReLU layer with its threshold",
}
FLOAT_DTYPES = ("float32", "float64")
#: Options every layer has and the registry handles once, for all of them.
COMMON_OPTIONS = ("name", "trainable", "dtype")


@dataclass(frozen=True)
class LayerMapping:
    """One Keras class and its handnet twin, both directions side by side.

    from_keras(options: KerasOptions) -> keyword arguments of handnet_class (without the
        common name, trainable, dtype), every option read through ``options``;
    to_keras(layer, config) -> the Keras config (without name, trainable, dtype), from
        ``config`` = the layer's own ``get_config()`` less those three, plus Keras-only keys.
    """

    keras_class: str
    handnet_class: type
    from_keras: Callable
    to_keras: Callable
    #: The common options Keras's class takes (SpatialDropout1D/2D take no ``trainable``).
    keras_common: tuple = COMMON_OPTIONS
    #: build_config(layer) -> Keras's "build_config" of the layer, where it is not
    #: {"input_shape": …} (MultiHeadAttention's names its shapes); None for that default.
    build_config: Callable = None


def _is_unset(value):
    return value is None or value is False or (isinstance(value, (list, dict, str)) and not value)


class KerasOptions:
    """A Keras layer config, read one option at a time. ``finish`` refuses whatever was left
    unread and set (not None / False / empty): an option no mapping has ever heard of."""

    def __init__(self, class_name, config):
        if not isinstance(config, dict):
            raise HandnetError(
                f"Keras layer {class_name}: its config should be a JSON object, got {config!r}"
            )
        self.class_name = class_name
        self.config = config
        self.layer_name = config.get("name", "?")
        self._read = set(COMMON_OPTIONS)

    def get(self, key, default=None):
        self._read.add(key)
        return self.config.get(key, default)

    def copy(self, *keys):
        """{key: value} of the ``keys`` the config has: options whose Keras name, meaning and
        values are handnet's (the handnet layer checks the values; a key Keras left out takes
        the handnet default, which is Keras's)."""
        return {key: self.get(key) for key in keys if key in self.config}

    def unsupported(self, key, value, supported):
        return HandnetError(
            f"Keras layer {self.layer_name!r} ({self.class_name}): {key}={value!r} is not "
            f"supported; handnet supports {supported}"
        )

    def refused(self, key, value, reason):
        return HandnetError(
            f"Keras layer {self.layer_name!r} ({self.class_name}): {key}={value!r} is not "
            f"supported: {reason}"
        )

    def choice(self, key, supported, default):
        value = self.get(key, default)
        if value not in supported:
            raise self.unsupported(key, value, " or ".join(map(repr, supported)))
        return value

    def unset(self, *keys):
        """Options handnet does not implement: each must be absent or None/False."""
        for key in keys:
            value = self.get(key)
            if not _is_unset(value):
                raise self.unsupported(key, value, f"only {key}=None")

    def finish(self):
        for key, value in self.config.items():
            if key not in self._read and not _is_unset(value):
                raise self.unsupported(key, value, "no such option (only its default, unset)")

    # -- values shared by many layers ----------------------------------------------------
    def common(self):
        """name, trainable, dtype as handnet layer keyword arguments."""
        return {
            "name": self.config.get("name"),
            "trainable": bool(self.config.get("trainable", True)),
            "dtype": self.dtype(),
        }

    def dtype(self):
        value = self.config.get("dtype")
        if isinstance(value, dict):  # Keras 3 DTypePolicy, Keras 2 Policy: {"config": {"name": …}}
            value = (value.get("config") or {}).get("name")
        name = value or "float32"
        if name not in FLOAT_DTYPES:
            raise self.unsupported("dtype", name, " or ".join(FLOAT_DTYPES))
        return name

    def activation(self, key="activation"):
        value = self.get(key, "linear")
        if isinstance(value, dict) and isinstance(value.get("config"), str):
            value = value["config"]  # {"class_name": "function", "config": "relu"} (Keras 3.0)
        value = "linear" if value is None else value
        if isinstance(value, str) and value in REFUSED_ACTIVATIONS:
            raise self.refused(key, value, REFUSED_ACTIVATIONS[value])
        if value not in KERAS_ACTIVATIONS:
            raise self.unsupported(key, value, f"the activations {sorted(activations.ACTIVATIONS)}")
        return KERAS_ACTIVATIONS[value]

    def data_format(self):
        self.choice("data_format", (None, "channels_last"), None)

    def initializer(self, key, default):
        value = self.get(key)
        if isinstance(value, dict):
            value = value.get("class_name")
        name = snake_case(value) if isinstance(value, str) else None
        return name if name in initializers.INITIALIZERS else default

    def regularizer(self, key):
        value = self.get(key)
        if value is None or value in ("l1", "l2"):
            return value
        if isinstance(value, dict) and value.get("class_name") in ("L1", "L2", "L1L2"):
            config = value.get("config") or {}
            return {"l1": float(config.get("l1", 0.0)), "l2": float(config.get("l2", 0.0))}
        raise self.unsupported(key, value, "None, L1, L2 or L1L2")

    def weighted_options(self):
        """The options Dense and Conv2D share."""
        self.unset("activity_regularizer", "kernel_constraint", "bias_constraint", "lora_rank")
        self.unset("quantization_config")
        return {
            "activation": self.activation(),
            "use_bias": bool(self.get("use_bias", True)),
            "kernel_initializer": self.initializer("kernel_initializer", "glorot_uniform"),
            "bias_initializer": self.initializer("bias_initializer", "zeros"),
            "kernel_regularizer": self.regularizer("kernel_regularizer"),
            "bias_regularizer": self.regularizer("bias_regularizer"),
        }


# -- handnet -> Keras ----------------------------------------------------------------------
def keras_activation(layer, activation):
    """The Keras activation string of ``activation`` (an object, or the name or dict a layer's
    get_config holds); refuses a leaky_relu whose slope Keras's string cannot carry."""
    name = activation if isinstance(activation, (str, dict)) else activations.serialize(activation)
    if not isinstance(name, str):
        raise HandnetError(
            f"layer {layer.name!r}: Keras's {name.get('name')!r} activation string has fixed "
            f"options; {name!r} cannot be written as one. Use a separate layers.LeakyReLU layer "
            "instead"
        )
    return name


def keras_regularizer(regularizer):
    """A handnet regularizer (its object or its {"l1", "l2"} config) as Keras's L1L2 entry."""
    if regularizer is None:
        return None
    if isinstance(regularizer, str):
        regularizer = {"l1": 0.01 if regularizer == "l1" else 0.0,
                       "l2": 0.01 if regularizer == "l2" else 0.0}
    if not isinstance(regularizer, dict):
        regularizer = {"l1": regularizer.l1, "l2": regularizer.l2}
    return {
        "module": "keras.regularizers",
        "class_name": "L1L2",
        "config": {"l1": regularizer["l1"], "l2": regularizer["l2"]},
        "registered_name": None,
    }


def keras_initializer(name, default):
    return name if isinstance(name, str) and name in initializers.INITIALIZERS else default


def keras_initializers(config, defaults):
    """``config`` with each initializer key in ``defaults`` made one Keras knows."""
    return {key: keras_initializer(config.get(key), default) for key, default in defaults.items()}


def dtype_policy(dtype):
    """Keras 3's DTypePolicy entry for a layer of ``dtype``."""
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": getattr(dtype, "name", str(dtype))},
        "registered_name": None,
    }
