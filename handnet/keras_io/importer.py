"""from_keras: a Keras model file -> a handnet model with the same weights, NumPy + h5py only.

A Keras Sequential becomes a handnet ``Sequential``; a functional model (Keras's "Functional",
any graph: several inputs and outputs, branches, merges, shared layers) becomes a handnet
``Model`` built through the public API — each layer made from its Keras config
(``maps``), called on the tensors its inbound nodes name, then ``Model(inputs, outputs)``.
A model used as a layer (a Sequential or a Functional inside another, to any depth up to
handnet.model.graph.MAX_NESTING) is built the same way and called as one layer.

Keras 3 writes a call ("inbound node") as {"args": [tensor or [tensors]], "kwargs": {}}, each
tensor {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, call, output]}};
Keras 2 wrote [[layer, call, output, kwargs], …]. Both are read.

Every layer is made before anything is wired, and whatever handnet does not support — a class
it lacks, a Lambda (code, never run), an option away from its neutral value — is collected, so
that one error names every such layer.

The file's bytes are parsed in a child process with a time limit (``isolated``): a damaged HDF5
file can hang or crash the HDF5 C library. ``isolate=False`` (or HANDNET_KERAS_IN_PROCESS=1)
reads in this process instead, for trusted files; the model is built here either way.
"""

import zipfile
from pathlib import Path

from .. import initializers
from ..errors import HandnetError
from ..layers import Input
from ..layers import graph as layer_graph
from ..layers.base import snake_case
from ..model import Model, Sequential
from ..model.graph import MAX_NESTING, MAX_NODES
from ..saving import load_model
from . import masks
from .isolated import DEFAULT_TIMEOUT_SECONDS, isolation_wanted, read_in_child
from .maps import attention as attention_map
from .maps import layer_from_keras, supported_keras_classes
from .maps.augmentation import TRAINING_BY_DEFAULT
from .masks import MASK_OPERATIONS
from .options import KerasOptions
from .reader import CONFIG_MEMBER, file_kind, read_keras_file

SEQUENTIAL_CLASSES = ("Sequential",)
FUNCTIONAL_CLASSES = ("Functional", "Model")
MODEL_CLASSES = SEQUENTIAL_CLASSES + FUNCTIONAL_CLASSES
#: Weights Keras keeps as integers: an adapted Normalization's sample count.
INTEGER_WEIGHTS = ("count",)
INTEGER_INPUTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")


