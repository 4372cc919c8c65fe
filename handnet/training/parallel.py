"""Data parallelism on one machine: each batch split across threads, one core each.

NumPy's BLAS spreads every matrix product over the cores. For a small CNN that pays badly:
the products are small, and the elementwise work between them (im2col copies, pooling,
activations) runs on one core anyway. Splitting the *batch* instead keeps every core busy for
the whole step: thread k runs the full forward and backward pass on part k of the batch with
single-threaded BLAS, then the parts' gradients are averaged.

Why the average is the batch's gradient: the loss is a mean over the batch, so with parts of
sizes n_k (Σ n_k = n),

    L = Σ_k (n_k / n) · L_k        ∂L/∂θ = Σ_k (n_k / n) · ∂L_k/∂θ

and a regularization penalty R, which every part adds once, comes out once: Σ_k (n_k/n)·R = R.

Each thread needs its own activations, caches and gradients, so threads 1… run on *replicas*
of the model: copies of every layer that share the original's parameter arrays (the optimizer
updates them in place, so the replicas see each step's weights) and own everything else.

BatchNormalization needs the whole batch's mean and variance, not a part's: its parts meet at a
barrier at each of those means and add their sums (as PyTorch's SyncBatchNorm does across
GPUs). Then every part's ∂L/∂y is the whole batch's times the same factor T (the number of
parts) only when the parts have equal sizes, so with BatchNormalization a batch that does not
split evenly runs whole. Other layers whose state changes in training make the model run on
one thread; a state that training leaves alone (an adapted Normalization's mean and variance,
``state_changes_in_training = False``) does not matter.

An output that carries a mask (padded steps) has the mean over the batch's unmasked positions
as its loss, L = Σ_k V_k·L_k / V with V_k the part's unmasked count: not the Σ_k (n_k/n)·L_k
above, so a model with such an output trains whole (predictions still split).

Same seed and same thread count give the same run; a different thread count changes the
dropout masks and the summation order, so the last bits of the weights differ.

**Processes for the training steps** (``ProcessSplitter``, on Linux): parts 1… of a training
step run in forked processes instead of threads. Two threads of one process share one GIL:
every NumPy call takes it to start and to return, so a step of a few thousand calls a part
serializes there (measured, the cnn zoo model, 64 images a part, one BLAS thread: a part alone
14.8–19.6 ms a step, the two parts side by side as two processes 14.8–17.1 ms each, as two
threads of one process 20.1–24.2 ms). Each step the parameters go to the processes through
shared memory, the part's rows too, and the part's gradients, loss, predictions and the state
of its random generators come back; the arithmetic is the threads' (same replicas, same
generators, same order of the sums), so the weights are the threads' bit for bit. Inference
passes and models whose parts meet mid-pass (BatchNormalization) stay on threads.
``HANDNET_SPLIT=threads`` keeps training on threads too.

**Processes for predict and evaluate** (``ProcessInference``, on Linux): the parts 1… of a
split inference pass run in forked processes that stay alive between calls, a pool of them
per model (``_InferencePool``), for the same reason: the GIL. Each call writes the model's
weights into shared memory once (the processes copy them into their replicas when their
version changed), and each message carries PARTS_A_MESSAGE passes of a part, so that the
parts meet four times less often. A pool ends with its model, when the model's plan or
weights' shapes change (a new pool is forked), when MAX_INFERENCE_POOLS other models are
used after it, at ``stop_inference_processes()``, or at exit; a child forked by someone else
forks its own. A forked process shares the pages this one had at the fork: a large array
freed here afterwards stays in memory until the pool ends. ``HANDNET_SPLIT=threads`` keeps
inference on threads too.
"""

import functools
import json
import math
import mmap
import os
import signal
import struct
import sys
import threading
import time
import traceback
import weakref
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import errors
from ..model import INFERENCE_PART

#: Parts smaller than this are not worth a thread (the last, short batch of an epoch).
MIN_PART = 16
#: Below this many multiply-adds per sample (an MLP's 0.2 million; the cnn has 2.4 million) the
#: hand-offs between threads cost more than the second core gains: measured, the MLP trained
#: 1.5× slower split. The speed run's network (0.62 million) gains: `handnet train --model fast
#: --no-plots` took 9.1–10.7 s split against 10.5–15.8 s whole (seven runs each, alternating;
#: whole, the second BLAS thread spins between products: 20–31 s of CPU against 14–16 s).
MIN_WORK = 500_000


#: Samples per thread in a split inference pass of a model with a recurrent layer (others: the
#: model's INFERENCE_PART, 64, which keeps a convolution's im2col columns in the cache). Each of
#: a part's T steps is a dozen NumPy calls, each of which takes the GIL back from the other
#: thread: a cost per call, not per sample, which a larger part pays less often (the two
#: threads' CPU time for 1,000 images: 124 ms in parts of 64, 105 ms in parts of 250).
#: Measured on the lstm zoo model predicting 1,000 images on 2 threads (wall time, interleaved,
#: 15 rounds, a shared machine): parts of 64 give 20.1k images/s (best; median 17.5k), 128
#: 22.2k (19.4k), 256 22.4k (20.2k), 500 22.1k (20.7k); on one thread the size hardly matters
#: (CPU time: 9.6k at 64, 9.7k at 256, 9.6k at 500; 8.7k at 1,000, out of the cache). The mlp
#: runs whole (see MIN_WORK), in passes of up to WIDE_PASS samples.
RECURRENT_PART = 256


#: Samples per pass, at most, of a model that runs whole for its little work per sample (see
#: MIN_WORK; the mlp): its products are thin in rows, and OpenBLAS's threads meet once a
#: product, a cost per pass rather than per sample. The mlp's predict of 1,000 images on 2 BLAS
#: threads (AMD EPYC Zen 4, OpenBLAS SkylakeX; 20 alternations, best of 5 calls each): 298k
#: images/s (median; best 321k) in one pass against 272k (296k) in passes of 256, faster in 20
#: of 20; on one thread 173k against 172k. Capped so that no node's output outgrows
#: WIDE_PASS_BYTES a pass (an activation of a pass stays within the L3 cache).
WIDE_PASS = 1024
WIDE_PASS_BYTES = 4 << 20


