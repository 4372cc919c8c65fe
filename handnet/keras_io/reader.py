"""Reading Keras model files with h5py alone: the model description and every weight array.

Two formats:

    .keras (Keras 3)   a zip of config.json (the architecture, JSON), metadata.json and
                       model.weights.h5, where layer i's arrays are datasets
                       layers/<key>/vars/0, 1, … in the layer's own order (kernel, bias, …);
                       <key> is the snake-cased class name, numbered per model (dense,
                       dense_1, …), and the vars group's ``name`` attribute holds the layer name;
                       recurrent layers keep theirs in layers/<key>/cell/vars, a Bidirectional
                       in layers/<key>/forward_layer/… then layers/<key>/backward_layer/…, a
                       TimeDistributed its wrapped layer's in layers/<key>/layer/….
    .h5 (legacy)       one HDF5 file: the ``model_config`` attribute (JSON) and a
                       ``model_weights`` group with one group per layer name, whose
                       ``weight_names`` attribute lists its datasets in order
                       ("dense/kernel:0", … or "sequential/dense/kernel").

Nothing is extracted to disk: the zip members are read into memory (after checking their
declared sizes against caps, and reading at most cap + 1 bytes in case the header lies) and
HDF5 is opened from the bytes. Every dataset's size is checked before it is read. Whatever goes
wrong inside zipfile, zlib, json or h5py comes out as one HandnetError naming the file.
"""

import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import HandnetError
from ..model.graph import MAX_NESTING

#: The .keras groups of a MultiHeadAttention's EinsumDense sublayers, in its order of weights.
MHA_SUBLAYERS = ("query_dense", "key_dense", "value_dense", "output_dense")

CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"
MAX_CONFIG_BYTES = 16 * 2**20
MAX_WEIGHTS_BYTES = 2 * 2**30
#: Deflate, the usual HDF5 filter, expands at most 1032-fold.
MAX_COMPRESSION_RATIO = 1032

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class KerasFile:
    """What a Keras file holds, in memory.

    config: the model description (the parsed config.json / model_config).
    weights_by_name: layer name -> [(weight path or None, array), …] in the file's order; in a
        .keras file a nested model's layers are "<key>/layers/<name>"; in a legacy .h5 file a
        nested model's group holds the arrays of every layer inside it, with their paths
        ("inner/dense/kernel").
    weights_by_key: (.keras only) "dense_1", "functional/layers/dense" -> the same lists, for
        files whose vars groups carry no name attribute.
    """

    path: Path
    format: str
    config: dict
    weights_by_name: dict = field(default_factory=dict)
    weights_by_key: dict = field(default_factory=dict)

    def all_weights(self):
        """Every stored list of (name, array), each once (a list may sit under a name and a key)."""
        unique = {id(arrays): arrays for arrays in self.weights_by_name.values()}
        unique.update({id(arrays): arrays for arrays in self.weights_by_key.values()})
        return list(unique.values())

    def layer_weights(self, layer_name, key):
        """The arrays stored for one layer, or None when the file has none for it."""
        found = self.weights_by_name.get(layer_name)
        return found if found is not None else self.weights_by_key.get(key)


def file_kind(path):
    """The kind of file at ``path`` — "zip", "hdf5" or None — from its first bytes, never its
    name."""
    with open(path, "rb") as file:
        head = file.read(8)
    if head.startswith(ZIP_MAGIC) or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head == HDF5_MAGIC:
        return "hdf5"
    return None


def read_keras_file(path):
    """Read a .keras or legacy .h5 Keras model; returns a KerasFile."""
    path = Path(path)
    if not path.is_file():
        raise HandnetError(f"no Keras model file at {path}")
    kind = file_kind(path)
    if kind == "zip":
        return _read_keras_zip(path)
    if kind == "hdf5":
        return _read_legacy_h5(path)
    raise HandnetError(
        f"{path} is not a Keras model: expected a .keras file (a zip archive) or a legacy .h5 "
        "file (HDF5), and its first bytes are neither"
    )


