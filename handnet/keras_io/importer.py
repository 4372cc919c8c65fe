"""from_keras: a Keras model file -> a handnet Sequential with the same weights, NumPy + h5py only.

A Keras model is accepted when it is a Sequential, or a functional model whose layers form a
single chain (one input, each layer fed by the one before, one output). Its InputLayer becomes
the Sequential's input shape; every other layer goes through the table in ``layer_map``.

The file's bytes are parsed in a child process with a time limit (``isolated``): a damaged HDF5
file can hang or crash the HDF5 C library. ``isolate=False`` (or HANDNET_KERAS_IN_PROCESS=1)
reads in this process instead, for trusted files; the model is built here either way.
"""

import zipfile
from pathlib import Path

from .. import initializers
from ..errors import HandnetError
from ..layers.base import snake_case
from ..model import Sequential
from ..saving import load_model
from .isolated import DEFAULT_TIMEOUT_SECONDS, isolation_wanted, read_in_child
from .layer_map import KerasOptions, layer_from_keras
from .reader import CONFIG_MEMBER, file_kind, read_keras_file

SEQUENTIAL_CLASSES = ("Sequential",)
FUNCTIONAL_CLASSES = ("Functional", "Model")


def from_keras(path, isolate=None, timeout=DEFAULT_TIMEOUT_SECONDS):
    """Read a Keras 3 ``.keras`` or legacy ``.h5`` model; returns a built handnet Sequential.

    isolate: parse the file in a child process stopped after ``timeout`` seconds (the default,
        unless HANDNET_KERAS_IN_PROCESS=1); False parses it in this process (trusted files:
        it saves starting a process, about 0.6 s, but a damaged file may hang it for good).

    Raises HandnetError when the file is not a Keras model, uses a layer or an option handnet
    does not have, holds a weight whose shape does not fit its layer, or could not be read
    within ``timeout``.
    """
    if isolation_wanted(isolate):
        keras_file = read_in_child(path, timeout)
    else:
        keras_file = read_keras_file(path)
    try:
        return _build_model(keras_file)
    except HandnetError as error:
        if str(keras_file.path) in str(error):
            raise
        raise HandnetError(f"{keras_file.path}: {error}") from None
    # A hand-edited or hostile config puts any JSON value where a name or a size belongs.
    except (AttributeError, IndexError, KeyError, OverflowError, TypeError, ValueError) as error:
        raise HandnetError(
            f"{keras_file.path}: malformed model description ({type(error).__name__}: {error})"
        ) from None


def _build_model(keras_file):
    name, input_shape, layer_specs = _model_layers(keras_file.path, keras_file.config)
    layers = [layer_from_keras(class_name, config) for class_name, config, _ in layer_specs]
    model = Sequential(layers, name=name)
    # float64 layers may hold float32 weights: twice the stored bytes, never more.
    stored = sum(array.nbytes for arrays in keras_file.all_weights() for _, array in arrays)
    try:
        with initializers.allocation_budget(2 * stored + 2**16):
            model.build(input_shape)
    except HandnetError as error:
        raise HandnetError(
            f"{keras_file.path}: the layers do not fit together for inputs {input_shape}: {error}"
        ) from None
    for layer, (class_name, _, key) in zip(model.layers, layer_specs):
        _assign_weights(keras_file, layer, class_name, key)
    return model


def load_any(path, isolate=None, timeout=DEFAULT_TIMEOUT_SECONDS):
    """A handnet model from a handnet .npz, a Keras .keras or a legacy Keras .h5 file (told apart
    by their contents: a .keras zip holds config.json, a handnet .npz does not). Keras files are
    read as ``from_keras(path, isolate, timeout)`` reads them; handnet's own .npz reader is pure
    Python (zipfile, read_npz) and runs in this process."""
    path = Path(path)
    if not path.is_file():
        raise HandnetError(f"no model file at {path}")
    kind = file_kind(path)
    if kind == "hdf5":
        return from_keras(path, isolate, timeout)
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                is_keras = CONFIG_MEMBER in archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
            raise HandnetError(f"{path} is a damaged zip archive ({error})") from None
        return from_keras(path, isolate, timeout) if is_keras else load_model(path)
    raise HandnetError(
        f"{path} is not a model file: expected a handnet .npz, a Keras .keras or a Keras .h5"
    )