def from_keras(path, isolate=None, timeout=DEFAULT_TIMEOUT_SECONDS):
    """Read a Keras 3 ``.keras`` or legacy ``.h5`` model; returns a built handnet model: a
    ``Sequential`` for a Keras Sequential, a ``Model`` (a graph) for a functional model.

    isolate: parse the file in a child process stopped after ``timeout`` seconds (the default,
        unless HANDNET_KERAS_IN_PROCESS=1); False parses it in this process (trusted files:
        it saves starting a process, about 0.6 s, but a damaged file may hang it for good).

    Raises HandnetError when the file is not a Keras model, uses layers or options handnet
    does not have (one error naming them all), holds a weight whose shape does not fit its
    layer, or could not be read within ``timeout``.
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


def _build_model(keras_file):
    config = keras_file.config
    if config.get("class_name") not in MODEL_CLASSES:
        raise HandnetError(
            f"{keras_file.path}: the model is a {config.get('class_name')!r}; handnet imports "
            "Sequential models and functional models (graphs of the layers it has)"
        )
    build = _Build(keras_file)
    place = _KerasPlace(keras_file) if keras_file.format == "keras" else _LegacyPlace(keras_file)
    # float64 layers may hold float32 weights: twice the stored bytes, never more.
    stored = sum(array.nbytes for arrays in keras_file.all_weights() for _, array in arrays)
    with initializers.allocation_budget(2 * stored + 2**16):
        model = build.model(config, place, depth=0)
    build.raise_errors()
    return model


class _Build:
    """Building the models of one file: the file, and what it uses that handnet lacks."""

    def __init__(self, keras_file):
        self.file = keras_file
        self.path = keras_file.path
        self.refusals = []  # one message per layer handnet cannot make
        self.nodes = 0

    def raise_errors(self):
        if not self.refusals:
            return
        # A refusal may name the file already (an InputLayer's shape): it is named once.
        prefix = f"{self.path}: "
        refusals = [m[len(prefix) :] if m.startswith(prefix) else m for m in self.refusals]
        if len(refusals) == 1:
            raise HandnetError(f"{prefix}{refusals[0]}")
        # The list of what handnet reads comes once, at the end.
        lines = "\n".join(f"  - {message.split('; handnet reads ')[0]}" for message in refusals)
        raise HandnetError(
            f"{self.path}: {len(self.refusals)} layers cannot be imported:\n{lines}\n"
            f"(handnet reads {', '.join(supported_keras_classes())})"
        )

    def count(self, entries):
        self.nodes += len(entries) + sum(
            len(e.get("inbound_nodes") or []) for e in entries if isinstance(e, dict)
        )
        if self.nodes > MAX_NODES:
            raise HandnetError(f"{self.path}: the graph has more than {MAX_NODES:,} nodes")

    # -- one model --------------------------------------------------------------------------
    def model(self, entry, place, depth):
        """The handnet model of a Keras model entry {"class_name", "config", …}, its weights
        loaded; None when a layer inside cannot be made (the reason is in ``refusals``)."""
        if depth > MAX_NESTING:
            raise HandnetError(f"{self.path}: models are nested deeper than {MAX_NESTING} levels")
        inner = entry.get("config")
        if entry["class_name"] in SEQUENTIAL_CLASSES:
            if isinstance(inner, list):  # Keras ≤ 2.2 wrote the layer list as the whole config
                inner = {"layers": inner}
            return self.sequential(entry, inner, place, depth)
        if not isinstance(inner, dict):
            raise HandnetError(f"{self.path}: the functional model's config is not a JSON object")
        return self.functional(inner, place, depth)

    def layer(self, entry, key, place, depth):
        """A layer (unbuilt) or a nested model (built, weights loaded), or None if refused."""
        class_name = entry["class_name"]
        if class_name in MODEL_CLASSES:
            name = _entry_name(entry)
            return self.model(entry, place.child(key, name), depth + 1)
        try:
            return layer_from_keras(class_name, entry.get("config") or {})
        except HandnetError as error:
            self.refusals.append(str(error))
            return None

    def sequential(self, entry, inner, place, depth):
        entries = _layer_entries(self.path, inner)
        self.count(entries)
        input_shape = self.sequential_input_shape(entry, inner, entries)
        chain = [e for e in entries if e["class_name"] != "InputLayer"]
        keys = _weights_keys(chain)
        layers = [self.layer(e, keys[id(e)], place, depth) for e in chain]
        if any(layer is None for layer in layers) or input_shape is None:
            return None
        model = Sequential(layers, name=inner.get("name"))
        try:
            model.build(input_shape)
        except HandnetError as error:
            raise HandnetError(
                f"{self.path}: the layers do not fit together for inputs {input_shape}: {error}"
            ) from None
        for layer, e in zip(layers, chain):
            if not isinstance(layer, Model):
                self.assign(place.lookup(layer.name, keys[id(e)]), layer, e["class_name"])
        return model

    def sequential_input_shape(self, entry, inner, entries):
        first = entries[0]
        if first["class_name"] == "InputLayer":
            refused = len(self.refusals)
            candidate = self.input_shape(first)
            if len(self.refusals) > refused:
                return None
        else:
            candidate = _batch_shape(self.path, first.get("config") or {})
        for candidate in (
            candidate,
            inner.get("build_input_shape"),
            (entry.get("build_config") or {}).get("input_shape"),
        ):
            if candidate is not None:
                if isinstance(candidate, tuple):
                    return candidate
                return _per_sample(self.path, candidate)
        raise HandnetError(
            f"{self.path}: the model does not record its input shape (no InputLayer, no build "
            "shape)"
        )

    def input_shape(self, entry):
        """The per-sample shape an InputLayer declares, after refusing sparse or ragged inputs
        (None, with the refusal recorded, when it is one of those)."""
        try:
            options = KerasOptions("InputLayer", entry.get("config") or {})
            shape = _batch_shape(
                self.path, {key: options.get(key) for key in ("batch_shape", "batch_input_shape")}
            )
            options.unset("sparse", "ragged", "optional")
            options.finish()
        except HandnetError as error:
            self.refusals.append(str(error))
            return None
        return shape

    def functional(self, inner, place, depth):
        entries = _layer_entries(self.path, inner)
        self.count(entries)
        keys = _weights_keys(entries)  # a functional model saves its InputLayers' groups too
        mask_sources, mask_parts = self.mask_nodes(entries)
        made, specs = {}, {}
        for entry in entries:
            name = _entry_name(entry)
            if not isinstance(name, str) or name in made or name in specs:
                raise HandnetError(f"{self.path}: two layers are named {name!r}")
            specs[name] = entry
            if name in mask_parts:  # a mask handnet makes itself (handnet.keras_io.masks)
                continue
            if entry["class_name"] == "InputLayer":
                refused = len(self.refusals)
                shape = self.input_shape(entry)
                if len(self.refusals) > refused:
                    made[name] = None
                    continue
                if shape is None:
                    raise HandnetError(f"{self.path}: the InputLayer does not record its shape")
                dtype = _input_dtype(entry)
                made[name] = Input(shape, name=name, dtype=dtype)
            else:
                made[name] = self.layer(entry, keys[id(entry)], place, depth)
        if any(layer is None for layer in made.values()):
            return None
        specs = {name: entry for name, entry in specs.items() if name not in mask_parts}
        model = self.wire(inner, made, specs, mask_sources)
        for name, layer in made.items():
            entry = specs[name]
            if not isinstance(layer, (Input, Model)):
                self.assign(place.lookup(name, keys[id(entry)]), layer, entry["class_name"])
        return model

    def mask_nodes(self, entries):
        """masks.mask_nodes of a functional model's entries: ({mask node: (source layer,
        call)}, names to leave out); none when the file has no mask operation, and a refusal
        (the nodes then refused by name) when they are not pure mask computations."""
        if not any(isinstance(e, dict) and e.get("class_name") in MASK_OPERATIONS
                   for e in entries):
            return {}, set()
        named = {_entry_name(e): e for e in entries if isinstance(_entry_name(e), str)}
        try:
            return masks.mask_nodes(self.path, named)
        except HandnetError as error:
            self.refusals.append(str(error))
            return {}, set()

    def wire(self, inner, made, specs, mask_sources=None):
        """Call every layer on the tensors its inbound nodes name, then Model(inputs, outputs).
        A config need not list a layer after its sources: calls wait until their inputs exist.
        ``mask_sources``: the mask nodes left out, whose ``mask=`` arguments are checked to be
        the masks handnet brings to those calls (handnet.keras_io.masks).

        Call numbers: Keras counts a nested functional model's own construction as its call 0,
        and leaves it out when it numbers calls in inbound nodes (Keras 3) but not in
        input_layers and output_layers; Keras 2 counted it everywhere, for any nested model.
        """
        calls = {name: [[layer.tensor]] if isinstance(layer, Input) else []
                 for name, layer in made.items()}
        nodes = [
            (name, node) for name, entry in specs.items() if entry["class_name"] != "InputLayer"
            for node in entry.get("inbound_nodes") or []
        ]
        keras2 = any(isinstance(node, list) for _, node in nodes)
        nested = {name for name, e in specs.items() if e["class_name"] in MODEL_CLASSES}
        functional = {name for name, e in specs.items() if e["class_name"] in FUNCTIONAL_CLASSES}
        in_nodes = {name: 1 for name in nested} if keras2 else {}
        at_ends = {name: 1 for name in (nested if keras2 else functional)}
        pending, handed = nodes, {}
        while pending:
            remaining = []
            for name, node in pending:
                class_name = specs[name]["class_name"]
                options, mask_node = None, None
                if class_name in attention_map.CALL_FORMS:  # tensors as arguments, flags
                    references, options = attention_map.read_call(
                        self.path, name, class_name, node,
                        lambda item, name=name: _history(self.path, name, item),
                    )
                    takes_list = True
                else:
                    references, takes_list, mask_node = _parse_call(
                        self.path, name, node, class_name in TRAINING_BY_DEFAULT,
                        mask_sources or {},
                    )
                tensors = [_tensor(self.path, calls, name, ref, in_nodes) for ref in references]
                if any(tensor is None for tensor in tensors):
                    remaining.append((name, node))
                    continue
                try:
                    if options is not None:
                        result = layer_graph.call(made[name], tensors, options)
                    else:
                        result = made[name](tensors if takes_list else tensors[0])
                except HandnetError as error:
                    raise HandnetError(f"{self.path}: layer {name!r}: {error}") from None
                calls[name].append(result if isinstance(result, list) else [result])
                if mask_node is not None:
                    handed[id(calls[name][-1][0].node)] = (name, mask_node)
            if len(remaining) == len(pending):
                names = sorted({name for name, _ in remaining})
                raise HandnetError(
                    f"{self.path}: the graph cannot be built: the calls of {names} read tensors "
                    "that never come (a cycle, or a reference to a missing layer or call)"
                )
            pending = remaining
        inputs = _structure(self.path, calls, inner.get("input_layers"), "input_layers", at_ends)
        outputs = _structure(
            self.path, calls, inner.get("output_layers"), "output_layers", at_ends
        )
        try:
            model = Model(inputs, outputs, name=inner.get("name"))
        except HandnetError as error:
            raise HandnetError(f"{self.path}: {error}") from None
        sources = {
            mask: calls[layer][call][0]
            for mask, (layer, call) in (mask_sources or {}).items()
            if call < len(calls[layer])
        }
        masks.check_masks(self.path, model, handed, sources)
        return model

    # -- weights ------------------------------------------------------------------------------
    def assign(self, stored, layer, class_name):
        path = self.path
        targets = layer.weights()
        expected = ", ".join(f"{k} {v.shape}" for k, v in targets.items()) or "none"
        if not stored:
            if targets:
                raise HandnetError(
                    f"{path}: the file has no weights for layer {layer.name!r} ({class_name}); "
                    f"expected {expected}"
                )
            return
        if len(stored) != len(targets):
            raise HandnetError(
                f"{path}: the file holds {len(stored)} weight array(s) for layer {layer.name!r} "
                f"({class_name}); with its options it needs {len(targets)}: {expected}"
            )
        names = [name for name, _ in stored]
        if None not in names and set(names) == set(targets):
            stored = sorted(stored, key=lambda item: list(targets).index(item[0]))
        for (key_name, target), (_, array) in zip(targets.items(), stored):
            if array.dtype.kind != "f" and key_name not in INTEGER_WEIGHTS:
                raise HandnetError(
                    f"{path}: weight {layer.name}/{key_name} has dtype {array.dtype}, expected "
                    "floating point"
                )
            if array.shape != target.shape:
                raise HandnetError(
                    f"{path}: weight {layer.name}/{key_name} has shape {array.shape} in the file, "
                    f"the layer ({class_name}) needs {target.shape}"
                )
            target[...] = array


# -- where a layer's weights are --------------------------------------------------------------
class _KerasPlace:
    """A .keras file: layer i of a model is the group layers/<key>/vars, found by its ``name``
    attribute, else by <key>; a nested model's layers are layers/<key>/layers/<inner key>."""

    def __init__(self, keras_file, prefix=""):
        self.file, self.prefix = keras_file, prefix

    def lookup(self, name, key):
        found = self.file.weights_by_name.get(self.prefix + name)
        return found if found is not None else self.file.weights_by_key.get(self.prefix + key)

    def child(self, key, name):
        named = self.file.weights_by_name.get(self.prefix + name)
        for candidate, arrays in self.file.weights_by_key.items():
            rest = candidate[len(self.prefix):]
            if arrays is named and candidate.startswith(self.prefix) and "/" not in rest:
                key = rest
                break
        return _KerasPlace(self.file, f"{self.prefix}{key}/layers/")


