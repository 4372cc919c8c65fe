"""Split predict and evaluate in forked processes kept between calls
(handnet.training.parallel.ProcessInference): the outputs of passes on threads, the weights of
each call, a new pool when the model changes, a died process's part computed here, errors
raised here, nothing left running."""

import gc
import os
import signal
import sys
import threading

import numpy as np
import pytest

import handnet as hn
from handnet import layers
from handnet.training import inference_runner, parallel

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="handnet forks processes on Linux only"
)


@pytest.fixture(autouse=True)
def split_tiny_models_in_processes(monkeypatch):
    """The test models are tiny: split them (MIN_WORK), in processes (PROCESS_WORK_PER_WEIGHT),
    on two threads whatever BLAS uses."""
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    monkeypatch.setattr(parallel, "PROCESS_WORK_PER_WEIGHT", 0)
    monkeypatch.setattr(parallel, "blas_threads", lambda: 2)
    monkeypatch.delenv("HANDNET_SPLIT", raising=False)


def small_cnn(seed=0, batch_norm=False):
    model = hn.Sequential(
        [
            layers.Conv2D(4, 3, activation="relu"),
            *([layers.BatchNormalization()] if batch_norm else []),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(5, activation="softmax"),
        ],
        seed=seed,
    )
    model.build((9, 9, 2))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model.cast("float64")


def data(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 9, 9, 2)), rng.integers(0, 5, size=n)


def predicted(batch_norm=False):
    """A small cnn that has predicted 200 images once (its pool forked), and the images."""
    model = small_cnn(batch_norm=batch_norm)
    x, _ = data(200)
    model.predict(x)
    return model, x


def whole(model, x):
    """The outputs of one pass on this thread alone."""
    return model.forward([x])


def pool_pids(model):
    pool = parallel._POOLS.get(model)
    return None if pool is None else [worker.pid for worker in pool.workers]


def reaped(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_predict_and_evaluate_in_processes_give_the_whole_passes_outputs():
    """The runner is a ProcessInference, its batch PARTS_A_MESSAGE passes a part; predict and
    evaluate (loss, accuracy, the L2 penalty once) equal one whole pass's; the second call
    reuses the same process."""
    model = small_cnn()
    model.layers[-1].kernel_regularizer = hn.regularizers.L2(1e-2)
    x, y = data(300)
    split, batch = inference_runner(model, len(x), None)
    assert type(split) is parallel.ProcessInference
    assert batch == split.part * 2 * parallel.PARTS_A_MESSAGE
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    pids = pool_pids(model)
    assert pids is not None and len(pids) == 1
    logs = model.evaluate(x, y)
    probabilities = whole(model, x)
    loss = model.losses[0](y, probabilities) + model.regularization_penalty()
    assert logs["loss"] == pytest.approx(float(loss), rel=1e-12)
    assert logs["accuracy"] == np.mean(probabilities.argmax(1) == y)
    assert pool_pids(model) == pids


def test_processes_predict_and_evaluate_graphs_of_two_inputs_and_outputs(monkeypatch):
    a, b = layers.Input((6,)), layers.Input((3,))
    hidden = layers.Dense(8, activation="relu")(layers.Concatenate()([a, b]))
    model = hn.Model([a, b], [layers.Dense(2)(hidden), layers.Dense(4)(hidden)], seed=0)
    model.build()
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(200, 6)), rng.normal(size=(200, 3))]
    in_processes = model.predict(x)
    assert pool_pids(model) is not None
    monkeypatch.setattr(parallel, "INFERENCE_PROCESSES", False)
    on_threads = model.predict(x)
    for got, wanted, one in zip(in_processes, on_threads, model.forward(x)):
        np.testing.assert_allclose(got, wanted, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-7)
    model.compile("adam", loss=["mse", "mse"])
    y = [rng.normal(size=(200, 2)), rng.normal(size=(200, 4))]
    logs_threads = model.evaluate(x, y)
    monkeypatch.setattr(parallel, "INFERENCE_PROCESSES", True)
    logs_processes = model.evaluate(x, y)
    assert logs_processes.keys() == logs_threads.keys()
    for key, value in logs_threads.items():
        assert logs_processes[key] == pytest.approx(value, rel=1e-5), key
    assert pool_pids(model) is not None