# -- the model description -----------------------------------------------------------------
def _model_layers(path, config):
    """(model name, per-sample input shape, [(class name, layer config, weights key), …])."""
    class_name = config.get("class_name")
    inner = config.get("config")
    if class_name in SEQUENTIAL_CLASSES:
        if isinstance(inner, list):  # Keras ≤ 2.2 wrote the layer list as the whole config
            inner = {"layers": inner}
        layer_entries = _layer_entries(path, inner)
        name = inner.get("name")
        input_shape = _sequential_input_shape(path, config, inner, layer_entries)
        chain = [entry for entry in layer_entries if entry["class_name"] != "InputLayer"]
        keyed = chain
    elif class_name in FUNCTIONAL_CLASSES:
        if not isinstance(inner, dict):
            raise HandnetError(f"{path}: the functional model's config is not a JSON object")
        layer_entries = _layer_entries(path, inner)
        name = inner.get("name")
        input_layer, chain = _single_chain(path, inner, layer_entries)
        input_shape = _input_layer_shape(path, input_layer)
        if input_shape is None:
            raise HandnetError(f"{path}: the InputLayer does not record its shape")
        keyed = layer_entries  # a functional model saves its InputLayer's (empty) weights group too
    else:
        raise HandnetError(
            f"{path}: the model is a {class_name!r}; handnet imports Sequential models and functional "
            "models that are a single chain of layers"
        )
    keys = _weights_keys(keyed)
    return name, input_shape, [(e["class_name"], e.get("config") or {}, keys[id(e)]) for e in chain]


def _layer_entries(path, inner):
    entries = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and "class_name" in e for e in entries
    ):
        raise HandnetError(f"{path}: the model config has no list of layers as Keras writes it")
    if not entries:
        raise HandnetError(f"{path}: the model has no layers")
    return entries


def _weights_keys(entries):
    """The .keras weights group of each layer: its snake-cased class name, numbered per model
    (dense, dense_1, …) in the model's layer order, as Keras's saver names them."""
    counts, keys = {}, {}
    for entry in entries:
        base = snake_case(entry["class_name"])
        n = counts.get(base, 0)
        counts[base] = n + 1
        keys[id(entry)] = base if n == 0 else f"{base}_{n}"
    return keys


def _batch_shape(path, layer_config):
    shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
    return None if shape is None else _per_sample(path, shape)


def _input_layer_shape(path, entry):
    """The per-sample shape an InputLayer declares, after refusing sparse or ragged inputs."""
    options = KerasOptions("InputLayer", entry.get("config") or {})
    shape = _batch_shape(
        path, {key: options.get(key) for key in ("batch_shape", "batch_input_shape")}
    )
    options.unset("sparse", "ragged", "optional")
    options.finish()
    return shape


def _per_sample(path, batch_shape):
    if not isinstance(batch_shape, list) or not batch_shape:
        raise HandnetError(f"{path}: input shape {batch_shape!r} is not a list (None, d1, d2, …)")
    per_sample = batch_shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in per_sample):
        raise HandnetError(
            f"{path}: input shape {batch_shape} has unknown sizes; handnet needs every size but the batch fixed"
        )
    return tuple(per_sample)


def _sequential_input_shape(path, config, inner, entries):
    first = entries[0]
    candidates = [
        _input_layer_shape(path, first)
        if first["class_name"] == "InputLayer"
        else _batch_shape(path, first.get("config") or {}),
        inner.get("build_input_shape"),
        (config.get("build_config") or {}).get("input_shape"),
    ]
    for candidate in candidates:
        if candidate is not None:
            return candidate if isinstance(candidate, tuple) else _per_sample(path, candidate)
    raise HandnetError(
        f"{path}: the model does not record its input shape (no InputLayer, no build shape)"
    )