#: A single sample's pass of a model that splits larger batches runs on
#: SINGLE_SAMPLE_BLAS_THREADS BLAS threads when its largest product (``largest_product``) is
#: one OpenBLAS runs on two threads, more than THREADED_PRODUCT multiply-adds, and less than
#: SINGLE_SAMPLE_GAIN, below which the second thread does not pay. A product on two threads
#: wakes OpenBLAS's second thread, and that thread does not sleep when the product ends: it
#: spins for 2²⁸ clock ticks (0.1 s at 2.6 GHz) waiting for the next one, a core's worth of CPU
#: that a split pass right after takes from its own threads. `python
#: benchmarks/bench_single_sample.py` (AMD EPYC Zen 4, 2 cores, OpenBLAS 0.3.31 SkylakeX; 800
#: single-image predicts a setting, then a predict of 1,000 images right after; medians, and
#: 10th percentiles of the single calls): the cnn (conv2: 2.2 M) predicts a sample in 0.116 ms
#: on one BLAS thread against 0.111 on two, and 1,000 images after it at 15,962 images/s
#: against 11,916. lenet (conv2: 5.3 M), with predict's parts in processes (session 13): a
#: sample in 0.479 ms (median; 10th percentile 0.379) on one BLAS thread against 0.471 (0.329)
#: on two, then 1,000 images at 5,800 images/s against 4,391. A single sample of a 3×3
#: convolution's network on two BLAS threads against one (`bench_single_sample.py
#: --products`, medians of 600): with a product of 5.3 M multiply-adds 1.02–1.06 times the
#: time, 10.6 M 0.79–0.80, 21 M 0.67–0.78, 42 M 0.65–0.72: SINGLE_SAMPLE_GAIN lies between
#: the first two. The lstm's and the vit's products (0.4 M) run
#: on one thread anyway; from two samples on, BLAS's threads pay (the cnn at 8: 0.40 against
#: 0.59 ms on one thread); a model that never splits (the mlp) keeps them.
SINGLE_SAMPLE_BLAS_THREADS = 1
#: OpenBLAS runs a product of M·N·K multiply-adds on min(threads, M·N·K / 2¹⁸) threads
#: (interface/gemm.c: 65,536 × GEMM_MULTITHREAD_THRESHOLD, 4): two from 2¹⁹.
THREADED_PRODUCT = 2**19
SINGLE_SAMPLE_GAIN = 8_000_000


#: Split inference passes (predict, evaluate) run their parts 1… in forked processes kept
#: alive between calls (ProcessInference), on Linux, unless HANDNET_SPLIT=threads. `python
#: benchmarks/bench_inference_split.py` (AMD EPYC Zen 4, 2 cores, OpenBLAS 0.3.31 SkylakeX; a
#: predict of 1,000 images, medians of 10, images/s): lenet 5,987 in processes against 4,771 on
#: two threads, the cnn 18,773 against 15,989, the vit 3,526 against 3,118, the lstm 30,544
#: against 25,903. A call pays for copying the weights twice (into shared memory, then into
#: each process's replica): a call goes to the processes when its samples × work_per_sample
#: reach PROCESS_WORK_PER_WEIGHT multiply-adds a weight value (``--dense``: a network of 1.86 M
#: weights and as many multiply-adds a sample, processes ÷ threads 1.05 at 64 a weight, 1.09 at
#: 160, 0.85 at 320, 0.94 at 640, 0.89 at 1,280). A message carries PARTS_A_MESSAGE passes of a
#: part (64 rows, or RECURRENT_PART): the cnn 18,773 with four against 18,148 with one, the vit
#: 3,526 against 3,249, the lstm 30,544 against 29,859 (lenet 5,987 against 6,078). At most
#: MAX_INFERENCE_POOLS models keep processes (the least recently used stop).
INFERENCE_PROCESSES = True
PROCESS_WORK_PER_WEIGHT = 320
PARTS_A_MESSAGE = 4
MAX_INFERENCE_POOLS = 4


