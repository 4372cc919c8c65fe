"""Fuzz the Keras importer (load_any, from_keras): .keras zips and legacy .h5 files, damaged at
the byte level and in their structure, give a working model or a HandnetError naming the file.

The reader runs in this process here (``isolate=False``): these tests fuzz the reader's own
checks, 1 500 cases, where a child process per case would add about 0.6 s each. Byte-level damage
inside HDF5 data, which can hang or crash the HDF5 C library, goes to test_fuzz_h5_bytes.py, which
also checks that the isolated default turns such a hang into a HandnetError.
"""

import json
from functools import partial

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from handnet import keras_io

from .harness import check_model_loads as check
from .harness import fuzz_settings, mutated, write_case, zip_of
from .json_fuzz import fuzzed_json
from .keras_seeds import (
    KERAS_CONFIG,
    KERAS_MEMBERS,
    KERAS_SEED,
    LEGACY_CONFIG,
    LEGACY_SEED,
    edited_h5,
    legacy_h5_bytes,
)

from_keras = partial(keras_io.from_keras, isolate=False)
load_any = partial(keras_io.load_any, isolate=False)


@fuzz_settings(200)
@given(st.binary(max_size=512), st.sampled_from([b"", b"PK\x03\x04", b"\x89HDF\r\n\x1a\n"]))
def test_random_bytes(data, magic):
    check(load_any, write_case(magic + data, "random.keras"))


@fuzz_settings(300)
@given(mutated(KERAS_SEED, header_bytes=128))
def test_mutated_keras_zips(data):
    """The zip around the members damaged (bad CRCs, lengths, offsets, names)."""
    check(load_any, write_case(data, "mutated.keras"))


@fuzz_settings(300)
@given(fuzzed_json(KERAS_CONFIG))
def test_fuzzed_keras_config(config):
    members = dict(KERAS_MEMBERS, **{"config.json": json.dumps(config).encode()})
    check(from_keras, write_case(zip_of(members), "config.keras"))


@fuzz_settings(200)
@given(fuzzed_json(LEGACY_CONFIG))
def test_fuzzed_legacy_config(config):
    check(from_keras, write_case(legacy_h5_bytes(config), "config.h5"))


WEIGHT_PATHS = [
    "layers/conv2d/vars/0",
    "layers/conv2d/vars/1",
    "layers/batch_normalization/vars/2",
    "layers/dense/vars/0",
    "layers/dense/vars/1",
]
#: What a damaged or hostile weights file may put where an array belongs.
REPLACEMENTS = st.one_of(
    st.sampled_from(
        [
            np.zeros(3, np.int32),
            np.zeros(3, np.complex64),
            np.array([b"ab", b"cd"]),
            np.zeros((), np.float32),
            np.zeros((0, 3), np.float32),
            np.array([np.nan, np.inf, -np.inf], np.float32),
            np.zeros(3, [("a", np.float32)]),
            np.zeros((2, 2), np.float16),
        ]
    ),
    st.tuples(st.integers(1, 2**40), st.integers(1, 3)).map(lambda s: ("huge", s)),
    st.just("group"),
    st.just("delete"),
)


def replace_dataset(where, replacement):
    def edit(h5):
        del h5[where]
        if isinstance(replacement, np.ndarray):
            h5[where] = replacement
        elif replacement == "group":
            h5.create_group(where)
        elif isinstance(replacement, tuple):  # declared huge, nothing stored (chunked, empty)
            rows, columns = replacement[1]
            h5.create_dataset(where, shape=(rows, columns), dtype="f4", chunks=(1, 1))

    return edit


@fuzz_settings(300)
@given(st.sampled_from(WEIGHT_PATHS), REPLACEMENTS, st.booleans())
def test_wrong_weight_arrays(where, replacement, also_rename_layer):
    weights = edited_h5(KERAS_MEMBERS["model.weights.h5"], replace_dataset(where, replacement))
    if also_rename_layer:
        weights = edited_h5(weights, lambda h5: h5["layers/dense/vars"].attrs.modify("name", "x"))
    members = dict(KERAS_MEMBERS, **{"model.weights.h5": weights})
    check(from_keras, write_case(zip_of(members), "weights.keras"))


@fuzz_settings(200)
@given(
    st.sampled_from(["model_weights/dense/dense/kernel:0", "model_weights/dense/dense/bias:0"]),
    REPLACEMENTS,
    st.sampled_from([None, [b"dense"], [b"nothere"], [], [b"dense", b"dense"], np.zeros(2)]),
)
def test_wrong_legacy_weight_arrays(where, replacement, layer_names):
    def edit(h5):
        replace_dataset(where, replacement)(h5)
        if layer_names is not None:
            h5["model_weights"].attrs["layer_names"] = layer_names

    check(from_keras, write_case(edited_h5(LEGACY_SEED, edit), "weights.h5"))
