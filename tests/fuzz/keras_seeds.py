"""Seed files for the Keras fuzz tests: a small .keras model and a Keras-2-style legacy .h5."""

import io
import json

import h5py
import numpy as np

import handnet as hn

from .harness import seed_file


def small_model():
    return hn.Sequential(
        [
            hn.layers.Input((4, 4, 1)),
            hn.layers.Conv2D(2, 3, name="conv"),
            hn.layers.BatchNormalization(name="norm"),
            hn.layers.Flatten(name="flat"),
            hn.layers.Dense(3, activation="softmax", name="out"),
        ],
        seed=0,
    ).build()


KERAS_SEED, KERAS_MEMBERS = seed_file("seed.keras", small_model().to_keras)
KERAS_CONFIG = json.loads(KERAS_MEMBERS["config.json"])

LEGACY_CONFIG = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "input_1"},
            },
            {
                "class_name": "Dense",
                "config": {"name": "dense", "units": 3, "activation": "relu", "use_bias": True},
            },
        ],
    },
}


def legacy_h5_bytes(config=LEGACY_CONFIG):
    """A Keras-2-style .h5: model_config + model_weights/<layer>/<layer>/<name>:0."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        group = h5.create_group("model_weights")
        group.attrs["layer_names"] = [b"dense"]
        layer = group.create_group("dense")
        layer.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        layer["dense/kernel:0"] = np.arange(12, dtype=np.float32).reshape(4, 3)
        layer["dense/bias:0"] = np.ones(3, np.float32)
    return buffer.getvalue()


LEGACY_SEED = legacy_h5_bytes()
#: The legacy seed with one byte inserted inside model_config (a string in HDF5's global heap):
#: HDF5 2.0.0 loops forever reading that attribute (found by atheris, then hypothesis).
_AT = LEGACY_SEED.index(b'"activation"') + 8
LEGACY_HANG = LEGACY_SEED[:_AT] + b"\xba" + LEGACY_SEED[_AT:]


def edited_h5(data, edit):
    """The HDF5 file ``data`` after ``edit(h5py.File)``."""
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "a") as h5:
        edit(h5)
    return buffer.getvalue()
