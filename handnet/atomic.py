"""Atomic file writes: a reader, or a crash, only ever sees the old file or the whole new one.

The data goes to a temporary file in the target's folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then renamed over the target; the folder is fsync'ed so the
rename itself survives a power cut. The temporary file is opened with "x" under a unique name
rather than by tempfile.mkstemp, so it gets the usual umask permissions (mkstemp's are 0600).
"""

import contextlib
import glob
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
        # Never let a failed clean-up (a read-only folder) hide the error that stopped the write.
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_directory(path.parent)


def remove_stale_temporaries(path):
    """Delete the temporary files that writers of ``path`` killed mid-write left behind
    (SIGKILL runs no clean-up); those of a process still running are kept. Returns their number."""
    path = Path(path)
    removed = 0
    for temporary in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temporary.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            with contextlib.suppress(OSError):
                temporary.unlink()
                removed += 1
    return removed


def _process_exists(pid):
    if os.name != "posix":  # os.kill(pid, 0) probes only on POSIX; elsewhere it may signal
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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
