"""handnet.training.memory: after fit (or keep_freed_memory), arrays freed and allocated again
reuse the process's pages instead of faulting new ones in; HANDNET_KEEP_MEMORY=0 leaves malloc
as it is. Each case runs in a fresh interpreter: the setting is for the whole process."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="keep_freed_memory acts on glibc's malloc only"
)

#: What a training step does to memory: several arrays of a few MiB, filled, then all freed
#: (three of 12 MiB: glibc's default gives the top of its heap back, as the cnn's step showed).
#: Prints the page faults a round after the first, and what keep_freed_memory answered.
ROUNDS = """
import resource, sys
import numpy as np
import handnet as hn
from handnet.training import memory

answer = None
if sys.argv[1] == "call":
    answer = memory.keep_freed_memory()
elif sys.argv[1] == "fit":
    model = hn.Sequential([hn.layers.Input((3,)), hn.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0)

def step():
    arrays = [np.ones(3 * 2**20, np.float32) for _ in range(3)]
    del arrays

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5, answer)
"""


def faults_a_round(how, keep="1"):
    env = {**os.environ, "HANDNET_KEEP_MEMORY": keep}
    out = subprocess.run(
        [sys.executable, "-c", ROUNDS, how], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), out[1]


@pytest.fixture(scope="module")
def default_faults():
    """Page faults a round with glibc's defaults. The pattern must be one they handle badly,
    else the tests below prove nothing (36 MiB of pages a round: 9,216 faults of 4 KiB pages,
    fewer where the kernel gives huge pages; 1,100 on this project's machine)."""
    faults, _ = faults_a_round("none")
    assert faults >= 10
    return faults


@pytest.mark.parametrize("how", ["call", "fit"])
def test_kept_memory_is_reused(how, default_faults):
    faults, answer = faults_a_round(how)
    assert faults * 10 <= default_faults
    assert answer == ("True" if how == "call" else "None")


def test_handnet_keep_memory_0_leaves_malloc_alone(default_faults):
    faults, answer = faults_a_round("call", keep="0")
    assert answer == "False"
    assert faults * 2 >= default_faults
