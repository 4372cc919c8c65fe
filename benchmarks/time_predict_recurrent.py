"""The lstm's predict, old against new, interleaved in one process: the inference loop of
another checkout's handnet/fast/recurrent.py (--old, main's by default) against this one's.

    python benchmarks/time_predict_recurrent.py [--old ../main] [--rounds 7] [--threads 1]

Two lstm zoo models with the same weights; the old one's LSTM runs the old module's
lstm_inference (z = x_t @ W + b projected first, the row layout), the new one this
checkout's. Each round times, old and new alternating: predict of 1,000 images at batch 1000,
200 single-image predicts (batch-1 latency), and (--train) a few training steps of batch 128.
One thread: CPU time (process_time); more: wall time. The best round counts.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from common import set_threads

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--old", default=str(Path(__file__).resolve().parents[2] / "main"))
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--singles", type=int, default=200)
parser.add_argument("--train", action="store_true", help="also time training steps")
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--json", default=None)
args = parser.parse_args()
set_threads(args.threads)

import numpy as np  # noqa: E402

import handnet as hn  # noqa: E402
from handnet.layers import LSTM  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

path = Path(args.old) / "handnet" / "fast" / "recurrent.py"
spec = importlib.util.spec_from_file_location("handnet.fast.old_recurrent", path)
old = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = old
spec.loader.exec_module(old)


def old_forward_inference(self, x, mask=None):
    """main's LSTM.forward_inference, with main's loop."""
    _, z = self.project_inputs(x)
    last, states = old.lstm_inference(
        z, self.params["recurrent_kernel"], self.skipped_steps(mask, x),
        workspace=self.workspace(), every_state=self.return_sequences,
    )
    return self.outputs(states) if self.return_sequences else last.copy()


def old_forward_for_backward(self, x, mask=None):
    x_steps, z = self.project_inputs(x, with_bias=False)
    self._skip = self.skipped_steps(mask, x)
    self._x_steps = x_steps
    self._cache = old.lstm_forward(
        z, self.params["recurrent_kernel"], self._skip, self.recurrent_activation,
        self.cell_activation, workspace=self.workspace(),
        input_bias=self.params["bias"] if self.use_bias else None,
    )
    return self.outputs(self._cache["states"])


class OldLSTM(LSTM):
    forward_inference = old_forward_inference
    forward_for_backward = old_forward_for_backward


def build(version):
    model = architectures.build("lstm", seed=0)
    model.compile(hn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.build()
    if version == "old":  # a class of its own, so that the threads' replicas keep the old loops
        model.layers[0].__class__ = OldLSTM
    return model


clock = time.process_time if args.threads == 1 else time.perf_counter
models = {version: build(version) for version in ("old", "new")}
rng = np.random.default_rng(0)
images = rng.random((1000, 28, 28), dtype=np.float32)
labels = rng.integers(0, 10, 128)
batch = images[:128]
outputs = {v: m.predict(images, batch_size=1000) for v, m in models.items()}
difference = float(np.abs(outputs["old"] - outputs["new"]).max())


def time_predict(model):
    start = clock()
    model.predict(images, batch_size=1000)
    return clock() - start


def time_singles(model):
    start = clock()
    for k in range(args.singles):
        model.predict(images[k : k + 1])
    return (clock() - start) / args.singles


def time_train(model):
    start = clock()
    for _ in range(args.steps):
        model.train_on_batch(batch, labels)
    return (clock() - start) / args.steps


measures = {"predict_1000_s": time_predict, "latency_s": time_singles}
if args.train:
    for model in models.values():
        model.train_on_batch(batch, labels)
    measures["train_step_s"] = time_train
best = {v: {k: float("inf") for k in measures} for v in models}
for round_ in range(args.rounds):
    order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
    for key, measure in measures.items():
        for version in order:
            best[version][key] = min(best[version][key], measure(models[version]))
result = {
    "threads": args.threads,
    "load_average_1min_after": os.getloadavg()[0],  # others' jobs on the same cores
    "clock": clock.__name__,
    "max_abs_difference_of_probabilities": difference,
    "old": best["old"],
    "new": best["new"],
    "ratio_new_over_old": {k: best["new"][k] / best["old"][k] for k in measures},
    "images_per_s": {v: 1000 / best[v]["predict_1000_s"] for v in models},
    "latency_ms": {v: 1000 * best[v]["latency_s"] for v in models},
}
print(json.dumps(result, indent=1))
if args.json:
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
