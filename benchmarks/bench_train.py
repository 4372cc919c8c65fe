"""Train the same networks in handnet, PyTorch and Keras, side by side in one run.

For each named architecture (handnet.zoo.architectures: mlp, cnn, lenet, lstm, vit, …) the
PyTorch and Keras twins are built from handnet's own layer list (benchmarks/twins.py); the vit,
a graph, has a PyTorch ViT of nn.MultiheadAttention blocks and, for Keras, its own export. All
three see the same random float32 images (speed does not depend on the pixels), batch size,
Adam(1e-3), a fresh shuffle each epoch, and the same thread count. A classifier trains on
cross-entropy with random labels; a reconstruction (the autoencoder, whose recipe's task is
"reconstruct") on the mean squared error with the images as their own targets, in all three.
Each measurement is repeated, interleaved across frameworks so that a noisy moment hits all of
them; the table shows the best time (the least disturbed), the median, and the ratio to
PyTorch's best.

Each framework runs in a process of its own (a worker this script starts, which takes one
command at a time: an epoch, a round of inference), with its own thread pools, which cannot
spin against another library's; the frameworks still take turns, command by command. handnet's
fit and predict ask glibc's malloc to keep freed memory (handnet.training.memory); the other
workers ask the same, so that the frameworks' code is compared on one allocator setting. With
``--others-as-shipped`` they keep glibc's defaults, as a PyTorch user gets them: on this
project's 2-core KVM machine (AMD EPYC, Zen 4) PyTorch's cnn then trained in 22.2 s an epoch
instead of 11.3, its arrays faulting their pages in again at every step (its predict of 1,000
images: 71,000 page faults).

With --steps S only S training steps are timed and the epoch time is extrapolated to
⌈60000 / batch⌉ steps (said in the table title): the S steps' time, plus the steps left at the
rate from the end of the first step to the end of the last (epoch_seconds), so that what a run
pays once is counted once. Then inference images/s at batch 1 and 1000
(best of INFERENCE_ROUNDS rounds in which the frameworks take turns; the batch-1 latency as
the mean of 200 calls in the best round and as the median call of all rounds), and, for
networks with convolutions or attention, the loop specification vs the vectorized forward
pass.

    python benchmarks/bench_train.py --models mlp cnn lenet lstm vit [--steps 80] [--repeats 3]
        [--json PATH] [--isa-cap avx2] [--others-as-shipped]

With --isa-cap avx2 every library runs its AVX2 kernels only (common.ISA_CAPS: an emulation
of an AVX2 CPU's code paths on this CPU's caches and clock), and the JSON names the kernels
that ran.
"""

import argparse
import math
import os
import statistics
import sys
import time

from common import add_isa_cap, cap_isa, best_of, print_table, set_threads, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument(
    "--steps", type=int, default=0, help="time this many steps and extrapolate (0: a full epoch)"
)
parser.add_argument("--frameworks", nargs="+", default=["handnet", "pytorch", "keras"])
parser.add_argument("--json")
parser.add_argument(
    "--others-as-shipped", action="store_true",
    help="leave PyTorch's and Keras's workers on glibc's default malloc, as their users get it "
    "(by default they too keep freed memory, as handnet's fit and predict ask: "
    "handnet.training.memory; the frameworks' code compared on one allocator setting)",
)
add_isa_cap(parser)
parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # FRAMEWORK MODEL: a worker
args = parser.parse_args()
set_threads(args.threads)
cap_isa(args.isa_cap)

import json  # noqa: E402
import subprocess  # noqa: E402

import cpu  # noqa: E402  (beside this script: names the machine)
import numpy as np  # noqa: E402
from twins import keras_twin, torch_input, torch_twin  # noqa: E402

import handnet as hn  # noqa: E402
from handnet.training import memory  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

EPOCH = 60000
batch = args.batch_size
steps_per_epoch = math.ceil(EPOCH / batch)
timed_steps = args.steps or steps_per_epoch
timed_samples = min(timed_steps * batch, EPOCH)


class StepClock(hn.callbacks.Callback):
    """Notes the time at the end of each training step, into ``ends``."""

    def __init__(self, ends):
        super().__init__()
        self.ends = ends

    def on_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def handnet_contender(name, x, y):
    """(epoch(ends), predict, the model): epoch trains one epoch over (x, y), appending the time
    at the end of each step to ``ends``."""
    model = architectures.build(name, seed=0)
    if reconstructs(name):
        model.compile(hn.optimizers.Adam(1e-3), "mean_squared_error", metrics=[])
    else:
        model.compile(hn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")

    def epoch(ends):
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=0, callbacks=[StepClock(ends)])

    return epoch, model.predict, model


