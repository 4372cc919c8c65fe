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
                        layers/<key>/vars; an empty top-level "vars" group

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
from ..layers.base import _snake_case
from .layer_map import layer_to_keras

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
    layers = [(layer, *layer_to_keras(layer)) for layer in model.layers]
    config = _model_config(model, layers)
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr(
            "model.weights.h5", _weights_h5(model, [keras_class for _, keras_class, _ in layers])
        )
    write_bytes_atomic(path, archive.getvalue())


def _dtype_policy(dtype):
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": dtype.name},
        "registered_name": None,
    }


def _model_config(model, layers):
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
    for layer, keras_class, keras_config in layers:
        keras_layers.append(
            {
                "module": "keras.layers",
                "class_name": keras_class,
                "config": {
                    "name": layer.name,
                    "trainable": layer.trainable,
                    "dtype": _dtype_policy(layer.dtype),
                    **keras_config,
                },
                "registered_name": None,
                "build_config": {"input_shape": [None, *layer.input_shape]},
            }
        )
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": True,
            "dtype": _dtype_policy(model.dtype),
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
            base = _snake_case(keras_class)
            n = counts.get(base, 0)
            counts[base] = n + 1
            key = f"layers/{base if n == 0 else f'{base}_{n}'}"
            variables = h5.create_group(f"{key}/vars")
            variables.attrs["name"] = layer.name
            if keras_class in CELL_LAYERS:  # the layer's own vars stay empty
                variables = h5.create_group(f"{key}/cell/vars")
                variables.attrs["name"] = f"{base}_cell"
            for index, array in enumerate(layer.weights().values()):
                variables[str(index)] = array
        h5.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


