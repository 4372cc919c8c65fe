"""Checkpoints and resume (handnet.training.checkpoint, callbacks.BackupAndRestore, handnet train
--checkpoint-dir / --resume), and reproducibility: a resumed run ends bit for bit where an
uninterrupted one does, and the same seed and thread count give the same weights."""

import errno
import os

import numpy as np
import pytest

import handnet as hn
from handnet.training import checkpoint
from handnet.errors import HandnetError
from cli_run import run

EPOCHS = 4


@pytest.fixture(autouse=True)
def split_even_tiny_models(monkeypatch):
    """The "threads": 2 cases must really split their tiny models
    (handnet.training.parallel.MIN_WORK)."""
    monkeypatch.setattr(hn.training.parallel, "MIN_WORK", 0)


def tiny_data(samples=96):
    """4×4 'images' as rows of 16 and 3 classes: small enough for many fits, big enough to split
    a batch of 32 across two threads (parts of 16)."""
    rng = np.random.default_rng(7)
    y = np.arange(samples) % 3
    x = rng.standard_normal((samples, 16)).astype(np.float32) + y[:, None].astype(np.float32)
    return x, y


def build(case):
    """A fresh model of one kind; each call builds the same network (weights from seed 3)."""
    layers = [hn.layers.Input((16,)), hn.layers.Dense(12, activation="relu")]
    if case.get("batch_norm"):
        layers.append(hn.layers.BatchNormalization())
    if case.get("dropout"):
        layers.append(hn.layers.Dropout(0.3))
    layers.append(hn.layers.Dense(3, activation="softmax"))
    model = hn.Sequential(layers, seed=3)
    schedule = hn.schedules.CosineDecay(0.02, decay_steps=EPOCHS * 3)
    optimizer = (
        hn.optimizers.SGD(0.05, momentum=0.9) if case.get("sgd") else hn.optimizers.Adam(schedule)
    )
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    return model


def fit(model, case, epochs, callbacks=None, seed=11):
    augment = (
        hn.augment.RandomAffine(rotation=10, shift=0.1, image_shape=(4, 4))
        if case.get("augment")
        else None
    )
    x, y = tiny_data()
    return model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=32,
        validation_split=0.2 if case.get("validate") else 0.0,
        seed=seed,
        threads=case.get("threads", 1),
        augment=augment,
        callbacks=callbacks,
        verbose=0,
    )


def optimizer_state_by_position(model):
    """The optimizer state keyed "slot/<layer index>/param": two equal models built in one
    process have different layer names (dense_9, dense_10, …), which would not sort alike."""
    index = {layer.name: str(position) for position, layer in enumerate(model.layers)}
    return {
        "/".join(index.get(part, part) for part in key.split("/")): value
        for key, value in model.optimizer.get_state().items()
    }


def assert_same_run(a, b):
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))
    state_a, state_b = optimizer_state_by_position(a), optimizer_state_by_position(b)
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        assert np.array_equal(value, state_b[key]), key


def without_seconds(history):
    return {key: values for key, values in history.history.items() if key != "seconds"}


class InterruptAt(hn.callbacks.Callback):
    """Raises KeyboardInterrupt in the middle of epoch ``epoch`` (from 0): a stop that does not
    wait for a checkpoint, as a second Ctrl-C (a first one is deferred: tests/test_interrupt.py)."""

    def __init__(self, epoch):
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 1:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


