"""Each failure the fuzzers found, kept as a plain test (the huge-size ones
are in test_bombs.py)."""

import base64
import io
import json
import pickle
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import handnet as hn
from handnet.datasets import DatasetError
from handnet.datasets.safe_pickle import safe_load_pickle
from handnet.errors import HandnetError
from handnet.keras_io import from_keras, load_any
from handnet.saving import load_model

from .harness import memory_guard, write_case, zip_of
from .keras_seeds import KERAS_MEMBERS, LEGACY_HANG


def saved_model(tmp_path):
    model = hn.Sequential([hn.layers.Input((4,)), hn.layers.Dense(3, name="out")], seed=0)
    path = tmp_path / "model.npz"
    model.build().compile("adam").fit(np.ones((2, 4)), [0, 1], verbose=0)
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        return path, {name: archive.read(name) for name in archive.namelist()}


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def with_config(members, edit):
    config = json.loads(np.load(io.BytesIO(members["config.json.npy"])).tobytes())
    edit(config)
    return dict(
        members, **{"config.json.npy": npy(np.frombuffer(json.dumps(config).encode(), np.uint8))}
    )


def test_an_npz_member_that_is_not_an_npy_file(tmp_path):
    """np.load hands such a member back as raw bytes; load_model then failed on bytes.dtype."""
    path, members = saved_model(tmp_path)
    path.write_bytes(zip_of(dict(members, **{"config.json.npy": b'{"format": "handnet-model"}'})))
    with pytest.raises(HandnetError, match=r"member config.json.npy is not an .npy array"):
        load_model(path)


def test_an_npy_header_that_tokenize_cannot_read(tmp_path):
    """NumPy's header parser raised tokenize.TokenError, which nothing caught."""
    path, members = saved_model(tmp_path)
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (), |".ljust(117) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(8)
    path.write_bytes(zip_of(dict(members, **{"optimizer/iterations.npy": member})))
    with pytest.raises(HandnetError, match=r"member optimizer/iterations.npy is not an .npy array"):
        load_model(path)


def test_a_zip_member_name_that_is_not_utf8(tmp_path):
    """zipfile raised UnicodeDecodeError for a local header name flagged UTF-8 but not."""
    path, members = saved_model(tmp_path)
    data = bytearray(zip_of(members))
    flags_at = data.index(b"PK\x03\x04") + 6
    struct.pack_into("<H", data, flags_at, 0x800)
    name_at = flags_at + 24
    data[name_at] = 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(HandnetError, match="model.npz is not a readable handnet model"):
        load_model(path)
    with pytest.raises(HandnetError, match="model.npz"):
        load_any(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["model"]["config"]["layers"][0]["config"].update(dtype=[]),
            r"dtype must be float32 or float64, got \[\]",
        ),
        (lambda c: c["model"]["config"]["layers"][0].update(class_name=0), "unknown layer type 0"),
        (lambda c: c["compile"].update(losses=[0]), "unknown loss 0"),
        (lambda c: c["model"]["config"].update(layers=[]), "the model has no layers"),
    ],
    ids=["dtype-not-a-float", "layer-type", "loss", "no-layers"],
)
def test_config_errors_name_the_file(tmp_path, edit, message):
    """Errors raised while rebuilding the model did not say which file was at fault; a dtype of
    [] built a layer whose first predict failed inside numpy."""
    path, members = saved_model(tmp_path)
    path.write_bytes(zip_of(with_config(members, edit)))
    with pytest.raises(HandnetError, match=f"^{path}: .*{message}"):
        load_model(path)