class _LegacyPlace:
    """A legacy .h5 file: model_weights/<layer name>, in the order of its ``weight_names``."""

    def __init__(self, keras_file):
        self.file = keras_file

    def lookup(self, name, key):
        stored = self.file.weights_by_name.get(name)
        return None if stored is None else [(_short(path), array) for path, array in stored]

    def child(self, key, name):
        return _PooledPlace(self.file.weights_by_name.get(name) or [])


class _PooledPlace:
    """Inside a nested model of a legacy .h5 file: its group holds the arrays of every layer
    within, at paths such as "inner/dense/kernel" or "dense/kernel" (Keras names a variable
    by the scopes it was built in); a layer's are those whose path holds its name."""

    def __init__(self, pool):
        self.pool = pool

    def lookup(self, name, key):
        return [
            (_short(path), array) for path, array in self.pool
            if path is not None and name in path.split("/")[:-1]
        ]

    def child(self, key, name):
        return self


def _short(path):
    """"dense/kernel:0" -> "kernel" (None stays None)."""
    return None if path is None else path.rsplit("/", 1)[-1].split(":", 1)[0]


# -- the model description -----------------------------------------------------------------
def _entry_name(entry):
    return entry.get("name") or (entry.get("config") or {}).get("name")


def _input_dtype(entry):
    """An InputLayer's dtype for handnet's Input: float32 for integer inputs (an Embedding's
    token ids; handnet casts a model's inputs to its float dtype, exact below 2**24)."""
    config = entry.get("config") or {}
    if config.get("dtype") in INTEGER_INPUTS:
        return "float32"
    return KerasOptions("InputLayer", config).dtype()


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


