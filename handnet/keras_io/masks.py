"""The mask computations Keras 3 records as operation nodes of a functional model.

A Keras functional model built on a masked sequence saves the mask as nodes of its own, and
hands it to the layers that read it as ``mask=`` (a recurrent layer, a TimeDistributed):

    Embedding(mask_zero=True) on x:   m = NotEqual(x, 0)                  (N, T)
    Masking(mask_value=v) on x:       m = Any(NotEqual(x, v), axis=-1)    (N, T, D) -> (N, T)

handnet makes these very masks inside Embedding and Masking and carries them through the graph
itself (handnet.model.plan), so such nodes are dropped on import, and the ``mask=`` arguments
with them, when two things hold:

- structure: the node is exactly one of the two patterns above, its constant that of a
  layer of the file called on the same tensor, and its output is used as ``mask=`` only;
- what reaches each layer: after the model is built, one inference pass on made-up data
  (integers 0 and 1, valid for any Embedding) shows handnet's own mask at that layer's input
  to be the one that layer's Keras call was handed, the mask of the same Embedding or
  Masking call.

Any other NotEqual or Any (arithmetic on data, a mask from elsewhere) is refused by name, as
every operation node is: nothing in the file is run.
"""

import warnings

import numpy as np

from ..errors import HandnetError

#: Operation classes that take part in a mask computation.
MASK_OPERATIONS = ("NotEqual", "Any")
PROBE_SAMPLES = 8


def mask_nodes(path, specs):
    """{name of the node whose output is the mask: (source layer, its call)} for every mask
    computation of the file's layers ``specs`` ({name: entry}), and the names of all the
    nodes they are made of (to leave out); a HandnetError names a node that is not a pure
    mask computation."""
    uses = _uses(specs)
    sources, parts = {}, set()
    for name, entry in specs.items():
        if entry.get("class_name") != "NotEqual":
            continue
        tensor, constant = _not_equal(path, name, entry)
        readers = uses.get(name, {"args": [], "mask": []})
        any_nodes = [reader for reader in readers["args"] if specs[reader]["class_name"] == "Any"]
        if readers["args"] and (len(readers["args"]) > 1 or len(any_nodes) != 1):
            raise _not_a_mask(path, name, "its output is used as data")
        if any_nodes:  # Masking's pattern
            final = any_nodes[0]
            _any(path, final, specs[final], name)
            final_uses = uses.get(final, {"args": [], "mask": []})
            if final_uses["args"] or readers["mask"]:
                raise _not_a_mask(path, final, "its output is used as data")
            source = _source(specs, tensor, "Masking", lambda c: c.get("mask_value") == constant)
            parts.update((name, final))
        else:  # Embedding's pattern
            final = name
            source = _source(specs, tensor, "Embedding", lambda c: c.get("mask_zero") is True)
            source = source if constant == 0 else None
            parts.add(name)
        if source is None:
            raise _not_a_mask(
                path, final,
                f"it compares {tensor[0]!r} with {constant!r}, but no Embedding(mask_zero=True) "
                "or Masking(mask_value) of the file makes that mask from that tensor",
            )
        sources[final] = source
    for name, entry in specs.items():
        if entry.get("class_name") == "Any" and name not in parts:
            raise _not_a_mask(path, name, "it is no Masking layer's mask")
    return sources, parts


def mask_argument(path, name, kwargs, sources):
    """The mask node a call's ``mask=`` names (popped from ``kwargs``), or None without one."""
    mask = kwargs.get("mask")
    if not (isinstance(mask, dict) and mask.get("class_name") == "__keras_tensor__"):
        return None
    history = (mask.get("config") or {}).get("keras_history")
    if not (isinstance(history, list) and len(history) >= 3 and history[0] in sources):
        return None
    if history[1:3] != [0, 0]:
        raise HandnetError(f"{path}: layer {name!r} reads a mask from {history!r}")
    del kwargs["mask"]
    return history[0]