def test_optimizer_state_of_the_wrong_shape_is_refused_at_load(tmp_path):
    """It loaded, and failed at the first training step after a resume."""
    path, members = saved_model(tmp_path)
    path.write_bytes(
        zip_of(
            dict(
                members, **{"optimizer/momentum/out/kernel.npy": npy(np.zeros((5, 3), np.float32))}
            )
        )
    )
    with pytest.raises(
        HandnetError,
        match=(
            r"optimizer state momentum/out/kernel is float32 \(5, 3\), "
            r"its weight is float32 \(4, 3\)"
        ),
    ):
        load_model(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["config"]["layers"][1]["config"].update(filters={"a": 1}),
        lambda c: c["config"]["layers"][-1]["config"].update(kernel_regularizer=[]),
        lambda c: c["config"]["layers"][1].update(class_name=["Conv2D"]),
    ],
    ids=["size-of-the-wrong-type", "unhashable-option", "class-name-not-a-string"],
)
def test_keras_config_values_of_the_wrong_type(tmp_path, edit):
    """TypeError from deep inside the layer map escaped from_keras."""
    config = json.loads(KERAS_MEMBERS["config.json"])
    edit(config)
    path = tmp_path / "typed.keras"
    path.write_bytes(zip_of(dict(KERAS_MEMBERS, **{"config.json": json.dumps(config).encode()})))
    with pytest.raises(HandnetError, match=f"^{path}: "):
        from_keras(path)


def test_deeply_nested_json_configs(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "deep.keras"
    path.write_bytes(zip_of(dict(KERAS_MEMBERS, **{"config.json": deep})))
    with pytest.raises(HandnetError, match="deep.keras: config.json is not valid JSON"):
        from_keras(path)
    npz_path, members = saved_model(tmp_path)
    npz_path.write_bytes(
        zip_of(dict(members, **{"config.json.npy": npy(np.frombuffer(deep, np.uint8))}))
    )
    with pytest.raises(HandnetError, match="model.npz: config.json is not valid JSON"):
        load_model(npz_path)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"x",  # BINBYTES8
        b"\x80\x04\x95" + struct.pack("<Q", 2**62) + b"x",  # FRAME
        b"\x80\x05\x96" + struct.pack("<Q", 2**62) + b"x",  # BYTEARRAY8
    ],
    ids=["BINBYTES8", "FRAME", "BYTEARRAY8"],
)
def test_a_pickle_declaring_a_huge_length_is_refused_without_allocating(payload):
    """Python's unpicklers allocated the declared length before reading it: MemoryError."""
    with memory_guard(), pytest.raises(DatasetError, match="not a valid pickle|refused"):
        safe_load_pickle(io.BytesIO(payload))


def test_a_malformed_dtype_state_in_a_pickle():
    """dtype.__setstate__ raised SystemError on this state (a NumPy quirk)."""
    good = pickle.dumps(np.arange(3, dtype=np.float32), protocol=4)
    bad = good.replace(
        b"K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",
        b"K\x03\x8c\x01<\x94NNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",
    )
    assert bad != good
    with pytest.raises(DatasetError, match="not a valid pickle|refused: dtype float32 with the st"):
        safe_load_pickle(io.BytesIO(bad))


#: An int64 array's pickle with its dtype made "O8" (the pickle fuzzer's find, seed 1101): the
#: unpickler built an object array whose items were the file's bytes taken for pointers, and
#: the process died (SIGSEGV) when the fuzzer's check read it.
OBJECT_ARRAY = pickle.dumps(np.arange(4, dtype=np.int64), protocol=2).replace(b"i8", b"O8")