def reconstructs(name):
    """Whether the architecture learns to redraw its input (targets = inputs, MSE)."""
    return architectures.get(name).training.task == "reconstruct"


def torch_contender(model, x, y, reconstruct=False):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = torch_twin(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt = torch_input(x)
    yt = xt if reconstruct else torch.from_numpy(y)
    loss = torch.nn.functional.mse_loss if reconstruct else torch.nn.functional.cross_entropy

    def epoch(ends):
        net.train()
        for index in torch.randperm(len(xt)).split(batch):
            optimizer.zero_grad()
            loss(net(xt[index]), yt[index]).backward()
            optimizer.step()
            ends.append(time.perf_counter())

    def predict(inputs):
        net.eval()
        with torch.inference_mode():
            outputs = net(torch_input(inputs))
            return (outputs if reconstruct else outputs.softmax(-1)).numpy()

    return epoch, predict


def keras_contender(model, x, y, reconstruct=False):
    import keras

    keras.utils.set_random_seed(0)
    twin = keras_twin(model)
    loss = "mean_squared_error" if reconstruct else "sparse_categorical_crossentropy"
    twin.compile(keras.optimizers.Adam(1e-3), loss)

    def epoch(ends):
        clock = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter())
        )
        twin.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=[clock])

    return epoch, lambda inputs: twin.predict(inputs, batch_size=len(inputs), verbose=0)


INFERENCE_ROUNDS = 5


def inference_round(predict, x):
    """One round of inference in a worker: 200 single images (each call timed), then one batch
    of 1000 -> {"singles": seconds, "calls": [seconds of each single], "thousand": seconds}."""
    singles = x[:200]
    calls = []
    start = time.perf_counter()
    for i in range(len(singles)):
        call = time.perf_counter()
        predict(singles[i : i + 1])
        calls.append(time.perf_counter() - call)
    singles_time = time.perf_counter() - start
    start = time.perf_counter()
    predict(x[:1000])
    return {"singles": singles_time, "calls": calls, "thousand": time.perf_counter() - start}


def inference_rates(workers, rounds=INFERENCE_ROUNDS):
    """{framework: (images/s one image at a time, images/s at batch 1000, the median ms of a
    single image's call)}: best of ``rounds`` rounds of inference_round, the frameworks taking
    turns round by round, so that a slow minute of the machine falls on all of them (timed one
    framework after the other, the batch-1 figures of one run moved by 1.4-2.2x against
    another's for both frameworks alike)."""
    answers = {framework: [] for framework in workers}
    for _ in range(rounds):
        for framework, worker in workers.items():
            answers[framework].append(worker.ask("infer"))
    return {
        framework: (
            200 / min(a["singles"] for a in done),
            1000 / min(a["thousand"] for a in done),
            1000 * statistics.median(c for a in done for c in a["calls"]),
        )
        for framework, done in answers.items()
    }