def check_masks(path, model, handed, source_tensors):
    """Raise unless, at every call in ``handed`` ({id(node): (layer name, mask node)}), the
    mask handnet carries to the node's input is the mask of the source's call
    (``source_tensors``: {mask node: handnet tensor of the Embedding's or Masking's output})."""
    if not handed:
        return
    rng = np.random.default_rng(0)
    probes = [
        rng.integers(0, 2, (PROBE_SAMPLES, *tensor.per_sample_shape)).astype(
            tensor.node.layer.dtype
        )
        for tensor in model.input_tensors
    ]
    masks = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a layer that drops the mask: found below
        # A node's inputs' masks are made before it runs, and it does not change them: the
        # check after each yield reads what the node was handed.
        for node, _ in model.trace(probes if len(probes) > 1 else probes[0], masks=masks):
            if id(node) in handed:
                layer_name, mask_node = handed[id(node)]
                arriving = masks.get(id(node.inputs[0]))
                expected = masks.get(id(source_tensors[mask_node]))
                if arriving is None or expected is None or not np.array_equal(arriving, expected):
                    raise HandnetError(
                        f"{path}: layer {layer_name!r} is handed the mask {mask_node!r} (of "
                        f"{source_tensors[mask_node].node.layer.name!r}), which handnet's mask "
                        "propagation does not bring to it: handnet cannot reproduce that call"
                    )


def _uses(specs):
    """{node name: {"args": [readers as data], "mask": [readers as mask=]}}."""
    uses = {}
    for reader, entry in specs.items():
        for node in entry.get("inbound_nodes") or []:
            if not isinstance(node, dict):
                continue
            for item in _tensors(node.get("args")):
                uses.setdefault(item, {"args": [], "mask": []})["args"].append(reader)
            for key, value in (node.get("kwargs") or {}).items():
                for item in _tensors(value):
                    kind = "mask" if key == "mask" else "args"
                    uses.setdefault(item, {"args": [], "mask": []})[kind].append(reader)
    return uses


def _tensors(value):
    """The layer names of the Keras tensors anywhere inside ``value``."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            return [history[0]] if isinstance(history, list) and history else []
        return [name for item in value.values() for name in _tensors(item)]
    if isinstance(value, list):
        return [name for item in value for name in _tensors(item)]
    return []


def _not_equal(path, name, entry):
    """(the compared tensor's [layer, call, output], the constant) of NotEqual(x, constant)."""
    config = entry.get("config") or {}
    nodes = entry.get("inbound_nodes") or []
    node = nodes[0] if len(nodes) == 1 and isinstance(nodes[0], dict) else {}
    args = node.get("args")
    valid = (
        set(config) <= {"name"}
        and isinstance(args, list)
        and len(args) == 2
        and isinstance(args[0], dict)
        and args[0].get("class_name") == "__keras_tensor__"
        and isinstance(args[1], (int, float))
        and not isinstance(args[1], bool)
        and not node.get("kwargs")
    )
    history = (args[0].get("config") or {}).get("keras_history") if valid else None
    if not (isinstance(history, list) and len(history) >= 3):
        raise _not_a_mask(path, name, "it is not NotEqual(tensor, number)")
    return list(history[:3]), args[1]


def _any(path, name, entry, not_equal):
    config = entry.get("config") or {}
    nodes = entry.get("inbound_nodes") or []
    node = nodes[0] if len(nodes) == 1 and isinstance(nodes[0], dict) else {}
    args = node.get("args")
    history = None
    if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
        history = (args[0].get("config") or {}).get("keras_history")
    valid = (
        set(config) <= {"name", "axis", "keepdims"}
        and config.get("axis") == -1
        and config.get("keepdims", False) is False
        and not node.get("kwargs")
        and isinstance(history, list)
        and history[:3] == [not_equal, 0, 0]
    )
    if not valid:
        raise _not_a_mask(path, name, "it is not Any(NotEqual(…), axis=-1), Masking's mask")


def _source(specs, tensor, class_name, fits):
    """(layer, call) of the ``class_name`` layer whose config ``fits`` and that is called on
    ``tensor``, or None."""
    for name, entry in specs.items():
        if entry.get("class_name") != class_name or not fits(entry.get("config") or {}):
            continue
        for call, node in enumerate(entry.get("inbound_nodes") or []):
            args = node.get("args") if isinstance(node, dict) else None
            if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
                history = (args[0].get("config") or {}).get("keras_history")
                if isinstance(history, list) and list(history[:3]) == tensor:
                    return name, call
    return None


def _not_a_mask(path, name, why):
    return HandnetError(
        f"{path}: Keras operation node {name!r} is not a mask handnet makes itself ({why}); "
        "handnet imports layers, not operations"
    )