def test_an_object_array_pickle_is_refused_not_a_crash():
    """In a fresh interpreter: were it loaded, freeing it alone would crash this one."""
    code = (
        "import io, sys\n"
        "from handnet.datasets import DatasetError\n"
        "from handnet.datasets.safe_pickle import safe_load_pickle\n"
        "try:\n"
        "    safe_load_pickle(io.BytesIO(sys.stdin.buffer.read()))\n"
        "except DatasetError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=OBJECT_ARRAY, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"pickle refused: dtype object" in done.stdout


def dtype_state(array, protocol=2):
    """The pickle of ``array`` and the bytes of its dtype's BUILD state, (3, '<', …, 0)."""
    good = pickle.dumps(array, protocol=protocol)
    state = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"  # elsize -1, alignment -1, flags 0
    assert good.count(state) == 1
    return good, state


def test_a_dtype_state_whose_flags_claim_references_is_refused():
    """Flags 63 (NPY_ITEM_REFCOUNT among them) on a float64 dtype: NumPy would take its items
    for references."""
    good, state = dtype_state(np.arange(3.0))
    forged = good.replace(state, state[:-3] + b"K?t")
    with pytest.raises(DatasetError, match=r"refused: dtype float64 with the state .*63\)"):
        safe_load_pickle(io.BytesIO(forged))


def test_numpy_ndarray_called_itself_is_refused_before_allocating():
    """np.ndarray, admitted as _reconstruct's first argument, was callable: REDUCE with
    ((2**36,), uint8) asked for 64 GiB (MemoryError, not a DatasetError; with a smaller shape,
    an uninitialized array of the file's choosing)."""

    class Forged:
        def __reduce__(self):
            return np.ndarray, ((2**36,), np.dtype("u1"))

    with memory_guard(), pytest.raises(DatasetError, match=r"calls numpy.ndarray\(...\) itself"):
        safe_load_pickle(io.BytesIO(pickle.dumps(Forged(), protocol=2)))


@pytest.mark.parametrize("name", [b"numpy\nndarray", b"numpy\ndtype", b"_codecs\nencode"])
def test_a_pickle_setting_the_state_of_an_allowed_name_is_refused(name):
    """BUILD with a dict on a function of the allow-list would have set attributes of this
    module's own functions, for every later load."""
    forged = b"\x80\x02c" + name + b"\n}X\x01\x00\x00\x00aK\x01sb."  # GLOBAL, {'a': 1}, BUILD
    with pytest.raises(DatasetError, match="refused: it sets the state of"):
        safe_load_pickle(io.BytesIO(forged))


def test_a_structured_dtype_and_a_short_array_are_refused():
    structured = np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])
    with pytest.raises(DatasetError, match="refused: dtype"):
        safe_load_pickle(io.BytesIO(pickle.dumps(structured, protocol=2)))
    good = pickle.dumps(np.arange(4, dtype=np.int64), protocol=2)
    short = good.replace(b"K\x04\x85", b"K\x05\x85", 1)  # shape (5,), the bytes of 4
    assert short != good
    with pytest.raises(DatasetError, match="refused: an array's state"):
        safe_load_pickle(io.BytesIO(short))


#: Found by atheris: a zip whose central directory claims "version 13.7" (311 bytes).
ZIP_VERSION_13_7 = base64.b64decode(
    "UEsDBBQAAAAAAKKSd13gq7FaQAAAAGEuanNvbnsia2VyYXNfdmVyc2lvbiI6ICIzLjE1LjEiLCAiZGF0ZV9zYXZlZCI6"
    "ICIyMDI2LbExLTIzQDE4OjIxOjA0In1QSwMEFAAAmA8AAAAAAAAFAAAAUEsBAhQDiUhERg0KGgp3XeCrsVpAAAAAQAAA"
    "AA0AAAAAAAAAAAAAAIABAAAAAG1ldGFkYXRhLmpzb25QSwECFBQDAAAAAACiknddzWWpZ7QKAAC0CgAACwAAAAAAAAAA"
    "AAAAgAFrAAAAY29uZmlnLmpzb25QSwECFAMUAP////+iknddjshd8WRFAABkRQAAEAAAAAAAAAAAAAAAgAFICwAAbW9k"
    "ZWwud2VpZ2h0cy5oNVBLBQYAAAAAAwADALIAAADaUAAAAAA="
)


def test_a_zip_of_an_unknown_version_found_by_atheris(tmp_path):
    """load_any's first look into the zip let zipfile's NotImplementedError through."""
    path = tmp_path / "version.keras"
    path.write_bytes(ZIP_VERSION_13_7)
    with pytest.raises(HandnetError, match="version.keras"):
        load_any(path)


