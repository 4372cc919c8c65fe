"""to_keras: a handnet Sequential -> a Keras 3 ``.keras`` file that ``keras.models.load_model``
opens in safe mode, written with h5py alone.

The archive holds what Keras 3's own saver writes (and in the same layout):

    metadata.json      {"keras_version", "date_saved"}
    config.json        {"module": "keras", "class_name": "Sequential", "config": {"name", "trainable",
                        "dtype", "layers": [InputLayer, …]}, "registered_name": null,
                        "build_config": {"input_shape": [null, …]}}; every layer as
                        {"module": "keras.layers", "class_name", "config", "registered_name": null,
                        "build_config"} — plain data, no code, which is what safe mode requires
    model.weights.h5   layers/<key>/vars/0, 1, … per layer (Keras's order: kernel, bias, …) with
                        attribute name = the layer name; <key> = snake-cased class name numbered
                        per model (dense, dense_1, …); recurrent layers keep theirs in
                        layers/<key>/cell/vars (kernel, recurrent_kernel, bias) beside an empty
                        layers/<key>/vars; a Bidirectional keeps its two layers' groups as
                        layers/<key>/forward_layer/… and layers/<key>/backward_layer/…;
                        an empty top-level "vars" group

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
from ..layers.base import snake_case
from .layer_map import dtype_policy, keras_layer_entry

#: Keras layers that keep their weights in a cell: layers/<key>/cell/vars/0, 1, …
CELL_LAYERS = ("SimpleRNN", "LSTM", "GRU")
#: The Keras version whose file layout this writer reproduces (written into metadata.json).
KERAS_FORMAT_VERSION = "3.15.1"


def to_keras(model, path):
    """Write ``model`` (a built handnet Sequential) as a Keras 3 ``.keras`` file at ``path``."""
    if not model.built:
        raise HandnetError("build or fit the model before exporting it to Keras")
    path = Path(path)
    if path.suffix != ".keras":
        raise HandnetError(f"Keras 3 loads models from files named *.keras; got {path.name!r}")
    entries = [keras_layer_entry(layer) for layer in model.layers]
    config = _model_config(model, entries)
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr(
            "model.weights.h5", _weights_h5(model, [entry["class_name"] for entry in entries])
        )
    write_bytes_atomic(path, archive.getvalue())


def _model_config(model, entries):
    batch_shape = [None, *model.input_shape]
    keras_layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {
                "batch_shape": batch_shape,
                "dtype": model.dtype.name,
                "sparse": False,
                "ragged": False,
                "name": "input_layer",
                "optional": False,
            },
            "registered_name": None,
        }
    ]
    keras_layers.extend(entries)
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": True,
            "dtype": dtype_policy(model.dtype),
            "layers": keras_layers,
            "build_input_shape": batch_shape,
        },
        "registered_name": None,
        "build_config": {"input_shape": batch_shape},
        "compile_config": None,
    }


def _weights_h5(model, keras_classes):
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        counts = {}
        for layer, keras_class in zip(model.layers, keras_classes):
            base = snake_case(keras_class)
            n = counts.get(base, 0)
            counts[base] = n + 1
            _write_variables(h5, f"layers/{base if n == 0 else f'{base}_{n}'}", layer, keras_class)
        h5.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def _write_variables(h5, key, layer, keras_class):
    """One layer's arrays under ``key`` (see the module docstring)."""
    variables = h5.create_group(f"{key}/vars")
    variables.attrs["name"] = layer.name
    if keras_class == "Bidirectional":  # its own vars stay empty; each direction has its group
        for attribute in ("forward_layer", "backward_layer"):
            inner = getattr(layer, attribute)
            _write_variables(h5, f"{key}/{attribute}", inner, type(inner).__name__)
        return
    if keras_class in CELL_LAYERS:  # the layer's own vars stay empty
        variables = h5.create_group(f"{key}/cell/vars")
        variables.attrs["name"] = f"{snake_case(keras_class)}_cell"
    for index, array in enumerate(layer.weights().values()):
        variables[str(index)] = array


