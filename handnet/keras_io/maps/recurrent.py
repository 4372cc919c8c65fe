"""SimpleRNN, LSTM, GRU and the wrappers Bidirectional and TimeDistributed, both directions.
Keras keeps a recurrent layer's weights in its cell (layers/<key>/cell/vars), a
Bidirectional's in its two wrapped layers (…/forward_layer/…, …/backward_layer/…) and a
TimeDistributed's in its one (layers/<key>/layer/vars, or …/layer/cell/vars); the reader and
the writer handle those paths, this file the options."""

from ... import layers
from ...layers.bidirectional import MERGE_MODES
from ..options import LayerMapping, keras_activation, keras_initializers, keras_regularizer
from . import registry

INITIALIZER_DEFAULTS = {
    "kernel_initializer": "glorot_uniform",
    "recurrent_initializer": "orthogonal",
    "bias_initializer": "zeros",
}
REGULARIZERS = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer")


def recurrent_from_keras(o):
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
        **{key: o.initializer(key, default) for key, default in INITIALIZER_DEFAULTS.items()},
        **{key: o.regularizer(key) for key in REGULARIZERS},
    }


def _recurrent_activation(o):
    return o.activation("recurrent_activation") if "recurrent_activation" in o.config else "sigmoid"


def lstm_from_keras(o):
    return {
        **recurrent_from_keras(o),
        "recurrent_activation": _recurrent_activation(o),
        "unit_forget_bias": bool(o.get("unit_forget_bias", True)),
    }


def gru_from_keras(o):
    return {
        **recurrent_from_keras(o),
        "recurrent_activation": _recurrent_activation(o),
        "reset_after": o.choice("reset_after", (True,), True),
    }


def recurrent_to_keras(layer, config):
    keras_config = {
        **config,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "zero_output_for_mask": False,
        "activation": keras_activation(layer, layer.cell_activation),
        **keras_initializers(config, INITIALIZER_DEFAULTS),
        **{key: keras_regularizer(config.get(key)) for key in REGULARIZERS},
        "activity_regularizer": None,
        "kernel_constraint": None,
        "recurrent_constraint": None,
        "bias_constraint": None,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
    }
    if hasattr(layer, "recurrent_activation"):
        keras_config["recurrent_activation"] = keras_activation(layer, layer.recurrent_activation)
    if not isinstance(layer, layers.SimpleRNN):
        keras_config["seed"] = None
    return keras_config


def bidirectional_from_keras(o):
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
    return registry.layer_from_keras(spec.get("class_name"), config)


def bidirectional_to_keras(layer, config):
    forward = registry.keras_layer_entry(layer.forward_layer)
    backward = registry.keras_layer_entry(layer.backward_layer)
    backward["config"]["go_backwards"] = True
    for entry in (forward, backward):  # Keras's Bidirectional sets it; it matters only with a mask
        entry["config"]["zero_output_for_mask"] = layer.return_sequences
    return {"merge_mode": layer.merge_mode, "layer": forward, "backward_layer": backward}


def time_distributed_from_keras(o):
    """Keras nests the wrapped layer's config under "layer": any layer handnet imports (its own
    options checked as at the top level), not a model."""
    spec = o.get("layer")
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise o.unsupported("layer", spec, 'a layer as {"class_name": …, "config": {…}}')
    if spec.get("class_name") in ("Sequential", "Functional", "Model"):
        raise o.refused("layer", spec.get("class_name"),
                        "handnet's TimeDistributed wraps one layer, not a model")
    return {"layer": registry.layer_from_keras(spec.get("class_name"), spec["config"])}


def time_distributed_to_keras(layer, config):
    return {"layer": registry.keras_layer_entry(layer.layer)}


registry.register(
    LayerMapping("TimeDistributed", layers.TimeDistributed, time_distributed_from_keras,
                 time_distributed_to_keras),
    LayerMapping("SimpleRNN", layers.SimpleRNN, recurrent_from_keras, recurrent_to_keras),
    LayerMapping("LSTM", layers.LSTM, lstm_from_keras, recurrent_to_keras),
    LayerMapping("GRU", layers.GRU, gru_from_keras, recurrent_to_keras),
    LayerMapping("Bidirectional", layers.Bidirectional, bidirectional_from_keras,
                 bidirectional_to_keras),
)
