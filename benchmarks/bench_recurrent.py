"""LSTM and GRU forward + backward, the buffered step loops (handnet.fast.recurrent) against the
specification's (handnet.ops.recurrent_spec), interleaved in one process.

    python benchmarks/bench_recurrent.py [--batch 128 64] [--rounds 7] [--repeats 10]

At the lstm zoo model's shapes by default: 28 steps of 28 features, 128 units; batch 128 (one
thread on the whole batch) and 64 (one part of the two-thread data-parallel split). One
BLAS thread; CPU time (process_time), which other jobs on a shared machine disturb least. Each
round times ``--repeats`` forward + backward passes of each version; the best round counts.
The layer's own input-gradient product (dx) is included, as in a stacked model. Both versions
run in the layer as it is now (its input projection and x_steps in the reused workspace), so
this compares the step loops alone; profile_step.py on an older checkout shows the rest.
"""

import argparse
import json
import time

from common import set_threads

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--batch", type=int, nargs="+", default=[128, 64])
parser.add_argument("--timesteps", type=int, default=28)
parser.add_argument("--features", type=int, default=28)
parser.add_argument("--units", type=int, default=128)
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--repeats", type=int, default=10)
parser.add_argument("--json", default=None)
args = parser.parse_args()
set_threads(1)

import numpy as np  # noqa: E402

import cpu  # noqa: E402
from handnet.fast import recurrent as fast  # noqa: E402
from handnet.layers import GRU, LSTM  # noqa: E402
from handnet.layers import gru as gru_module  # noqa: E402
from handnet.layers import lstm as lstm_module  # noqa: E402
from handnet.ops import recurrent_spec as spec  # noqa: E402

MODULES = {LSTM: lstm_module, GRU: gru_module}


class Specification:
    """The specification's loops under the fast path's names (they take no workspace, and z
    with its bias already added)."""

    @staticmethod
    def fused_kernels_apply(sigma, tanh):  # the LSTM layer then runs lstm_forward below
        return False

    @staticmethod
    def lstm_forward(z, *arguments, workspace=None, input_bias=None):
        if input_bias is not None:
            z += input_bias
        return spec.lstm_forward(z, *arguments)

    @staticmethod
    def lstm_backward(*arguments, workspace=None):
        return spec.lstm_backward(*arguments)

    @staticmethod
    def gru_forward(pre, *arguments, workspace=None, input_bias=None):
        if input_bias is not None:
            pre += input_bias
        return spec.gru_forward(pre, *arguments)

    @staticmethod
    def gru_backward(*arguments, workspace=None):
        return spec.gru_backward(*arguments)


def forward_backward(layer, x, dy, implementation):
    """One forward and backward pass with the step loops of ``implementation``."""
    MODULES[type(layer)].recurrent = implementation
    try:
        layer.forward(x, training=True)
        layer.backward(dy)
    finally:
        MODULES[type(layer)].recurrent = fast


def measure(layer_class, batch):
    rng = np.random.default_rng(0)
    layer = layer_class(args.units)
    layer.build((args.timesteps, args.features), rng)
    x = rng.random((batch, args.timesteps, args.features), dtype=np.float32)
    dy = rng.standard_normal((batch, args.units), dtype=np.float32)
    versions = {"spec": Specification, "fast": fast}
    best = {name: float("inf") for name in versions}
    for name, implementation in versions.items():  # warm-up
        forward_backward(layer, x, dy, implementation)
    for _ in range(args.rounds):
        for name, implementation in versions.items():
            start = time.process_time()
            for _ in range(args.repeats):
                forward_backward(layer, x, dy, implementation)
            best[name] = min(best[name], (time.process_time() - start) / args.repeats)
    return best


machine = cpu.describe()
print(cpu.headline(machine))
rows = []
for layer_class in (LSTM, GRU):
    for batch in args.batch:
        best = measure(layer_class, batch)
        row = {
            "layer": layer_class.__name__, "batch": batch,
            "spec_ms": round(best["spec"] * 1e3, 2), "fast_ms": round(best["fast"] * 1e3, 2),
            "speedup": round(best["spec"] / best["fast"], 2),
        }
        rows.append(row)
        print(
            f"{row['layer']:<5} batch {batch:>4}: spec {row['spec_ms']:7.2f} ms, "
            f"fast {row['fast_ms']:7.2f} ms  (×{row['speedup']})"
        )
if args.json:
    with open(args.json, "w") as file:
        json.dump({"machine": machine, "args": vars(args), "rows": rows}, file, indent=2)
