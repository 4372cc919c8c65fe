"""EinsumDense, MultiHeadAttention, Attention and AdditiveAttention, both directions.

Their options are Keras's. What is particular to them:

- **calls.** Keras writes a MultiHeadAttention call with its tensors as arguments,
  {"args": [query, value], "kwargs": {"key": …, "attention_mask": …, "use_causal_mask": true}},
  and an Attention call on a list, {"args": [[query, value, key]], "kwargs":
  {"return_attention_scores": true}}. ``read_call`` turns either into handnet's node, the
  tensors [query, value, (key), (attention_mask)] and the options saying which are there
  (handnet.layers.attention); ``write_call`` writes a node back in Keras's form.
- **weights.** Keras's MultiHeadAttention keeps its four EinsumDense sublayers' weights in
  groups of their own, layers/<key>/{query_dense, key_dense, value_dense, output_dense}/vars
  in a .keras file (the reader reads them in that order) and <name>/{query, key, value,
  attention_output}/{kernel, bias} in a legacy .h5; handnet's names are those of the .h5
  file: query/kernel, query/bias, …, attention_output/bias, in the same order.
- **build.** Keras rebuilds a MultiHeadAttention from {"shapes_dict": {"query_shape",
  "value_shape", ("key_shape")}}, not from one input shape.
"""

from ... import layers
from ...errors import HandnetError
from ..options import LayerMapping, keras_activation, keras_initializers, keras_regularizer
from ..reader import MHA_SUBLAYERS
from .registry import batch_shapes, register

__all__ = [
    "CALL_FORMS", "MHA_EMPTY_SUBLAYERS", "MHA_SUBLAYERS", "keras_call", "read_call", "write_call",
]

#: How Keras writes a call: tensors as arguments (MultiHeadAttention) or one list (Attention).
CALL_FORMS = {"MultiHeadAttention": "arguments", "Attention": "list", "AdditiveAttention": "list"}
#: Sublayers without weights Keras saves a group for all the same.
MHA_EMPTY_SUBLAYERS = ("_softmax", "_dropout_layer")
_FLAGS = ("use_causal_mask", "return_attention_scores")
_NEUTRAL = {"training": (None, False), "query_mask": (None,), "value_mask": (None,),
            "key_mask": (None,), "mask": (None,)}


