"""Model files: one .npz holding the weights as arrays and everything else as JSON.

Layout of the archive (``npz.read_npz`` reads it, sizes checked, no pickle; nothing in it is code):

    config.json                    uint8 bytes of a UTF-8 JSON document: format version,
                                   architecture, compile settings, optimizer config, history
    weights/<layer>/<name>         each layer's params and state (kernel, bias, …)
    optimizer/<slot>/<layer>/<name>  optimizer state (momentum, velocity, …) and iterations

Writes are atomic: the archive goes to a temporary file in the same folder, is flushed to
disk, then renamed over the target, so a crash leaves either the old file or the new one.
"""

import json
import zipfile
from pathlib import Path

import numpy as np

from . import initializers, losses, optimizers
from .atomic import atomic_writer
from .errors import HandnetError
from .model import Sequential, engine
from .model.history import History
from .model.functional import MODEL_CLASSES
from .npz import read_npz

FORMAT = "handnet-model"
#: 2: the model's config names its class ("Sequential" or "Functional", a graph); 1 (read
#: still): a Sequential's config alone.
VERSION = 2
READABLE_VERSIONS = (1, 2)


def write_npz_atomic(path, arrays):
    """Write ``arrays`` ({name: ndarray}) as an uncompressed .npz at ``path``, atomically."""
    with atomic_writer(path) as file:
        np.savez(file, **arrays)


def save_model(model, path, extra_arrays=None):
    """``extra_arrays``: more members, outside config.json, weights/ and optimizer/ (which the
    loader alone reads), e.g. handnet.keras_io.check's reference outputs under check/."""
    arrays = model_arrays(model)
    for name in extra_arrays or {}:
        if name in arrays or name.split("/", 1)[0] in ("weights", "optimizer"):
            raise HandnetError(f"extra member {name!r} would replace part of the model")
    write_npz_atomic(path, {**arrays, **(extra_arrays or {})})


