"""Reading a Keras file in a child process that can be stopped: the HDF5 C library can loop
forever (or crash) on a damaged file, and Python cannot interrupt native code, so the bytes are
parsed where a hang costs a timeout and a crash costs one process.

    keras_file = read_in_child("model.h5", timeout=60)   # what reader.read_keras_file returns

The parent starts a fresh interpreter, ``python -m handnet.keras_io.isolated_child FILE FOLDER``
(never a fork: ``handnet serve`` has threads), and waits at most ``timeout`` seconds. The child
caps its address space, runs reader.read_keras_file and writes into FOLDER, a private temporary
folder:

    weights.npz    every weight array, members "<list>/<position>"   (np.savez, numbers only)
    result.json    {"format", "config", "lists": [[weight name or null, …], …],
                    "by_name": {layer name: list}, "by_key": {weights key: list}}
    error.json     {"message": …} instead, when the file was refused (a HandnetError)

Nothing comes back pickled: the parent parses the JSON and reads the arrays with read_npz
(numeric dtypes only, sizes checked), then removes the folder. A timeout, a signal or an
unexpected failure in the child becomes a HandnetError naming the file.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import npz
from ..errors import HandnetError
from . import reader

DEFAULT_TIMEOUT_SECONDS = 60
#: HANDNET_KERAS_IN_PROCESS=1: read Keras files in this process (trusted files, parity tests).
IN_PROCESS_VARIABLE = "HANDNET_KERAS_IN_PROCESS"
#: The child's command line, before FILE FOLDER (tests put a child that hangs or crashes here).
CHILD_COMMAND = [sys.executable, "-m", "handnet.keras_io.isolated_child"]
#: result.json holds the config once, plus names: far more than this is not the child's output.
MAX_RESULT_BYTES = 4 * reader.MAX_CONFIG_BYTES
#: Room for the .npy headers of weights.npz on top of the weight bytes.
NPY_HEADER_ROOM_BYTES = 2**26


def isolation_wanted(isolate=None):
    """``isolate``, or when it is None, True unless HANDNET_KERAS_IN_PROCESS=1."""
    if isolate is None:
        return os.environ.get(IN_PROCESS_VARIABLE) != "1"
    return bool(isolate)


def read_in_child(path, timeout=DEFAULT_TIMEOUT_SECONDS):
    """reader.read_keras_file(path), run in a child process stopped after ``timeout`` seconds."""
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise HandnetError(f"timeout must be a positive number of seconds, got {timeout!r}")
    path = Path(path)
    if not path.is_file():
        raise HandnetError(f"no Keras model file at {path}")
    folder = Path(tempfile.mkdtemp(prefix="handnet-keras-"))
    try:
        child = _run_child(path, folder, timeout)
        error = folder / "error.json"
        if child.returncode == 0 and error.is_file():
            raise HandnetError(str(_read_json(path, error).get("message")))
        if child.returncode == 0:
            return _read_result(path, folder)
        if child.returncode < 0:
            raise HandnetError(_signal_message(path, -child.returncode))
        last_line = (child.stderr.strip().splitlines() or ["no message"])[-1]
        raise HandnetError(
            f"{path}: the process reading it failed (exit status {child.returncode}: {last_line}); "
            "this is a bug in handnet, please report it with the file"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_child(path, folder, timeout):
    # The child must import the handnet this process runs, installed or not; it does no
    # arithmetic, so one BLAS thread (fewer threads, less memory, faster start).
    package_root = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    environment = dict(os.environ, PYTHONPATH=python_path, OPENBLAS_NUM_THREADS="1")
    environment["OMP_NUM_THREADS"] = "1"
    try:
        # subprocess.run kills and reaps the child on a timeout or on any exception (Ctrl-C).
        return subprocess.run(
            [*CHILD_COMMAND, os.fspath(path), os.fspath(folder)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            env=environment,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise HandnetError(
            f"{path}: reading it took longer than {timeout:g} s, so it was stopped; the file is "
            "probably damaged (a damaged HDF5 file can make the HDF5 library loop forever). A "
            "large file on a slow disk may need more: from_keras(path, timeout=…)"
        ) from None


def _signal_message(path, number):
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    hint = " (or the machine ran out of memory)" if number == signal.SIGKILL else ""
    return (
        f"{path}: the process reading it was killed by {name}{hint}; the file is probably "
        "damaged (a crash inside h5py or the HDF5 library)"
    )


def _read_json(path, file):
    try:
        if file.stat().st_size > MAX_RESULT_BYTES:
            raise ValueError(f"{file.name} is larger than {MAX_RESULT_BYTES:,} bytes")
        content = json.loads(file.read_text("utf-8"))
        if not isinstance(content, dict):
            raise ValueError(f"a JSON {type(content).__name__}, not an object")
        return content
    except (OSError, ValueError, RecursionError) as error:
        raise HandnetError(
            f"{path}: the process reading it handed back a damaged {file.name} ({error})"
        ) from None


def _read_result(path, folder):
    result = _read_json(path, folder / "result.json")
    try:
        arrays = npz.read_npz(
            folder / "weights.npz",
            what="weights file from the reader process",
            max_bytes=reader.MAX_WEIGHTS_BYTES + NPY_HEADER_ROOM_BYTES,
        )
    except HandnetError as error:  # it names the temporary folder; say which file it came from
        raise HandnetError(f"{path}: {error}") from None
    try:
        lists = [
            [(name, arrays[f"{i}/{j}"]) for j, name in enumerate(names)]
            for i, names in enumerate(result["lists"])
        ]
        return reader.KerasFile(
            path,
            result["format"],
            result["config"],
            weights_by_name={name: lists[i] for name, i in result["by_name"].items()},
            weights_by_key={key: lists[i] for key, i in result["by_key"].items()},
        )
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise HandnetError(
            f"{path}: the process reading it handed back a result that is not laid out as "
            f"expected ({type(error).__name__}: {error})"
        ) from None