def spec_versus_fast(model, x):
    """Forward images/s of the loop specification (handnet.ops.*_spec) vs the layers' fast path.

    Conv2D, Conv2DTranspose, DepthwiseConv2D, MaxPooling2D and MultiHeadAttention (its scores,
    softmax and weighted sum; the projections are einsums) run their specs; every other layer
    (Dense, BatchNormalization, LayerNormalization, Add, …) has no loop spec here and runs its
    own forward, the same in both columns. The graph is walked node by node, so a layer list
    and the vit alike."""
    from handnet.ops import attention_spec, conv_spec, conv_transpose_spec, depthwise_spec
    from handnet.ops import pool_spec

    specs = {
        "Conv2D": conv_spec.conv2d_forward,
        "DepthwiseConv2D": depthwise_spec.depthwise_conv2d_forward,
    }

    def attention(layer, node, args):
        named = layer.split_inputs(args)
        if named["attention_mask"] is not None or node.options.get("use_causal_mask"):
            return layer.forward(args)  # masks: not timed as a spec here
        query, value = named["query"], named["value"]
        key = value if named["key"] is None else named["key"]
        p = layer.params

        def project(name, inputs, equation="ntd,dhk->nthk"):
            z = np.einsum(equation, inputs, p[f"{name}/kernel"])
            return z + p[f"{name}/bias"] if layer.use_bias else z

        o, _ = attention_spec.attention_forward(
            project("query", query), project("key", key), project("value", value)
        )
        return project("attention_output", o, "nthv,hvd->ntd")

    def spec_forward(inputs):
        values = {id(t): v for t, v in zip(model.input_tensors, model.as_inputs(inputs))}
        for node in model.nodes:
            layer, kind = node.layer, type(node.layer).__name__
            args = [values[id(t)] for t in node.inputs]
            if kind == "Conv2DTranspose":
                c = layer.get_config()
                z = conv_transpose_spec.conv2d_transpose_forward(
                    args[0],
                    layer.params["kernel"],
                    layer.params.get("bias"),
                    tuple(c["strides"]),
                    c["padding"],
                    c["output_padding"],
                    tuple(c["dilation_rate"]),
                )
                output = layer.activation.forward(z)
            elif kind in specs:  # Conv2D, DepthwiseConv2D: the same arguments
                c = layer.get_config()
                z = specs[kind](
                    args[0],
                    layer.params["kernel"],
                    layer.params.get("bias"),
                    tuple(c["strides"]),
                    c["padding"],
                    tuple(c["dilation_rate"]),
                )
                output = layer.activation.forward(z)
            elif kind == "MaxPooling2D":
                c = layer.get_config()
                output = pool_spec.max_pool2d_forward(
                    args[0], tuple(c["pool_size"]), tuple(c["strides"]), c["padding"]
                )
            elif kind == "MultiHeadAttention":
                output = attention(layer, node, args)
            else:
                output = layer.forward(args if node.takes_list or len(args) > 1 else args[0])
            values[id(node.outputs[0])] = output
        return values[id(model.output_tensors[0])]

    sample = x[:4]
    spec, _ = best_of(lambda: spec_forward(sample), 1)
    fast, _ = best_of(lambda: model.predict(sample), 5)
    np.testing.assert_allclose(spec_forward(sample), model.predict(sample), rtol=1e-4, atol=1e-5)
    return len(sample) / spec, len(sample) / fast


def data(name):
    """(x, y, 1000 images for inference) of architecture ``name``: random, the same in every
    worker (speed does not depend on the pixels)."""
    generator = np.random.default_rng(list(name.encode()))
    shape = architectures.get(name).input_shape
    x = generator.random((timed_samples, *shape), dtype=np.float32)
    y = x if reconstructs(name) else generator.integers(0, 10, timed_samples)
    return x, y, generator.random((1000, *shape), dtype=np.float32)