def test_an_hdf5_file_on_which_the_hdf5_library_hangs():
    """Found by the fuzzers (atheris, then hypothesis): the legacy .h5 seed with one byte inserted
    inside model_config (a string in HDF5's global heap). HDF5 2.0.0 loops forever in native code
    in h5py's attrs["model_config"], which no Python signal interrupts; load_any reads Keras files
    in a child process and stops it at the timeout."""
    path = write_case(LEGACY_HANG, "hang.h5")
    started = time.monotonic()
    with pytest.raises(HandnetError, match=r"hang.h5: reading it took longer than 3 s"):
        load_any(path, timeout=3)
    assert time.monotonic() - started < 10


def test_a_png_whose_idat_chunk_declares_4_gib_is_read_without_allocating_it():
    """Reading from a file, Pillow's PNG plugin asked for the declared IDAT length at once
    (MemoryError under a memory limit); load_image now hands Pillow the bytes in memory."""
    from handnet.preprocess import load_image

    from .test_fuzz_images import SEEDS

    data = bytearray(SEEDS["png"])
    struct.pack_into(">I", data, data.index(b"IDAT") - 4, 0xFFFFFF00)
    path = write_case(bytes(data), "idat.png")
    with memory_guard():
        assert load_image(path).size == (40, 32)


def test_an_hdf5_weights_member_with_an_offset_past_2_63(tmp_path):
    """h5py raised OverflowError reading an in-memory file at that offset (superblock field)."""
    weights = bytearray(KERAS_MEMBERS["model.weights.h5"])
    weights[41:49] = (2**63).to_bytes(8, "little")
    path = tmp_path / "offset.keras"
    path.write_bytes(zip_of(dict(KERAS_MEMBERS, **{"model.weights.h5": bytes(weights)})))
    with pytest.raises(HandnetError, match="offset.keras: model.weights.h5 is not a readable HDF5"):
        from_keras(path)


def tiff_with_double_strip_offsets():
    """A 4×4 float TIFF whose StripOffsets tag is typed DOUBLE (12): Pillow 13 passes the float
    to file.seek and raises TypeError (the fuzzer's case, rebuilt by hand)."""
    entries = [(256, 3, 4), (257, 3, 4), (258, 3, 32), (259, 3, 1), (262, 3, 1), (273, 12, None),
               (277, 3, 1), (278, 3, 4), (279, 4, 64), (339, 3, 3)]
    double_at = 8 + 2 + 12 * len(entries) + 4
    data = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, value in entries:
        if kind == 3:
            data += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            data += struct.pack("<HHII", tag, kind, 1, double_at if kind == 12 else value)
    data += struct.pack("<I", 0) + struct.pack("<d", double_at + 8.0)
    return bytes(data + struct.pack("<16f", *([0.0] * 8 + [200.0] * 8)))


def test_an_image_whose_header_trips_the_decoder_is_a_clear_error(tmp_path):
    from handnet.preprocess import read_digit

    data = tiff_with_double_strip_offsets()
    with pytest.raises(HandnetError, match=r"the image: cannot decode the image"):
        read_digit(data)
    path = tmp_path / "digit.tif"
    path.write_bytes(data)
    with pytest.raises(HandnetError, match=r"digit.tif: cannot decode the image"):
        read_digit(path)


def test_a_zip_of_a_forged_version_is_a_damaged_model_not_a_crash(tmp_path):
    """A central-directory entry that needs "zip version 16.0": zipfile raises
    NotImplementedError while listing the archive, in the .npz reader and in load_model's probe
    for a Keras archive alike (the probe once let it through)."""
    path, _ = saved_model(tmp_path)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 6 : entry + 8] = struct.pack("<H", 160)
    path.write_bytes(bytes(data))
    with pytest.raises(HandnetError, match="is not a readable handnet model"):
        load_model(path)
