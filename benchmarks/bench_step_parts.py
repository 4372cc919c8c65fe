"""Two versions of handnet in one process: training steps and each conv step's forward and
backward, the versions alternating round by round, and whether their weights stay bit-identical.

    python benchmarks/bench_step_parts.py --old ../old-checkout [--models fast cnn lenet]
        [--rounds 24] [--steps 3]

The old checkout's ``handnet`` package is copied into a temporary folder as ``handnet_old``
(its imports are relative, so it runs as it is) and imported beside this checkout's. Each
network (handnet.zoo.architectures) trains on random images at batch 128 with Adam, one BLAS
thread, CPU time: for each round, ``--steps`` steps of one version then of the other (the order
swapping every round), and the Conv2D steps of the execution plan (a Conv2D alone, or fused with
its MaxPooling2D) timed forward and backward. Best of the rounds, and the medians. Then the
check: both versions train 4 further steps on the same batches (random, with blank bands that
make ties in the pooling windows; dropout generators seeded alike) and their weights and
predictions are compared bit for bit (and, where they differ, by how much).
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import set_threads

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--old", required=True, help="checkout of the old version (its root folder)")
parser.add_argument("--models", nargs="+", default=["fast", "cnn", "lenet"])
parser.add_argument("--rounds", type=int, default=24)
parser.add_argument("--steps", type=int, default=3, help="training steps per round")
parser.add_argument("--batch-size", type=int, default=128)
args = parser.parse_args()
set_threads(1)

import numpy as np  # noqa: E402  (after set_threads: BLAS reads its thread count on import)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
folder = tempfile.mkdtemp(prefix="handnet-old-")
shutil.copytree(Path(args.old) / "handnet", Path(folder) / "handnet_old")
sys.path.insert(0, folder)

import handnet.zoo.architectures as new_zoo  # noqa: E402
import handnet_old.zoo.architectures as old_zoo  # noqa: E402

clock = time.process_time
CONV_STEPS = ("Conv2D", "ConvMaxPool")


def build(zoo, name):
    model = zoo.build(name, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.build()
    for layer in model.layers:  # the same dropout masks in both versions
        if hasattr(layer, "rng"):
            layer.rng = np.random.default_rng(5)
    return model


def instrument(model, spent):
    """Time each conv step's forward and backward into spent[(index, kind)]."""
    for index, step in enumerate(step.layer for step in model.plan().steps):
        if type(step).__name__ not in CONV_STEPS:
            continue
        for kind in ("forward", "backward"):

            def run(*arguments, _method=getattr(step, kind), _key=(index, kind), **options):
                start = clock()
                result = _method(*arguments, **options)
                spent[_key] = spent.get(_key, 0.0) + clock() - start
                return result

            setattr(step, kind, run)


def identical(name):
    models = [build(old_zoo, name), build(new_zoo, name)]
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.random((64, *models[0].input_shape), dtype=np.float32)
        x[:, :4] = 0  # blank bands: ties in the pooling windows
        y = rng.integers(0, models[0].output_shape[-1], 64)
        for model in models:
            model.train_on_batch(x, y)
    weights = [model.get_weights() for model in models]
    same = all(np.array_equal(a, b) for a, b in zip(*weights))
    predictions = [model.predict(x) for model in models]
    if same and np.array_equal(*predictions):
        return "yes"
    # Not bit-identical (a change that sums in another order): by how much, relative to each
    # weight array's largest entry, and in the predicted probabilities.
    apart = max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)) for a, b in zip(*weights))
    gap = float(np.abs(predictions[0] - predictions[1]).max())
    return f"NO (weights apart by {apart:.1e} of their largest entry, probabilities by {gap:.1e})"


for name in args.models:
    models, spent, steps, parts = {}, {}, {}, {}
    for version, zoo in (("old", old_zoo), ("new", new_zoo)):
        models[version] = build(zoo, name)
        spent[version], steps[version], parts[version] = {}, [], {}
        instrument(models[version], spent[version])
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, *models["old"].input_shape), dtype=np.float32)
    x[:, :6] = 0
    y = rng.integers(0, models["old"].output_shape[-1], args.batch_size)
    for model in models.values():
        for _ in range(3):  # warm-up: first-call allocations
            model.train_on_batch(x, y)
    for round_ in range(args.rounds):
        for version in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
            spent[version].clear()
            start = clock()
            for _ in range(args.steps):
                models[version].train_on_batch(x, y)
            steps[version].append((clock() - start) / args.steps * 1e3)
            for key, seconds in spent[version].items():
                parts[version].setdefault(key, []).append(seconds / args.steps * 1e3)
    old, new = min(steps["old"]), min(steps["new"])
    medians = statistics.median(steps["old"]), statistics.median(steps["new"])
    print(
        f"{name}: step old {old:.2f} ms, new {new:.2f} ms, new ÷ old {new / old:.3f} "
        f"(medians {medians[0]:.2f} / {medians[1]:.2f}); "
        f"bit-identical: {identical(name)}"
    )
    for key in sorted(parts["old"]):
        old_part, new_part = min(parts["old"][key]), min(parts["new"][key])
        print(
            f"  step {key[0]} {key[1]:<8} old {old_part:7.2f}  new {new_part:7.2f}  "
            f"new ÷ old {new_part / old_part:.3f}"
        )
    sys.stdout.flush()
shutil.rmtree(folder, ignore_errors=True)
