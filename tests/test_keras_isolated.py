"""Keras files read in a child process (handnet.keras_io.isolated), the default of from_keras and
load_any: the same model as in process; refusals, hangs, crashes and memory bombs in the child
come back as one HandnetError naming the file; no temporary folder or process is left behind;
nothing crosses from the child as a pickle. No Keras needed: files come from handnet's exporter
and h5py."""

import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import handnet as hn
from handnet.cli import main as handnet_cli
from handnet.errors import HandnetError
from handnet.keras_io import from_keras, importer, isolated, load_any, reader

from fuzz.keras_seeds import small_model

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def legacy_h5(path):
    """A Keras-2-style .h5 (model_config + model_weights/<layer>/<layer>/<name>:0), big-endian
    kernel included: the child must hand back the bytes and the byte order as stored."""
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4]}},
                {"class_name": "Dense", "config": {"name": "dense", "units": 3}},
            ],
        },
    }
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        group = h5.create_group("model_weights")
        group.attrs["layer_names"] = [b"dense"]
        layer = group.create_group("dense")
        layer.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        layer["dense/kernel:0"] = np.linspace(-1, 1, 12, dtype=">f4").reshape(4, 3)
        layer["dense/bias:0"] = np.array([0.1, np.pi, -0.0], np.float32)
    return path


@pytest.fixture
def files(tmp_path):
    small_model().to_keras(tmp_path / "model.keras")
    return [tmp_path / "model.keras", legacy_h5(tmp_path / "model.h5")]


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The folder the parent makes its temporary folders in, to see that none is left."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def child_runs(monkeypatch, code):
    """The child runs ``code`` (``path``, ``folder`` defined, isolated_child imported as
    ``child``) instead of reading the file."""
    prelude = (
        "import sys; from pathlib import Path; "
        "from handnet.keras_io import isolated_child as child\n"
        "path, folder = Path(sys.argv[1]), Path(sys.argv[2])\n"
    )
    monkeypatch.setattr(isolated, "CHILD_COMMAND", [sys.executable, "-c", prelude + code])


def child_processes():
    """The ids of this process's children, zombies included (Linux /proc)."""
    me, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[1] == me:
            found.append(int(stat.parent.name))
    return found


# -- the same result -----------------------------------------------------------------------------
def test_isolated_and_in_process_reads_give_the_same_file_bit_for_bit(files, scratch):
    for path in files:
        here, there = reader.read_keras_file(path), isolated.read_in_child(path)
        assert (there.path, there.format, there.config) == (here.path, here.format, here.config)
        assert there.weights_by_name.keys() == here.weights_by_name.keys()
        assert there.weights_by_key.keys() == here.weights_by_key.keys()
        for table in ("weights_by_name", "weights_by_key"):
            for name, arrays in getattr(here, table).items():
                theirs = getattr(there, table)[name]
                assert [n for n, _ in theirs] == [n for n, _ in arrays]
                for (_, ours), (_, back) in zip(arrays, theirs):
                    assert (back.dtype, back.shape) == (ours.dtype, ours.shape)
                    assert back.tobytes() == ours.tobytes()
        # A list stored under a layer name and a weights key is one list, as in process.
        assert len(there.all_weights()) == len(here.all_weights())
    assert list(scratch.iterdir()) == []


def test_the_variable_or_the_argument_reads_in_process(files, monkeypatch):
    def no_child(*args):
        pytest.fail("a child process was started")

    monkeypatch.setattr(importer, "read_in_child", no_child)
    from_keras(files[0], isolate=False)
    monkeypatch.setenv(isolated.IN_PROCESS_VARIABLE, "1")
    load_any(files[1])
    monkeypatch.setenv(isolated.IN_PROCESS_VARIABLE, "0")
    with pytest.raises(pytest.fail.Exception):
        load_any(files[1])


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"\x89HDF\r\n\x1a\n" + bytes(100), b"PK\x05\x06" + bytes(18)],
    ids=["damaged-hdf5", "empty-zip"],
)
def test_a_refusal_in_the_child_is_the_same_message_in_the_parent(tmp_path, scratch, content):
    path = tmp_path / "bad.keras"
    path.write_bytes(content)
    with pytest.raises(HandnetError) as in_process:
        from_keras(path, isolate=False)
    with pytest.raises(HandnetError) as in_child:
        from_keras(path)
    assert str(in_child.value) == str(in_process.value)
    assert str(path) in str(in_child.value)
    assert list(scratch.iterdir()) == []


