"""Where the time of the LSTM's predict goes, call by call: handnet.fast.recurrent's
lstm_inference rerun with a clock around each NumPy call of its step loop.

    python benchmarks/profile_predict_recurrent.py [--batch 256 1] [--rounds 7]

The lstm zoo model's shapes (28 steps of 28 features, 128 units) by default, random weights;
one BLAS thread, CPU time (process_time); the best round of each call counts (µs a step, and
the share of the pass). The weights' copy and x's transposed copy are timed as "setup".
"""

import argparse
import time

from common import set_threads

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--batch", type=int, nargs="+", default=[256, 1])
parser.add_argument("--timesteps", type=int, default=28)
parser.add_argument("--features", type=int, default=28)
parser.add_argument("--units", type=int, default=128)
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--repeats", type=int, default=20)
args = parser.parse_args()
set_threads(1)

import numpy as np  # noqa: E402

from handnet.fast import recurrent as fast  # noqa: E402

clock = time.process_time
LABELS = ["product", "tanh(z)", "σ: × 1/2", "σ: + 1/2", "[i f]·[g; c]", "c_t", "tanh(c_t)",
          "h_t"]


def profiled_pass(x, kernel, recurrent_kernel, bias, space, spent):
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    start = clock()
    plan = space.plan(fast.LSTMInference, (timesteps, batch, features, units), x.dtype, False)
    fast.lstm_inference_weights(kernel, recurrent_kernel, bias, plan.weights)
    np.copyto(plan.inputs, x.transpose(1, 2, 0))
    plan.cells[0].fill(0)
    spent["setup"] += clock() - start
    half = plan.half
    for t, (source, z, sigmoid, i_f, g_c, pair, kept_part, input_part, cell, tanh_cell, o,
            state, _, _) in enumerate(plan.steps):  # fmt: skip
        calls = (
            lambda: np.matmul(plan.product_all if t else plan.product_first, source, out=z),
            lambda: np.tanh(z, z),
            lambda: np.multiply(sigmoid, half, sigmoid),
            lambda: np.add(sigmoid, half, sigmoid),
            lambda: np.multiply(i_f, g_c, pair),
            lambda: np.add(kept_part, input_part, cell),
            lambda: np.tanh(cell, tanh_cell),
            lambda: np.multiply(o, tanh_cell, state),
        )
        for label, call in zip(LABELS, calls):
            start = clock()
            call()
            spent[label] += clock() - start
    return plan.last


rng = np.random.default_rng(0)
units, features, timesteps = args.units, args.features, args.timesteps
kernel = rng.normal(0, 0.2, (features, 4 * units)).astype(np.float32)
recurrent_kernel = rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)).astype(np.float32)
bias = rng.normal(0, 0.1, 4 * units).astype(np.float32)
for batch in args.batch:
    x = rng.random((batch, timesteps, features), dtype=np.float32)
    space = fast.Workspace()
    reference = fast.lstm_inference(x, kernel, recurrent_kernel, bias, None, space)[0].copy()
    best = None
    for _ in range(args.rounds):
        spent = dict.fromkeys(["setup", *LABELS], 0.0)
        for _ in range(args.repeats):
            last = profiled_pass(x, kernel, recurrent_kernel, bias, space, spent)
        assert np.array_equal(last, reference)
        best = spent if best is None else {k: min(best[k], spent[k]) for k in spent}
    start = clock()
    for _ in range(args.repeats):
        fast.lstm_inference(x, kernel, recurrent_kernel, bias, None, space)
    whole = (clock() - start) / args.repeats
    total = sum(best.values()) / args.repeats
    print(f"\nbatch {batch}: {1e3 * whole:.3f} ms a pass unprofiled, {1e3 * total:.3f} ms "
          f"profiled (the clock's own calls included)")
    for label, seconds in best.items():
        per = seconds / args.repeats / (1 if label == "setup" else timesteps)
        unit = "a pass" if label == "setup" else "a step"
        share = 100 * seconds / sum(best.values())
        print(f"  {label:14s} {1e6 * per:9.1f} µs {unit}  {share:5.1f} %")
