"""Byte-mutated HDF5 through the Keras importer, each case in a forked child.

Run by test_fuzz_h5_bytes.py as ``python -m fuzz.h5_bytes_worker EXAMPLES`` from tests/. The HDF5
C library parses the damaged bytes: a crash there, or a loop Python cannot interrupt, would take
down whatever process runs it. So each case runs in a child of this worker: a child killed by a
signal fails the case (hypothesis then prints its bytes); a child still running after
HANG_SECONDS is killed and counted as a hang. The last line printed is the tally.
"""

import os
import signal
import sys
import time
import traceback

from hypothesis import given

from handnet.keras_io import from_keras

from .harness import fuzz_settings, mutated, outcome, write_case, zip_of
from .keras_seeds import KERAS_MEMBERS, LEGACY_SEED

HANG_SECONDS = 3
TALLY = {"cases": 0, "hangs": 0}


def in_child(load, path):
    """``outcome(load, path)`` in a forked child; raises if the child failed or crashed."""
    TALLY["cases"] += 1
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
            TALLY["hangs"] += 1
            return
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        raise AssertionError(f"the loader crashed the process (signal {os.WTERMSIG(status)})")
    if os.WEXITSTATUS(status) != 0:
        raise AssertionError("the property failed in the child (its traceback is above)")


def run(examples):
    @fuzz_settings(examples)
    @given(mutated(LEGACY_SEED, header_bytes=2048))
    def legacy_h5(data):
        in_child(from_keras, write_case(data, "mutated.h5"))

    @fuzz_settings(examples)
    @given(mutated(KERAS_MEMBERS["model.weights.h5"], header_bytes=2048))
    def weights_member(weights):
        data = zip_of(dict(KERAS_MEMBERS, **{"model.weights.h5": weights}))
        in_child(from_keras, write_case(data, "mutated-weights.keras"))

    legacy_h5()
    weights_member()


if __name__ == "__main__":
    run(int(sys.argv[1]))
    print(f"cases {TALLY['cases']} hangs {TALLY['hangs']}")
