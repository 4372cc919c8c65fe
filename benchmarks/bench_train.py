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

With --steps S only S training steps are timed and the epoch time is extrapolated to
⌈60000 / batch⌉ steps (said in the table title). Then inference images/s at batch 1 and 1000
(best of INFERENCE_ROUNDS rounds in which the frameworks take turns; the batch-1 latency as
the mean of 200 calls in the best round and as the median call of all rounds), and, for
networks with convolutions or attention, the loop specification vs the vectorized forward
pass.

    python benchmarks/bench_train.py --models mlp cnn lenet lstm vit [--steps 80] [--repeats 3]
        [--json PATH] [--isa-cap avx2]

With --isa-cap avx2 every library runs its AVX2 kernels only (common.ISA_CAPS: an emulation
of an AVX2 CPU's code paths on this CPU's caches and clock), and the JSON names the kernels
that ran.
"""

import argparse
import math
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
add_isa_cap(parser)
args = parser.parse_args()
set_threads(args.threads)
cap_isa(args.isa_cap)

import cpu  # noqa: E402  (beside this script: names the machine)
import numpy as np  # noqa: E402
from twins import keras_twin, torch_input, torch_twin  # noqa: E402

import handnet as hn  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

EPOCH = 60000
batch = args.batch_size
steps_per_epoch = math.ceil(EPOCH / batch)
timed_steps = args.steps or steps_per_epoch
timed_samples = min(timed_steps * batch, EPOCH)
rng = np.random.default_rng(0)


def handnet_contender(name, x, y):
    model = architectures.build(name, seed=0)
    if reconstructs(name):
        model.compile(hn.optimizers.Adam(1e-3), "mean_squared_error", metrics=[])
    else:
        model.compile(hn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return (
        (lambda: model.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=0)),
        model.predict,
        model,
    )


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

    def epoch():
        net.train()
        for index in torch.randperm(len(xt)).split(batch):
            optimizer.zero_grad()
            loss(net(xt[index]), yt[index]).backward()
            optimizer.step()

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
    return (
        lambda: twin.fit(x, y, batch_size=batch, epochs=1, verbose=0),
        lambda inputs: twin.predict(inputs, batch_size=len(inputs), verbose=0),
    )


INFERENCE_ROUNDS = 5


def inference_rates(predictors, x, rounds=INFERENCE_ROUNDS):
    """{framework: (images/s one image at a time, images/s at batch 1000, the median ms of a
    single image's call)}: 200 single images then one batch of 1000, best of ``rounds``, the
    frameworks taking turns round by round, so that a slow minute of the machine falls on all
    of them (timed one framework after the other, the batch-1 figures of one run moved by
    1.4-2.2x against another's for both frameworks alike)."""
    singles = x[:200]
    ones = {framework: [] for framework in predictors}
    thousands = {framework: [] for framework in predictors}
    calls = {framework: [] for framework in predictors}
    for _ in range(rounds):
        for framework, predict in predictors.items():
            start = time.perf_counter()
            for i in range(len(singles)):
                call = time.perf_counter()
                predict(singles[i : i + 1])
                calls[framework].append(time.perf_counter() - call)
            ones[framework].append(time.perf_counter() - start)
            start = time.perf_counter()
            predict(x[:1000])
            thousands[framework].append(time.perf_counter() - start)
    return {
        framework: (
            len(singles) / min(ones[framework]),
            1000 / min(thousands[framework]),
            1000 * statistics.median(calls[framework]),
        )
        for framework in predictors
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


machine = cpu.describe()
print(f"machine: {cpu.headline(machine)}")
report = {
    "machine": machine,
    "threads": args.threads,
    "batch_size": batch,
    "timed_steps": timed_steps,
    "models": {},
}
for name in args.models:
    shape = architectures.get(name).input_shape
    x = rng.random((timed_samples, *shape), dtype=np.float32)
    y = x if reconstructs(name) else rng.integers(0, 10, timed_samples)
    epoch_fns, predictors = {}, {}
    handnet_epoch, handnet_predict, model = handnet_contender(name, x, y)
    epoch_fns["handnet"], predictors["handnet"] = handnet_epoch, handnet_predict
    for framework, make in (("pytorch", torch_contender), ("keras", keras_contender)):
        if framework not in args.frameworks:
            continue
        try:
            epoch_fns[framework], predictors[framework] = make(
                model, x, y, reconstruct=reconstructs(name)
            )
        except ImportError as error:
            print(f"{framework} skipped: {error} (pip install torch keras)", file=sys.stderr)
    for function in epoch_fns.values():  # warm-up: allocations, lazy imports, first-call costs
        function()
    times = {framework: [] for framework in epoch_fns}
    for _ in range(args.repeats):
        for framework, function in epoch_fns.items():
            start = time.perf_counter()
            function()
            times[framework].append((time.perf_counter() - start) * steps_per_epoch / timed_steps)
    reference = min(times.get("pytorch", times["handnet"]))
    infer_x = rng.random((1000, *shape), dtype=np.float32)
    rows = []
    rates = inference_rates(predictors, infer_x)
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
        title += f" (extrapolated from {timed_steps} of {steps_per_epoch} steps)"
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
    if any(type(layer).__name__ in specified for layer in model.layers):
        spec_rate, fast_rate = spec_versus_fast(model, infer_x)
        print(
            f"forward pass, loop spec {spec_rate:,.1f} img/s vs vectorized {fast_rate:,.0f} img/s "
            f"(×{fast_rate / spec_rate:,.0f})"
        )
        entry["spec_forward_img_s"], entry["fast_forward_img_s"] = spec_rate, fast_rate
    report["models"][name] = entry
    sys.stdout.flush()
report["machine"]["kernels"] = cpu.kernels_in_use()  # now with torch's, imported by the twins
print(f"kernels that ran: {report['machine']['kernels']}")
write_json(args.json, report)
