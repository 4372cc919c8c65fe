"""The child process of ``isolated``: ``python -m handnet.keras_io.isolated_child FILE FOLDER``.

It caps its own address space (a damaged file must not take the machine's memory), reads FILE
with reader.read_keras_file and writes FOLDER/weights.npz then FOLDER/result.json, or
FOLDER/error.json when the file is refused; see ``isolated`` for the layout. Exit status 0 means
one of the two was written; an exception or a signal is for the parent to report.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import HandnetError
from . import reader

#: The address space the child may add to what it maps after its imports: this, plus 4 × the
#: file (the zip member's bytes, the arrays, the .npz written back, slack).
MEMORY_HEADROOM_BYTES = 2**30


def main(argv):
    """Read the Keras file ``argv[0]`` into the folder ``argv[1]``."""
    path, folder = Path(argv[0]), Path(argv[1])
    limit = cap_memory(MEMORY_HEADROOM_BYTES + 4 * path.stat().st_size)
    try:
        keras_file = reader.read_keras_file(path)
    except HandnetError as error:
        _write_refusal(folder, str(error))
        return
    except MemoryError:
        allowed = "the memory available" if limit is None else f"the {limit:,} bytes of memory"
        _write_refusal(
            folder,
            f"{path}: reading it needed more than {allowed} the reading process may use; the "
            "file is probably damaged or hostile",
        )
        return
    _write_result(keras_file, folder)


def _write_refusal(folder, message):
    atomic.write_bytes_atomic(folder / "error.json", json.dumps({"message": message}).encode())


def _write_result(keras_file, folder):
    lists = keras_file.all_weights()
    index = {id(arrays): i for i, arrays in enumerate(lists)}
    members = {
        f"{i}/{j}": array for i, arrays in enumerate(lists) for j, (_, array) in enumerate(arrays)
    }
    with atomic.atomic_writer(folder / "weights.npz") as file:
        np.savez(file, allow_pickle=False, **members)
    result = {
        "format": keras_file.format,
        "config": keras_file.config,
        "lists": [[name for name, _ in arrays] for arrays in lists],
        "by_name": {name: index[id(arrays)] for name, arrays in keras_file.weights_by_name.items()},
        "by_key": {key: index[id(arrays)] for key, arrays in keras_file.weights_by_key.items()},
    }
    # Written last: the parent reads the folder only after a clean exit, and then both are whole.
    atomic.write_bytes_atomic(folder / "result.json", json.dumps(result).encode())


def cap_memory(limit_above_now):
    """Cap this process's address space at what it maps now + ``limit_above_now`` bytes (never
    above a limit already set); returns the cap, or None where there is no way to (no
    /proc: not Linux; the timeout still holds)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError):
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # A lower limit set from outside (ulimit -v, a test's memory guard) stays.
    limit = min(
        [mapped + limit_above_now] + [cap for cap in (soft, hard) if cap != resource.RLIM_INFINITY]
    )
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


if __name__ == "__main__":
    main(sys.argv[1:])