def serve(framework, name):
    """A worker's life: build ``framework``'s contender for architecture ``name``, then answer
    each command read from stdin with one JSON line: "epoch" (its seconds), "infer" (an
    inference_round), "spec" (spec_versus_fast), "kernels" (cpu.kernels_in_use). Anything a
    library prints goes to stderr; the answers have stdout to themselves."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def answer(value):
        answers.write(json.dumps(value) + "\n")
        answers.flush()

    x, y, infer_x = data(name)
    epoch, predict, model = handnet_contender(name, x, y)
    if not args.others_as_shipped:
        memory.keep_freed_memory()  # handnet's fit would; the others get the same
    if framework != "handnet":
        make = torch_contender if framework == "pytorch" else keras_contender
        try:
            epoch, predict = make(model, x, y, reconstruct=reconstructs(name))
        except ImportError as error:
            answer({"error": f"{error} (pip install torch keras)"})
            return
    answer({"ready": framework})
    for line in sys.stdin:
        command = line.strip()
        if command == "epoch":
            ends = []
            start = time.perf_counter()
            epoch(ends)
            answer({"seconds": time.perf_counter() - start, "ends": [t - start for t in ends]})
        elif command == "infer":
            answer(inference_round(predict, infer_x))
        elif command == "spec":
            answer(spec_versus_fast(model, infer_x))
        elif command == "kernels":
            answer(cpu.kernels_in_use())
        else:
            raise SystemExit(f"bench_train worker: unknown command {command!r}")


def epoch_seconds(answer):
    """Seconds of a whole epoch from a worker's timed run of ``timed_steps`` steps: the run,
    plus the steps it did not take at its steady rate (from the end of its first step to the
    end of its last). What a run pays once (handnet's forked processes and their first step,
    30-45 ms for the cnn) is so counted once, as in a real epoch, not once every S steps."""
    seconds, ends = answer["seconds"], answer["ends"]
    if len(ends) != timed_steps:
        raise SystemExit(f"a worker timed {len(ends)} steps, not {timed_steps}")
    if timed_steps >= steps_per_epoch or timed_steps < 2:
        return seconds * steps_per_epoch / timed_steps
    rate = (ends[-1] - ends[0]) / (timed_steps - 1)
    return seconds + (steps_per_epoch - timed_steps) * rate


class Worker:
    """A framework's process for one architecture (this script with --worker), asked one
    command at a time (see serve)."""

    def __init__(self, framework, name):
        self.framework, self.name = framework, name
        command = [sys.executable, os.path.abspath(__file__), *sys.argv[1:],
                   "--worker", framework, name]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.ready = self._read()

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.framework} worker for {self.name} stopped (see above)")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


if args.worker:
    serve(*args.worker)
    sys.exit()

machine = cpu.describe()
print(f"machine: {cpu.headline(machine)}")
report = {
    "machine": machine,
    "threads": args.threads,
    "batch_size": batch,
    "timed_steps": timed_steps,
    "frameworks_in": "a process each (bench_train.py's workers), taking turns",
    "freed_memory_kept_for": "handnet" if args.others_as_shipped else "all",
    "models": {},
}
kernels = {}
for name in args.models:
    workers = {}
    for framework in ("handnet", "pytorch", "keras"):
        if framework != "handnet" and framework not in args.frameworks:
            continue
        worker = Worker(framework, name)
        if "error" in worker.ready:
            print(f"{framework} skipped: {worker.ready['error']}", file=sys.stderr)
            worker.close()
            continue
        workers[framework] = worker
    for worker in workers.values():  # warm-up: allocations, lazy imports, first-call costs
        worker.ask("epoch")
    times = {framework: [] for framework in workers}
    for _ in range(args.repeats):
        for framework, worker in workers.items():
            times[framework].append(epoch_seconds(worker.ask("epoch")))
    reference = min(times.get("pytorch", times["handnet"]))
    rows = []
    rates = inference_rates(workers)
    for framework, samples in times.items():
        rate_1, rate_1000, median_ms = rates[framework]
        rows.append(
            {
                "framework": framework,
                "best": min(samples),
                "median": float(np.median(samples)),
                "ratio": min(samples) / reference,
                "infer_1": rate_1,
                "infer_1000": rate_1000,
                "latency_ms": 1000 / rate_1,
                "latency_median_ms": median_ms,
            }
        )
    title = (
        f"{name}: seconds per epoch of {EPOCH} images, batch {batch}, Adam, {args.threads} threads"
    )
    if timed_steps < steps_per_epoch:
        title += f" (extrapolated from {timed_steps} of {steps_per_epoch} steps, epoch_seconds)"
    print_table(
        title,
        rows,
        [
            ("framework", "framework", "{}"),
            ("best", "s/epoch", "{:.2f}"),
            ("median", "median", "{:.2f}"),
            ("ratio", "× PyTorch", "{:.2f}"),
            ("infer_1", "img/s @1", "{:,.0f}"),
            ("latency_ms", "ms @1", "{:.3f}"),
            ("latency_median_ms", "median ms @1", "{:.3f}"),
            ("infer_1000", "img/s @1000", "{:,.0f}"),
        ],
    )
    entry = {"rows": rows}
    specified = ("Conv2D", "Conv2DTranspose", "MultiHeadAttention")
    if any(type(layer).__name__ in specified for layer in architectures.build(name).layers):
        spec_rate, fast_rate = workers["handnet"].ask("spec")
        print(
            f"forward pass, loop spec {spec_rate:,.1f} img/s vs vectorized {fast_rate:,.0f} img/s "
            f"(×{fast_rate / spec_rate:,.0f})"
        )
        entry["spec_forward_img_s"], entry["fast_forward_img_s"] = spec_rate, fast_rate
    report["models"][name] = entry
    for worker in workers.values():
        kernels.update(worker.ask("kernels"))  # numpy's (every worker), torch's (its own)
        worker.close()
    sys.stdout.flush()
report["machine"]["kernels"] = kernels  # those that ran, the workers' (an ISA cap checked)
print(f"kernels that ran: {report['machine']['kernels']}")
write_json(args.json, report)
