"""Byte-level damage inside HDF5 data (a legacy .h5, the weights member of a .keras), fuzzed in a
worker that runs each case in a forked child, so that a crash or a hang inside the HDF5 C library
is caught and counted instead of taking pytest down."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CI_EXAMPLES = 150


def test_byte_mutated_hdf5_gives_a_model_or_a_handnet_error_and_never_crashes():
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
    tally = result.stdout.strip().splitlines()[-1]
    _, cases, _, hangs = tally.split()
    print(tally)
    if int(hangs):
        # A known limit (docs/reliability.md): HDF5 can loop forever in native code on a damaged
        # file (one byte inserted inside a heap object does it); Python cannot interrupt it.
        pytest.xfail(f"HDF5 hung in native code on {hangs} of {cases} damaged files")
