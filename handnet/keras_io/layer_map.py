"""One table: each Keras layer class handnet reads and writes, both directions side by side.

    KERAS_LAYERS["Conv2D"].from_keras(options) -> a handnet Conv2D   (every option checked)
    KERAS_LAYERS["Conv2D"].to_keras(layer)     -> the Keras config of a handnet Conv2D

Import reads a layer's Keras config option by option (``KerasOptions``). An option handnet
does not implement, set to anything but its neutral value (channels_first, groups > 1, a
constraint, an activity regularizer, …), is refused with an error naming the layer, the option
and what handnet supports — never silently dropped, since the numbers would then differ.
Initializers are the exception: they only matter before the file's weights are loaded, so an
initializer handnet lacks falls back to the layer's default.

Each handnet layer keeps its weights in Keras's order (kernel, bias; gamma, beta, moving_mean,
moving_variance), so "vars/0, 1, …" of a .keras file map onto ``layer.weights()`` in order.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .. import activations, initializers
from .. import layers as hn_layers
from ..errors import HandnetError
from ..layers.bidirectional import MERGE_MODES
from ..layers.base import (
    snake_case,  # Keras's rule: GlorotUniform -> glorot_uniform, Conv2D -> conv2d
)

#: Activation names as Keras writes them -> handnet's name. Keras 2 wrote "softmax_v2" at times.
KERAS_ACTIVATIONS = {name: name for name in activations.ACTIVATIONS} | {"softmax_v2": "softmax"}
FLOAT_DTYPES = ("float32", "float64")
#: Options every layer has and the table handles once, for all of them.
COMMON_OPTIONS = ("name", "trainable", "dtype")


def _is_unset(value):
    return value is None or value is False or (isinstance(value, (list, dict, str)) and not value)


class KerasOptions:
    """A Keras layer config, read one option at a time. ``finish`` refuses whatever was left
    unread and set (not None / False / empty): an option this table has never heard of."""

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

    def unsupported(self, key, value, supported):
        return HandnetError(
            f"Keras layer {self.layer_name!r} ({self.class_name}): {key}={value!r} is not supported; "
            f"handnet supports {supported}"
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
        return {
            "activation": self.activation(),
            "use_bias": bool(self.get("use_bias", True)),
            "kernel_initializer": self.initializer("kernel_initializer", "glorot_uniform"),
            "bias_initializer": self.initializer("bias_initializer", "zeros"),
            "kernel_regularizer": self.regularizer("kernel_regularizer"),
            "bias_regularizer": self.regularizer("bias_regularizer"),
        }


@dataclass(frozen=True)
class LayerMapping:
    keras_class: str
    handnet_class: type
    from_keras: (
        Callable  # KerasOptions -> keyword arguments of handnet_class (without the common ones)
    )
    to_keras: Callable  # handnet layer -> Keras config (without name, trainable, dtype)


# -- Keras -> handnet: the options of each layer -------------------------------------------
def _dense(o):
    return {"units": o.get("units"), **o.weighted_options()}


def _conv2d(o):
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


def _pooling(o):
    o.data_format()
    return {
        "pool_size": o.get("pool_size", (2, 2)),
        "strides": o.get("strides"),
        "padding": o.choice("padding", ("valid", "same"), "valid"),
    }


def _global_pooling(o):
    o.data_format()
    return {"keepdims": bool(o.get("keepdims", False))}


def _zero_padding(o):
    o.data_format()
    return {"padding": o.get("padding", (1, 1))}


def _flatten(o):
    # channels_first would flatten in (C, H, W) order: a different vector, not a detail.
    o.data_format()
    return {}


def _reshape(o):
    return {"target_shape": o.get("target_shape")}


def _dropout(o):
    o.unset("noise_shape")
    return {"rate": o.get("rate"), "seed": o.get("seed")}


def _activation(o):
    return {"activation": o.activation()}


def _relu(o):
    return {
        "max_value": o.get("max_value"),
        "negative_slope": o.get("negative_slope", 0.0),
        "threshold": o.get("threshold", 0.0),
    }


def _leaky_relu(o):
    # Keras 2 called the slope "alpha"; both default to 0.3 in the layer.
    return {"negative_slope": o.get("negative_slope", o.get("alpha", 0.3))}


def _softmax(o):
    return {"axis": o.get("axis", -1)}


def _rescaling(o):
    return {"scale": o.get("scale"), "offset": o.get("offset", 0.0)}


def _batch_normalization(o):
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
        "beta_initializer": o.initializer("beta_initializer", "zeros"),
        "gamma_initializer": o.initializer("gamma_initializer", "ones"),
        "moving_mean_initializer": o.initializer("moving_mean_initializer", "zeros"),
        "moving_variance_initializer": o.initializer("moving_variance_initializer", "ones"),
    }


def _recurrent(o):
    """The options SimpleRNN, LSTM and GRU share. Keras's dropout and recurrent_dropout change
    training, so they are refused unless 0; unroll only chooses how Keras runs the loop."""
    o.unset("activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint")
    o.unset("return_state", "go_backwards", "stateful", "zero_output_for_mask")
    o.choice("dropout", (0, 0.0), 0.0)
    o.choice("recurrent_dropout", (0, 0.0), 0.0)
    o.get("unroll")
    o.get("seed")  # the dropout masks' seed
    return {
        "units": o.get("units"),
        "activation": o.activation() if "activation" in o.config else "tanh",
        "use_bias": bool(o.get("use_bias", True)),
        "return_sequences": bool(o.get("return_sequences", False)),
        "kernel_initializer": o.initializer("kernel_initializer", "glorot_uniform"),
        "recurrent_initializer": o.initializer("recurrent_initializer", "orthogonal"),
        "bias_initializer": o.initializer("bias_initializer", "zeros"),
        "kernel_regularizer": o.regularizer("kernel_regularizer"),
        "recurrent_regularizer": o.regularizer("recurrent_regularizer"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
    }


def _recurrent_activation(o):
    return o.activation("recurrent_activation") if "recurrent_activation" in o.config else "sigmoid"


def _lstm(o):
    return {
        **_recurrent(o),
        "recurrent_activation": _recurrent_activation(o),
        "unit_forget_bias": bool(o.get("unit_forget_bias", True)),
    }


def _gru(o):
    return {
        **_recurrent(o),
        "recurrent_activation": _recurrent_activation(o),
        "reset_after": o.choice("reset_after", (True,), True),
    }


def _bidirectional(o):
    """Keras nests the wrapped layer's config under "layer" and its backward copy's under
    "backward_layer"; that one has go_backwards=True, where handnet's Bidirectional reverses
    the sequence itself."""
    merge_mode = o.choice("merge_mode", MERGE_MODES, "concat")
    backward = o.get("backward_layer")
    if backward is not None:
        backward = _wrapped_layer(o, "backward_layer", backward, go_backwards=True)
    return {
        "layer": _wrapped_layer(o, "layer", o.get("layer"), go_backwards=False),
        "merge_mode": merge_mode,
        "backward_layer": backward,
    }


def _wrapped_layer(o, key, spec, go_backwards):
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise o.unsupported(key, spec, 'a layer as {"class_name": …, "config": {…}}')
    config = dict(spec["config"])
    if bool(config.pop("go_backwards", False)) != go_backwards:
        expected = f"go_backwards={go_backwards} there"
        raise o.unsupported(f"{key} go_backwards", not go_backwards, expected)
    # Bidirectional sets it to return_sequences; it matters only with a mask, which handnet lacks.
    config.pop("zero_output_for_mask", None)
    return layer_from_keras(spec.get("class_name"), config)


# -- handnet -> Keras ----------------------------------------------------------------------
def _keras_activation(layer, activation):
    name = activations.serialize(activation)
    if not isinstance(name, str):
        raise HandnetError(
            f"layer {layer.name!r}: Keras's {activation.name!r} activation string has fixed options; "
            f"{activation!r} cannot be written as one. Use a separate layers.LeakyReLU layer instead"
        )
    return name


def _keras_regularizer(regularizer):
    if regularizer is None:
        return None
    return {
        "module": "keras.regularizers",
        "class_name": "L1L2",
        "config": {"l1": regularizer.l1, "l2": regularizer.l2},
        "registered_name": None,
    }


def _keras_initializer(name, default):
    return name if isinstance(name, str) and name in initializers.INITIALIZERS else default


def _weighted_to_keras(layer):
    return {
        "activation": _keras_activation(layer, layer.activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": _keras_initializer(layer.kernel_initializer, "glorot_uniform"),
        "bias_initializer": _keras_initializer(layer.bias_initializer, "zeros"),
        "kernel_regularizer": _keras_regularizer(layer.kernel_regularizer),
        "bias_regularizer": _keras_regularizer(layer.bias_regularizer),
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }


def _dense_to_keras(layer):
    config = _weighted_to_keras(layer)
    del config["activity_regularizer"]  # Keras's Dense config has no such entry
    return {"units": layer.units, **config}


def _conv2d_to_keras(layer):
    return {
        "filters": layer.filters,
        "kernel_size": list(layer.kernel_size),
        "strides": list(layer.strides),
        "padding": layer.padding,
        "data_format": "channels_last",
        "dilation_rate": list(layer.dilation_rate),
        "groups": 1,
        **_weighted_to_keras(layer),
    }


def _pooling_to_keras(layer):
    return {
        "pool_size": list(layer.pool_size),
        "padding": layer.padding,
        "strides": list(layer.strides),
        "data_format": "channels_last",
    }


def _global_pooling_to_keras(layer):
    return {"data_format": "channels_last", "keepdims": layer.keepdims}


def _batch_normalization_to_keras(layer):
    return {
        "axis": layer.axis,
        "momentum": layer.momentum,
        "epsilon": layer.epsilon,
        "center": layer.center,
        "scale": layer.scale,
        "beta_initializer": _keras_initializer(layer.beta_initializer, "zeros"),
        "gamma_initializer": _keras_initializer(layer.gamma_initializer, "ones"),
        "moving_mean_initializer": _keras_initializer(layer.moving_mean_initializer, "zeros"),
        "moving_variance_initializer": _keras_initializer(
            layer.moving_variance_initializer, "ones"
        ),
        "beta_regularizer": None,
        "gamma_regularizer": None,
        "beta_constraint": None,
        "gamma_constraint": None,
        "synchronized": False,
    }


def _zero_padding_to_keras(layer):
    return {"padding": [list(pair) for pair in layer.padding], "data_format": "channels_last"}


def _flatten_to_keras(layer):
    return {"data_format": "channels_last"}


def _reshape_to_keras(layer):
    return {"target_shape": list(layer.target_shape)}


def _dropout_to_keras(layer):
    return {"rate": layer.rate, "seed": layer.seed, "noise_shape": None}


def _activation_to_keras(layer):
    return {"activation": _keras_activation(layer, layer.activation)}


def _relu_to_keras(layer):
    return {
        "max_value": layer.max_value,
        "negative_slope": layer.negative_slope,
        "threshold": layer.threshold,
    }


def _leaky_relu_to_keras(layer):
    return {"negative_slope": layer.negative_slope}


def _softmax_to_keras(layer):
    return {"axis": layer.axis}


def _rescaling_to_keras(layer):
    return {"scale": layer.scale, "offset": layer.offset}


def _recurrent_to_keras(layer):
    config = {
        "return_sequences": layer.return_sequences,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "zero_output_for_mask": False,
        "units": layer.units,
        "activation": _keras_activation(layer, layer.cell_activation),
    }
    if hasattr(layer, "recurrent_activation"):
        config["recurrent_activation"] = _keras_activation(layer, layer.recurrent_activation)
    return {
        **config,
        "use_bias": layer.use_bias,
        "kernel_initializer": _keras_initializer(layer.kernel_initializer, "glorot_uniform"),
        "recurrent_initializer": _keras_initializer(layer.recurrent_initializer, "orthogonal"),
        "bias_initializer": _keras_initializer(layer.bias_initializer, "zeros"),
        "kernel_regularizer": _keras_regularizer(layer.kernel_regularizer),
        "recurrent_regularizer": _keras_regularizer(layer.recurrent_regularizer),
        "bias_regularizer": _keras_regularizer(layer.bias_regularizer),
        "activity_regularizer": None,
        "kernel_constraint": None,
        "recurrent_constraint": None,
        "bias_constraint": None,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
    }


def _lstm_to_keras(layer):
    return {**_recurrent_to_keras(layer), "unit_forget_bias": layer.unit_forget_bias, "seed": None}


def _gru_to_keras(layer):
    return {**_recurrent_to_keras(layer), "reset_after": True, "seed": None}


def _bidirectional_to_keras(layer):
    forward = keras_layer_entry(layer.forward_layer)
    backward = keras_layer_entry(layer.backward_layer)
    backward["config"]["go_backwards"] = True
    for entry in (forward, backward):  # Keras's Bidirectional sets it; it matters only with a mask
        entry["config"]["zero_output_for_mask"] = layer.return_sequences
    return {"merge_mode": layer.merge_mode, "layer": forward, "backward_layer": backward}


_L = hn_layers
# fmt: off
KERAS_LAYERS = {
    mapping.keras_class: mapping
    for mapping in (
        #            Keras class               handnet class              import                  export
        LayerMapping("Dense",                  _L.Dense,                  _dense,                 _dense_to_keras),
        LayerMapping("Conv2D",                 _L.Conv2D,                 _conv2d,                _conv2d_to_keras),
        LayerMapping("MaxPooling2D",           _L.MaxPooling2D,           _pooling,               _pooling_to_keras),
        LayerMapping("AveragePooling2D",       _L.AveragePooling2D,       _pooling,               _pooling_to_keras),
        LayerMapping("GlobalAveragePooling2D", _L.GlobalAveragePooling2D, _global_pooling,        _global_pooling_to_keras),
        LayerMapping("GlobalMaxPooling2D",     _L.GlobalMaxPooling2D,     _global_pooling,        _global_pooling_to_keras),
        LayerMapping("ZeroPadding2D",          _L.ZeroPadding2D,          _zero_padding,          _zero_padding_to_keras),
        LayerMapping("Flatten",                _L.Flatten,                _flatten,               _flatten_to_keras),
        LayerMapping("Reshape",                _L.Reshape,                _reshape,               _reshape_to_keras),
        LayerMapping("Dropout",                _L.Dropout,                _dropout,               _dropout_to_keras),
        LayerMapping("Activation",             _L.Activation,             _activation,            _activation_to_keras),
        LayerMapping("ReLU",                   _L.ReLU,                   _relu,                  _relu_to_keras),
        LayerMapping("LeakyReLU",              _L.LeakyReLU,              _leaky_relu,            _leaky_relu_to_keras),
        LayerMapping("Softmax",                _L.Softmax,                _softmax,               _softmax_to_keras),
        LayerMapping("Rescaling",              _L.Rescaling,              _rescaling,             _rescaling_to_keras),
        LayerMapping("BatchNormalization",     _L.BatchNormalization,     _batch_normalization,   _batch_normalization_to_keras),
        LayerMapping("SimpleRNN",              _L.SimpleRNN,              _recurrent,             _recurrent_to_keras),
        LayerMapping("LSTM",                   _L.LSTM,                   _lstm,                  _lstm_to_keras),
        LayerMapping("GRU",                    _L.GRU,                    _gru,                   _gru_to_keras),
        LayerMapping("Bidirectional",          _L.Bidirectional,          _bidirectional,         _bidirectional_to_keras),
    )
}
# fmt: on
#: handnet class -> its mapping, for export.
BY_HANDNET_CLASS = {m.handnet_class: m for m in KERAS_LAYERS.values()}
#: Every Keras class import accepts: the table, plus InputLayer (which becomes the model's input shape).
SUPPORTED_KERAS_CLASSES = sorted([*KERAS_LAYERS, "InputLayer"])


def layer_from_keras(class_name, config):
    """The handnet layer for one Keras layer {"class_name", "config"}; raises on anything unsupported."""
    mapping = KERAS_LAYERS.get(class_name)
    if mapping is None:
        raise HandnetError(
            f"Keras layer {config.get('name', '?')!r} is a {class_name}, which handnet does not have; "
            f"handnet reads {', '.join(SUPPORTED_KERAS_CLASSES)}"
        )
    options = KerasOptions(class_name, config)
    common = options.common()
    arguments = mapping.from_keras(options)
    options.finish()
    try:
        return mapping.handnet_class(**arguments, **common)
    except (HandnetError, TypeError, ValueError) as error:
        raise HandnetError(f"Keras layer {options.layer_name!r} ({class_name}): {error}") from None


def layer_to_keras(layer):
    """(Keras class name, Keras config) of a handnet layer; raises for a layer Keras lacks."""
    mapping = BY_HANDNET_CLASS.get(type(layer))
    if mapping is None:
        names = sorted(m.handnet_class.__name__ for m in KERAS_LAYERS.values())
        raise HandnetError(
            f"layer {layer.name!r} ({type(layer).__name__}) has no Keras counterpart; Keras export covers {names}"
        )
    return mapping.keras_class, mapping.to_keras(layer)


def dtype_policy(dtype):
    """Keras 3's DTypePolicy entry for a layer of ``dtype``."""
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": dtype.name},
        "registered_name": None,
    }


def keras_layer_entry(layer):
    """A built handnet layer as Keras 3 writes a layer into a model's config.json (plain data)."""
    keras_class, keras_config = layer_to_keras(layer)
    return {
        "module": "keras.layers",
        "class_name": keras_class,
        "config": {
            "name": layer.name,
            "trainable": layer.trainable,
            "dtype": dtype_policy(layer.dtype),
            **keras_config,
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, *layer.input_shape]},
    }