# -- functional models -----------------------------------------------------------------------
def _single_chain(path, inner, entries):
    """(the InputLayer entry, the other layers from input to output), or an error saying why the
    graph is not a chain."""
    by_name = {}
    for entry in entries:
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        if name in by_name:
            raise HandnetError(f"{path}: two layers are named {name!r}")
        by_name[name] = entry
    inputs = [e for e in entries if e["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise HandnetError(
            f"{path}: the functional model has {len(inputs)} inputs; handnet needs exactly one"
        )
    outputs = _history_names(inner.get("output_layers"))
    if len(outputs) != 1 or outputs[0] not in by_name:
        raise HandnetError(
            f"{path}: the functional model has outputs {outputs}; handnet needs exactly one"
        )
    chain, name = [], outputs[0]
    while by_name[name]["class_name"] != "InputLayer":
        entry = by_name[name]
        nodes = entry.get("inbound_nodes") or []
        sources = _history_names(nodes)
        if len(nodes) != 1 or len(sources) != 1 or sources[0] not in by_name:
            raise HandnetError(
                f"{path}: the functional model is not a single chain: layer {name!r} is called "
                f"{len(nodes)} time(s) on {sources or 'nothing'}; handnet imports Sequential models and "
                "functional models whose layers follow one another"
            )
        chain.append(entry)
        name = sources[0]
        if len(chain) > len(entries):
            raise HandnetError(f"{path}: the functional model's layers form a cycle")
    if len(chain) + 1 != len(entries):
        unused = sorted(set(by_name) - {e.get("name") for e in chain} - {name})
        raise HandnetError(
            f"{path}: the functional model is not a single chain: layers {unused} are off the path"
        )
    return by_name[name], chain[::-1]


def _history_names(value):
    """Layer names referenced by inbound nodes or output_layers, in both formats:
    Keras 3 {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, index]}}
    and Keras 2 [name, node, index, kwargs] lists."""
    names = []

    def visit(item):
        if isinstance(item, dict):
            history = (
                (item.get("config") or {}).get("keras_history")
                if item.get("class_name") == "__keras_tensor__"
                else None
            )
            if history:
                names.append(history[0])
            else:
                for inner in item.values():
                    visit(inner)
        elif isinstance(item, list):
            if (
                len(item) >= 3
                and isinstance(item[0], str)
                and isinstance(item[1], int)
                and isinstance(item[2], int)
            ):
                names.append(item[0])
            else:
                for inner in item:
                    visit(inner)

    visit(value)
    return names


# -- weights ---------------------------------------------------------------------------------
def _assign_weights(keras_file, layer, class_name, key):
    path = keras_file.path
    targets = layer.weights()
    stored = keras_file.layer_weights(layer.name, key)
    expected = ", ".join(f"{k} {v.shape}" for k, v in targets.items()) or "none"
    if not stored:
        if targets:
            raise HandnetError(
                f"{path}: the file has no weights for layer {layer.name!r} ({class_name}); expected {expected}"
            )
        return
    if len(stored) != len(targets):
        raise HandnetError(
            f"{path}: the file holds {len(stored)} weight array(s) for layer {layer.name!r} ({class_name}); "
            f"with its options it needs {len(targets)}: {expected}"
        )
    names = [name for name, _ in stored]
    if None not in names and set(names) == set(targets):
        stored = sorted(stored, key=lambda item: list(targets).index(item[0]))
    for (key_name, target), (_, array) in zip(targets.items(), stored):
        if array.shape != target.shape:
            raise HandnetError(
                f"{path}: weight {layer.name}/{key_name} has shape {array.shape} in the file, "
                f"the layer ({class_name}) needs {target.shape}"
            )
        target[...] = array