def _initializers_and_regularizers(o):
    return {
        "kernel_initializer": o.initializer("kernel_initializer", "glorot_uniform"),
        "bias_initializer": o.initializer("bias_initializer", "zeros"),
        "kernel_regularizer": o.regularizer("kernel_regularizer"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
    }


def _keras_initializers_and_regularizers(config):
    return {
        **keras_initializers(config, {"kernel_initializer": "glorot_uniform",
                                      "bias_initializer": "zeros"}),
        "kernel_regularizer": keras_regularizer(config.get("kernel_regularizer")),
        "bias_regularizer": keras_regularizer(config.get("bias_regularizer")),
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }


# -- EinsumDense ---------------------------------------------------------------------------
def einsum_dense_from_keras(o):
    o.unset("activity_regularizer", "kernel_constraint", "bias_constraint", "lora_rank",
            "lora_alpha", "quantization_config", "gptq_unpacked_column_size")
    return {
        "equation": o.get("equation"),
        "output_shape": o.get("output_shape"),
        "activation": o.activation(),
        "bias_axes": o.get("bias_axes"),
        **_initializers_and_regularizers(o),
    }


def einsum_dense_to_keras(layer, config):
    return {
        **config,
        "activation": keras_activation(layer, layer.activation),
        **_keras_initializers_and_regularizers(config),
        "quantization_config": None,
    }


# -- MultiHeadAttention ----------------------------------------------------------------------
def mha_from_keras(o):
    o.unset("activity_regularizer", "kernel_constraint", "bias_constraint", "use_gate",
            "sliding_window", "flash_attention")
    return {
        "num_heads": o.get("num_heads"),
        "key_dim": o.get("key_dim"),
        "value_dim": o.get("value_dim"),
        "dropout": o.get("dropout", 0.0),
        "use_bias": bool(o.get("use_bias", True)),
        "output_shape": o.get("output_shape"),
        "attention_axes": o.get("attention_axes"),
        "seed": o.get("seed"),
        **_initializers_and_regularizers(o),
    }


def mha_to_keras(layer, config):
    return {
        **config,
        "use_gate": False,
        "sliding_window": None,
        **_keras_initializers_and_regularizers(config),
    }


def mha_build_config(layer):
    """Keras's build_config of a MultiHeadAttention: its build(query_shape, value_shape,
    key_shape) arguments by name."""
    shapes = layer._shapes(layer.input_shape)
    config = {"query_shape": batch_shapes(shapes["query"]),
              "value_shape": batch_shapes(shapes["value"])}
    if layer._signature["key"]:
        config["key_shape"] = batch_shapes(shapes["key"])
    return {"shapes_dict": config}


# -- Attention, AdditiveAttention --------------------------------------------------------------
def attention_from_keras(o):
    return {
        "use_scale": bool(o.get("use_scale", False)),
        "score_mode": o.choice("score_mode", ("dot", "concat"), "dot"),
        "dropout": o.get("dropout", 0.0),
        "seed": o.get("seed"),
    }


def additive_attention_from_keras(o):
    return {"use_scale": bool(o.get("use_scale", True)), "dropout": o.get("dropout", 0.0),
            "seed": o.get("seed")}


def same_config(layer, config):
    return config


register(
    LayerMapping("EinsumDense", layers.EinsumDense, einsum_dense_from_keras,
                 einsum_dense_to_keras),
    LayerMapping("MultiHeadAttention", layers.MultiHeadAttention, mha_from_keras, mha_to_keras,
                 build_config=mha_build_config),
    LayerMapping("Attention", layers.Attention, attention_from_keras, same_config),
    LayerMapping("AdditiveAttention", layers.AdditiveAttention, additive_attention_from_keras,
                 same_config),
)


# -- calls ---------------------------------------------------------------------------------
def read_call(path, name, class_name, node, history):
    """(tensor references, options) of one Keras 3 inbound node of an attention layer;
    ``history(item)`` reads one __keras_tensor__ into its (layer, call, output)."""
    if not isinstance(node, dict):
        raise HandnetError(
            f"{path}: layer {name!r} ({class_name}) has a call handnet cannot read (Keras 2's "
            "form of an attention call is not supported): {node!r}"
        )
    args, kwargs = node.get("args"), node.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise HandnetError(f"{path}: layer {name!r} has a call handnet cannot read: {node!r}")
    kwargs = dict(kwargs)
    if CALL_FORMS[class_name] == "list":
        if len(args) != 1 or not isinstance(args[0], list) or len(args[0]) not in (2, 3):
            raise HandnetError(
                f"{path}: layer {name!r} ({class_name}) is called on {args!r}; Keras calls it "
                "on one list [query, value] or [query, value, key]"
            )
        tensors = {"query": args[0][0], "value": args[0][1],
                   "key": args[0][2] if len(args[0]) == 3 else None, "attention_mask": None}
    else:
        positional = ("query", "value", "key")
        if not 1 <= len(args) <= 3:
            raise HandnetError(
                f"{path}: layer {name!r} ({class_name}) is called with {len(args)} arguments; "
                "it takes query, value and key"
            )
        tensors = dict(zip(positional, args))
        for role in ("query", "value", "key", "attention_mask"):
            if role in kwargs:
                if tensors.get(role) is not None:
                    raise HandnetError(f"{path}: layer {name!r}: {role} is given twice")
                tensors[role] = kwargs.pop(role)
        if tensors.get("value") is None:
            raise HandnetError(f"{path}: layer {name!r} ({class_name}) is called without a value")
    options = {}
    for flag in _FLAGS:
        value = kwargs.pop(flag, False)
        if not isinstance(value, bool):
            raise HandnetError(f"{path}: layer {name!r}: {flag} must be true or false, got "
                               f"{value!r}")
        if value:
            options[flag] = True
    for key, allowed in _NEUTRAL.items():
        if key in kwargs and kwargs[key] in allowed:
            kwargs.pop(key)
    if kwargs:
        raise HandnetError(
            f"{path}: layer {name!r} ({class_name}) is called with arguments {sorted(kwargs)} "
            "handnet does not read (an explicit mask=[…] or query_mask/value_mask tensor: "
            "handnet takes the masks from the inputs)"
        )
    references = []
    for role in ("query", "value", "key", "attention_mask"):
        item = tensors.get(role)
        if item is None:
            continue
        if role in ("key", "attention_mask"):
            options[role] = True
        references.append(history(item))
    return references, options


def keras_call(keras_layer, layer, node, values):
    """Call ``keras_layer`` (Keras's twin of ``layer``) as the node ``node`` was called, on
    ``values`` (arrays, in the node's order of inputs): for compare-keras."""
    named = dict(zip(layer._roles(), values))
    flags = {flag: True for flag in _FLAGS if node.options.get(flag)}
    if CALL_FORMS[type(layer).__name__] == "list":
        inputs = [named[r] for r in ("query", "value", "key") if r in named]
        return keras_layer(inputs, training=False, **flags)
    kwargs = {role: named[role] for role in ("key", "attention_mask") if role in named}
    return keras_layer(named["query"], named["value"], training=False, **kwargs, **flags)


def write_call(layer, node, keras_tensor):
    """A handnet attention node as Keras 3 writes the call (``keras_tensor(t)`` writes one)."""
    roles = layer._roles()
    named = dict(zip(roles, node.inputs))
    flags = {flag: True for flag in _FLAGS if node.options.get(flag)}
    if CALL_FORMS[type(layer).__name__] == "list":
        tensors = [keras_tensor(named[r]) for r in ("query", "value", "key") if r in named]
        return {"args": [tensors], "kwargs": flags}
    kwargs = {role: keras_tensor(named[role]) for role in ("key", "attention_mask")
              if role in named}
    return {"args": [keras_tensor(named["query"]), keras_tensor(named["value"])],
            "kwargs": {**kwargs, **flags}}