def test_a_child_that_hangs_is_killed_at_the_timeout(files, scratch, monkeypatch):
    child_runs(monkeypatch, "import time; time.sleep(600)")
    before = set(child_processes())
    started = time.monotonic()
    with pytest.raises(
        HandnetError, match=r"model.keras: reading it took longer than 1 s.*damaged"
    ):
        from_keras(files[0], timeout=1)
    assert time.monotonic() - started < 5
    assert set(child_processes()) <= before  # killed and reaped: no zombie
    assert list(scratch.iterdir()) == []


def test_a_child_killed_by_a_signal(files, scratch, monkeypatch):
    child_runs(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(
        HandnetError, match=r"model.h5: the process reading it was killed by SIGSEGV"
    ):
        load_any(files[1])
    assert list(scratch.iterdir()) == []


def test_the_child_caps_its_memory(files, monkeypatch):
    # 8 GiB, asked for and never touched: without the cap the allocation succeeds (and the child
    # fails on what it got instead); under it, MemoryError, reported as the file's fault.
    child_runs(
        monkeypatch,
        "import numpy as np\n"
        "child.reader.read_keras_file = lambda path: np.empty(2**33, np.uint8)\n"
        "child.main(sys.argv[1:])",
    )
    with pytest.raises(
        HandnetError, match=r"model.keras: reading it needed more than the [\d,]+ bytes"
    ):
        from_keras(files[0])


def test_an_unexpected_error_in_the_child_is_reported_as_a_bug(files, monkeypatch):
    child_runs(monkeypatch, "raise TypeError('boom')")
    with pytest.raises(HandnetError, match=r"model.keras: .*exit status 1: TypeError: boom.*a bug"):
        from_keras(files[0])


def test_nothing_from_the_child_is_unpickled(files, monkeypatch, tmp_path):
    """A child that hands back an object array (a pickle inside the .npy) is refused, and the
    parent never calls an unpickler nor np.load, even on a good result."""

    def never(*args, **kwargs):
        pytest.fail("the parent unpickled or np.load-ed something")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, never)
    monkeypatch.setattr(np, "load", never)
    assert from_keras(files[0]).layers[0].name == "conv"
    marker = tmp_path / "ran"
    child_runs(
        monkeypatch,
        "import json, os, numpy as np\n"
        f"class Evil:\n    def __reduce__(self): return (os.mkdir, ({str(marker)!r},))\n"
        "np.savez(folder / 'weights.npz', allow_pickle=True, **{'0/0': np.array([Evil()])})\n"
        "lists = {'format': 'keras', 'config': {}, 'lists': [[None]], "
        "'by_name': {}, 'by_key': {}}\n"
        "(folder / 'result.json').write_text(json.dumps(lists))\n",
    )
    with pytest.raises(
        HandnetError, match=r"model.keras: .*weights file from the reader process: .*dtype object"
    ):
        from_keras(files[0])
    assert not marker.exists()


def test_a_timeout_that_is_not_a_positive_number(files):
    for timeout in (0, -1, "60", None):
        with pytest.raises(HandnetError, match="timeout must be a positive number"):
            from_keras(files[0], timeout=timeout)


# -- end to end: the CLI, isolated by default -----------------------------------------------------
def test_the_cli_reads_keras_files_in_a_child_process(files, tmp_path, monkeypatch, capsys):
    def in_process(*args):
        pytest.fail("the CLI read a Keras file in its own process")

    monkeypatch.delenv(isolated.IN_PROCESS_VARIABLE, raising=False)
    monkeypatch.setattr(importer, "read_keras_file", in_process)
    assert handnet_cli(["summary", str(files[0])]) == 0
    assert "norm" in capsys.readouterr().out
    broken = tmp_path / "broken.h5"
    broken.write_bytes(files[1].read_bytes()[:600])
    assert handnet_cli(["import-keras", str(broken), str(tmp_path / "never.npz")]) == 2
    assert f"handnet: error: {broken}" in capsys.readouterr().err
    assert not (tmp_path / "never.npz").exists()
    assert handnet_cli(["import-keras", str(files[1]), str(tmp_path / "out.npz")]) == 0
    monkeypatch.undo()  # the oracle: the same file read in this process
    expected = from_keras(files[1], isolate=False).get_weights()
    for ours, back in zip(expected, hn.load_model(tmp_path / "out.npz").get_weights()):
        assert back.dtype == ours.dtype and back.tobytes() == ours.tobytes()