def whole_pass(model, default):
    """Samples per inference pass of a model that runs whole: ``default``, or more, up to
    WIDE_PASS, when it has little work per sample (below MIN_WORK) and small activations."""
    if work_per_sample(model) >= MIN_WORK:
        return default
    values = largest_activation(model)
    itemsize = np.dtype(getattr(model, "dtype", np.float32)).itemsize
    return max(default, min(WIDE_PASS, WIDE_PASS_BYTES // max(values * itemsize, 1)))


def largest_activation(model):
    """The most values per sample that any call of a layer in ``model`` outputs, nested models
    opened up (every shape is fixed: layers.Input refuses a size left open)."""
    largest = 0
    for node in getattr(model, "nodes", ()):
        largest = max([largest, *(math.prod(t.per_sample_shape) for t in node.outputs)])
        if hasattr(node.layer, "nodes"):
            largest = max(largest, largest_activation(node.layer))
    return largest


def inference_part(model, default):
    """Samples per thread in a split inference pass: RECURRENT_PART when a layer of the model
    has a recurrent kernel (Bidirectional's "forward_layer/recurrent_kernel" too), else
    ``default``."""
    for layer in _flat(model):
        if any(key.endswith("recurrent_kernel") for key in layer.params):
            return RECURRENT_PART
    return default


def blas_threads():
    """The number of threads NumPy's BLAS uses now (1 when it cannot be told)."""
    controller = _blas_controller()
    if controller is None:
        return 1
    return max((library.num_threads for library in controller.lib_controllers), default=1)


_BLAS_LIMIT = threading.Lock()
_blas_limit = {"holders": 0, "before": None}


def _limit_blas(threads):
    """Set every BLAS library NumPy loaded to ``threads`` threads; returns the function that
    sets them back (None when there is no BLAS to tell). The count is process-wide, so the
    limits are counted: while any is open BLAS stays at the first one's count, and the last to
    close restores what the first found (two passes at once in two threads, as two of handnet
    serve's models may run, cannot leave BLAS on one thread). threadpoolctl's own ``limit``
    takes 10 µs a call, these calls into the library 4."""
    controller = _blas_controller()
    if controller is None:
        return None
    libraries = controller.lib_controllers
    with _BLAS_LIMIT:
        if _blas_limit["holders"] == 0:
            _blas_limit["before"] = [library.get_num_threads() for library in libraries]
            for library in libraries:
                library.set_num_threads(threads)
        _blas_limit["holders"] += 1

    def restore():
        with _BLAS_LIMIT:
            _blas_limit["holders"] -= 1
            if _blas_limit["holders"] == 0:
                for library, count in zip(libraries, _blas_limit["before"]):
                    library.set_num_threads(count)

    return restore


@functools.cache
def _blas_controller():
    """threadpoolctl's handle on the BLAS libraries loaded now (found once: the search is slow)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    controller = ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else None


def splitter(model, threads=None, rng=None, batch_size=None, verbose=0, samples=None):
    """A BatchSplitter for ``model``, or a Serial runner when splitting cannot help or is not
    exact: one thread, batches too small to split, little work per sample, or layers with a
    running state that cannot share whole-batch statistics (BatchNormalization called more
    than once; other stateful layers).

    threads: None for as many as NumPy's BLAS uses; batch_size: the largest batch it will run.
    verbose: when threads were wanted but the model runs whole, print one line saying why.
    samples: for predict and evaluate, the number of samples of the call: its parts run in
    ProcessInference's processes when ``_inference_processes_reason`` finds no reason not to.
    """
    threads = blas_threads() if threads is None else int(threads)
    if threads < 2:
        return Serial(model)
    reason = _whole_reason(model, threads, batch_size)
    if reason is not None:
        if verbose:
            print(
                f"handnet.training.parallel: {threads} threads wanted, "
                f"each batch runs whole: {reason}"
            )
        if batch_size == 1 and _single_sample_on_one_thread(model):
            return Serial(model, blas_threads=SINGLE_SAMPLE_BLAS_THREADS)
        return Serial(model)
    if batch_size is not None:
        threads = min(threads, batch_size // MIN_PART)
    if samples is not None:
        if _inference_processes_reason(model, samples) is None:
            return ProcessInference(model, threads, rng, inference_part(model, INFERENCE_PART))
        return BatchSplitter(model, threads, rng)
    if _processes_reason(model, batch_size) is None:
        return ProcessSplitter(model, threads, rng, batch_size)
    return BatchSplitter(model, threads, rng)


def _processes_reason(model, batch_size):
    """Why the training parts of ``model`` run on threads rather than processes, or None."""
    if os.environ.get("HANDNET_SPLIT", "processes") == "threads":
        return "HANDNET_SPLIT=threads"
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return "forked processes are used on Linux only"
    if batch_size is None:
        return "no batch size to make the shared buffers for"
    if any(_synchronizes(layer) for layer in _flat(model)):
        return "its parts meet inside the pass (BatchNormalization)"
    return None


def _inference_processes_reason(model, samples):
    """Why the parts of a split predict or evaluate of ``samples`` samples run on threads
    rather than in processes (ProcessInference), or None."""
    if not INFERENCE_PROCESSES:
        return "INFERENCE_PROCESSES is off"
    if os.environ.get("HANDNET_SPLIT", "processes") == "threads":
        return "HANDNET_SPLIT=threads"
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return "forked processes are used on Linux only"
    values = sum(array.size for array in _weights(model).values())
    work = work_per_sample(model)
    if samples * work < PROCESS_WORK_PER_WEIGHT * values:
        return (
            f"{samples} samples of {work:,} multiply-adds are less than "
            f"{PROCESS_WORK_PER_WEIGHT} a weight value ({values:,}) to copy to the processes"
        )
    return None


def _whole_reason(model, threads, batch_size):
    """Why ``model`` cannot be split across ``threads`` (a sentence), or None when it can."""
    if batch_size is not None and batch_size // MIN_PART < 2:
        return f"batches of {batch_size} are too small (parts need {MIN_PART} samples or more)"
    work = work_per_sample(model)
    if work < MIN_WORK:
        return (
            f"{work:,} multiply-adds per sample, below the {MIN_WORK:,} for which a second "
            "thread pays"
        )
    for layer, calls in _calls(model):
        changing = layer.state and getattr(layer, "state_changes_in_training", True)
        if changing and not _synchronizes(layer):
            return f"layer {layer.name!r} ({type(layer).__name__}) keeps a running state"
        if changing and calls > 1:
            return (
                f"layer {layer.name!r} ({type(layer).__name__}) is called {calls} times: its "
                "parts cannot share whole-batch statistics"
            )
    return None


_VERDICTS = weakref.WeakKeyDictionary()  # a model's plan -> (splits, largest product)


def _verdict(model):
    """(whether batches large enough to split would split, ``largest_product``) for
    ``model``, found once per compiled plan (for the vit they walk 40 layers, 90 µs: a tenth of
    a batch-1 predict)."""
    plan = model.plan() if hasattr(model, "plan") else None
    verdict = None if plan is None else _VERDICTS.get(plan)
    if verdict is None:
        verdict = (_whole_reason(model, 2, None) is None, largest_product(model))
        if plan is not None:
            _VERDICTS[plan] = verdict
    return verdict


def splits_larger_batches(model):
    """Whether batches large enough to split would split across threads (or processes)."""
    return _verdict(model)[0]


def _single_sample_on_one_thread(model):
    """Whether a single sample's pass keeps BLAS on SINGLE_SAMPLE_BLAS_THREADS (see there)."""
    if SINGLE_SAMPLE_BLAS_THREADS is None:
        return False
    splits, product = _verdict(model)
    return splits and THREADED_PRODUCT <= product < SINGLE_SAMPLE_GAIN


def _calls(model, times=1):
    """(layer, how many times one forward pass calls it) for every layer, nested models opened."""
    for layer in model.layers:
        count = times * max(1, len(model.nodes_of(layer))) if hasattr(model, "nodes_of") else times
        if hasattr(layer, "flat_layers"):
            yield from _calls(layer, count)
        else:
            yield layer, count


def _flat(model):
    """Every layer of the model, nested models opened up."""
    return model.flat_layers() if hasattr(model, "flat_layers") else model.layers


def work_per_sample(model):
    """Multiply-adds of one sample's forward pass, roughly: each kernel (and recurrent kernel)
    times the positions it is applied at — a Conv2D's output height × width, a recurrent
    layer's time steps, 1 for a Dense on flat rows."""
    return sum(size * positions for size, positions, _ in _kernels(model))


def largest_product(model):
    """The multiply-adds of the largest matrix product of one sample's forward pass, roughly:
    a kernel times its positions (im2col's rows: one product), a recurrent kernel once (one
    product a step)."""
    return max((size * rows for size, _, rows in _kernels(model)), default=0)


def _kernels(model):
    """(values, positions, rows of one product) of every kernel of the model, nested ones
    too: "kernel", "recurrent_kernel", Bidirectional's "forward_layer/kernel", …"""
    for layer in _flat(model):
        if isinstance(layer.input_shape, list) or not layer.output_shape:  # a merge, no shape
            continue
        # A sequence or an image, in or out: the kernel runs at each of its positions.
        spatial = layer.output_shape if len(layer.output_shape) > 1 else layer.input_shape
        positions = math.prod(spatial[:-1])
        for key, array in layer.params.items():
            if key.endswith("kernel"):
                rows = 1 if key.endswith("recurrent_kernel") else positions
                yield array.size, positions, rows


def _synchronizes(layer):
    """Whether the layer can share whole-batch statistics across parts (BatchNormalization)."""
    return hasattr(layer, "part_mean")


class Serial:
    """The BatchSplitter interface on one thread: the model itself. ``blas_threads``: how many
    threads NumPy's BLAS runs on while open (restored on exit), None to leave it alone."""

    def __init__(self, model, blas_threads=None):
        self.model = model
        self.blas_threads = blas_threads
        self._restore = None

    def __enter__(self):
        if self.blas_threads is not None:
            self._restore = _limit_blas(self.blas_threads)
        return self

    def __exit__(self, *exc_info):
        restore, self._restore = self._restore, None
        if restore is not None:
            restore()
        return False

    def compute_gradients(self, x, y):
        loss, predictions, _ = self.model.compute_gradients(x, y)
        return loss, predictions

    def forward(self, x):
        return self.model.forward(x)

    def evaluate_pass(self, x):
        return self.model.evaluate_pass(x)


class BatchSplitter:
    """Runs a model's training steps and predictions on ``threads`` parts of each batch.

        with BatchSplitter(model, threads=2, rng=rng) as splitter:
            loss, predictions = splitter.compute_gradients(x, y)   # fills model's grads
            probabilities = splitter.forward(x)

    While open, NumPy's BLAS runs on one thread (restored on exit), so the parts do not fight
    over the cores. ``rng`` seeds the replicas' dropout masks.
    """

    def __init__(self, model, threads, rng=None):
        if threads < 2:
            raise ValueError(f"BatchSplitter needs at least 2 threads, got {threads}")
        self.model = model
        self.threads = int(threads)
        self._rng, self._replicas = rng, None
        self._synchronized = any(_synchronizes(layer) for layer in _flat(model))
        self._masked_outputs = None  # whether an output carries a mask: told by the first batch
        self._pool = None
        self._blas_limit = None

    @property
    def replicas(self):
        """The model and a replica of it for each other part, made at their first use (a
        predict whose parts run in ProcessInference's processes needs none: 0.4 ms for lenet);
        their generators spawned from ``rng``, which nothing else draws from."""
        if self._replicas is None:
            rng = self._rng if self._rng is not None else np.random.default_rng()
            children = rng.spawn(self.threads - 1)
            self._replicas = [self.model] + [_replica(self.model, child) for child in children]
        return self._replicas

    def __enter__(self):
        self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="handnet-part")
        self._blas_limit = _limit_blas(1)
        return self

    def __exit__(self, *exc_info):
        self._pool.shutdown()
        restore, self._blas_limit = self._blas_limit, None
        if restore is not None:
            restore()
        return False

    def _parts(self, n):
        """Index bounds of the parts of a batch of n, or None when it is too small to split."""
        threads = min(self.threads, n // MIN_PART)
        if threads < 2 or (self._synchronized and n % threads):
            return None
        bounds = np.linspace(0, n, threads + 1).round().astype(int)
        return list(zip(bounds[:-1], bounds[1:]))

    def _run(self, tasks):
        """Run task 0 on this thread and the others on the pool; results in order."""
        futures = [self._pool.submit(task) for task in tasks[1:]]
        first = tasks[0]()
        return [first, *(future.result() for future in futures)]

    def compute_gradients(self, x, y):
        """Model.compute_gradients on the whole batch, computed part by part; returns
        (loss, predictions) and leaves the batch's gradients in the model's layers. x and y:
        the model's inputs and targets, lists of arrays (or one array each)."""
        x, y = _listed(x), _listed(y)
        parts = self._training_parts(x)
        if parts is None:
            loss, predictions, _ = self.model.compute_gradients(x, y)
            return loss, predictions
        means = _PartMeans(len(parts)) if self._synchronized else None
        tasks = [
            _part_task(
                replica,
                rank,
                means,
                lambda r=replica, a=a, b=b: r.compute_gradients(_rows(x, a, b), _rows(y, a, b))[:2],
            )
            for rank, (replica, (a, b)) in enumerate(zip(self.replicas, parts))
        ]
        results = self._run(tasks)
        replicas = self.replicas
        return self._combined(
            parts, results, lambda part, index, key: replicas[part].layers[index].grads[key]
        )

    def _combined(self, parts, results, gradient):
        """(loss, predictions) of the batch from the parts' (loss, predictions), and the model's
        grads ← Σ_k w_k · (part k's grads), w_k = n_k / n, in place in the model's arrays
        (part 0's are the model's own; ``gradient(k, layer index, key)`` reads part k's)."""
        weights = [(b - a) / parts[-1][1] for a, b in parts]
        for index, layer in enumerate(self.model.layers):
            for key, total in layer.grads.items():
                total *= total.dtype.type(weights[0])
                for part, weight in enumerate(weights[1:], start=1):
                    total += gradient(part, index, key) * total.dtype.type(weight)
        # Each part's loss as part 0's type: a process's comes back as a float.
        kind = type(results[0][0]) if isinstance(results[0][0], np.generic) else float
        loss = sum(w * kind(part_loss) for w, (part_loss, _) in zip(weights, results))
        return loss, _joined([predictions for _, predictions in results])

    def _training_parts(self, x):
        """The parts of a training batch, or None when it runs whole (too small, or an output
        carries a mask)."""
        if self._masked_outputs is None:  # one sample's inference pass tells (no draws)
            self._masked_outputs = any(self.model.masked_outputs(x))
        return None if self._masked_outputs else self._parts(len(x[0]))

    def evaluate_pass(self, x):
        """Model.evaluate_pass part by part: the outputs and masks joined, and the penalty
        P = Σ_k (n_k/n)·P_k (an activity penalty is a sum over the part / n_k)."""
        x = _listed(x)
        parts = self._parts(len(x[0]))
        if parts is None:
            return self.model.evaluate_pass(x)
        results = self._run(
            [
                (lambda r=replica, a=a, b=b: r.evaluate_pass(_rows(x, a, b)))
                for replica, (a, b) in zip(self.replicas, parts)
            ]
        )
        return _evaluated(parts, results)

    def forward(self, x):
        """Inference-mode outputs for x, part by part."""
        x = _listed(x)
        parts = self._parts(len(x[0]))
        if parts is None:
            return self.model.forward(x)
        outputs = self._run(
            [
                (lambda r=replica, a=a, b=b: r.forward(_rows(x, a, b)))
                for replica, (a, b) in zip(self.replicas, parts)
            ]
        )
        return _joined(outputs)


def _evaluated(parts, results):
    """evaluate_pass's (outputs, masks, penalty) of a batch from its parts' (see
    BatchSplitter.evaluate_pass)."""
    outputs = [np.concatenate(chunks) for chunks in zip(*(r[0] for r in results))]
    masks = [
        None if chunks[0] is None else np.concatenate(chunks)
        for chunks in zip(*(r[1] for r in results))
    ]
    penalties = [penalty for _, _, penalty in results]
    if all(penalty == penalties[0] for penalty in penalties):
        penalty = penalties[0]  # the weights' alone: the same in every part, kept exact
    else:
        penalty = sum((b - a) / parts[-1][1] * p for (a, b), p in zip(parts, penalties))
    return outputs, masks, penalty


class ProcessSplitter(BatchSplitter):
    """A BatchSplitter whose training parts 1… run in forked processes (see the module's
    docstring); inference passes run on threads as BatchSplitter's.

    The processes are forked at the first training step after ``__enter__`` (the shapes of the
    batch size the buffers) and end at ``__exit__``. A step: this process writes the parameters
    and part k's rows into shared memory and tells process k the part's length; each computes
    its replica's gradients (the parameters copied in first) while this one computes part 0;
    process k writes its gradients, loss and predictions into shared memory and sends back its
    generators' states (kept in this process's replica k too, so that a checkpoint, the next
    epoch's processes and a batch on threads draw what the threads would have drawn). A batch
    larger than the buffers, or of other shapes, runs on threads; a process that died (its
    step raised HandnetError) is forked again at the next step.
    """

    def __init__(self, model, threads, rng=None, batch_size=None):
        super().__init__(model, threads, rng)
        self.batch_size = batch_size
        self._workers = None

    def __exit__(self, *exc_info):
        try:
            self._stop()
        finally:
            super().__exit__(*exc_info)
        return False

    def compute_gradients(self, x, y):
        x, y = _listed(x), _listed(y)
        parts = self._training_parts(x)
        if parts is None:
            loss, predictions, _ = self.model.compute_gradients(x, y)
            return loss, predictions
        if self._workers is None or any(worker.pid is None for worker in self._workers):
            self._stop()  # a process that died is replaced: the replicas hold its generators
            self._start(x, y)
        if not all(worker.fits(x, y, b - a) for worker, (a, b) in zip(self._workers, parts[1:])):
            return super().compute_gradients(x, y)
        for (index, key), shared in self._params.items():  # the parameters as this step has them
            np.copyto(shared, self.model.layers[index].params[key])
        busy = self._workers[: len(parts) - 1]
        for worker, (a, b) in zip(busy, parts[1:]):
            worker.send(x, y, a, b)
        try:
            first = self.model.compute_gradients(_rows(x, *parts[0]), _rows(y, *parts[0]))[:2]
        finally:  # every answer read, whatever raised: the next step starts in step
            answers = [worker.answer() for worker in busy]
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        workers = self._workers
        return self._combined(
            parts, [first, *answers],
            lambda part, index, key: workers[part - 1].gradients[index, key],
        )  # fmt: skip

    def _start(self, x, y):
        """Fork one process a part 1…, with the shared buffers the batch's shapes call for."""
        self._params = _Shared(
            {(i, key): value for i, layer in enumerate(self.model.layers)
             for key, value in layer.params.items()}  # fmt: skip
        )
        probe = self.model.forward(_rows(x, 0, 1))  # the outputs' shapes and dtypes
        outputs = probe if isinstance(probe, list) else [probe]
        rows = self.batch_size
        grads = {(i, key): value for i, layer in enumerate(self.model.layers)
                 for key, value in layer.grads.items()}  # fmt: skip
        self._workers = []
        for rank, replica in enumerate(self.replicas[1:], start=1):
            buffers = {
                "x": [np.empty((rows, *a.shape[1:]), a.dtype) for a in x],
                "y": [np.empty((rows, *a.shape[1:]), a.dtype) for a in y],
                "predictions": [np.empty((rows, *o.shape[1:]), o.dtype) for o in outputs],
                "loss": [np.empty(1, np.float64)],
            }
            self._workers.append(
                _Worker(rank, replica, self._params, _Shared(grads), buffers,
                        isinstance(probe, list))  # fmt: skip
            )

    def _stop(self):
        workers, self._workers = self._workers, None
        for worker in workers or []:
            worker.stop()


class ProcessInference(BatchSplitter):
    """A BatchSplitter for predict and evaluate whose parts 1… run in forked processes that
    stay alive between calls: one _InferencePool per model, forked at its first split pass and
    kept until the model is gone (or its structure, its inputs' shapes or a larger part call
    for new buffers). Two threads of one process pay for the GIL at each NumPy call and reach
    80–88 % of what its processes do (see INFERENCE_PROCESSES). At each call's first pass this
    process writes the model's weights (parameters and state) into shared memory, which each
    process copies into its replica; then part k's rows go to process k, which answers with its
    outputs (and evaluate's penalty) while this thread computes part 0, the threads' parts and
    the threads' arithmetic. A pool in use by another thread, an evaluate with masked outputs,
    or a process that died runs the pass on threads (a died process's part is computed here
    and its pool forked again at the next pass)."""

    def __init__(self, model, threads, rng=None, part=INFERENCE_PART):
        super().__init__(model, threads, rng)
        self.part = part  # rows a pass, each part run in passes of this many rows
        #: predict's and evaluate's batch: PARTS_A_MESSAGE passes a part per message
        self.batch = part * threads * PARTS_A_MESSAGE
        self._held = None  # the pool, held from the first pass to __exit__
        self._version = None  # the pool's weights version this call wrote

    def __exit__(self, *exc_info):
        held, self._held = self._held, None
        if held is not None:
            held.lock.release()
        return super().__exit__(*exc_info)

    def forward(self, x):
        x = _listed(x)
        parts = self._parts(len(x[0]))
        pool = None if parts is None else self._processes(x, parts)
        if pool is None:
            return super().forward(x)
        results = self._in_processes(pool, b"f", x, parts)
        return _joined([outputs for outputs, _, _ in results])

    def evaluate_pass(self, x):
        x = _listed(x)
        parts = self._parts(len(x[0]))
        plan = self.model.plan(self.model.needs_input_gradient)
        pool = None if parts is None or plan.masked else self._processes(x, parts)
        if pool is None:
            return super().evaluate_pass(x)
        results = self._in_processes(pool, b"e", x, parts)
        return _evaluated(parts, [(_listed(o), m, p) for o, m, p in results])

    def _processes(self, x, parts):
        """The model's pool, held, fitting this pass; None when another thread holds it."""
        rows = max(b - a for a, b in parts)
        if self._held is not None and self._held.fits(self.model, x, rows, len(parts) - 1):
            return self._held
        with _POOLS_LOCK:
            pool = self._held or _POOLS.get(self.model)
            if pool is not None and pool is not self._held and not pool.lock.acquire(False):
                return None
            self._held = pool
            if pool is not None and not pool.fits(self.model, x, rows, len(parts) - 1):
                pool.stop()
                pool.lock.release()
                self._held = pool = None
            if pool is None:
                _evict(MAX_INFERENCE_POOLS - 1)
                try:
                    pool = _InferencePool(self.model, self.replicas[1:], x, rows)
                except (OSError, errors.HandnetError):  # no process to fork, a replica whose
                    return None  # weights are not its model's: the pass runs on threads
                pool.lock.acquire()
                self._held = _POOLS[self.model] = pool
                pool.finalizer = weakref.finalize(self.model, pool.stop)
            pool.used = time.monotonic()
        return pool

    def _in_processes(self, pool, kind, x, parts):
        """Each part's (outputs, masks, penalty), in passes of ``part`` rows (_in_passes; part
        0 here, the others in the pool's processes); the weights written first at a call's
        first pass."""
        if self._version != pool.version:
            pool.write_weights(self.model)
            self._version = pool.version
        busy, first, answers = [], None, []
        try:
            for worker, (a, b) in zip(pool.workers, parts[1:]):
                worker.send(kind, pool.version, x, a, b, self.part)
                busy.append(worker)
            first = _in_passes(self.model, kind, _rows(x, *parts[0]), self.part)
        finally:  # every answer read, whatever raised, or the pool ended: it stays in step
            try:
                answers = [worker.answer() for worker in busy]
            except BaseException:
                pool.stop()
                raise
        results = [first]
        for k, (answer, (a, b)) in enumerate(zip(answers, parts[1:]), start=1):
            if isinstance(answer, _Died):  # computed here; a new pool at the next pass
                pool.stop()
                answer = _in_passes(self.replicas[k], kind, _rows(x, a, b), self.part)
            elif isinstance(answer, BaseException):
                raise answer
            results.append(answer)
        return results


def _in_passes(model, kind, x, part):
    """(outputs, masks, penalty) of model's forward (kind "f": no masks, penalty 0) or
    evaluate_pass ("e") on x, in passes of ``part`` rows."""
    n = len(x[0])
    bounds = [(a, min(a + part, n)) for a in range(0, n, part)]
    if kind == b"f":
        outputs = _joined([model.forward(_rows(x, a, b)) for a, b in bounds])
        return outputs, None, 0.0
    return _evaluated(bounds, [model.evaluate_pass(_rows(x, a, b)) for a, b in bounds])


_POOLS = weakref.WeakKeyDictionary()  # a model -> its _InferencePool
_POOLS_LOCK = threading.Lock()


def stop_inference_processes():
    """End every model's inference processes now, but those of a call under way in another
    thread (ProcessInference forks new ones at the next split call). A forked process keeps the
    pages this process had when it was forked: an array freed here afterwards goes back to the
    system only when the processes end."""
    with _POOLS_LOCK:
        _evict(0)


def _evict(keep):
    """Stop the least recently used pools not in use until ``keep`` are left (or all the
    others are in use); called with _POOLS_LOCK held."""
    for pool in sorted(set(_POOLS.values()), key=lambda pool: pool.used):
        if len(_POOLS) <= keep:
            return
        if pool.lock.acquire(False):
            pool.stop()
            for owner in [model for model, held in _POOLS.items() if held is pool]:
                del _POOLS[owner]
            pool.lock.release()


def _forget_forked():
    """In a child forked by anyone (os.register_at_fork): the processes, pipes and pools of
    the parent are not this process's to use or to stop. Its ends of their pipes are closed,
    each _Forked marked gone (a ProcessSplitter here forks its own at its next step) and the
    pools forgotten."""
    for fd in _PARENT_ENDS:
        os.close(fd)
    _PARENT_ENDS.clear()
    for forked in list(_FORKED):
        forked.pid = None
    _POOLS.clear()


if hasattr(os, "register_at_fork"):  # POSIX: not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_forked)


class _Died(errors.HandnetError):
    """A process of an inference pool ended without answering."""


class _InferencePool:
    """The processes of a model's split inference passes: one per part 1…, forked with a
    replica each, and the shared memory they read and write: the model's weights by name (a
    ``version`` counts the writes), each process's part of the inputs and of the outputs. It
    holds no reference to the model (a finalizer on the model stops it)."""

    def __init__(self, model, replicas, x, rows):
        self.lock, self.finalizer = threading.Lock(), None
        self.used = time.monotonic()
        self.version = 0
        self.plan = weakref.ref(model.plan(model.needs_input_gradient))
        weights = _weights(model)
        self.signature = _signature(weights)
        self.weights = _Shared(weights)
        probe = model.forward(_rows(x, 0, 1))  # the outputs' shapes and dtypes
        outputs = probe if isinstance(probe, list) else [probe]
        self.workers = []
        try:
            for rank, replica in enumerate(replicas, start=1):
                buffers = {
                    "x": [np.empty((rows, *a.shape[1:]), a.dtype) for a in x],
                    "outputs": [np.empty((rows, *o.shape[1:]), o.dtype) for o in outputs],
                }
                self.workers.append(
                    _InferenceWorker(rank, replica, self.weights, buffers, isinstance(probe, list))
                )
        except BaseException:
            self.stop()
            raise

    def fits(self, model, x, rows, processes):
        """Whether this pool can run a pass of ``processes`` parts of up to ``rows`` rows of x
        for ``model`` as it is now: its processes alive, the same plan and weights' names,
        shapes and dtypes, the inputs' shapes and dtypes, rows within the buffers."""
        if processes > len(self.workers) or any(w.pid is None for w in self.workers):
            return False
        if self.plan() is not model.plan(model.needs_input_gradient):
            return False
        if _signature(_weights(model)) != self.signature:
            return False
        return _fit_buffers(self.workers[0], (("x", x),), rows)

    def write_weights(self, model):
        for name, array in _weights(model).items():
            np.copyto(self.weights[name], array)
        self.version += 1

    def stop(self):
        """End the processes; the model's finalizer is dropped with them (a model whose pools
        are forked again keeps no stopped one alive)."""
        for worker in self.workers:
            worker.stop()
        if self.finalizer is not None:
            self.finalizer.detach()


def _weights(model):
    """Every array a forward pass reads: the parameters and state of every layer, by name."""
    return model.weights() if hasattr(model, "weights") else {}


def _signature(weights):
    return [(name, array.shape, array.dtype.str) for name, array in weights.items()]


class _Shared:
    """Arrays in one anonymous shared mapping, keyed as ``like`` (a dict of arrays, whose
    shapes and dtypes they take): a process forked after it was made reads and writes the
    same memory (mmap's MAP_SHARED)."""

    def __init__(self, like):
        offsets, total = {}, 0
        for key, array in like.items():
            total = -(-total // 64) * 64  # each array on a cache line of its own
            offsets[key] = total
            total += array.nbytes
        self._memory = mmap.mmap(-1, max(total, 1))
        self.arrays = {
            key: np.frombuffer(self._memory, array.dtype, array.size, offsets[key]).reshape(
                array.shape
            )
            for key, array in like.items()
        }

    def __getitem__(self, key):
        return self.arrays[key]

    def items(self):
        return self.arrays.items()


class _Forked:
    """A forked process that runs ``serve(commands, results)`` (its ends of two pipes) and
    never returns, and this process's ends: ``_commands`` to write to, ``_results`` to read.
    The child closes the ends of every other process this one forked (_PARENT_ENDS), so
    that each learns of this process's end from its own pipe alone."""

    def __init__(self, rank, serve):
        self.rank = rank
        commands, self._commands = os.pipe()
        self._results, results = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork() in a process with threads (BLAS's pool, parked: its
            # atfork handlers reset it); the child runs NumPy on its own buffers and nothing else.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            for fd in (self._commands, self._results, *_PARENT_ENDS):
                os.close(fd)
            serve(commands, results)
        os.close(commands)
        os.close(results)
        _PARENT_ENDS.update((self._commands, self._results))
        _FORKED.add(self)

    def _read(self):
        """(kind, text) of the process's next answer; HandnetError when it ended without one."""
        header = _read_exactly(self._results, 9)
        if len(header) < 9:
            status = self.stop()
            raise errors.HandnetError(
                f"the process of part {self.rank} of the batch ended without an answer "
                f"(wait status {status})"
            )
        (length,) = struct.unpack("<q", header[1:])
        return header[:1], _read_exactly(self._results, length).decode()

    def _raised(self, text):
        """The exception that the process's error record (an "E" answer) names: a handnet
        error as its own class, another as HandnetError."""
        error = json.loads(text)
        kind = getattr(errors, error["type"], None)
        if not (isinstance(kind, type) and issubclass(kind, errors.HandnetError)):
            kind = errors.HandnetError
        return kind(
            f"{error['message']}  (raised in the process of part {self.rank} of the batch, "
            f"as {error['type']}; its traceback:\n{error['traceback']})"
        )

    def stop(self):
        """End the process (it reads the 0 and exits); its wait status."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        try:
            os.write(self._commands, struct.pack("<q", 0))
        except OSError:  # it ended already
            pass
        for fd in (self._commands, self._results):
            os.close(fd)
            _PARENT_ENDS.discard(fd)
        deadline = time.monotonic() + 10
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                return None
            if done:
                return status
            if time.monotonic() > deadline:  # stuck: it holds nothing this process needs
                os.kill(pid, signal.SIGKILL)
                return os.waitpid(pid, 0)[1]
            time.sleep(0.001)


#: This process's ends of the pipes of every process it forked and has not stopped, and
#: those processes.
_PARENT_ENDS = set()
_FORKED = weakref.WeakSet()


class _Worker(_Forked):
    """Process ``rank`` of a training step: its replica, pipes and buffers; ``send`` a part,
    ``answer`` its results. Messages: this process sends the part's length (0: stop); the
    process answers "k" or "E", then a JSON text (its generators' states, or the error it
    raised)."""

    def __init__(self, rank, replica, params, gradients, buffers, listed):
        self.replica, self.gradients, self.rows = replica, gradients, 0
        self.listed = listed  # the model's outputs a list (several) or one array
        self.buffers = _Shared(
            {(name, k): a for name, arrays in buffers.items() for k, a in enumerate(arrays)}
        )
        self.counts = {name: len(arrays) for name, arrays in buffers.items()}
        self.generators = _generators(replica)
        super().__init__(rank, lambda commands, results: _serve(self, params, commands, results))

    def fits(self, x, y, rows):
        """Whether a part of ``rows`` rows of x and y fits this worker's buffers."""
        return _fit_buffers(self, (("x", x), ("y", y)), rows)

    def send(self, x, y, a, b):
        for name, arrays in (("x", x), ("y", y)):
            for k, array in enumerate(arrays):
                np.copyto(self.buffers[name, k][: b - a], array[a:b])
        self.rows = b - a
        try:
            os.write(self._commands, struct.pack("<q", self.rows))
        except BrokenPipeError:  # the process is gone: its answer (none) says so
            pass

    def answer(self):
        """(loss, predictions) of the part, its generators' states kept in the replica; or the
        exception the part raised (see _Forked._raised), returned for the caller to raise once
        every part has answered."""
        try:
            kind, text = self._read()
        except errors.HandnetError as error:
            return error
        if kind == b"E":
            return self._raised(text)
        for generator, state in zip(self.generators, json.loads(text)):
            generator.bit_generator.state = _from_json(state)
        predictions = [
            self.buffers["predictions", k][: self.rows].copy()
            for k in range(self.counts["predictions"])
        ]
        loss = float(self.buffers["loss", 0][0])
        return loss, predictions if self.listed else predictions[0]


def _fit_buffers(worker, named_arrays, rows):
    """Whether ``rows`` rows of each (name, arrays) fit the worker's buffers of that name: as
    many arrays, each of the buffer's per-sample shape and dtype."""
    for name, arrays in named_arrays:
        if len(arrays) != worker.counts[name]:
            return False
        for k, array in enumerate(arrays):
            buffer = worker.buffers[name, k]
            if (array.shape[1:] != buffer.shape[1:] or array.dtype != buffer.dtype
                    or rows > len(buffer)):  # fmt: skip
                return False
    return True


def _error_record(error):
    """The JSON text of an exception a process raised, for _Forked._raised."""
    return json.dumps(
        {"type": type(error).__name__, "message": str(error), "traceback": traceback.format_exc()}
    )


class _InferenceWorker(_Forked):
    """A process of an _InferencePool. Messages: this process sends the pass's kind ("f"
    forward, "e" evaluate_pass; "s" stop), the weights' version, the part's length and the rows
    of each of its passes; the process copies the weights into its replica when their version
    changed, runs the passes and answers "k" and its penalty (evaluate's), or "E" and the error
    it raised (JSON)."""

    def __init__(self, rank, replica, weights, buffers, listed):
        self.rows, self.listed = 0, listed
        self.buffers = _Shared(
            {(name, k): a for name, arrays in buffers.items() for k, a in enumerate(arrays)}
        )
        self.counts = {name: len(arrays) for name, arrays in buffers.items()}
        targets = _weights(replica)
        if _signature(targets) != _signature(dict(weights.items())):
            raise errors.HandnetError("a replica's weights differ from its model's")
        super().__init__(
            rank,
            lambda commands, results: _serve_inference(self, replica, targets, weights,
                                                       commands, results),
        )  # fmt: skip

    def send(self, kind, version, x, a, b, part):
        for k, array in enumerate(x):
            np.copyto(self.buffers["x", k][: b - a], array[a:b])
        self.rows = b - a
        try:
            os.write(self._commands, kind + struct.pack("<qqq", version, self.rows, part))
        except BrokenPipeError:  # the process is gone: its answer (none) says so
            pass

    def answer(self):
        """(outputs, None, penalty) of the part; _Died when the process ended without an
        answer; the exception the part raised (_Forked._raised)."""
        try:
            kind, text = self._read()
        except errors.HandnetError as error:
            return _Died(str(error))
        if kind == b"E":
            return self._raised(text)
        outputs = [
            self.buffers["outputs", k][: self.rows].copy() for k in range(self.counts["outputs"])
        ]
        masks = [None] * len(outputs)  # evaluate's passes here carry none
        return (outputs if self.listed else outputs[0]), masks, json.loads(text)

    def stop(self):
        if self.pid is not None:
            try:
                os.write(self._commands, b"s" + struct.pack("<qqq", 0, 0, 0))
            except OSError:  # it ended already
                pass
        return super().stop()


def _serve_inference(worker, replica, targets, weights, commands, results):
    """The forked process's loop: a part's inference passes on the replica, until told "s"."""
    state = {"version": None}  # the weights' version copied into the replica

    def setup():
        controller = _blas_controller()  # one BLAS thread, unlocked: no other thread here
        for library in controller.lib_controllers if controller is not None else ():
            library.set_num_threads(1)

    def run(header):
        kind, (wanted, rows, part) = header[:1], struct.unpack("<qqq", header[1:])
        if wanted != state["version"]:
            for name, shared in weights.items():
                np.copyto(targets[name], shared)
            state["version"] = wanted
        x = [worker.buffers["x", k][:rows] for k in range(worker.counts["x"])]
        outputs, _, penalty = _in_passes(replica, kind, x, part)
        listed = _listed(outputs) if worker.listed or kind == b"e" else [outputs]
        for k, array in enumerate(listed):
            np.copyto(worker.buffers["outputs", k][:rows], array, casting="no")
        return json.dumps(float(penalty))

    _child_loop(commands, results, 25, lambda header: header[:1] == b"s", run, setup)


def _serve(worker, params, commands, results):
    """The forked process's loop: a part's gradients on the replica, until told 0."""
    replica, buffers = worker.replica, worker.buffers

    def run(header):
        rows = struct.unpack("<q", header)[0]
        for (index, key), shared in params.items():
            np.copyto(replica.layers[index].params[key], shared)
        x = [buffers["x", k][:rows] for k in range(worker.counts["x"])]
        y = [buffers["y", k][:rows] for k in range(worker.counts["y"])]
        loss, predictions = replica.compute_gradients(x, y)[:2]
        for (index, key), shared in worker.gradients.items():
            np.copyto(shared, replica.layers[index].grads[key])
        for k, array in enumerate(predictions if worker.listed else [predictions]):
            np.copyto(buffers["predictions", k][:rows], array, casting="no")
        buffers["loss", 0][0] = loss
        return json.dumps([_to_json(g.bit_generator.state) for g in worker.generators])

    _child_loop(commands, results, 8, lambda header: header == bytes(8), run)


def _child_loop(commands, results, size, stops, run, setup=None):
    """A forked process's life: each command of ``size`` bytes read from ``commands`` is
    answered on ``results`` with "k" and the text ``run(command)`` returns, or with "E" and
    the error it raised; it ends (os._exit, never returning) when ``stops(command)`` or the
    pipe closes (the parent gone). Ctrl-C and SIGTERM, sent to the whole process group, are
    the parent's to handle: it may finish the step under way and back it up
    (training.interrupt)."""
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if setup is not None:
            setup()
        while True:
            header = _read_exactly(commands, size)
            if len(header) < size or stops(header):
                break
            try:
                kind, text = b"k", run(header)
            except Exception as error:
                kind, text = b"E", _error_record(error)
            data = text.encode()
            _write_all(results, kind + struct.pack("<q", len(data)) + data)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _generators(replica):
    """The random generators of the replica's layers (Dropout's masks …), nested ones too."""
    return [
        layer.rng for layer in _flat(replica)
        if isinstance(getattr(layer, "rng", None), np.random.Generator)
    ]  # fmt: skip


def _to_json(state):
    """A bit generator's state for JSON: its arrays (MT19937's key) as {"array", "dtype"}."""
    if isinstance(state, dict):
        return {key: _to_json(value) for key, value in state.items()}
    if isinstance(state, np.ndarray):
        return {"array": state.tolist(), "dtype": state.dtype.str}
    return state


def _from_json(state):
    if isinstance(state, dict):
        if set(state) == {"array", "dtype"}:
            return np.array(state["array"], dtype=state["dtype"])
        return {key: _from_json(value) for key, value in state.items()}
    return state


def _read_exactly(fd, count):
    """``count`` bytes from the pipe, fewer only at its end."""
    data = b""
    while len(data) < count:
        chunk = os.read(fd, count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _rows(arrays, a, b):
    """Rows a:b of each array of a model's inputs (or targets)."""
    return [array[a:b] for array in arrays]


def _listed(arrays):
    """A model's inputs (or targets) as a list: one array given alone is a list of one."""
    return list(arrays) if isinstance(arrays, (list, tuple)) else [arrays]


def _joined(parts):
    """The parts' outputs back together: one array, or one per output of the model."""
    if isinstance(parts[0], list):
        return [np.concatenate(chunks) for chunks in zip(*parts)]
    return np.concatenate(parts)


def _part_task(replica, rank, means, task):
    """``task`` with the replica's BatchNormalization layers wired to ``means`` as part ``rank``;
    a failing part breaks the barrier, so the others raise instead of waiting for ever."""
    if means is None:
        return task
    synchronized = [layer for layer in _flat(replica) if _synchronizes(layer)]

    def run():
        for layer in synchronized:
            layer.part_mean = functools.partial(means.mean, rank)
        try:
            return task()
        except BaseException:
            means.abort()
            raise
        finally:
            for layer in synchronized:
                layer.part_mean = None

    return run


class _PartMeans:
    """Whole-batch means from the parts' sums. Every part reaches the same means in the same
    order (the same layers run the same code), so a barrier lines the parts up at each one."""

    def __init__(self, parts):
        self._barrier = threading.Barrier(parts)
        self._sums = [None] * parts
        self._counts = [0] * parts

    def mean(self, rank, part_sum, part_count):
        self._sums[rank], self._counts[rank] = part_sum, part_count
        self._barrier.wait()
        # Added in rank order by every part: the same bits everywhere.
        total = functools.reduce(np.add, self._sums) / sum(self._counts)
        self._barrier.wait()  # all have read the sums before any part writes the next ones
        return total.astype(part_sum.dtype, copy=False)

    def abort(self):
        self._barrier.abort()


def _replica(model, rng):
    """A copy of ``model`` that shares its parameter arrays and owns everything else: each
    layer's ``replica`` (own gradients, moving statistics, random generator and caches)."""
    return model.replica(rng)
