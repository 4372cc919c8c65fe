"""A single sample's predict on one BLAS thread or on BLAS's own, and the split predict after it.

    python benchmarks/bench_single_sample.py [--models cnn lenet lstm vit mlp] [--rounds 8]
        [--calls 100] [--json F]

A matrix product on two BLAS threads wakes OpenBLAS's second thread, and that thread does not
sleep when the product ends: it spins for 2²⁸ clock ticks (0.1 s at 2.6 GHz) waiting for the
next one. A predict of 1,000 images that handnet splits across its own two threads
(handnet.training.parallel) then shares a core with the spinning thread. Since handnet runs a
single sample's pass of a model that splits larger batches, whose largest product OpenBLAS
would thread but too small for the second thread to pay, on one BLAS thread
(parallel.SINGLE_SAMPLE_BLAS_THREADS, THREADED_PRODUCT, SINGLE_SAMPLE_GAIN), nothing is left
spinning there. This script measures both
ways in one process, the modes taking turns round by round with a 0.15 s pause between them
(a thread the other mode woke is asleep again): ``--calls`` single-image predicts (each timed),
then one predict of 1,000 images right after them, as bench_train.py's inference round does.
"one": a single sample on one BLAS thread whatever its products; "blas": on BLAS's own thread
count; "handnet's choice" says which of the two handnet makes for the model. Wall time; the
table shows medians (and the 10th percentile of the single calls).

``--products``: what the second BLAS thread gains on a single sample alone, product by
product: a 3×3 convolution (26×26×C in, F filters) and a small head, whose im2col product has
0.7–85 M multiply-adds, one sample's forward pass timed on one and on two BLAS threads
(median of rounds × calls each; the modes taking turns with the pause): SINGLE_SAMPLE_GAIN is
where two start to pay.
"""

import argparse
import statistics
import time

from common import print_table, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", default=["cnn", "lenet", "lstm", "vit", "mlp"])
parser.add_argument("--rounds", type=int, default=8)
parser.add_argument("--calls", type=int, default=100)
parser.add_argument("--products", action="store_true")
parser.add_argument("--json")
args = parser.parse_args()

import numpy as np  # noqa: E402

import cpu  # noqa: E402
from handnet.training import parallel  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

DEFAULTS = (
    parallel.SINGLE_SAMPLE_BLAS_THREADS, parallel.THREADED_PRODUCT, parallel.SINGLE_SAMPLE_GAIN
)
MODES = {"one": (1, 0, float("inf")), "blas": (None, *DEFAULTS[1:])}


def setting(threads, threaded, gain):
    parallel.SINGLE_SAMPLE_BLAS_THREADS = threads
    parallel.THREADED_PRODUCT, parallel.SINGLE_SAMPLE_GAIN = threaded, gain


def measure(name):
    model = architectures.build(name, seed=0)
    x = np.random.default_rng(0).random((1000, *model.input_shape), dtype=np.float32)
    model.predict(x)
    calls = {mode: [] for mode in MODES}
    thousands = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode, values in MODES.items():
            setting(*values)
            time.sleep(0.15)
            for i in range(args.calls):
                start = time.perf_counter()
                model.predict(x[i : i + 1])
                calls[mode].append(time.perf_counter() - start)
            start = time.perf_counter()
            model.predict(x)
            thousands[mode].append(time.perf_counter() - start)
    setting(*DEFAULTS)
    choice = "one" if parallel._single_sample_on_one_thread(model) else "blas"
    rows = []
    for mode in MODES:
        single = sorted(calls[mode])
        rows.append({
            "model": name,
            "mode": mode,
            "splits": parallel.splits_larger_batches(model),
            "product": parallel.largest_product(model),
            "choice": choice,
            "single_ms": 1e3 * statistics.median(single),
            "single_p10_ms": 1e3 * single[len(single) // 10],
            "thousand_per_s": 1000 / statistics.median(thousands[mode]),
            "thousand_best_per_s": 1000 / min(thousands[mode]),
        })  # fmt: skip
    return rows


def measure_products():
    import handnet as hn
    from handnet import layers
    from threadpoolctl import threadpool_limits

    rows = []
    for channels, filters in ((8, 16), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)):
        model = hn.Sequential(
            [
                layers.Input((26, 26, channels)),
                layers.Conv2D(filters, 3, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(10),
            ],
            seed=0,
        ).build()
        x = np.random.default_rng(0).random((1, 26, 26, channels), dtype=np.float32)
        times = {1: [], 2: []}
        for _ in range(args.rounds):
            for threads in times:
                with threadpool_limits(threads):
                    time.sleep(0.15)
                    for _ in range(args.calls):
                        start = time.perf_counter()
                        model.forward([x])
                        times[threads].append(time.perf_counter() - start)
        one, two = (1e3 * statistics.median(times[t]) for t in (1, 2))
        rows.append({
            "shape": f"C {channels}, F {filters}",
            "product": parallel.largest_product(model),
            "one_ms": one, "two_ms": two, "ratio": two / one,
            "choice": "one" if parallel.largest_product(model) < parallel.SINGLE_SAMPLE_GAIN
            else "blas",
        })  # fmt: skip
    return rows


machine = cpu.describe()
print(f"machine: {cpu.headline(machine)}")
if args.products:
    rows = measure_products()
    print_table(
        f"one sample's forward pass, one BLAS thread or two ({args.rounds} rounds of "
        f"{args.calls} calls a setting, wall time, medians)",
        rows,
        [
            ("shape", "convolution", "{}"),
            ("product", "largest product", "{:,}"),
            ("one_ms", "ms on one", "{:.3f}"),
            ("two_ms", "ms on two", "{:.3f}"),
            ("ratio", "two ÷ one", "{:.2f}"),
            ("choice", "below SINGLE_SAMPLE_GAIN", "{}"),
        ],
    )
    write_json(args.json, {"machine": machine, "args": vars(args), "rows": rows})
    raise SystemExit
rows = [row for name in args.models for row in measure(name)]
print_table(
    f"single-image predicts, then 1,000 images right after ({args.rounds} rounds of "
    f"{args.calls} calls a mode, wall time)",
    rows,
    [
        ("model", "model", "{}"),
        ("mode", "single sample on", "{}"),
        ("splits", "larger batches split", "{}"),
        ("product", "largest product", "{:,}"),
        ("choice", "handnet's choice", "{}"),
        ("single_ms", "median ms @1", "{:.3f}"),
        ("single_p10_ms", "p10 ms @1", "{:.3f}"),
        ("thousand_per_s", "median img/s @1000 after", "{:,.0f}"),
        ("thousand_best_per_s", "best img/s @1000 after", "{:,.0f}"),
    ],
)
write_json(args.json, {"machine": machine, "args": vars(args), "rows": rows})
