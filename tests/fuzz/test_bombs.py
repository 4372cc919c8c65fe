"""Files that declare far more than they hold: refused before the memory is spent.

Each case runs under the fuzz memory guard (address space capped at what is mapped + 3 GiB), so
a loader that allocates what a header declares fails with MemoryError instead of passing. Keras
files are read in this process (``isolate=False``): the checks of the reader itself are under
test (with its caps lowered by monkeypatch), not the child process's memory cap.
"""

import io
import json
import struct
import zipfile
from functools import partial

import numpy as np
import pytest

from handnet import keras_io
from handnet.errors import HandnetError
from handnet.keras_io import reader
from handnet.saving import load_model

from .harness import memory_guard, time_limit, zip_of
from .keras_seeds import KERAS_MEMBERS, LEGACY_SEED, edited_h5

from_keras = partial(keras_io.from_keras, isolate=False)
load_any = partial(keras_io.load_any, isolate=False)


def refused(load, path, match):
    with memory_guard(), time_limit(), pytest.raises(HandnetError, match=match):
        load(path)


def test_a_member_that_declares_little_and_inflates_to_much_is_cut_at_the_cap(
    tmp_path, monkeypatch
):
    # The central directory says 1 KiB; the deflated stream holds 64 MiB of zeros.
    monkeypatch.setattr(reader, "MAX_CONFIG_BYTES", 4096)
    path = tmp_path / "liar.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b"{" + b" " * (64 * 2**20) + b"}")
        archive.writestr("model.weights.h5", KERAS_MEMBERS["model.weights.h5"])
    data = bytearray(path.read_bytes())
    # Patch the uncompressed size (local header offset 22, central directory offset 24).
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1024)
    struct.pack_into("<I", data, central + 24, 1024)
    path.write_bytes(bytes(data))
    # zipfile stops at the declared size, so the member fails its CRC instead of inflating.
    refused(from_keras, path, r"liar.keras is not a readable .keras archive .*Bad CRC-32")


def test_a_config_json_declaring_a_gigabyte_is_refused_from_the_directory(tmp_path):
    path = tmp_path / "declared.keras"
    path.write_bytes(zip_of(KERAS_MEMBERS))
    data = bytearray(path.read_bytes())
    # Find config.json's central directory entry and declare 1 GiB uncompressed.
    offset = data.index(b"PK\x01\x02")
    while True:
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        extra, comment = struct.unpack_from("<HH", data, offset + 30)
        name = bytes(data[offset + 46 : offset + 46 + name_length])
        if name == b"config.json":
            struct.pack_into("<I", data, offset + 24, 2**30)
            break
        offset = data.index(b"PK\x01\x02", offset + 46 + name_length + extra + comment)
    path.write_bytes(bytes(data))
    refused(from_keras, path, r"config.json declares 1,073,741,824 bytes, more than the 16,777,216")


@pytest.mark.parametrize("shape", [(2**40,), (2**32, 2**32), (2**21, 2**21, 2**21), (2**28, 3)])
def test_huge_h5_dataset_shapes_storing_nothing_are_refused(tmp_path, shape):
    """A chunked dataset may declare any shape and store nothing; (2**32, 2**32) also wrapped an
    int64 product to 0 bytes, which once slipped past the size cap."""

    def declare(h5):
        del h5["layers/dense/vars/0"]
        h5.create_dataset("layers/dense/vars/0", shape=shape, dtype="f4", chunks=(1,) * len(shape))

    members = dict(
        KERAS_MEMBERS, **{"model.weights.h5": edited_h5(KERAS_MEMBERS["model.weights.h5"], declare)}
    )
    path = tmp_path / "huge.keras"
    path.write_bytes(zip_of(members))
    refused(
        from_keras,
        path,
        r"huge.keras: (weight layers/dense/vars/0 declares shape|the weights add up)",
    )


def test_a_nested_huge_legacy_h5_dataset_is_refused(tmp_path):
    def declare(h5):
        del h5["model_weights/dense/dense/kernel:0"]
        h5.create_dataset(
            "model_weights/dense/dense/kernel:0", shape=(2**27, 3), dtype="f4", chunks=(1024, 3)
        )

    path = tmp_path / "huge.h5"
    path.write_bytes(edited_h5(LEGACY_SEED, declare))
    refused(
        from_keras,
        path,
        r"declares shape \(134217728, 3\) \(1,610,612,736 bytes\) but the file stores 0",
    )


@pytest.mark.parametrize("units", [10**6, 10**9, 2**40])
def test_a_forged_layer_size_in_the_config_is_refused_before_building(tmp_path, units):
    config = json.loads(KERAS_MEMBERS["config.json"])
    config["config"]["layers"][-1]["config"]["units"] = units
    path = tmp_path / "wide.keras"
    path.write_bytes(zip_of(dict(KERAS_MEMBERS, **{"config.json": json.dumps(config).encode()})))
    refused(from_keras, path, "takes the model past the weight bytes its file holds")


def npz_member(header_shape, payload):
    """An .npy member whose header declares ``header_shape`` float32, followed by ``payload``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": header_shape}
    )
    return buffer.getvalue() + payload


@pytest.mark.parametrize("shape", [(2**40,), (2**31, 2**31), (10**6,)])
def test_an_npz_member_declaring_a_huge_shape_is_refused_before_allocating(tmp_path, shape):
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json.npy", npz_member(shape, b"\0" * 16))
    refused(
        load_model,
        path,
        r"forged.npz is not a readable handnet model \(.npz\): "
        r"member config.json.npy declares shape",
    )
    refused(load_any, path, "forged.npz")


def test_a_handnet_model_with_a_forged_layer_size_is_refused_before_building(tmp_path):
    import handnet as hn

    model = hn.Sequential([hn.layers.Input((4,)), hn.layers.Dense(3, name="out")], seed=0).build()
    path = tmp_path / "wide.npz"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    raw = np.load(io.BytesIO(members["config.json.npy"]))
    config = json.loads(raw.tobytes())
    config["model"]["config"]["layers"][0]["config"]["units"] = 10**9
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(config).encode(), np.uint8))
    members["config.json.npy"] = buffer.getvalue()
    path.write_bytes(zip_of(members))
    refused(
        load_model, path, "wide.npz: a weight of shape \\(4, 1000000000\\) takes the model past"
    )


def test_a_gzip_bomb_pickle_is_cut_at_the_cap(monkeypatch):
    import gzip

    from handnet.datasets import DatasetError, safe_pickle

    monkeypatch.setattr(safe_pickle, "MAX_PICKLE_BYTES", 2**20)
    bomb = io.BytesIO(gzip.compress(b"\0" * (8 * 2**20)))
    with memory_guard(), pytest.raises(DatasetError, match="larger than the 1,048,576 bytes"):
        safe_pickle.safe_load_pickle(gzip.GzipFile(fileobj=bomb))