def _per_sample(path, batch_shape):
    if not isinstance(batch_shape, list) or not batch_shape:
        raise HandnetError(f"{path}: input shape {batch_shape!r} is not a list (None, d1, d2, …)")
    per_sample = batch_shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in per_sample):
        raise HandnetError(
            f"{path}: input shape {batch_shape} has unknown sizes; handnet needs every size but "
            "the batch fixed"
        )
    return tuple(per_sample)


# -- calls ------------------------------------------------------------------------------------
def _parse_call(path, name, node, training_by_default=False, mask_sources=None):
    """([(layer, call, output)], takes_list, mask node or None) of one inbound node, in Keras
    3's or Keras 2's form. ``training_by_default``: the layer's Keras call defaults to
    training=True (the image augmentations), so a recorded training=True is that default, not
    a choice. ``mask_sources``: the mask nodes a ``mask=`` may name (handnet.keras_io.masks)."""
    if isinstance(node, dict):
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict):
            raise HandnetError(
                f"{path}: layer {name!r} is called with {args!r}; handnet reads calls on one "
                "tensor or one list of tensors"
            )
        kwargs = dict(kwargs)
        mask_node = masks.mask_argument(path, name, kwargs, mask_sources or {})
        # training=False (what Keras's recurrent layers record) and mask=None change nothing:
        # handnet runs a layer in training mode only inside fit. training=True would, but for
        # the layers whose Keras default it is (and fit and predict override it there).
        extra = {
            key: value for key, value in kwargs.items()
            if value is not None
            and not (key == "training" and (value is False or training_by_default))
        }
        if extra:
            raise HandnetError(
                f"{path}: layer {name!r} is called with arguments {extra}; handnet calls layers "
                "on their inputs alone"
            )
        argument = args[0]
        if isinstance(argument, list):
            return [_history(path, name, item) for item in argument], True, mask_node
        return [_history(path, name, argument)], False, mask_node
    if isinstance(node, list) and node and all(isinstance(item, list) for item in node):
        for item in node:  # Keras 2: [layer, call, output, kwargs]
            if len(item) > 3 and item[3]:
                raise HandnetError(
                    f"{path}: layer {name!r} is called with arguments {item[3]}; handnet calls "
                    "layers on their inputs alone"
                )
        return [_reference(path, name, item) for item in node], len(node) > 1, None
    raise HandnetError(f"{path}: layer {name!r} has a call handnet cannot read: {node!r}")


