"""Atomic file writes: a reader, or a crash, only ever sees the old file or the whole new one.

The data goes to a temporary file in the target's folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then renamed over the target; the folder is fsync'ed so the
rename itself survives a power cut. The temporary file is opened with "x" under a unique name
rather than by tempfile.mkstemp, so it gets the usual umask permissions (mkstemp's are 0600).
"""

import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_writer(path):
    """``with atomic_writer(path) as file: file.write(...)`` — all or nothing at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def write_bytes_atomic(path, data):
    with atomic_writer(path) as file:
        file.write(data)


def _fsync_directory(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
