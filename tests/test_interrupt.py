"""Ctrl-C and SIGTERM during a fit with a backup (handnet.training.interrupt): the step under way
ends, a
checkpoint of exactly that point is written, fit raises TrainingInterrupted, and a fit resumed
from it ends bit for bit where an uninterrupted one does; a second signal stops at once and keeps
the last complete checkpoint; ``handnet train`` exits 130 (143) saying how to resume.

The signals are real: ``signal.raise_signal`` runs the installed handler before it returns, so a
callback that sends one at the end of a batch stops the fit after exactly that batch.
"""

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from test_checkpoint import EPOCHS, assert_same_run, build, fit, without_seconds

import handnet as hn
from handnet import cli, saving
from handnet.training import checkpoint, interrupt
from handnet.errors import HandnetError
from handnet.npz import read_npz

STEPS = 3  # batches per epoch of test_checkpoint.tiny_data: 96 samples (76 with validation) by 32


@pytest.fixture(autouse=True)
def split_even_tiny_models(monkeypatch):
    """The "threads": 2 cases must really split their tiny models
    (handnet.training.parallel.MIN_WORK)."""
    monkeypatch.setattr(hn.training.parallel, "MIN_WORK", 0)


@pytest.fixture(autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """Python's own SIGINT handler, as in a terminal. A test run started in the background of a
    script inherits SIGINT ignored, and handnet leaves an ignored signal alone (tested below);
    children exec'd from here start with the default again."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigterm_fails_the_test():
    """A SIGTERM that fit does not defer fails the test instead of killing pytest."""

    def not_deferred(signum, frame):
        raise AssertionError("SIGTERM reached the previous handler")

    previous = signal.signal(signal.SIGTERM, not_deferred)
    yield not_deferred
    signal.signal(signal.SIGTERM, previous)


class SignalAt(hn.callbacks.Callback):
    """Sends ``signum`` to this process ``times`` times at the end of batch ``batch`` of epoch
    ``epoch`` (both from 0); ``batch=None``: at the end of the epoch, after the backup."""

    def __init__(self, epoch, batch, signum=signal.SIGINT, times=1):
        self.epoch, self.batch, self.signum, self.times = epoch, batch, signum, times
        self.current = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            self.send()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch, self.batch) == (self.epoch, None):
            self.send()

    def send(self):
        for _ in range(self.times):
            signal.raise_signal(self.signum)


def handlers():
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def stop(model, case, folder, *signals, epochs=EPOCHS):
    """Fit with a backup in ``folder`` and the SignalAt callbacks given; returns the exception
    fit raised (a KeyboardInterrupt, never a plain one that pytest would take for the user's)."""
    before = handlers()
    backup = hn.callbacks.BackupAndRestore(folder)
    with pytest.raises(KeyboardInterrupt) as caught:
        fit(model, case, epochs, [backup, *signals])
    assert handlers() == before  # put back, although fit raised
    return caught.value


def resume(case, folder, epochs=EPOCHS):
    """A new model (as a new process builds it) fitted with the backup in ``folder``."""
    model = build(case)
    history = fit(model, case, epochs, [hn.callbacks.BackupAndRestore(folder)])
    return model, history


_references = {}


def reference(name, case):
    """The uninterrupted run of ``case``: (model, history), fitted once per case."""
    if name not in _references:
        model = build(case)
        _references[name] = model, fit(model, case, EPOCHS)
    return _references[name]


def assert_equal_to_reference(name, case, model, history):
    expected_model, expected_history = reference(name, case)
    assert_same_run(model, expected_model)
    assert history.epoch == expected_history.epoch == list(range(EPOCHS))
    assert without_seconds(history) == without_seconds(expected_history)


CASES = {
    "dropout-sgd-momentum": {"dropout": True, "sgd": True},
    "batchnorm-2-threads-validation": {"batch_norm": True, "threads": 2, "validate": True},
    "dropout-augment-2-threads": {"dropout": True, "augment": True, "threads": 2},
}
POINTS = {  # (epoch, batch) at whose end the signal comes
    "first-step-of-the-run": (0, 0),
    "first-step-of-an-epoch": (1, 0),
    "mid-epoch": (2, 1),
    "last-step-of-an-epoch": (1, STEPS - 1),
}


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("name", list(CASES))
def test_ctrl_c_saves_that_step_and_the_resumed_run_is_bit_for_bit(name, point, tmp_path):
    case, (epoch, batch) = CASES[name], POINTS[point]
    first = build(case)
    stopped = stop(first, case, tmp_path, SignalAt(epoch, batch))
    assert isinstance(stopped, interrupt.TrainingInterrupted)
    assert (stopped.epochs_done, stopped.batches) == (epoch, batch + 1)
    assert (stopped.signum, stopped.exit_status) == (signal.SIGINT, 130)

    saved = checkpoint.read(tmp_path / checkpoint.FILENAME)
    assert saved.epoch == epoch and saved.partial_epoch.batches == batch + 1
    assert saved.history["epoch"] == list(range(epoch))
    assert_same_run(saved.model, first)  # the weights and slots after that very step
    batches = "1 batch" if batch == 0 else f"{batch + 1} batches"
    assert saved.position() == f"after {batches} of epoch {epoch + 1}"

    model, history = resume(case, tmp_path)
    assert_equal_to_reference(name, case, model, history)


def test_sigterm_is_deferred_as_ctrl_c_is(tmp_path, sigterm_fails_the_test):
    name = "dropout-augment-2-threads"
    case = CASES[name]
    stopped = stop(build(case), case, tmp_path, SignalAt(1, 1, signal.SIGTERM))
    assert isinstance(stopped, interrupt.TrainingInterrupted)
    assert (stopped.signum, stopped.exit_status) == (signal.SIGTERM, 143)
    assert "SIGTERM: training stopped after 2 batches of epoch 2" in str(stopped)
    assert signal.getsignal(signal.SIGTERM) is sigterm_fails_the_test
    assert_equal_to_reference(name, case, *resume(case, tmp_path))


def test_a_run_stopped_and_resumed_twice_is_bit_for_bit(tmp_path):
    name = "dropout-augment-2-threads"
    case = CASES[name]
    stop(build(case), case, tmp_path, SignalAt(1, 0))
    # Resumed inside epoch 1, stopped again inside it: the order drawn again must be the same.
    again = stop(build(case), case, tmp_path, SignalAt(1, 1))
    assert (again.epochs_done, again.batches) == (1, 2)
    stop(build(case), case, tmp_path, SignalAt(3, 2))
    assert_equal_to_reference(name, case, *resume(case, tmp_path))


def test_a_signal_after_the_last_step_stops_at_the_epochs_end(tmp_path):
    name = "batchnorm-2-threads-validation"
    case = CASES[name]
    stopped = stop(build(case), case, tmp_path, SignalAt(1, None))  # during the epoch's end
    assert (stopped.epochs_done, stopped.batches) == (2, 0)
    assert "after epoch 2" in str(stopped)
    saved = checkpoint.read(tmp_path / checkpoint.FILENAME)
    assert saved.epoch == 2 and saved.partial_epoch is None
    assert_equal_to_reference(name, case, *resume(case, tmp_path))


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_complete_checkpoint(tmp_path):
    case = CASES["dropout-sgd-momentum"]
    stopped = stop(build(case), case, tmp_path, SignalAt(2, 1, times=2))
    assert not isinstance(stopped, interrupt.TrainingInterrupted)  # raised by the handler
    saved = checkpoint.read(tmp_path / checkpoint.FILENAME)
    assert saved.epoch == 2 and saved.partial_epoch is None  # the end of epoch 2, as written


def test_a_second_ctrl_c_inside_the_save_leaves_the_previous_checkpoint_whole(
    tmp_path, monkeypatch
):
    case = CASES["dropout-sgd-momentum"]
    path = tmp_path / checkpoint.FILENAME
    real_fsync = os.fsync
    written = {}

    class CtrlCTwice(SignalAt):
        """Ctrl-C at the end of a batch, and again while the checkpoint of that step is written."""

        def send(self):
            written["bytes"] = path.read_bytes()

            def second_ctrl_c(fd):
                monkeypatch.setattr(os, "fsync", real_fsync)
                signal.raise_signal(signal.SIGINT)

            monkeypatch.setattr(os, "fsync", second_ctrl_c)
            super().send()

    stopped = stop(build(case), case, tmp_path, CtrlCTwice(1, 1))
    assert not isinstance(stopped, interrupt.TrainingInterrupted)
    assert path.read_bytes() == written["bytes"]  # the end of epoch 1, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.FILENAME]  # no temporary


def test_without_a_backup_ctrl_c_raises_at_once():
    case = CASES["dropout-sgd-momentum"]
    before = handlers()
    with pytest.raises(KeyboardInterrupt) as caught:
        fit(build(case), case, EPOCHS, [SignalAt(1, 1)])
    assert not isinstance(caught.value, interrupt.TrainingInterrupted)
    assert handlers() == before


def test_an_ignored_signal_stays_ignored(tmp_path):
    """nohup and background jobs ignore SIGINT: fit must not start acting on it."""
    case = CASES["dropout-sgd-momentum"]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    model = build(case)
    history = fit(model, case, EPOCHS, [hn.callbacks.BackupAndRestore(tmp_path), SignalAt(1, 1)])
    assert len(history.history["loss"]) == EPOCHS  # the signal changed nothing
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_handlers_come_back_when_fit_ends_or_fails(tmp_path):
    case = CASES["dropout-sgd-momentum"]
    before = handlers()
    fit(build(case), case, 1, [hn.callbacks.BackupAndRestore(tmp_path / "ends")])
    assert handlers() == before

    class Fails(hn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            assert handlers() != before  # deferred while fit runs
            raise HandnetError("a callback failed")

    with pytest.raises(HandnetError, match="a callback failed"):
        fit(build(case), case, 1, [hn.callbacks.BackupAndRestore(tmp_path / "fails"), Fails()])
    assert handlers() == before


def test_a_fit_outside_the_main_thread_leaves_the_handlers_alone(tmp_path):
    """Python sets signal handlers only in the main thread; fit must not try elsewhere."""
    case = CASES["dropout-sgd-momentum"]
    outcome = {}

    def train():
        backup = hn.callbacks.BackupAndRestore(tmp_path)
        try:
            outcome["history"] = fit(build(case), case, 1, [backup])
        except BaseException as error:  # noqa: BLE001 — reported below
            outcome["error"] = error

    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["history"].epoch == [0]


def test_a_signal_the_body_did_not_act_on_goes_to_the_previous_handler():
    """One that comes after fit's last look at the flag is delivered once the previous handler
    is back, never lost; one that comes before an error is dropped with the fit it stopped."""
    before = handlers()
    with pytest.raises(KeyboardInterrupt) as caught:
        with interrupt.deferred() as deferral:
            signal.raise_signal(signal.SIGINT)
            assert deferral.requested == signal.SIGINT  # deferred: the body goes on
    assert not isinstance(caught.value, interrupt.TrainingInterrupted)
    assert handlers() == before
    with pytest.raises(HandnetError):
        with interrupt.deferred():
            signal.raise_signal(signal.SIGINT)
            raise HandnetError("the fit failed")
    assert handlers() == before


# -- what the checkpoint must match ---------------------------------------------------------


def test_a_mid_epoch_checkpoint_needs_the_same_data_and_model(tmp_path):
    case = CASES["dropout-sgd-momentum"]
    stop(build(case), case, tmp_path, SignalAt(1, 1))
    model = build(case)
    x, y = np.zeros((90, 16), np.float32), np.arange(90) % 3
    with pytest.raises(HandnetError, match="96 samples in batches of 32; this fit has 90 samples"):
        model.fit(x, y, epochs=EPOCHS, batch_size=32, seed=11, threads=1, verbose=0,
                  callbacks=[hn.callbacks.BackupAndRestore(tmp_path)])  # fmt: skip
    with pytest.raises(HandnetError, match="layers"):
        fit(build({}), case, EPOCHS, [hn.callbacks.BackupAndRestore(tmp_path)])


def rewrite_checkpoint_json(path, change):
    arrays = read_npz(path, what="checkpoint")
    info = json.loads(arrays["checkpoint.json"].tobytes().decode())
    change(info)
    arrays["checkpoint.json"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    saving.write_npz_atomic(path, arrays)


def test_a_version_1_checkpoint_of_an_epochs_end_still_resumes(tmp_path):
    name = "dropout-sgd-momentum"
    case = CASES[name]
    fit(build(case), case, 2, [hn.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])

    def as_version_1(info):
        assert info.pop("partial_epoch") is None
        info["version"] = 1

    rewrite_checkpoint_json(tmp_path / checkpoint.FILENAME, as_version_1)
    assert_equal_to_reference(name, case, *resume(case, tmp_path))


@pytest.mark.parametrize(
    "field, value",
    [("batches", 0), ("batches", 4), ("seen", -1), ("correct", 1.5), ("shuffle_state", None),
     ("unknown", 1)],
)  # fmt: skip
def test_a_malformed_partial_epoch_is_refused(tmp_path, field, value):
    case = CASES["dropout-sgd-momentum"]
    stop(build(case), case, tmp_path, SignalAt(1, 1))
    path = tmp_path / checkpoint.FILENAME
    rewrite_checkpoint_json(path, lambda info: info["partial_epoch"].update({field: value}))
    with pytest.raises(HandnetError, match=f"{path}: (the partial epoch is malformed|malformed)"):
        checkpoint.read(path)


# -- handnet train --------------------------------------------------------------------------

# The command line as a user runs it, on 300 tiny "digits" instead of MNIST and without the
# pictures (seconds of matplotlib); each training step first prints "step" (so the parent knows
# the fit is under way) and sleeps a little (so a signal lands inside a step, as a Ctrl-C does).
CHILD = r"""
import sys, time
import numpy as np
import handnet as hn
from handnet import cli
from handnet.cli import train

delay, argv = float(sys.argv[1]), sys.argv[2:]
rng = np.random.default_rng(0)
labels = np.arange(330) % 10
images = (rng.random((330, 28, 28)) * 100 + labels[:, None, None] * 15).astype(np.uint8)
split = (images[:300], labels[:300]), (images[300:], labels[300:])
train.load_dataset = lambda args, verbose=False: ("tiny digits", *split, None)
train.plot_test_set = train.plots.plot_training_curves = lambda *a, **k: None
train.plot_model = lambda *a, **k: []  # the names of the pictures it wrote: none
real_step = hn.training.parallel.Serial.compute_gradients

def announced_step(self, x, y):
    print("step", flush=True)
    time.sleep(delay)
    return real_step(self, x, y)

hn.training.parallel.Serial.compute_gradients = announced_step
sys.exit(cli.main(argv))
"""
TRAIN = ["train", "--model", "mlp", "--epochs", "3", "--batch-size", "32", "--lr", "0.003", "-q"]
STEPS_PER_EPOCH = 9  # 270 images after the 10 % validation split, by 32


def start(argv, delay=0.0):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(delay), *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def same_model_files(a, b):
    assert_same_run(hn.load_model(a / "model.npz"), hn.load_model(b / "model.npz"))
    histories = [json.loads((folder / "history.json").read_text()) for folder in (a, b)]
    for history in histories:
        history["history"].pop("seconds")
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_handnet_train_stopped_by_ctrl_c_mid_epoch_resumes_bit_for_bit(tmp_path):
    reference_run = start([*TRAIN, "--out", tmp_path / "reference"])
    folder = tmp_path / "checkpoints"
    child = start([*TRAIN, "--out", tmp_path / "run", "--checkpoint-dir", folder], delay=0.05)
    for _ in range(STEPS_PER_EPOCH + 4):  # into the 5th step of epoch 2
        assert child.stdout.readline() == "step\n", child.stderr.read()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    saved = checkpoint.read(folder / checkpoint.FILENAME)
    assert saved.partial_epoch is not None  # inside an epoch (epoch 2 unless this test lagged)
    assert f"handnet: interrupted by SIGINT. {folder / checkpoint.FILENAME} holds the state " \
           f"{saved.position()}; continue with: handnet train --resume {folder}" in err  # fmt: skip

    resumed = start(["train", "--resume", folder])
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert reference_run.wait(timeout=120) == 0, reference_run.stderr.read()
    same_model_files(tmp_path / "run", tmp_path / "reference")


def test_handnet_train_stopped_by_sigterm_exits_143(tmp_path, monkeypatch, sigterm_fails_the_test):
    """In-process, up to the exit status and the message (the resume is the test above's)."""
    from handnet.cli import train as train_module

    images = (np.arange(120 * 784) % 251).astype(np.uint8).reshape(120, 28, 28)
    labels = np.arange(120) % 10
    tiny = ("tiny", (images, labels), (images, labels), None)
    monkeypatch.setattr(train_module, "load_dataset", lambda args, verbose=False: tiny)
    # One runner whatever the machine's BLAS threads: the whole batch on this thread.
    monkeypatch.setattr(hn.training.parallel, "MIN_WORK", math.inf)
    real_step, steps = hn.training.parallel.Serial.compute_gradients, []

    def step_then_sigterm(self, x, y):
        steps.append(len(x))
        if len(steps) == 6:  # the 2nd step of epoch 2 (4 an epoch: 108 images by 32)
            signal.raise_signal(signal.SIGTERM)
        return real_step(self, x, y)

    monkeypatch.setattr(hn.training.parallel.Serial, "compute_gradients", step_then_sigterm)
    folder = tmp_path / "checkpoints"
    argv = ["train", "--epochs", 3, "--batch-size", 32, "--out", tmp_path / "run", "-q",
            "--checkpoint-dir", folder]  # fmt: skip
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = cli.main([str(arg) for arg in argv])
    assert status == 143, err.getvalue()
    assert "handnet: interrupted by SIGTERM" in err.getvalue()
    assert "after 2 batches of epoch 2" in err.getvalue()
    assert f"handnet train --resume {folder.resolve()}" in err.getvalue()
    assert len(steps) == 6  # stopped after the step under way