def _history(path, name, item):
    if not (isinstance(item, dict) and item.get("class_name") == "__keras_tensor__"):
        raise HandnetError(
            f"{path}: layer {name!r} is called on {item!r}; handnet reads calls on Keras tensors"
        )
    return _reference(path, name, (item.get("config") or {}).get("keras_history"))


def _reference(path, name, ref):
    valid = (
        isinstance(ref, (list, tuple)) and len(ref) >= 3 and isinstance(ref[0], str)
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ref[1:3])
    )
    if not valid:
        raise HandnetError(
            f"{path}: layer {name!r}: a tensor reference must be [layer, call, output], got {ref!r}"
        )
    return ref[0], ref[1], ref[2]


def _tensor(path, calls, name, ref, offsets):
    """The tensor ``ref`` names, or None when that call has not been made yet. ``offsets``:
    {layer: how many calls the file counts before the model's own} (see Build.wire)."""
    source, call, output = ref
    if source not in calls:
        raise HandnetError(
            f"{path}: layer {name!r} reads from {source!r}, which is not in the model"
        )
    call -= offsets.get(source, 0)
    if call < 0:
        raise HandnetError(
            f"{path}: layer {name!r} reads call {ref[1]} of the model {source!r}, its construction"
        )
    if call >= len(calls[source]):
        return None
    outputs = calls[source][call]
    if output >= len(outputs):
        raise HandnetError(
            f"{path}: layer {name!r} reads output {output} of {source!r}, which has {len(outputs)}"
        )
    return outputs[output]


def _structure(path, calls, value, what, offsets):
    """A model's input_layers or output_layers: one reference, a list of them, or a dict."""
    def resolve(ref):
        tensor = _tensor(path, calls, what, _reference(path, what, ref), offsets)
        if tensor is None:
            raise HandnetError(f"{path}: {what} names {ref!r}, a call that is never made")
        return tensor

    if isinstance(value, dict) and value:
        return {str(key): resolve(ref) for key, ref in value.items()}
    if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str):
        return resolve(value)
    if isinstance(value, list) and value:
        tensors = [resolve(ref) for ref in value]
        return tensors if len(tensors) > 1 else tensors[0]
    raise HandnetError(f"{path}: the functional model has no {what}")
