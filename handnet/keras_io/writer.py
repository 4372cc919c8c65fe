"""to_keras: a handnet model -> a Keras 3 ``.keras`` file that ``keras.models.load_model`` opens
in safe mode, written with h5py alone.

The archive holds what Keras 3's own saver writes (and in the same layout):

    metadata.json      {"keras_version", "date_saved"}
    config.json        a Sequential: {"module": "keras", "class_name": "Sequential", "config":
                        {"name", "trainable", "dtype", "layers": [InputLayer, …],
                        "build_input_shape"}, "registered_name": null, "build_config"};
                       a graph: {"module": "keras.src.models.functional", "class_name":
                        "Functional", "config": {"name", "trainable", "layers": [each with
                        "name" and "inbound_nodes": [{"args": [tensor or [tensors]],
                        "kwargs": {}}]], "input_layers", "output_layers"}, …}, a tensor being
                        {"class_name": "__keras_tensor__", "config": {"shape", "dtype",
                        "keras_history": [layer, call, output]}};
                       every layer as {"module": "keras.layers", "class_name", "config",
                        "registered_name": null, "build_config"}; a model used as a layer as
                        its own model entry — plain data, no code, which safe mode requires
    model.weights.h5   layers/<key>/vars/0, 1, … per layer (Keras's order: kernel, bias, …) with
                        attribute name = the layer name; <key> = snake-cased class name numbered
                        per model (dense, dense_1, …) in Keras's order of the model's layers (a
                        graph lists its InputLayers too, a Sequential does not); recurrent layers
                        keep theirs in layers/<key>/cell/vars beside an empty layers/<key>/vars;
                        a Bidirectional in layers/<key>/forward_layer/… and …/backward_layer/…;
                        a TimeDistributed in layers/<key>/layer/… (its layer's own layout);
                        a nested model's layers in layers/<key>/layers/…; an empty top "vars"

Keras numbers the weight groups in the order of ``model.layers``, which for a graph it computes
itself on loading (keras/src/ops/function.py, ``map_graph``): layers by decreasing depth, ties
by their order in a depth-first walk from the outputs. ``keras_layer_order`` reproduces it, so
that the groups written here are the ones Keras looks for.

The file is assembled in memory, written to a temporary file beside the target, flushed and
renamed over it, so an interrupted export never leaves half a file.
"""

import datetime
import io
import json
import zipfile
from pathlib import Path

from ..atomic import write_bytes_atomic
from ..errors import HandnetError
from ..layers import Input
from ..layers.base import snake_case
from ..model import Model, Sequential
from .maps import attention as attention_map
from .maps import batch_shapes, keras_class_of, keras_layer_entry
from .options import dtype_policy

#: Keras layers that keep their weights in a cell: layers/<key>/cell/vars/0, 1, …
CELL_LAYERS = ("SimpleRNN", "LSTM", "GRU")
#: The Keras version whose file layout this writer reproduces (written into metadata.json).
KERAS_FORMAT_VERSION = "3.15.1"
FUNCTIONAL_MODULE = "keras.src.models.functional"


def to_keras(model, path):
    """Write ``model`` (a built handnet Sequential or Model) as a Keras 3 ``.keras`` file."""
    if not model.built:
        raise HandnetError("build or fit the model before exporting it to Keras")
    path = Path(path)
    if path.suffix != ".keras":
        raise HandnetError(f"Keras 3 loads models from files named *.keras; got {path.name!r}")
    config = model_entry(model)
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", _weights_h5(model))
    write_bytes_atomic(path, archive.getvalue())


# -- config.json ---------------------------------------------------------------------------
def model_entry(model):
    """A handnet model as Keras writes a model (at the top of config.json, or as a layer)."""
    if isinstance(model, Sequential):
        return _sequential_entry(model)
    return _functional_entry(model)


def _entry(layer):
    return model_entry(layer) if isinstance(layer, Model) else keras_layer_entry(layer)


def _sequential_entry(model):
    batch_shape = [None, *model.input_shape]
    source = model.input_tensors[0].node.layer
    layers = [_input_layer_entry(source, name="input_layer")]
    layers.extend(_entry(layer) for layer in model.layers)
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "dtype": dtype_policy(model.dtype),
            "layers": layers,
            "build_input_shape": batch_shape,
        },
        "registered_name": None,
        "build_config": {"input_shape": batch_shape},
        "compile_config": None,
    }


def _input_layer_entry(source, name=None):
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": [None, *source.shape],
            "dtype": source.dtype.name,
            "sparse": False,
            "ragged": False,
            "name": name or source.name,
            "optional": False,
        },
        "registered_name": None,
    }


