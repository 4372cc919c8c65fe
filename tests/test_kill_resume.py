"""Kill trials: a training process killed with SIGKILL at random moments (in an epoch, or in the
middle of writing a checkpoint) always leaves the last complete checkpoint loadable, and runs
resumed from it, killed again and resumed again, end bit for bit where an uninterrupted run does.

    HANDNET_KILL_TRIALS=300 pytest tests/test_kill_resume.py    # the longer run (default: 30)

Each trial starts the child below, waits until it has imported handnet, lets it train for a
random time within what is left of the run, and kills it. The child stretches the fsync of each
checkpoint's temporary file by 20 ms, so the time between that file and its rename is most of
each epoch and many kills land there (a temporary file left behind shows it). The next trial
resumes the same run; a run that ends (its last child is not killed once all epochs are saved)
must have the weights of an uninterrupted reference run, and a new run starts.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import handnet as hn
from handnet.training import checkpoint

pytestmark = pytest.mark.slow

EPOCHS = 30
FSYNC_DELAY = 0.02  # seconds added to the fsync of each checkpoint's temporary file

CHILD = r"""
import os, stat, sys, time
import numpy as np
import handnet as hn

folder, epochs, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
real_fsync = os.fsync

def slow_fsync(fd):  # widens the window between a checkpoint's temporary write and its rename
    if stat.S_ISREG(os.fstat(fd).st_mode):  # the file, not the folder after the rename
        time.sleep(delay)
    real_fsync(fd)

os.fsync = slow_fsync
hn.training.parallel.MIN_WORK = 0  # split this tiny model across the two threads all the same
rng = np.random.default_rng(5)
y = np.arange(128) % 3
x = rng.standard_normal((128, 16)).astype(np.float32) + y[:, None].astype(np.float32)
model = hn.Sequential(
    [hn.layers.Input((16,)), hn.layers.Dense(16, activation="relu"), hn.layers.Dropout(0.25),
     hn.layers.Dense(3, activation="softmax")],
    seed=1,
)
model.compile(
    hn.optimizers.Adam(hn.schedules.CosineDecay(0.01, epochs * 4)),
    "sparse_categorical_crossentropy",
)
augment = hn.augment.RandomAffine(rotation=8, shift=0.1, image_shape=(4, 4))
backup = hn.callbacks.BackupAndRestore(folder, delete_checkpoint=False)
print("ready", flush=True)
model.fit(x, y, epochs=epochs, batch_size=32, seed=2, threads=2, augment=augment, verbose=0,
          callbacks=[backup])
np.savez(os.path.join(folder, "final.npz"), *model.get_weights())
print("done", flush=True)
"""


def start(folder):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(EPOCHS), str(FSYNC_DELAY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    return child


def final_weights(folder):
    with np.load(folder / "final.npz", allow_pickle=False) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def temporaries(folder):
    return [path for path in folder.iterdir() if path.name.endswith(".tmp")]


def test_sigkill_at_random_moments_never_loses_the_last_checkpoint(tmp_path):
    trials = int(os.environ.get("HANDNET_KILL_TRIALS", "30"))
    child = start(tmp_path / "reference")
    started = time.perf_counter()
    assert child.wait(timeout=120) == 0, child.stderr.read()
    epoch_seconds = (time.perf_counter() - started) / EPOCHS  # training and saving one epoch
    reference = final_weights(tmp_path / "reference")

    def finish_and_compare(child, folder):
        """The run's last child ends with the reference's weights, and no temporary file left."""
        assert child.wait(timeout=120) == 0, child.stderr.read()
        final = final_weights(folder)
        assert all(np.array_equal(a, b) for a, b in zip(final, reference, strict=True))
        assert not temporaries(folder)  # the killed writers' temporary files were deleted
        tally["runs_equal"] += 1

    chooser = random.Random(int(os.environ.get("HANDNET_KILL_SEED", "0")))
    # runs_equal: runs, each resumed after kills, that ended with the reference's weights
    tally = {"kills": 0, "mid_save": 0, "no_checkpoint_yet": 0, "runs_equal": 0}
    runs, last_epoch = 0, 0
    while tally["kills"] < trials:
        folder = tmp_path / f"run{runs}"
        child = start(folder)
        if last_epoch == EPOCHS:  # nothing left to kill: the run must end where the reference does
            finish_and_compare(child, folder)
            runs, last_epoch = runs + 1, 0
            continue
        time.sleep(chooser.uniform(0, epoch_seconds * (EPOCHS - last_epoch)))
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) in (-signal.SIGKILL, 0), child.stderr.read()
        if child.returncode == 0:  # it finished first
            finish_and_compare(child, folder)
            runs, last_epoch = runs + 1, 0
            continue
        tally["kills"] += 1
        tally["mid_save"] += bool(temporaries(folder))
        path = folder / checkpoint.FILENAME
        if not path.exists():
            assert last_epoch == 0
            tally["no_checkpoint_yet"] += 1
            continue
        saved = checkpoint.read(path)  # loadable, whole, and never older than the last one seen
        assert last_epoch <= saved.epoch <= EPOCHS
        assert len(saved.history["epoch"]) == saved.epoch
        assert hn.load_model(path).count_params() == saved.model.count_params()
        last_epoch = saved.epoch

    finish_and_compare(start(folder), folder)  # the run in progress, resumed once more
    print(f"\nkill trials: {tally}")
    assert tally["mid_save"] > 0