# -- .keras ------------------------------------------------------------------------------
def _read_keras_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if CONFIG_MEMBER not in names:
                raise HandnetError(
                    f"{path} is a zip archive but not a Keras 3 model: it has no {CONFIG_MEMBER} "
                    f"(members: {names[:10]})"
                )
            config = _parse_json(
                path, CONFIG_MEMBER, _read_member(path, archive, CONFIG_MEMBER, MAX_CONFIG_BYTES)
            )
            if WEIGHTS_MEMBER not in names:
                other = (
                    " (model.weights.npz: handnet reads the .h5 weights Keras writes by default)"
                    if ("model.weights.npz" in names)
                    else ""
                )
                raise HandnetError(f"{path}: the archive has no {WEIGHTS_MEMBER}{other}")
            weights_bytes = _read_member(path, archive, WEIGHTS_MEMBER, MAX_WEIGHTS_BYTES)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        OSError,
        ValueError,  # a damaged member name (UnicodeDecodeError)
    ) as error:
        raise HandnetError(
            f"{path} is not a readable .keras archive (damaged or truncated zip: {error})"
        ) from None
    keras_file = KerasFile(path, "keras", config)
    with _open_h5(path, io.BytesIO(weights_bytes), WEIGHTS_MEMBER) as h5:
        _guard_h5(path, WEIGHTS_MEMBER, lambda: _collect_keras3_weights(path, h5, keras_file))
    return keras_file


def _read_member(path, archive, name, cap):
    info = archive.getinfo(name)
    if info.file_size > cap:
        raise HandnetError(
            f"{path}: {name} declares {info.file_size:,} bytes, more than the {cap:,} handnet "
            "reads; refused"
        )
    with archive.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        raise HandnetError(f"{path}: {name} expands past {cap:,} bytes; refused")
    return data


def _collect_keras3_weights(path, h5, keras_file):
    layers = h5.get("layers")
    if layers is None:
        return
    _collect_container(path, layers, "", keras_file, [MAX_WEIGHTS_BYTES], 0)


def _collect_container(path, layers, prefix, keras_file, budget, depth):
    """The layers of one model: a nested model's own layers sit under layers/<key>/layers/…,
    recorded under the key "<key>/layers/<inner key>" (and its names prefixed alike)."""
    if depth > MAX_NESTING:
        raise HandnetError(f"{path}: the weights are nested deeper than {MAX_NESTING} models")
    for key, group in layers.items():
        name_holder = group.get("vars") if hasattr(group, "get") else None
        if name_holder is None:
            continue
        where = f"layers/{prefix}{key}"
        arrays = [
            (None, _read_dataset(path, variables[str(i)], f"{place}/{i}", budget))
            for place, variables in _variable_groups(path, where, group)
            for i in range(len(variables))
        ]
        keras_file.weights_by_key[prefix + key] = arrays
        name = name_holder.attrs.get("name")
        if isinstance(name, bytes):
            name = name.decode()
        if isinstance(name, str):
            keras_file.weights_by_name[prefix + name] = arrays
        inner = group.get("layers")
        if inner is not None and hasattr(inner, "items"):
            _collect_container(path, inner, f"{prefix}{key}/layers/", keras_file, budget, depth + 1)


def _variable_groups(path, where, group):
    """[(path, vars group), …] holding one layer's weights, in the layer's order.

    A recurrent layer (LSTM, GRU, SimpleRNN) keeps its weights in its cell: layers/lstm/cell/vars/
    0, 1, 2, while layers/lstm/vars, empty, holds the name. A Bidirectional keeps its two layers
    in layers/bidirectional/forward_layer/… and …/backward_layer/…, laid out the same way; a
    TimeDistributed its one layer's in layers/time_distributed/layer/… (vars, or cell/vars).
    """
    variables = group.get("vars")
    if variables is None:
        return []
    if not len(variables) and "cell" in group:
        return _variable_groups(path, f"{where}/cell", group["cell"])
    if not len(variables) and "forward_layer" in group and "backward_layer" in group:
        return [
            *_variable_groups(path, f"{where}/forward_layer", group["forward_layer"]),
            *_variable_groups(path, f"{where}/backward_layer", group["backward_layer"]),
        ]
    if not len(variables) and "layer" in group:
        return _variable_groups(path, f"{where}/layer", group["layer"])
    if not len(variables) and all(name in group for name in MHA_SUBLAYERS):
        # MultiHeadAttention: its four EinsumDense sublayers' groups, query, key, value, output.
        return [
            found for name in MHA_SUBLAYERS
            for found in _variable_groups(path, f"{where}/{name}", group[name])
        ]
    count = len(variables)
    missing = [str(i) for i in range(count) if str(i) not in variables]
    if missing:
        raise HandnetError(
            f"{path}: weights of layer group {where!r} are not numbered 0…{count - 1} "
            f"(missing {missing})"
        )
    return [(f"{where}/vars", variables)]


# -- legacy .h5 --------------------------------------------------------------------------
def _read_legacy_h5(path):
    with _open_h5(path, str(path), "the file") as h5:
        return _guard_h5(path, "the HDF5 file", lambda: _read_legacy_contents(path, h5))