def _functional_entry(model):
    def reference(tensor):
        node = tensor.node
        calls = model.nodes_of(node.layer)
        call = next((i for i, n in enumerate(calls) if n is node), 0)
        return [node.layer.name, call, tensor.index]

    def keras_tensor(tensor):
        return {
            "class_name": "__keras_tensor__",
            "config": {
                "shape": [None, *tensor.per_sample_shape],
                "dtype": tensor.node.layer.dtype.name,
                "keras_history": reference(tensor),
            },
        }

    layers = []
    for layer in keras_layer_order(model):
        if isinstance(layer, Input):
            layers.append({**_input_layer_entry(layer), "name": layer.name, "inbound_nodes": []})
            continue
        entry = _entry(layer)
        nodes = []
        for node in model.nodes_of(layer):
            if type(layer).__name__ in attention_map.CALL_FORMS:  # tensors as arguments, flags
                nodes.append(attention_map.write_call(layer, node, keras_tensor))
                continue
            tensors = [keras_tensor(t) for t in node.inputs]
            nodes.append({"args": [tensors if node.takes_list else tensors[0]], "kwargs": {}})
        layers.append({**entry, "name": layer.name, "inbound_nodes": nodes})

    def end(tensor):
        # Keras counts a nested functional model's construction as its call 0 here (and only
        # here: not in inbound nodes); see importer.Build.wire.
        layer, call, index = reference(tensor)
        source = tensor.node.layer
        functional = isinstance(source, Model) and not isinstance(source, Sequential)
        return [layer, call + 1 if functional else call, index]

    def references(tensors, names, structure):
        if structure == "dict":
            return {name: end(t) for name, t in zip(names, tensors)}
        refs = [end(t) for t in tensors]
        return refs[0] if len(refs) == 1 and structure == "one" else refs

    return {
        "module": FUNCTIONAL_MODULE,
        "class_name": "Functional",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "layers": layers,
            "input_layers": references(model.input_tensors, model.input_names, model._inputs_as),
            "output_layers": references(
                model.output_tensors, model.output_names, model._outputs_as
            ),
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": None,
    }


def keras_layer_order(model):
    """The layers of a graph (its Inputs included) in the order Keras's ``map_graph`` gives
    them: a depth-first walk back from each output, a node after its sources; each node's
    depth is the longest path from it to an output, a layer's the largest of its nodes'; then
    layers by decreasing depth, ties in the order the walk first met them."""
    order, done, first_seen = [], set(), {}
    for output in model.output_tensors:
        stack = [(output, False)]
        while stack:  # the recursion of _build_map_helper, with an explicit stack
            tensor, expanded = stack.pop()
            node = tensor.node
            if expanded:
                if id(node) not in done:
                    done.add(id(node))
                    order.append(node)
                continue
            if id(node) in done:
                continue
            first_seen.setdefault(id(node.layer), (len(first_seen), node.layer))
            stack.append((tensor, True))
            # Pushed in reverse, popped in order, as the recursion visits them.
            stack.extend((source, False) for source in reversed(node.inputs))
    depth_of_node, depth_of_layer = {}, {}
    for node in reversed(order):
        depth = max(depth_of_node.setdefault(id(node), 0), depth_of_layer.get(id(node.layer), 0))
        depth_of_layer[id(node.layer)] = depth
        depth_of_node[id(node)] = depth
        for source in node.inputs:
            parent = id(source.node)
            depth_of_node[parent] = max(depth + 1, depth_of_node.get(parent, 0))
    ranked = sorted(first_seen.values(), key=lambda item: (-depth_of_layer[id(item[1])], item[0]))
    return [layer for _, layer in ranked]


# -- model.weights.h5 ------------------------------------------------------------------------
def _weights_h5(model):
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _write_container(h5, "layers", model)
        h5.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def _write_container(h5, where, model):
    """The weight groups of a model's layers under ``where`` (see the module docstring)."""
    layers = model.layers if isinstance(model, Sequential) else keras_layer_order(model)
    counts = {}
    for layer in layers:
        if isinstance(layer, Input):
            keras_class = "InputLayer"
        elif isinstance(layer, Model):
            keras_class = model_entry(layer)["class_name"]
        else:
            keras_class = keras_class_of(layer)
        base = snake_case(keras_class)
        n = counts.get(base, 0)
        counts[base] = n + 1
        key = f"{where}/{base if n == 0 else f'{base}_{n}'}"
        if isinstance(layer, Model):
            h5.create_group(f"{key}/vars").attrs["name"] = layer.name
            _write_container(h5, f"{key}/layers", layer)
        else:
            _write_variables(h5, key, layer, keras_class)


def _write_variables(h5, key, layer, keras_class):
    """One layer's arrays under ``key`` (see the module docstring)."""
    variables = h5.create_group(f"{key}/vars")
    variables.attrs["name"] = layer.name
    if keras_class == "Bidirectional":  # its own vars stay empty; each direction has its group
        for attribute in ("forward_layer", "backward_layer"):
            inner = getattr(layer, attribute)
            _write_variables(h5, f"{key}/{attribute}", inner, type(inner).__name__)
        return
    if keras_class == "TimeDistributed":  # likewise, its one layer in …/layer
        _write_variables(h5, f"{key}/layer", layer.layer, keras_class_of(layer.layer))
        return
    if keras_class == "MultiHeadAttention":  # its vars stay empty; each sublayer has a group
        arrays = list(layer.weights().values())
        per_sublayer = len(arrays) // len(attention_map.MHA_SUBLAYERS)  # kernel (and bias)
        for index, sublayer in enumerate(attention_map.MHA_SUBLAYERS):
            inner = h5.create_group(f"{key}/{sublayer}/vars")
            for k, array in enumerate(arrays[index * per_sublayer:(index + 1) * per_sublayer]):
                inner[str(k)] = array
        for sublayer in attention_map.MHA_EMPTY_SUBLAYERS:
            h5.create_group(f"{key}/{sublayer}/vars")
        return
    if keras_class in CELL_LAYERS:  # the layer's own vars stay empty
        variables = h5.create_group(f"{key}/cell/vars")
        variables.attrs["name"] = f"{snake_case(keras_class)}_cell"
    for index, array in enumerate(layer.weights().values()):
        variables[str(index)] = array


__all__ = ["batch_shapes", "keras_layer_order", "model_entry", "to_keras"]
