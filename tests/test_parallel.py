"""Data parallelism (handnet.training.parallel): a batch split across threads, or across forked
processes (ProcessSplitter, the threads' arithmetic), gives the whole batch's loss, predictions
and gradients, and runs are reproducible."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import handnet as hn
from handnet import layers
from handnet.training import inference_runner, parallel


@pytest.fixture(autouse=True)
def split_even_tiny_models(monkeypatch):
    """The test models are tiny; split them all the same (handnet.training.parallel.MIN_WORK)."""
    monkeypatch.setattr(parallel, "MIN_WORK", 0)


#: The tests of parallel.ProcessSplitter: it forks, on Linux only (threads elsewhere).
linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="handnet splits in processes on Linux only"
)


def small_cnn(seed=0, dropout=0.0, l2=0.0):
    model = hn.Sequential(
        [
            layers.Conv2D(
                4, 3, activation="relu", kernel_regularizer=hn.regularizers.L2(l2) if l2 else None
            ),
            layers.MaxPooling2D(2),
            layers.Conv2D(6, (2, 3), padding="same", activation="tanh"),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(5, activation="softmax"),
        ],
        seed=seed,
    )
    model.build((9, 9, 2))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def batch(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 9, 9, 2)), rng.integers(0, 5, size=n)


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=linux)])
@pytest.mark.parametrize("threads, n", [(2, 64), (3, 50), (2, 33)])
def test_split_gradients_equal_whole_batch(threads, n, processes):
    """Parts on threads, or in processes (parallel.ProcessSplitter), give the whole batch's
    loss, predictions and gradients; a second step reuses the processes and their buffers."""
    whole, split_model = small_cnn(l2=1e-3).cast("float64"), small_cnn(l2=1e-3).cast("float64")
    x, y = batch(n)
    loss, predictions, _ = whole.compute_gradients(x, y)
    if processes:
        splitter = parallel.ProcessSplitter(split_model, threads, batch_size=n)
    else:
        splitter = parallel.BatchSplitter(split_model, threads)
    with splitter as split:
        for _ in range(2):
            split_loss, split_predictions = split.compute_gradients(x, y)
        if processes:
            assert len(split._workers) == threads - 1
    np.testing.assert_allclose(split_loss, loss, rtol=1e-12)
    np.testing.assert_allclose(split_predictions, predictions, rtol=1e-12, atol=1e-15)
    for a, b in zip(whole.layers, split_model.layers):
        for key in a.grads:
            np.testing.assert_allclose(
                b.grads[key], a.grads[key], rtol=1e-10, atol=1e-14, err_msg=f"{a.name}/{key}"
            )


def test_split_forward_equals_whole_batch():
    model = small_cnn()
    x, _ = batch(100)
    with parallel.BatchSplitter(model, 2) as split:
        np.testing.assert_allclose(
            split.forward(x.astype("float32")), model.forward(x.astype("float32")), rtol=1e-6
        )


def test_replicas_see_each_update():
    model = small_cnn().cast("float64")
    x, y = batch(64)
    with parallel.BatchSplitter(model, 2) as split:
        for _ in range(3):
            split.compute_gradients(x, y)
            model.optimizer.apply(model.trainable_variables())
        replica = split.replicas[1]
        for original, twin in zip(model.layers, replica.layers):
            for key in original.params:
                assert twin.params[key] is original.params[key]


def test_small_batches_run_serially():
    model = small_cnn()
    assert isinstance(parallel.splitter(model, threads=2, batch_size=31), parallel.Serial)
    assert isinstance(parallel.splitter(model, threads=1, batch_size=128), parallel.Serial)
    assert isinstance(parallel.splitter(model, threads=2, batch_size=128), parallel.BatchSplitter)


def test_models_with_little_work_per_sample_run_serially(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK", 1_000_000)
    mlp, cnn = hn.zoo.architectures.build("mlp"), hn.zoo.architectures.build("cnn")
    assert parallel.work_per_sample(mlp) == 784 * 256 + 256 * 128 + 128 * 10
    assert isinstance(parallel.splitter(mlp, threads=2, batch_size=128), parallel.Serial)
    assert isinstance(parallel.splitter(cnn, threads=2, batch_size=128), parallel.BatchSplitter)
    assert parallel.work_per_sample(cnn) == 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 10


def test_the_largest_product_is_a_kernel_at_its_positions_or_a_recurrent_step():
    cnn, lstm = hn.zoo.architectures.build("cnn"), hn.zoo.architectures.build("lstm")
    assert parallel.largest_product(cnn) == 11 * 11 * (3 * 3 * 32) * 64  # conv2's im2col
    assert parallel.largest_product(lstm) == 28 * 28 * 4 * 128  # all steps' x_t @ W at once
    both_ways = hn.Sequential(
        [layers.Input((3, 2)), layers.Bidirectional(layers.LSTM(64)), layers.Dense(10)], seed=0
    ).build()
    assert parallel.largest_product(both_ways) == 64 * 4 * 64  # h_(t-1) @ R, a step


def test_recurrent_work_counts_every_step_and_both_directions():
    lstm = hn.Sequential(
        [layers.Input((28, 28)), layers.LSTM(128), layers.Dense(10)], seed=0
    ).build()
    per_step = 28 * 4 * 128 + 128 * 4 * 128  # x_t @ W and h_(t-1) @ R
    assert parallel.work_per_sample(lstm) == 28 * per_step + 128 * 10
    both_ways = hn.Sequential(
        [layers.Input((28, 28)), layers.Bidirectional(layers.LSTM(128)), layers.Dense(10)], seed=0
    ).build()
    assert parallel.work_per_sample(both_ways) == 2 * 28 * per_step + 256 * 10


def test_recurrent_models_predict_in_larger_parts(monkeypatch):
    """Split inference passes: 64 samples a thread (a cnn's im2col columns in the cache), 256
    for a model with a recurrent layer (parallel.RECURRENT_PART); one thread: 256 a pass."""
    recurrent = [
        hn.Sequential([layers.Input((5, 3)), layer, layers.Dense(2)], seed=0).build()
        for layer in (layers.GRU(4), layers.Bidirectional(layers.SimpleRNN(4)))
    ]
    for model in recurrent:
        assert parallel.inference_part(model, 64) == parallel.RECURRENT_PART == 256
    assert parallel.inference_part(small_cnn(), 64) == 64
    monkeypatch.setattr(parallel, "INFERENCE_PROCESSES", False)  # threads: parts of one pass
    monkeypatch.setattr(parallel, "blas_threads", lambda: 2)
    assert inference_runner(recurrent[0], 1000, None)[1] == 2 * 256
    assert inference_runner(small_cnn(), 1000, None)[1] == 2 * 64
    monkeypatch.setattr(parallel, "blas_threads", lambda: 1)
    assert inference_runner(recurrent[0], 1000, None)[1] == 256


def test_small_models_predict_in_wide_passes(monkeypatch):
    """A model that runs whole for its little work per sample (MIN_WORK) predicts up to
    WIDE_PASS samples a pass, fewer when an activation of the pass would outgrow
    WIDE_PASS_BYTES (never fewer than 256), 64 a thread when it has the work to split; the
    outputs are those of passes of 256."""
    monkeypatch.setattr(parallel, "MIN_WORK", 500_000)
    monkeypatch.setattr(parallel, "INFERENCE_PROCESSES", False)  # threads: parts of one pass
    monkeypatch.setattr(parallel, "blas_threads", lambda: 2)
    mlp = hn.Sequential(
        [layers.Input((784,)), layers.Dense(256, activation="relu"), layers.Dense(10)], seed=0
    ).build()
    assert parallel.largest_activation(mlp) == 256
    assert inference_runner(mlp, 5000, None)[1] == parallel.WIDE_PASS == 1024
    assert inference_runner(mlp, 5000, 100)[1] == 100  # a batch size given is kept
    x = np.random.default_rng(0).random((1500, 784), dtype=np.float32)
    np.testing.assert_allclose(mlp.predict(x), mlp.predict(x, batch_size=256), rtol=1e-6)
    monkeypatch.setattr(parallel, "WIDE_PASS_BYTES", 300 * 256 * 4)
    assert inference_runner(mlp, 5000, None)[1] == 300
    monkeypatch.setattr(parallel, "WIDE_PASS_BYTES", 100 * 256 * 4)
    assert inference_runner(mlp, 5000, None)[1] == 256  # never below the default
    monkeypatch.setattr(parallel, "WIDE_PASS_BYTES", 4 << 20)
    inputs = layers.Input((8,))
    inner = hn.Model(inputs, layers.Dense(3000)(inputs))
    outer_inputs = layers.Input((8,))
    nested = hn.Model(outer_inputs, layers.Dense(2)(inner(outer_inputs))).build()
    assert parallel.largest_activation(nested) == 3000  # the inner model's Dense
    assert inference_runner(nested, 5000, None)[1] == (4 << 20) // (3000 * 4)
    monkeypatch.setattr(parallel, "MIN_WORK", 100_000)  # the mlp has the work to split now
    assert inference_runner(mlp, 5000, None)[1] == 2 * 64


def normalized_cnn(seed=0):
    model = hn.Sequential(
        [
            layers.Conv2D(4, 3, use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(6, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("tanh"),
            layers.Dense(5, activation="softmax"),
        ],
        seed=seed,
    )
    model.build((9, 9, 2))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model.cast("float64")


@pytest.mark.parametrize("threads, n", [(2, 64), (3, 48), (2, 33)])
def test_batch_norm_parts_share_whole_batch_statistics(threads, n):
    """Gradients, loss and moving statistics as on the whole batch; an odd batch runs whole."""
    whole, split_model = normalized_cnn(), normalized_cnn()
    x, y = batch(n)
    loss, predictions, _ = whole.compute_gradients(x, y)
    with parallel.BatchSplitter(split_model, threads) as split:
        split_loss, split_predictions = split.compute_gradients(x, y)
    np.testing.assert_allclose(split_loss, loss, rtol=1e-12)
    np.testing.assert_allclose(split_predictions, predictions, rtol=1e-10, atol=1e-14)
    for a, b in zip(whole.layers, split_model.layers):
        for table in ("grads", "state"):
            for key, value in getattr(a, table).items():
                np.testing.assert_allclose(
                    getattr(b, table)[key], value, rtol=1e-10, atol=1e-14, err_msg=f"{a.name}/{key}"
                )
    assert all(
        layer.part_mean is None
        for replica in split.replicas
        for layer in replica.layers
        if isinstance(layer, layers.BatchNormalization)
    )


def test_batch_norm_inference_uses_the_models_moving_statistics():
    model = normalized_cnn()
    x, y = batch(64)
    for _ in range(3):
        model.train_on_batch(x, y)
    with parallel.BatchSplitter(model, 2) as split:
        np.testing.assert_allclose(split.forward(x), model.forward(x), rtol=1e-12)


def test_a_failing_part_does_not_hang_the_others():
    model = normalized_cnn()
    x, y = batch(64)
    y[40] = 99  # a label out of range: the second part raises inside the pass
    with pytest.raises(Exception), parallel.BatchSplitter(model, 2) as split:
        split.compute_gradients(x, y)


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_threads_same_weights(threads):
    x, y = batch(200)
    runs = []
    for _ in range(2):
        model = small_cnn(seed=3, dropout=0.3)
        model.fit(
            x.astype("float32"), y, epochs=2, batch_size=64, seed=7, verbose=0, threads=threads
        )
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def two_blas_threads(monkeypatch):
    """NumPy's BLAS on two threads for the test (then as it was), or a skip saying why; every
    product counts as one OpenBLAS threads (the test models' are tiny)."""
    monkeypatch.setattr(parallel, "THREADED_PRODUCT", 0)
    controller = parallel._blas_controller()
    if controller is None:
        pytest.skip("threadpoolctl finds no BLAS library in NumPy to set the threads of")
    with controller.limit(limits=2):
        if parallel.blas_threads() != 2:
            pytest.skip("NumPy's BLAS does not run on two threads when told")
        yield


def recording_blas_threads(model):
    """The BLAS thread counts the model's forward passes ran on (predict's, evaluate's), a list
    that grows."""
    seen, forward = [], model.forward

    def recording(*args, **kwargs):
        seen.append(parallel.blas_threads())
        return forward(*args, **kwargs)

    model.forward = recording
    return seen


def test_a_single_sample_runs_on_one_blas_thread_when_larger_batches_split(two_blas_threads):
    """parallel.SINGLE_SAMPLE_BLAS_THREADS: a BLAS thread that a product woke spins on for a
    while, taking a core from the split pass after it; a sample's pass (predict, evaluate, and
    a fit of batches of one, which asks the same splitter) leaves BLAS on one thread, two
    samples keep its threads; restored after, also when the pass raises."""
    model = small_cnn()  # it splits: MIN_WORK is 0 here
    seen = recording_blas_threads(model)
    x, y = batch(3)
    model.predict(x[:1])
    model.predict(x[:2])
    model.evaluate(x[:1], y[:1])
    assert seen == [1, 2, 1]
    assert parallel.blas_threads() == 2
    assert isinstance(parallel.splitter(model, batch_size=1), parallel.Serial)
    assert parallel.splitter(model, batch_size=1).blas_threads == 1
    model.forward = lambda *args, **kwargs: 1 / 0
    with pytest.raises(ZeroDivisionError):
        model.predict(x[:1])
    assert parallel.blas_threads() == 2


def test_blas_limits_overlapping_in_time_restore_once_the_last_closes(two_blas_threads):
    """Two passes at once in two threads (two served models): the first to close must not
    restore BLAS's threads under the other, nor the last leave them at one."""
    first = parallel._limit_blas(1)
    second = parallel._limit_blas(1)
    assert parallel.blas_threads() == 1
    first()
    assert parallel.blas_threads() == 1
    second()
    assert parallel.blas_threads() == 2
    model = small_cnn()
    with parallel.Serial(model, blas_threads=1), parallel.Serial(model, blas_threads=1):
        assert parallel.blas_threads() == 1
    assert parallel.blas_threads() == 2


@pytest.mark.parametrize(
    "setting, value", [("MIN_WORK", 10**12), ("SINGLE_SAMPLE_GAIN", 0), ("THREADED_PRODUCT", 10**9)]
)
def test_a_single_sample_keeps_blas_threads_where_they_pay(two_blas_threads, monkeypatch,
                                                           setting, value):  # fmt: skip
    """A model that runs whole at any batch size (MIN_WORK: the mlp), whose sample's largest
    product gains from a second BLAS thread (SINGLE_SAMPLE_GAIN: from 8 M), or whose products
    OpenBLAS runs on one thread anyway (THREADED_PRODUCT: the vit's), keeps BLAS's threads at
    one sample too."""
    monkeypatch.setattr(parallel, setting, value)
    model = small_cnn()
    seen = recording_blas_threads(model)
    model.predict(batch(1)[0])
    assert seen == [2]
    assert parallel.splitter(model, batch_size=1).blas_threads is None


def test_blas_threads_restored_after_fit():
    before = parallel.blas_threads()
    x, y = batch(128)
    small_cnn().fit(x.astype("float32"), y, epochs=1, batch_size=64, verbose=0, threads=2)
    assert parallel.blas_threads() == before


def adapted_cnn(x, seed=0):
    """An adapted Normalization first: its mean and variance are saved weights that training
    never changes (only adapt writes them)."""
    model = hn.Sequential(
        [
            layers.Input((9, 9, 2)),
            layers.Normalization(),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(5, activation="softmax"),
        ],
        seed=seed,
    )
    model.build((9, 9, 2))
    model.cast("float64")
    model.layers[0].adapt(x * 3 + 1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_state_that_training_leaves_alone_splits_and_trains_as_whole():
    x, y = batch(192)
    split_model, whole = adapted_cnn(x), adapted_cnn(x)
    statistics = {k: v.copy() for k, v in split_model.layers[0].state.items()}
    splitter = parallel.splitter(split_model, threads=2, batch_size=64)
    assert isinstance(splitter, parallel.BatchSplitter)
    settings = dict(epochs=2, batch_size=64, seed=7, verbose=0, shuffle=True)
    split_history = split_model.fit(x, y, threads=2, **settings)
    whole_history = whole.fit(x, y, threads=1, **settings)
    np.testing.assert_allclose(
        split_history.history["loss"], whole_history.history["loss"], rtol=1e-12
    )
    for a, b in zip(split_model.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for key, value in statistics.items():
        np.testing.assert_array_equal(split_model.layers[0].state[key], value)
    # The replicas read the layer's very statistics: an adapt reaches every part.
    replica = split_model.layers[0].replica(np.random.default_rng(0))
    assert replica.state is split_model.layers[0].state


def test_a_state_that_training_changes_still_runs_whole():
    """BatchNormalization's moving statistics inside a TimeDistributed cannot share the whole
    batch's statistics across parts: that model runs whole, and says why."""
    model = hn.Sequential(
        [
            layers.Input((4, 6)),
            layers.TimeDistributed(layers.BatchNormalization()),
            layers.LSTM(8),
            layers.Dense(3, activation="softmax"),
        ],
        seed=0,
    )
    model.build((4, 6))
    assert isinstance(parallel.splitter(model, threads=2, batch_size=64), parallel.Serial)
    assert "keeps a running state" in parallel._whole_reason(model, 2, 64)
    normalization = layers.Normalization().adapt(np.random.default_rng(0).normal(size=(20, 6)))
    wrapped = hn.Sequential(
        [layers.Input((4, 6)), layers.TimeDistributed(normalization), layers.LSTM(8)], seed=0
    )
    wrapped.build((4, 6))
    assert wrapped.layers[0].state["mean"].shape == (6,)
    assert parallel._whole_reason(wrapped, 2, 64) is None


def two_input_model(seed=0):
    """Two inputs, two outputs (softmax and a regression), dropout on one branch."""
    image, extra = layers.Input((9, 9, 2)), layers.Input((3,))
    h = layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(image))
    h = layers.Dropout(0.3)(layers.Concatenate()([h, layers.Dense(4)(extra)]))
    model = hn.Model(
        [image, extra],
        [layers.Dense(5, activation="softmax", name="label")(h), layers.Dense(2, name="value")(h)],
        seed=seed,
    )
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
    return model


def fit_both_ways(make, x, y, monkeypatch, **settings):
    """(weights, history) of the same fit with parts on threads and in processes."""
    runs = []
    for split in ("threads", "processes"):
        monkeypatch.setenv("HANDNET_SPLIT", split)
        model = make()
        kind = type(parallel.splitter(model, threads=2, batch_size=settings["batch_size"]))
        expected = parallel.ProcessSplitter if split == "processes" else parallel.BatchSplitter
        assert kind is expected
        history = model.fit(x, y, threads=2, verbose=0, **settings).history
        runs.append((model.get_weights(), {k: v for k, v in history.items() if k != "seconds"}))
    return runs


@linux
def test_processes_train_as_threads_bit_for_bit(monkeypatch):
    """Parts in forked processes (parallel.ProcessSplitter) give the threads' weights and losses
    to the last bit: same replicas, same dropout masks (the processes' generator states come
    back each step), same order of the sums. 200 samples in batches of 64: the last batch
    (8) runs whole; a second epoch forks the processes again."""
    x, y = batch(200)
    x = x.astype("float32")
    (threads, history_t), (processes, history_p) = fit_both_ways(
        lambda: small_cnn(seed=3, dropout=0.3), x, y, monkeypatch, epochs=2, batch_size=64, seed=7
    )
    assert history_t == history_p
    for a, b in zip(threads, processes):
        np.testing.assert_array_equal(a, b)


@linux
def test_processes_train_a_graph_of_two_inputs_and_outputs_as_threads(monkeypatch):
    rng = np.random.default_rng(5)
    x = [rng.normal(size=(96, 9, 9, 2)).astype("float32"), rng.normal(size=(96, 3)).astype("f4")]
    y = [rng.integers(0, 5, 96), rng.normal(size=(96, 2)).astype("float32")]
    (threads, history_t), (processes, history_p) = fit_both_ways(
        two_input_model, x, y, monkeypatch, epochs=2, batch_size=48, seed=1
    )
    assert history_t == history_p
    for a, b in zip(threads, processes):
        np.testing.assert_array_equal(a, b)


@linux
def test_a_failing_part_in_a_process_raises_here_and_the_next_step_runs():
    """The process's error comes back as the error the threads raise, with its traceback; every
    part has answered, so the next step runs; the processes end at exit."""
    model = small_cnn()
    x, y = batch(64)
    x = x.astype("float32")
    with parallel.BatchSplitter(model, 2) as split:
        bad = y.copy()
        bad[40] = 99  # a label out of range, in the second part
        with pytest.raises(Exception) as on_threads:
            split.compute_gradients(x, bad)
    with parallel.ProcessSplitter(model, 2, batch_size=64) as split:
        with pytest.raises(type(on_threads.value), match="raised in the process of part 1"):
            split.compute_gradients(x, bad)
        loss, _ = split.compute_gradients(x, y)
        assert np.isfinite(loss)
        pids = [worker.pid for worker in split._workers]
    for pid in pids:
        with pytest.raises(ChildProcessError):  # reaped: no such child left
            os.waitpid(pid, os.WNOHANG)


@linux
def test_batch_norm_and_the_switch_keep_training_on_threads(monkeypatch):
    assert type(parallel.splitter(normalized_cnn(), threads=2, batch_size=64)) is (
        parallel.BatchSplitter
    )
    assert type(parallel.splitter(small_cnn(), threads=2, batch_size=64)) is (
        parallel.ProcessSplitter
    )
    monkeypatch.setenv("HANDNET_SPLIT", "threads")
    assert type(parallel.splitter(small_cnn(), threads=2, batch_size=64)) is (
        parallel.BatchSplitter
    )


@linux
def test_the_processes_generator_states_come_back_each_step():
    """After each step, replica k here holds the generator state of part k's process, so that a
    checkpoint written between two steps saves what the threads would have."""
    x, y = batch(64)
    x = x.astype("float32")
    states = []
    for processes in (False, True):
        model, rng = small_cnn(dropout=0.5), np.random.default_rng(4)
        kind = parallel.ProcessSplitter if processes else parallel.BatchSplitter
        with kind(model, 2, rng, **({"batch_size": 64} if processes else {})) as split:
            steps = []
            for _ in range(2):
                split.compute_gradients(x, y)
                steps.append(split.replicas[1].layers[4].rng.bit_generator.state)
        states.append(steps)
    assert states[0] == states[1]
    assert states[0][0] != states[0][1]  # the masks drew: the states moved


GROUP_SIGTERM = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import handnet as hn
from handnet.training import parallel
from test_parallel import batch, small_cnn

parallel.MIN_WORK = 0
model = small_cnn(dropout=0.3)
main, calls, compute = os.getpid(), [0], type(model).compute_gradients


def compute_gradients(self, *args, **kwargs):
    # Step 2: part 1's process is slow to start; meanwhile part 0, here, signals the group.
    calls[0] += 1
    if calls[0] == 2:
        if os.getpid() == main:
            os.killpg(0, signal.SIGTERM)
        else:
            time.sleep(0.5)
    return compute(self, *args, **kwargs)


type(model).compute_gradients = compute_gradients
x, y = batch(256)
try:
    model.fit(x.astype("float32"), y, epochs=2, batch_size=64, threads=2, verbose=0,
              callbacks=[hn.callbacks.BackupAndRestore(sys.argv[2])])
except hn.training.interrupt.TrainingInterrupted as stopped:
    print("interrupted", stopped.exit_status)
"""


@linux
def test_a_sigterm_to_the_whole_group_lets_the_step_finish_and_back_up(tmp_path):
    """A SIGTERM to the process group (a container's stop, a shell's kill of a job) reaches the
    parts' processes too, here in the middle of part 1's step: they leave it to the parent,
    which ends the step, backs it up and stops (handnet.training.interrupt), rather than
    losing part 1 mid-step."""
    result = subprocess.run(
        [sys.executable, "-c", GROUP_SIGTERM, os.path.dirname(__file__), str(tmp_path)],
        capture_output=True, text=True, timeout=120, start_new_session=True,
    )  # fmt: skip
    assert result.stdout.strip() == "interrupted 143", result.stderr
    saved = hn.training.checkpoint.read(tmp_path / hn.training.checkpoint.FILENAME)
    assert saved.partial_epoch is not None and saved.partial_epoch.batches == 2


@linux
def test_a_part_whose_process_died_raises_and_the_next_step_forks_it_again():
    model = small_cnn()
    x, y = batch(64)
    x = x.astype("float32")
    with parallel.ProcessSplitter(model, 2, batch_size=64) as split:
        split.compute_gradients(x, y)
        pid = split._workers[0].pid
        os.kill(pid, signal.SIGKILL)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead (not reaped) before the step
        with pytest.raises(hn.errors.HandnetError, match="ended without an answer"):
            split.compute_gradients(x, y)
        loss, _ = split.compute_gradients(x, y)
        assert np.isfinite(loss) and split._workers[0].pid is not None