def test_each_call_sends_the_weights_and_state_as_they_are_now():
    """Parameters changed in place, replaced by set_weights, and BatchNormalization's moving
    statistics (state) reach the process at the next call."""
    model, x = predicted(batch_norm=True)
    pids = pool_pids(model)
    model.layers[0].params["kernel"] *= -1.5
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    weights = model.layers[-1].get_weights()
    model.layers[-1].set_weights([w + 0.25 for w in weights])
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    norm = model.layers[1]
    norm.state["moving_mean"] += 0.5
    norm.state["moving_variance"] *= 3.0
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    assert pool_pids(model) == pids


def test_a_new_plan_or_larger_parts_fork_a_new_pool_and_the_old_one_ends():
    model, x = predicted()
    (first,) = pool_pids(model)
    model.cast("float32")  # a new plan, weights of another dtype
    np.testing.assert_allclose(model.predict(x), whole(model, x.astype("float32")), rtol=1e-5)
    (second,) = pool_pids(model)
    assert second != first and reaped(first)
    model.predict(np.concatenate([x, x]), batch_size=400)  # parts larger than the buffers
    (third,) = pool_pids(model)
    assert third != second and reaped(second)


def test_a_died_process_has_its_part_computed_here_and_is_forked_again():
    model, x = predicted()
    (pid,) = pool_pids(model)
    os.kill(pid, signal.SIGKILL)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead (not reaped) before the call
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    model.predict(x)
    (again,) = pool_pids(model)
    assert again != pid and reaped(pid)


def test_an_error_in_a_process_is_raised_here_and_the_next_call_runs():
    inputs = layers.Input((4,))
    model = hn.Model(inputs, layers.Dense(3)(layers.Flatten()(layers.Embedding(10, 2)(inputs))))
    model.build()
    x = np.random.default_rng(0).integers(0, 10, size=(100, 4))
    model.predict(x)
    bad = x.copy()
    bad[80, 2] = 12  # out of range, in the second part
    with pytest.raises(hn.errors.InvalidInputError, match="raised in the process of part 1"):
        model.predict(bad)
    np.testing.assert_allclose(model.predict(x), model.forward([x]), rtol=1e-6)


