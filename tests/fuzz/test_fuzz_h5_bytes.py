"""Byte-level damage inside HDF5 data (a legacy .h5, the weights member of a .keras), fuzzed in a
worker (h5_bytes_worker.py) that reads each case in a forked child, so that a crash or a hang
inside the HDF5 C library is caught and counted instead of taking pytest down; each such case
must then come back from the isolated default as a HandnetError naming the file."""

import os
import subprocess
import sys
from pathlib import Path

CI_EXAMPLES = 150


def test_byte_mutated_hdf5_gives_a_model_or_a_handnet_error_and_never_crashes_or_hangs():
    examples = os.environ.get("HANDNET_FUZZ_EXAMPLES", str(CI_EXAMPLES))
    tests = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.h5_bytes_worker", examples],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    # "cases N hangs H crashes C": H and C in-process failures, each a HandnetError isolated.
    print(result.stdout.strip().splitlines()[-1])