CASES = {
    "adam-cosine": {},
    "dropout-augment-2-threads": {"dropout": True, "augment": True, "threads": 2},
    "batchnorm-2-threads-validation": {"batch_norm": True, "threads": 2, "validate": True},
    "sgd-momentum-dropout": {"dropout": True, "sgd": True},
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_run_interrupted_mid_epoch_resumes_bit_for_bit(name, tmp_path):
    case = CASES[name]
    reference = build(case)
    expected = fit(reference, case, EPOCHS)

    first = build(case)
    with pytest.raises(KeyboardInterrupt):
        fit(first, case, EPOCHS, [hn.callbacks.BackupAndRestore(tmp_path), InterruptAt(2)])
    assert checkpoint.read(tmp_path / checkpoint.FILENAME).epoch == 2

    resumed = build(case)  # a new process would build it the same way
    backup = hn.callbacks.BackupAndRestore(tmp_path)
    history = fit(resumed, case, EPOCHS, [backup])
    assert backup.restored_epoch == 2
    assert_same_run(resumed, reference)
    assert history.epoch == expected.epoch == list(range(EPOCHS))
    assert without_seconds(history) == without_seconds(expected)
    assert not (tmp_path / checkpoint.FILENAME).exists()  # delete_checkpoint=True, as Keras


def test_training_in_two_calls_equals_one_call(tmp_path):
    case = {"dropout": True, "augment": True, "threads": 2}
    reference = build(case)
    fit(reference, case, EPOCHS)
    model = build(case)
    fit(model, case, 1, [hn.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    again = build(case)
    fit(again, case, EPOCHS, [hn.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    assert_same_run(again, reference)
    assert checkpoint.read(tmp_path / checkpoint.FILENAME).epoch == EPOCHS


def test_the_checkpoint_is_a_model_file_with_the_state_of_its_epoch(tmp_path):
    model = build({"dropout": True})
    fit(
        model,
        {"dropout": True},
        2,
        [hn.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)],
    )
    loaded = hn.load_model(tmp_path / checkpoint.FILENAME)
    assert_same_run(loaded, model)
    saved = checkpoint.read(tmp_path / checkpoint.FILENAME)
    assert saved.epoch == 2 and saved.history["epoch"] == [0, 1] and saved.partial_epoch is None
    assert set(saved.generators) == {"shuffle", "augment", "part0/layer1"}


def test_resuming_with_another_thread_count_is_refused(tmp_path):
    case = {"dropout": True, "threads": 2}
    fit(build(case), case, 1, [hn.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    with pytest.raises(HandnetError, match="same layers, augmentation and threads"):
        fit(
            build({"dropout": True, "threads": 1}),
            {"dropout": True},
            2,
            [hn.callbacks.BackupAndRestore(tmp_path)],
        )


def test_resuming_into_another_architecture_or_from_a_damaged_file_is_refused(tmp_path):
    fit(build({}), {}, 1, [hn.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    with pytest.raises(HandnetError, match="layers"):
        fit(build({"dropout": True}), {}, 2, [hn.callbacks.BackupAndRestore(tmp_path)])
    path = tmp_path / checkpoint.FILENAME
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(HandnetError, match=str(path)):
        fit(build({}), {}, 2, [hn.callbacks.BackupAndRestore(tmp_path)])


def test_stale_temporary_files_of_killed_writers_are_removed(tmp_path):
    dead = tmp_path / f".{checkpoint.FILENAME}.999999999.abcd1234.tmp"  # no such process
    alive = tmp_path / f".{checkpoint.FILENAME}.{os.getpid()}.abcd1234.tmp"
    for path in (dead, alive):
        path.write_bytes(b"half a checkpoint")
    fit(build({}), {}, 1, [hn.callbacks.BackupAndRestore(tmp_path)])
    assert not dead.exists() and alive.exists()


# -- failed writes: a clear error, the previous checkpoint untouched --------------------------


def fail_second_save(monkeypatch, tmp_path, error):
    """Train 3 epochs; from the second save on, ``error`` strikes inside the atomic write.
    Returns (the HandnetError, the first checkpoint's bytes)."""
    path = tmp_path / checkpoint.FILENAME
    first = {}

    class Breaker(hn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            first["bytes"] = path.read_bytes()
            error(monkeypatch)

    with pytest.raises(HandnetError) as caught:
        # Breaker runs after the backup, so the first checkpoint is written before writes fail.
        fit(build({}), {}, 3, [hn.callbacks.BackupAndRestore(tmp_path), Breaker()])
    return caught.value, first["bytes"]


def disk_full(monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)


def read_only(monkeypatch):
    def refuse(path, mode="r", *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(hn.atomic, "open", refuse, raising=False)


@pytest.mark.parametrize(
    "error", [disk_full, read_only], ids=["disk-full", "read-only-file-system"]
)
def test_a_failed_save_is_a_clear_error_and_keeps_the_previous_checkpoint(
    monkeypatch, tmp_path, error
):
    failure, before = fail_second_save(monkeypatch, tmp_path, error)
    monkeypatch.undo()
    message = str(failure)
    assert "could not write the checkpoint" in message and "previous checkpoint" in message
    assert os.strerror(errno.ENOSPC if error is disk_full else errno.EROFS) in message
    assert (tmp_path / checkpoint.FILENAME).read_bytes() == before
    assert checkpoint.read(tmp_path / checkpoint.FILENAME).epoch == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.FILENAME]  # no temporary left


def test_a_read_only_folder_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path):
    if os.geteuid() == 0:
        pytest.skip(
            "root writes into a read-only folder anyway; the monkeypatched EROFS test covers it"
        )
    path = tmp_path / checkpoint.FILENAME

    class LockFolder(hn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tmp_path.chmod(0o555)

    try:
        with pytest.raises(HandnetError, match="Permission denied"):
            fit(build({}), {}, 3, [hn.callbacks.BackupAndRestore(tmp_path), LockFolder()])
        assert checkpoint.read(path).epoch == 1
    finally:
        tmp_path.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.FILENAME]


# -- reproducibility ------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_and_thread_count_give_the_same_weights(threads):
    case = {"dropout": True, "augment": True, "batch_norm": True, "threads": threads}
    a, b = build(case), build(case)
    fit(a, case, 2)
    fit(b, case, 2)
    assert_same_run(a, b)


def test_another_seed_gives_other_dropout_masks():
    case = {"dropout": True}
    a, b = build(case), build(case)
    fit(a, case, 1, seed=1)
    fit(b, case, 1, seed=2)
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])


# -- the command line -----------------------------------------------------------------------


def train_arguments(folder):
    return [
        "train", "--model", "mlp", "--epochs", 3, "--train-limit", 400, "--batch-size", 64,
        "--lr", 0.003, "--out", folder, "-q",
    ]  # fmt: skip


@pytest.mark.mnist
@pytest.mark.slow
def test_handnet_train_resume_after_ctrl_c_ends_bit_for_bit_equal(tmp_path, monkeypatch):
    status, _, err = run(train_arguments(tmp_path / "reference"))
    assert status == 0, err
    real_save = checkpoint.save

    def save_then_ctrl_c(path, model, epoch, extra=None):
        real_save(path, model, epoch, extra)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_ctrl_c)
    folder = tmp_path / "checkpoints"
    status, _, err = run([*train_arguments(tmp_path / "run"), "--checkpoint-dir", folder])
    assert status == 130
    assert "after epoch 1" in err and f"handnet train --resume {folder}" in err
    monkeypatch.setattr(checkpoint, "save", real_save)

    status, _, err = run([*train_arguments(tmp_path / "run"), "--checkpoint-dir", folder])
    assert status == 2 and "already holds a checkpoint" in err and "--resume" in err

    status, _, err = run(["train", "--resume", folder])
    assert status == 0, err
    resumed = hn.load_model(tmp_path / "run" / "model.npz")
    reference = hn.load_model(tmp_path / "reference" / "model.npz")
    assert_same_run(resumed, reference)
    assert checkpoint.read(folder / checkpoint.FILENAME).epoch == 3


def test_handnet_train_resume_needs_a_checkpoint(tmp_path):
    status, _, err = run(["train", "--resume", tmp_path])
    assert status == 2 and "no checkpoint to resume" in err


def test_handnet_train_hands_its_options_to_fit(tmp_path, monkeypatch):
    """--skip-nonfinite and --checkpoint-dir reach fit (no data set, no training: fit is replaced),
    and a Ctrl-C before the first epoch ends says there is no checkpoint yet."""
    from handnet.cli import train as train_module

    images = np.zeros((60, 28, 28), dtype=np.uint8)
    labels = np.arange(60) % 10
    monkeypatch.setattr(
        train_module,
        "load_dataset",
        lambda args, verbose=False: ("tiny", (images, labels), (images, labels), None),
    )
    calls = []

    def fit(self, *args, **kwargs):
        calls.append(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(hn.Sequential, "fit", fit)
    folder = tmp_path / "checkpoints"
    argv = ["train", "--epochs", 2, "--out", tmp_path / "run", "-q", "--skip-nonfinite"]
    status, _, err = run([*argv, "--checkpoint-dir", folder])
    assert status == 130 and "no epoch was complete" in err
    (kwargs,) = calls
    assert kwargs["on_nonfinite"] == "skip"
    assert kwargs["threads"] == hn.training.parallel.blas_threads()
    (backup,) = kwargs["callbacks"]
    assert (
        isinstance(backup, hn.callbacks.BackupAndRestore) and backup.backup_dir == folder.resolve()
    )
    assert backup.extra["arguments"]["skip_nonfinite"] is True