def _read_legacy_contents(path, h5):
    raw = h5.attrs.get("model_config")
    if raw is None:
        hint = (
            " (weights only: it was saved with save_weights)" if "layer_names" in h5.attrs else ""
        )
        raise HandnetError(
            f"{path} is an HDF5 file but not a Keras model: no 'model_config' attribute{hint}"
        )
    if isinstance(raw, np.ndarray):
        raw = raw.tobytes()
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_CONFIG_BYTES:
        raise HandnetError(
            f"{path}: model_config holds {len(raw):,} bytes, more than the "
            f"{MAX_CONFIG_BYTES:,} handnet reads"
        )
    keras_file = KerasFile(path, "h5", _parse_json(path, "model_config", raw))
    weights = h5.get("model_weights")
    if weights is None:
        raise HandnetError(f"{path}: the file has a model_config but no 'model_weights' group")
    budget = [MAX_WEIGHTS_BYTES]
    for layer_name in _strings(weights.attrs.get("layer_names", list(weights.keys()))):
        group = weights.get(layer_name)
        if group is None:
            raise HandnetError(
                f"{path}: model_weights lists layer {layer_name!r} but has no group for it"
            )
        arrays = []
        for weight_path in _strings(group.attrs.get("weight_names", [])):
            dataset = group.get(weight_path)
            if dataset is None:
                raise HandnetError(
                    f"{path}: weight {weight_path!r} of layer {layer_name!r} is missing"
                )
            where = f"model_weights/{layer_name}/{weight_path}"
            # The whole path ("dense/kernel:0", "inner/dense/kernel"): a nested model's group
            # holds every layer inside it, told apart by the path.
            arrays.append((weight_path, _read_dataset(path, dataset, where, budget)))
        keras_file.weights_by_name[layer_name] = arrays
    return keras_file


def _strings(values):
    """An HDF5 list-of-names attribute (bytes or str; an empty one is a float array) as str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


# -- shared ------------------------------------------------------------------------------
def _parse_json(path, what, raw):
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise HandnetError(f"{path}: {what} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise HandnetError(f"{path}: {what} should hold a JSON object, got {type(config).__name__}")
    return config


class _open_h5:
    """h5py.File as a context manager whose failure to open becomes a HandnetError."""

    def __init__(self, path, source, what):
        self.path, self.source, self.what = path, source, what

    def __enter__(self):
        import h5py

        try:
            self.file = h5py.File(self.source, "r")
        # OverflowError: h5py reading an in-memory file at a damaged (huge) offset.
        except (OSError, ValueError, OverflowError) as error:
            raise HandnetError(
                f"{self.path}: {self.what} is not a readable HDF5 file ({error})"
            ) from None
        return self.file

    def __exit__(self, *exc):
        self.file.close()


def _guard_h5(path, what, read):
    """Run ``read``; h5py's own errors on a damaged file become a HandnetError."""
    try:
        return read()
    except HandnetError:
        raise
    except (
        OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError, OverflowError
    ) as error:
        raise HandnetError(
            f"{path}: {what} is damaged or not laid out as Keras writes it ({error})"
        ) from None


def _read_dataset(path, dataset, where, budget):
    """A float (or integer) array from an HDF5 dataset, after checking its size fits the
    remaining budget."""
    if not hasattr(dataset, "shape") or not hasattr(dataset, "dtype"):
        raise HandnetError(f"{path}: {where} should be an array, found an HDF5 group")
    # Integers too: an adapted Normalization counts its samples in an int32 ("count"); the
    # importer accepts them there alone.
    if dataset.dtype.kind not in "fiu":
        raise HandnetError(
            f"{path}: weight {where} has dtype {dataset.dtype}, expected floating point"
        )
    # Python ints: a forged shape like (2**32, 2**32) must not wrap around to 0 as int64 would.
    size = math.prod(dataset.shape or ()) * dataset.dtype.itemsize
    budget[0] -= size
    if budget[0] < 0:
        raise HandnetError(
            f"{path}: the weights add up to more than the {MAX_WEIGHTS_BYTES:,} bytes handnet reads"
        )
    # A dataset may declare any shape and store nothing (HDF5 then reads its fill value, chunk by
    # chunk): what it declares must be what the file holds, or at most what compression expands.
    stored = dataset.id.get_storage_size()
    filtered = dataset.id.get_create_plist().get_nfilters() > 0
    if size > stored * (MAX_COMPRESSION_RATIO if filtered else 1):
        raise HandnetError(
            f"{path}: weight {where} declares shape {dataset.shape} ({size:,} bytes) but the file "
            f"stores {stored:,} bytes for it"
        )
    return np.asarray(dataset[()])