def test_an_interrupt_here_leaves_the_pool_in_step(monkeypatch):
    """Ctrl-C during this process's part: every answer is read before it propagates, so the
    next call's answers are its own."""
    model, x = predicted()
    pids = pool_pids(model)

    def interrupted(inputs, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.predict(x)
    monkeypatch.undo()
    x2, _ = data(200, seed=5)
    np.testing.assert_allclose(model.predict(x2), whole(model, x2), rtol=1e-12)
    assert pool_pids(model) == pids


def test_a_pool_in_use_by_another_thread_leaves_the_pass_to_threads():
    model, x = predicted()
    pids = pool_pids(model)
    pool = parallel._POOLS[model]
    with pool.lock:  # another thread's call holds it
        np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    assert pool_pids(model) == pids
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(model.predict(x))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_allclose(result, whole(model, x), rtol=1e-12)


def test_models_gone_or_beyond_the_limit_end_their_processes(monkeypatch):
    monkeypatch.setattr(parallel, "MAX_INFERENCE_POOLS", 1)
    first, second = small_cnn(0), small_cnn(1)
    x, _ = data(200)
    first.predict(x)
    (pid,) = pool_pids(first)
    second.predict(x)
    assert pool_pids(first) is None and reaped(pid)
    (pid,) = pool_pids(second)
    del second
    gc.collect()
    assert reaped(pid)


def test_the_reasons_to_stay_on_threads(monkeypatch):
    model = small_cnn()
    assert parallel._inference_processes_reason(model, 100) is None
    monkeypatch.setattr(parallel, "PROCESS_WORK_PER_WEIGHT", 32_000)
    values = sum(w.size for w in model.weights().values())
    samples = -(-32_000 * values // parallel.work_per_sample(model))
    assert parallel._inference_processes_reason(model, samples) is None
    assert "to copy to the processes" in parallel._inference_processes_reason(model, samples - 1)
    assert type(inference_runner(model, samples - 1, None)[0]) is parallel.BatchSplitter
    monkeypatch.setenv("HANDNET_SPLIT", "threads")
    assert parallel._inference_processes_reason(model, 10**9) == "HANDNET_SPLIT=threads"


def test_a_process_forked_by_someone_else_forks_its_own_pool():
    """A child forked after a predict (a process pool's worker) leaves the parent's processes
    alone: it predicts with a pool of its own, and the parent's still answers the parent."""
    model, x = predicted()
    pids = pool_pids(model)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's result is its exit status
        status = 1
        try:
            right = np.allclose(model.predict(x), whole(model, x), rtol=1e-12)
            theirs = pool_pids(model)
            status = 0 if right and theirs is not None and theirs != pids else 2
        finally:
            os._exit(status)
    assert os.waitpid(child, 0)[1] == 0
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    assert pool_pids(model) == pids


def test_stop_inference_processes_ends_them_and_the_next_call_forks_again():
    model, x = predicted()
    (pid,) = pool_pids(model)
    parallel.stop_inference_processes()
    assert pool_pids(model) is None and reaped(pid)
    np.testing.assert_allclose(model.predict(x), whole(model, x), rtol=1e-12)
    assert pool_pids(model) not in (None, [pid])


def test_a_pool_forked_again_leaves_no_stopped_one_alive():
    """Each new pool's finalizer replaces the last's (a stopped pool, its shared memory, would
    otherwise live as long as the model)."""
    import weakref

    model, x = predicted()
    first = weakref.ref(parallel._POOLS[model])
    model.cast("float32")  # a new plan: a new pool
    model.predict(x)
    gc.collect()
    assert first() is None


def test_recurrent_and_masked_models_in_processes_give_the_whole_passes_outputs():
    """A recurrent model's passes are RECURRENT_PART rows; a model that makes masks predicts
    in processes and evaluates on threads (its parts' masks stay there)."""
    rng = np.random.default_rng(0)
    recurrent = hn.Sequential([layers.Input((5, 3)), layers.GRU(4), layers.Dense(2)], seed=0)
    recurrent.build()
    x = rng.normal(size=(700, 5, 3)).astype("float32")
    split, batch = inference_runner(recurrent, len(x), None)
    assert (split.part, batch) == (256, 256 * 2 * parallel.PARTS_A_MESSAGE)
    np.testing.assert_allclose(recurrent.predict(x), recurrent.forward([x]), rtol=1e-5, atol=1e-6)
    assert pool_pids(recurrent) is not None
    inputs = layers.Input((6,))
    masked = hn.Model(
        inputs,
        layers.Dense(3)(layers.LSTM(4)(layers.Embedding(9, 2, mask_zero=True)(inputs))),
        seed=0,
    )
    masked.build()
    masked.compile("adam", loss="mse")
    tokens = rng.integers(0, 9, size=(300, 6))
    tokens[::3, 4:] = 0  # padded
    np.testing.assert_allclose(masked.predict(tokens), masked.forward([tokens]), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    assert pool_pids(masked) is not None
    target = rng.normal(size=(300, 3))
    in_threads = masked.evaluate(tokens, target)
    whole_loss = masked.losses[0](target, masked.forward([tokens]))
    assert in_threads["loss"] == pytest.approx(float(whole_loss), rel=1e-5)
