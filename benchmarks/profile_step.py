"""Where the time of one training step goes: per layer (forward and backward), then per function.

    python benchmarks/profile_step.py [--model cnn] [--threads 1] [--steps 10] [--rounds 5]

A handnet architecture (handnet.zoo.architectures) trains on random images at batch 128 with Adam.
Each execution step (a layer, or a Conv2D and its MaxPooling2D fused, see handnet.layers.fused)
is timed forward and backward; the table shows the round with the fastest step.  With one
thread the times are the process's CPU time, which other jobs on a shared machine disturb
least; with more threads, wall time.  Then cProfile's top functions by own time.
"""

import argparse
import cProfile
import pstats
import time

from common import set_threads

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="cnn")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--steps", type=int, default=10, help="training steps per round")
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--functions", type=int, default=15, help="cProfile rows to show (0: none)")
args = parser.parse_args()
set_threads(args.threads)

# After set_threads: BLAS reads its thread count when NumPy is first imported.
import numpy as np  # noqa: E402

from handnet.training import memory  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

memory.keep_freed_memory()  # as fit does: each step's arrays reuse the last step's pages

clock = time.process_time if args.threads == 1 else time.perf_counter
model = architectures.build(args.model, seed=0)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.build()
rng = np.random.default_rng(0)
x = rng.random((args.batch_size, *model.input_shape), dtype=np.float32)
y = rng.integers(0, model.output_shape[-1], args.batch_size)

spent = {}


def timed(label, method):
    def run(*arguments, **options):
        start = clock()
        result = method(*arguments, **options)
        spent[label] = spent.get(label, 0.0) + clock() - start
        return result

    return run


# The model runs the steps of its execution plan (handnet.model.plan): a Conv2D and the
# MaxPooling2D right after it are one step (handnet.layers.fused), as are consecutive warp
# layers. Each step's layer gets timed methods as instance attributes, which the plan calls.
plan = model.plan(input_gradient=False)
steps = [step.layer for step in plan.steps]
for step in steps:
    if hasattr(step, "conv"):
        name = f"{step.conv.name} + {step.pool.name}"
    elif hasattr(step, "warps"):
        name = " + ".join(warp.name for warp in step.warps)
    else:
        name = step.name
    step.forward = timed(f"{name} forward", step.forward)
    step.backward = timed(f"{name} backward", step.backward)
last = steps[-1]
last.backward_pre_activation = timed(f"{last.name} backward", last.backward_pre_activation)
model.loss.logits_gradient = timed("loss gradient", model.loss.logits_gradient)
model.optimizer.apply = timed("optimizer (Adam)", model.optimizer.apply)

for _ in range(3):  # warm-up: first-call allocations
    model.train_on_batch(x, y)
best = None
for _ in range(args.rounds):
    spent.clear()
    start = clock()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    step_time = (clock() - start) / args.steps
    if best is None or step_time < best[0]:
        best = (step_time, {label: t / args.steps for label, t in spent.items()})

step_time, parts = best
kind = "CPU time, 1 thread" if args.threads == 1 else f"wall time, {args.threads} threads"
print(
    f"{args.model}: {step_time * 1e3:.1f} ms per training step at batch {args.batch_size} ({kind})"
)
parts["(the rest: loss, glue)"] = step_time - sum(parts.values())
for label, seconds in parts.items():
    print(f"  {label:<40} {seconds * 1e3:7.2f} ms  {seconds / step_time:6.1%}")

if args.functions:
    profile = cProfile.Profile(timer=clock)
    profile.runcall(lambda: [model.train_on_batch(x, y) for _ in range(args.steps)])
    print(f"\ncProfile, {args.steps} steps, by own time:")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.functions)
