"""Where the second core goes in a split training step: one part alone, two parts as two
independent processes side by side, and the batch split by handnet.training.parallel into
two threads of one process or into two processes (ProcessSplitter).

    python benchmarks/bench_split.py [--models cnn lenet] [--rounds 6] [--steps 20] [--json F]

Each measurement is a fresh process (``--child``) that builds the zoo model, takes 5 warm-up
steps of Adam on random data and then times ``--steps`` steps, best of 4 rounds (wall time):

- ``alone``: one part (half the batch) on one BLAS thread, nothing else running;
- ``side by side``: two such processes started together (no GIL, no data shared): what two
  parts cost when only the cores, caches and memory are shared;
- ``threads``: the whole batch, HANDNET_SPLIT=threads (two parts, two threads, one GIL);
- ``processes``: the whole batch, parts in forked processes (the default on Linux).

The modes take turns round by round, so that a noisy minute hits all of them; the table shows
the best and the median over the rounds, ms a step (side by side: the slower of the two).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import print_table, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", default=["cnn", "lenet"])
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--rounds", type=int, default=6)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--json", default=None)
parser.add_argument(
    "--child", nargs=3, metavar=("MODEL", "ROWS", "THREADS"), help=argparse.SUPPRESS
)
parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
args = parser.parse_args()

MODES = ("alone", "side by side", "threads", "processes")


def child():
    """Time the steps of one model in this process; print ms a step (best of 4 rounds)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy as np

    from handnet.training import parallel
    from handnet.zoo import architectures

    name, rows, threads = args.child[0], int(args.child[1]), int(args.child[2])
    model = architectures.build(name, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.build()
    rng = np.random.default_rng(0)
    x = rng.random((rows, *model.input_shape), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], rows)
    with parallel.splitter(model, threads, batch_size=rows) as split:

        def step():
            split.compute_gradients([x], [y])
            model.optimizer.apply(model.trainable_variables())

        for _ in range(5):
            step()
        while time.time() < args.start_at:  # side by side: both start timing together
            time.sleep(0.001)
        rounds = []
        for _ in range(4):
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rounds.append((time.perf_counter() - start) / args.steps * 1e3)
    print(json.dumps({"ms": min(rounds), "kind": type(split).__name__}))


def run(name, mode):
    """ms a step of ``mode`` (side by side: the slower process), from fresh processes."""
    half = args.batch_size // 2
    command = [sys.executable, __file__, "--steps", str(args.steps), "--child", name]
    env = dict(os.environ)
    if mode in ("alone", "side by side"):
        count, rows, threads = (1 if mode == "alone" else 2), half, 1
    else:
        count, rows, threads = 1, args.batch_size, 2
        env["HANDNET_SPLIT"] = mode
    start_at = time.time() + 6  # after the imports and warm-up steps of both
    children = [
        subprocess.Popen(
            [*command, str(rows), str(threads), "--start-at", str(start_at)],
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(count)
    ]
    results = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in children]
    if mode in ("threads", "processes"):
        expected = "ProcessSplitter" if mode == "processes" else "BatchSplitter"
        assert results[0]["kind"] == expected, results
    return max(result["ms"] for result in results)


def main():
    import cpu

    machine = cpu.describe()
    print(f"machine: {cpu.headline(machine)}")
    times = {(name, mode): [] for name in args.models for mode in MODES}
    for index in range(args.rounds):
        for name in args.models:
            for mode in MODES:
                times[name, mode].append(run(name, mode))
        print(f"round {index + 1}/{args.rounds} done", flush=True)
    rows = [
        {
            "model": name, "mode": mode, "best": min(times[name, mode]),
            "median": statistics.median(times[name, mode]),
            "vs_alone": min(times[name, mode]) / min(times[name, "alone"]),
        }
        for name in args.models
        for mode in MODES
    ]  # fmt: skip
    print_table(
        f"ms a training step, batch {args.batch_size} (a part: {args.batch_size // 2}), "
        f"{args.rounds} rounds, wall time",
        rows,
        [("model", "model", "{}"), ("mode", "mode", "{}"), ("best", "best ms", "{:.2f}"),
         ("median", "median ms", "{:.2f}"), ("vs_alone", "best ÷ alone", "{:.2f}")],
    )  # fmt: skip
    write_json(
        args.json,
        {"machine": machine, "args": vars(args), "rows": rows,
         "runs": {f"{n}/{m}": t for (n, m), t in times.items()}},
    )  # fmt: skip


if args.child:
    child()
else:
    main()