def model_arrays(model):
    """{archive member name: array} of a model file (handnet.training.checkpoint adds its own
    member)."""
    if not model.built:
        raise HandnetError("build or fit the model before saving it")
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"class_name": model_class_name(model), "config": model.get_config()},
        "compile": None,
        "history": None if model.history is None else json.loads(model.history.to_json()),
    }
    arrays = {}
    for layer in model.layers:
        for key, value in layer.weights().items():
            arrays[f"weights/{layer.name}/{key}"] = value
    if model.optimizer is not None:
        config["compile"] = {
            "optimizer": optimizers.serialize(model.optimizer),
            "losses": [losses.serialize(loss) for loss in model.losses],
            "loss_weights": model.loss_weights,
            "metrics": model.output_metrics,
            "fuse": model.fuse,
        }
        for key, value in model.optimizer.get_state().items():
            arrays[f"optimizer/{key}"] = value
    arrays["config.json"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    return arrays


def model_class_name(model):
    """The name a model's config is filed under: "Sequential", or "Functional" for a graph."""
    return next(name for name, cls in MODEL_CLASSES.items() if type(model) is cls)


#: The first bytes of an HDF5 file (Keras's legacy .h5 models).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_keras_archive(path):
    """Whether ``path`` is a Keras 3 .keras archive: a zip with config.json and metadata.json
    (a handnet .npz is a zip of .npy members). Any failure to list it means no: a damaged zip
    makes zipfile raise many kinds of errors (NotImplementedError for a forged version field),
    and the .npz reader has already said what is wrong with it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except Exception:  # noqa: BLE001 - a probe of untrusted bytes; see above
        return False
    return {"config.json", "metadata.json"} <= names


def _keras_file_error(path):
    return HandnetError(
        f"{path} is a Keras model file, not a handnet model (.npz): read it with "
        f"handnet.from_keras({str(path)!r}), or convert it once with `handnet import-keras "
        f"{path} model.npz`"
    )


def load_model(path, compile=True):
    """Rebuild a model saved by ``Model.save``: same graph, weights bit for bit, and (with
    ``compile``) the same optimizer state, so training resumes where it stopped."""
    path = Path(path)
    if not path.is_file():
        raise HandnetError(f"no model file at {path}")
    with open(path, "rb") as file:
        head = file.read(8)
    if head[:6] == b"\x93NUMPY":
        raise HandnetError(f"{path} holds a single array (.npy), not a handnet model (.npz)")
    if head == HDF5_SIGNATURE:
        raise _keras_file_error(path)
    try:
        arrays = read_npz(path, what="handnet model (.npz)")
    except HandnetError:
        if _is_keras_archive(path):  # only asked of a file that is no .npz: a cheap probe
            raise _keras_file_error(path) from None
        raise
    config = _read_config(path, arrays)
    # float64 layers may hold float32 weights: twice the stored bytes, never more.
    weight_bytes = sum(a.nbytes for name, a in arrays.items() if name.startswith("weights/"))
    try:
        with initializers.allocation_budget(2 * weight_bytes + 2**16):
            model = _model_from_config(config)
        for layer in model.layers:
            for key, target in layer.weights().items():
                _assign(path, layer, key, target, arrays.get(f"weights/{layer.name}/{key}"))
        if compile and config.get("compile"):
            compiled = config["compile"]
            if "losses" in compiled:
                loss = [losses.get(spec) for spec in compiled["losses"]]
            else:  # version 1: one loss and one list of metrics
                loss, compiled["metrics"] = [losses.get(compiled["loss"])], [compiled["metrics"]]
            model.compile(
                compiled["optimizer"],
                loss,
                compiled["metrics"],
                loss_weights=compiled.get("loss_weights"),
                fuse=compiled.get("fuse", True),
            )
            prefix = "optimizer/"
            state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            _check_optimizer_state(path, model, state)
            model.optimizer.set_state(state)
        if config.get("history"):
            model.history = History.from_dict(config["history"])
    except HandnetError as error:
        if str(path) in str(error):
            raise
        raise HandnetError(f"{path}: {error}") from None
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as error:
        raise HandnetError(
            f"{path}: malformed model description ({type(error).__name__}: {error})"
        ) from None
    return model


def _model_from_config(config):
    if config["version"] == 1:  # a Sequential's config, from before graphs
        model = Sequential.from_config(config["model"])
    else:
        spec = config["model"]
        if not isinstance(spec, dict) or spec.get("class_name") not in MODEL_CLASSES:
            raise HandnetError(
                f"unknown model class {spec.get('class_name')!r}, "
                f"expected one of {sorted(MODEL_CLASSES)}"
            )
        model = MODEL_CLASSES[spec["class_name"]].from_config(spec["config"])
    if not model.built:
        model.build()
    return model


def _read_config(path, arrays):
    raw = arrays.get("config.json")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise HandnetError(f"{path} is an .npz file but not a handnet model (no config.json entry)")
    try:
        config = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise HandnetError(f"{path}: config.json is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        kind = type(config).__name__
        raise HandnetError(f"{path} is not a handnet model file (config.json holds a JSON {kind})")
    if config.get("format") != FORMAT:
        raise HandnetError(f"{path} is not a handnet model file (format {config.get('format')!r})")
    if config.get("version") not in READABLE_VERSIONS:
        raise HandnetError(
            f"{path}: model format version {config.get('version')}, this handnet reads "
            f"{READABLE_VERSIONS}"
        )
    return config


def _assign(path, layer, key, target, value):
    if value is None:
        raise HandnetError(f"{path}: weight {layer.name}/{key} is missing")
    if value.shape != target.shape:
        raise HandnetError(
            f"{path}: weight {layer.name}/{key} has shape {value.shape}, "
            f"the layer expects {target.shape}"
        )
    if value.dtype.kind != "f":
        raise HandnetError(
            f"{path}: weight {layer.name}/{key} has dtype {value.dtype}, expected float"
        )
    target[...] = value


def _check_optimizer_state(path, model, state):
    """Each slot array ("momentum/<layer>/<param>") must match its parameter, so a damaged file
    fails here and not at the first training step; iterations is a count >= 0."""
    params = {key: param for key, param, _ in model.trainable_variables()}
    for full_key, value in state.items():
        if full_key == "iterations":
            if value.shape != () or value.dtype.kind not in "iu" or value < 0:
                raise HandnetError(
                    f"{path}: optimizer iterations should be one integer >= 0, "
                    f"got {value.dtype} {value.shape}"
                )
            continue
        _, _, key = full_key.partition("/")
        param = params.get(key)
        if param is None:
            raise HandnetError(f"{path}: optimizer state {full_key} belongs to no trainable weight")
        if value.shape != param.shape or value.dtype.kind != "f":
            raise HandnetError(
                f"{path}: optimizer state {full_key} is {value.dtype} {value.shape}, "
                f"its weight is {param.dtype} {param.shape}"
            )


engine.provide("save", save_model)
