"""Two versions of handnet side by side: the same networks trained and run by each, interleaved.

    python benchmarks/bench_old_new.py --old ../old-main --new .. --models mlp cnn lenet lstm best

Each measurement runs in a fresh process with PYTHONPATH set to one checkout
(benchmarks/time_fit.py), so the two versions never share a process; the versions alternate
(old, new, new, old, …) so that a noisy moment hits both. For each network: seconds for
``--steps`` training steps of batch 128 on random images (after two warm-up steps), images/s of
predict at batch 1000, and the batch-1 latency; the best of ``--repeats`` runs each.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import print_table, set_threads, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--old", required=True, help="checkout of the old version (its root folder)")
parser.add_argument("--new", required=True, help="checkout of the new version")
parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "lenet", "lstm", "best"])
parser.add_argument("--steps", type=int, default=30)
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--json")
args = parser.parse_args()
set_threads(args.threads)

import cpu  # noqa: E402

WORKER = Path(__file__).with_name("time_fit.py")


def measure(root, model):
    env = {**os.environ, "PYTHONPATH": str(Path(root).resolve())}
    out = subprocess.run(
        [sys.executable, str(WORKER), model, str(args.steps)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


info = cpu.describe()
print(cpu.headline(info))
results = {name: {"old": [], "new": []} for name in args.models}
for repeat in range(args.repeats):
    order = ("old", "new") if repeat % 2 == 0 else ("new", "old")
    for name in args.models:
        for version in order:
            results[name][version].append(measure(getattr(args, version), name))
    print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

rows = []
for name, runs in results.items():
    best = {v: {k: (max if k == "images_per_s" else min)(r[k] for r in runs[v]) for k in runs[v][0]}
            for v in runs}  # fmt: skip
    rows.append(
        {
            "model": name,
            "old_train": best["old"]["train_s"],
            "new_train": best["new"]["train_s"],
            "train_ratio": best["new"]["train_s"] / best["old"]["train_s"],
            "old_ips": best["old"]["images_per_s"],
            "new_ips": best["new"]["images_per_s"],
            "old_latency": best["old"]["latency_ms"],
            "new_latency": best["new"]["latency_ms"],
        }
    )
print_table(
    f"best of {args.repeats}: {args.steps} training steps (s), predict at batch 1000 (img/s), "
    f"batch-1 latency (ms); {args.threads} threads",
    rows,
    [
        ("model", "network", "{}"),
        ("old_train", "old s", "{:.3f}"),
        ("new_train", "new s", "{:.3f}"),
        ("train_ratio", "new/old", "{:.3f}"),
        ("old_ips", "old img/s", "{:,.0f}"),
        ("new_ips", "new img/s", "{:,.0f}"),
        ("old_latency", "old ms", "{:.3f}"),
        ("new_latency", "new ms", "{:.3f}"),
    ],
)
write_json(args.json, {"machine": info, "args": vars(args), "rows": rows, "runs": results})
