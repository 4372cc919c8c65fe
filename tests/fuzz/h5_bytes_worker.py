"""Byte-mutated HDF5 through the Keras importer: each case read in a forked child, and the cases
the in-process reader cannot survive read again the default, isolated way.

Run by test_fuzz_h5_bytes.py as ``python -m fuzz.h5_bytes_worker EXAMPLES`` from tests/. The HDF5
C library parses the damaged bytes: a crash there, or a loop Python cannot interrupt, takes down
the process that runs it. So each case is first read with the reader in process
(``isolate=False``) in a forked child of this worker, which costs milliseconds where a fresh
interpreter costs about 0.6 s: it must give a model or a HandnetError naming the file. A child
killed by a signal (a crash), or still running after HANG_SECONDS (a hang), is counted, and the
same file then goes through from_keras's default, a child process of its own stopped after
HANG_SECONDS: that must give a model or a HandnetError naming the file (the timeout, the
signal), never a hang or a crash here.
The last line printed is the tally.
"""

import os
import signal
import sys
import time
import traceback
from functools import partial

from hypothesis import example, given

from handnet.keras_io import from_keras

from .harness import fuzz_settings, mutated, outcome, write_case, zip_of
from .keras_seeds import KERAS_MEMBERS, LEGACY_HANG, LEGACY_SEED

HANG_SECONDS = 3
TALLY = {"cases": 0, "hangs": 0, "crashes": 0}


def check(path):
    """The property for one file: in process, then (if that hung or crashed) isolated."""
    TALLY["cases"] += 1
    failure = in_fork(partial(from_keras, isolate=False), path)
    if failure is not None:
        TALLY[failure] += 1
        outcome(partial(from_keras, timeout=HANG_SECONDS), path)


def in_fork(load, path):
    """``outcome(load, path)`` in a forked child: None when it held, "hangs" or "crashes" when the
    child had to be killed or died of a signal; raises if the property failed in the child."""
    pid = os.fork()
    if pid == 0:  # the child: exit 0 when the property held, 1 with a traceback when not
        try:
            outcome(load, path)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hangs"
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        return "crashes"
    if os.WEXITSTATUS(status) != 0:
        raise AssertionError("the property failed in the child (its traceback is above)")
    return None


def run(examples):
    @fuzz_settings(examples)
    @given(mutated(LEGACY_SEED, header_bytes=2048))
    @example(LEGACY_HANG)  # every run, one known hang goes the whole way
    def legacy_h5(data):
        check(write_case(data, "mutated.h5"))

    @fuzz_settings(examples)
    @given(mutated(KERAS_MEMBERS["model.weights.h5"], header_bytes=2048))
    def weights_member(weights):
        data = zip_of(dict(KERAS_MEMBERS, **{"model.weights.h5": weights}))
        check(write_case(data, "mutated-weights.keras"))

    legacy_h5()
    weights_member()


if __name__ == "__main__":
    run(int(sys.argv[1]))
    print(" ".join(f"{name} {count}" for name, count in TALLY.items()))
