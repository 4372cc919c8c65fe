"""A split predict of 1,000 images on two threads of one process or in forked processes.

    python benchmarks/bench_inference_split.py [--models lenet cnn vit lstm] [--rounds 10]
        [--json F]

Each model (handnet.zoo.architectures, random weights and images) predicts 1,000 images, the
modes taking turns round by round with a 0.12 s pause between them (a BLAS thread the other
mode woke is asleep again), wall time:

- ``threads``: the parts on two threads of this process (parallel.INFERENCE_PROCESSES off);
- ``processes``: the parts 1… in the model's pool of forked processes, kept between calls
  (parallel.ProcessInference, the default on Linux), four passes of a part a message;
- ``one a message``: the same with one pass a message (parallel.PARTS_A_MESSAGE = 1), the
  parts meeting at every pass as the threads' do.

Then the bound: two processes, forked once, each predicting its 500 images in passes of the
model's part on one BLAS thread at the same time, nothing shared but the machine.
The table shows the medians and the best of the rounds, images/s.

``--dense``: where copying the weights to the processes stops paying
(parallel.PROCESS_WORK_PER_WEIGHT): a dense network of 1.86 M weights and as many
multiply-adds a sample (784 → 1024 → 1024 → 10), its predict of 64 to 1,280 images in processes
(the threshold set to 0) against on threads, ms, medians of 15 alternations.
"""

import argparse
import os
import statistics
import time

from common import print_table, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", default=["lenet", "cnn", "vit", "lstm"])
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--dense", action="store_true")
parser.add_argument("--json")
args = parser.parse_args()

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import cpu  # noqa: E402
from handnet.model import INFERENCE_PART  # noqa: E402
from handnet.training import memory, parallel  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

MODES = {"threads": (False, 4), "processes": (True, 4), "one a message": (True, 1)}


def setting(processes, parts_a_message):
    parallel.INFERENCE_PROCESSES, parallel.PARTS_A_MESSAGE = processes, parts_a_message


def side_by_side(model, x, part):
    """Seconds of each round: two forked processes predicting 500 images each at once."""

    def half(lo, hi):
        for a in range(lo, hi, part):
            model.forward([x[a : min(a + part, hi)]])

    go_read, go_write = os.pipe()
    done_read, done_write = os.pipe()
    with threadpool_limits(1):
        half(0, 1000)  # warm both halves' code and memory before the fork
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child answers each round, then exits
            while os.read(go_read, 1) == b"g":
                half(500, 1000)
                os.write(done_write, b"d")
            os._exit(0)
        seconds = []
        for _ in range(args.rounds):
            time.sleep(0.12)
            start = time.perf_counter()
            os.write(go_write, b"g")
            half(0, 500)
            os.read(done_read, 1)
            seconds.append(time.perf_counter() - start)
        os.write(go_write, b"x")
        os.waitpid(pid, 0)
    for fd in (go_read, go_write, done_read, done_write):
        os.close(fd)
    return seconds


def measure(name):
    model = architectures.build(name, seed=0)
    model.build()
    x = np.random.default_rng(0).random((1000, *model.input_shape), dtype=np.float32)
    seconds = {mode: [] for mode in MODES}
    for mode, values in MODES.items():  # each mode's pool forked, its code warm
        setting(*values)
        model.predict(x)
    for _ in range(args.rounds):
        for mode, values in MODES.items():
            setting(*values)
            time.sleep(0.12)
            start = time.perf_counter()
            model.predict(x)
            seconds[mode].append(time.perf_counter() - start)
    setting(*MODES["processes"])
    parallel.stop_inference_processes()
    seconds["side by side (bound)"] = side_by_side(
        model, x, parallel.inference_part(model, INFERENCE_PART)
    )
    return [
        {
            "model": name,
            "mode": mode,
            "median_per_s": 1000 / statistics.median(times),
            "best_per_s": 1000 / min(times),
        }
        for mode, times in seconds.items()
    ]


def measure_dense():
    import handnet as hn
    from handnet import layers

    model = hn.Sequential(
        [
            layers.Input((784,)),
            layers.Dense(1024, activation="relu"),
            layers.Dense(1024, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        seed=0,
    ).build()
    parallel.PROCESS_WORK_PER_WEIGHT = 0
    rows = []
    for n in (64, 160, 320, 640, 1280):
        x = np.random.default_rng(0).random((n, 784), dtype=np.float32)
        seconds = {True: [], False: []}
        for processes in seconds:
            setting(processes, 4)
            model.predict(x)
        for _ in range(15):
            for processes in seconds:
                setting(processes, 4)
                time.sleep(0.12)
                start = time.perf_counter()
                model.predict(x)
                seconds[processes].append(time.perf_counter() - start)
        in_processes, on_threads = (1e3 * statistics.median(seconds[p]) for p in (True, False))
        rows.append({
            "images": n, "processes_ms": in_processes, "threads_ms": on_threads,
            "ratio": in_processes / on_threads,
            "work_per_weight": n * parallel.work_per_sample(model)
            / sum(w.size for w in model.weights().values()),
        })  # fmt: skip
    return rows


memory.keep_freed_memory()  # as predict asks, for the bound's processes too
machine = cpu.describe()
print(f"machine: {cpu.headline(machine)}")
if args.dense:
    rows = measure_dense()
    print_table(
        "a dense network of 1.86 M weights: predict in processes or on threads (ms, medians)",
        rows,
        [
            ("images", "images", "{}"),
            ("work_per_weight", "multiply-adds a weight value", "{:,.0f}"),
            ("processes_ms", "processes ms", "{:.2f}"),
            ("threads_ms", "threads ms", "{:.2f}"),
            ("ratio", "processes ÷ threads", "{:.2f}"),
        ],
    )
    write_json(args.json, {"machine": machine, "args": vars(args), "rows": rows})
    raise SystemExit
rows = [row for name in args.models for row in measure(name)]
print_table(
    f"a predict of 1,000 images split in two ({args.rounds} rounds, wall time)",
    rows,
    [
        ("model", "model", "{}"),
        ("mode", "parts on", "{}"),
        ("median_per_s", "median img/s", "{:,.0f}"),
        ("best_per_s", "best img/s", "{:,.0f}"),
    ],
)
write_json(args.json, {"machine": machine, "args": vars(args), "rows": rows})
