"""The GEMM floor: how long one training step's own matrix products take alone, at the rate the
BLAS reaches on their exact shapes, against the step itself. Their ratio is handnet's overhead.

    python benchmarks/gemm_floor.py [--models mlp cnn lenet lstm] [--threads 1] [--json F]

For each network (handnet.zoo.architectures), batch 128, Adam, random data (the labels' cross-
entropy, or the mean squared error for a network that reconstructs its input):

1. **Record** (in a child process): handnet is imported with every ``a @ b`` of its source
   rewritten into a call that notes the operands (an import hook on handnet's modules, for
   this process only: handnet's code and its __pycache__ are untouched), and with np.matmul,
   np.dot, np.tensordot and np.einsum wrapped likewise. One training step (after two warm-up
   steps) is recorded: every product's kind, operand shapes, strides (a transposed operand is
   a transposed view, as handnet passed it), dtype and the thread it ran on.
2. **Time the products alone**, in this process: each distinct product, on operands of the
   recorded shapes and strides filled with random numbers, into a preallocated output (an
   allocation is the caller's cost, not the BLAS's), best of ``--repeats``. The floor is the
   sum over the step's products; when the step ran split (handnet.training.parallel: one part
   of the batch per core, BLAS on one thread each; recorded with the parts on threads, which
   run the products the parts' processes run), it is the largest per-thread sum, the products
   timed on one BLAS thread (the parts run side by side; two products at once on two cores
   may each run a little slower than alone, so this floor is slightly optimistic).
3. **Time the step**: the same step as in the model's training (the data-parallel split when
   ``--threads`` > 1 and the model splits: the parts in processes on Linux), best of
   ``--rounds`` means of ``--steps`` steps, alternating with the product timings so that both
   see the same machine. Products and step on the same clock: CPU time with one thread (as
   profile_step.py), else wall time.

With ``--im2col-products`` the child records the step with handnet.fast.winograd switched off:
the floor is then that of the products the im2col path runs (the same work as the layers'
formulas), against the step as it runs (Winograd's 3×3 convolutions do 2.25 times fewer
multiplications, so their own floor is lower and the plain ratio higher).

With ``--pytorch`` the PyTorch twin of the network (benchmarks/twins.py: the same layers, Adam,
the same batch, ``torch.set_num_threads(--threads)``) takes its training steps in the same
rounds, on the same clock, and the table adds its step time ÷ the same floor: how far a
framework of fused C++ kernels stands from these products (its own products are oneDNN's or
MKL's, which may run them faster or slower than NumPy's BLAS).

Check: the FLOPs recorded for the mlp and the lstm are compared with a count by hand from their
layers' shapes (printed, and in the JSON): a product the recorder missed would show there.
"""

import argparse
import ast
import builtins
import importlib.abc
import importlib.machinery
import json
import os
import subprocess
import sys
import threading
import time

from common import add_isa_cap, cap_isa, print_table, set_threads

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "lenet", "lstm"])
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--steps", type=int, default=5, help="training steps per timed round")
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--repeats", type=int, default=5, help="timings of each product per round")
parser.add_argument(
    "--clock", choices=["cpu", "wall"], default=None,
    help="cpu: process_time (the default with one thread: other jobs disturb it least); wall: "
    "perf_counter (the default with more threads, where CPU time would add the threads up)",
)
parser.add_argument(
    "--im2col-products", action="store_true",
    help="the floor of the products the im2col path would run (Winograd's 3×3 convolutions "
    "switched off while recording); the step itself is timed as it runs",
)
parser.add_argument(
    "--pytorch", action="store_true",
    help="time the PyTorch twin's step in the same rounds: its step ÷ the same floor",
)
parser.add_argument("--json", default=None)
add_isa_cap(parser)
parser.add_argument("--record", default=None, help=argparse.SUPPRESS)  # the child's model
args = parser.parse_args()
set_threads(args.threads)
cap_isa(args.isa_cap)
if args.clock is None:
    args.clock = "cpu" if args.threads == 1 else "wall"
clock = time.process_time if args.clock == "cpu" else time.perf_counter


# -- 1. the recorder (runs in the child) ------------------------------------------------------
class MatmulToCall(ast.NodeTransformer):
    """a @ b  ->  __gemm_floor_matmul__(a, b)."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.MatMult):
            return node
        call = ast.Call(ast.Name("__gemm_floor_matmul__", ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node):
        if isinstance(node.op, ast.MatMult):
            raise NotImplementedError("gemm_floor cannot record `@=`; write it as a = a @ b")
        return self.generic_visit(node)


class RewritingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):  # always from source: no cached bytecode read or written
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)

    def source_to_code(self, data, path, *, _optimize=-1):
        tree = ast.fix_missing_locations(MatmulToCall().visit(ast.parse(data, filename=path)))
        return compile(tree, path, "exec", dont_inherit=True)


class HandnetFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "handnet" and not name.startswith("handnet."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = RewritingLoader(spec.loader.name, spec.loader.path)
        return spec


class Recorder:
    def __init__(self, np):
        self.np, self.on, self.records, self.threads = np, False, [], {}

    def operand(self, array):
        array = self.np.asarray(array)
        return {"shape": list(array.shape), "strides": list(array.strides),
                "dtype": array.dtype.str, "itemsize": array.itemsize}

    def note(self, kind, operands, out=None, extra=None):
        if not self.on:
            return
        thread = self.threads.setdefault(threading.get_ident(), len(self.threads))
        record = {"kind": kind, "operands": [self.operand(a) for a in operands], "thread": thread}
        if out is not None:
            record["out"] = self.operand(out)
        record.update(extra or {})
        self.records.append(record)

    def install(self):
        np, original = self.np, {}
        for name in ("matmul", "dot", "tensordot", "einsum"):
            original[name] = getattr(np, name)

        def matmul(a, b, /, out=None, **options):
            self.note("matmul", (a, b), out)
            return original["matmul"](a, b, out=out, **options)

        def dot(a, b, out=None):
            self.note("dot", (a, b), out)
            return original["dot"](a, b, out=out)

        def tensordot(a, b, axes=2):
            self.note("tensordot", (a, b), extra={"axes": _jsonable(axes)})
            return original["tensordot"](a, b, axes)

        def einsum(*operands, **options):
            subscripts, arrays = operands[0], operands[1:]
            if not isinstance(subscripts, str):
                raise NotImplementedError("gemm_floor records einsum with a subscripts string")
            self.note("einsum", arrays, extra={"subscripts": subscripts,
                                              "optimize": _jsonable(options.get("optimize"))})
            return original["einsum"](*operands, **options)

        def operator(a, b):
            self.note("matmul", (a, b))
            return a @ b

        np.matmul, np.dot, np.tensordot, np.einsum = matmul, dot, tensordot, einsum
        builtins.__gemm_floor_matmul__ = operator


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record_one_step(name):
    """The child: every product of one training step of ``name``, as JSON on stdout. The
    parts run on threads here (HANDNET_SPLIT=threads), so that the recorder sees all of them:
    the same products a part as in its process (handnet.training.parallel.ProcessSplitter)."""
    os.environ["HANDNET_SPLIT"] = "threads"
    sys.meta_path.insert(0, HandnetFinder())
    import numpy as np

    recorder = Recorder(np)
    recorder.install()
    if args.im2col_products:
        from handnet.fast import winograd

        winograd.applies = winograd.applies_plain = lambda *shape, **options: False
    model, step, _ = make_step(name)
    for _ in range(2):
        step()
    recorder.on = True
    step()
    recorder.on = False
    counted = hand_count(model, args.batch_size)
    print(json.dumps({"records": recorder.records, "hand_count_flops": counted}))


# -- the step (child and parent) ---------------------------------------------------------
def make_step(name):
    """(model, one training step as a function, a context to close) for architecture ``name``."""
    import numpy as np

    from handnet.training import memory, parallel
    from handnet.zoo import architectures

    memory.keep_freed_memory()  # as fit does
    model = architectures.build(name, seed=0)
    reconstruct = architectures.get(name).training.task == "reconstruct"  # the autoencoder
    loss = "mean_squared_error" if reconstruct else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    model.build()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, *model.input_shape), dtype=np.float32)
    y = x if reconstruct else rng.integers(0, model.output_shape[-1], args.batch_size)
    split = parallel.splitter(model, args.threads, batch_size=args.batch_size)
    split.__enter__()

    def step():
        split.compute_gradients([x], [y])
        model.optimizer.apply(model.trainable_variables())

    return model, step, split


def torch_step(name, model):
    """One training step of the PyTorch twin of ``model`` (architecture ``name``): Adam,
    cross-entropy or MSE, on random data of the batch size; a function of no arguments."""
    import numpy as np
    import torch

    from handnet.zoo import architectures
    from twins import torch_input, torch_twin

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = torch_twin(model)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = torch_input(rng.random((args.batch_size, *model.input_shape), dtype=np.float32))
    if architectures.get(name).training.task == "reconstruct":
        y, loss = x, torch.nn.functional.mse_loss
    else:
        y = torch.from_numpy(rng.integers(0, model.output_shape[-1], args.batch_size))
        loss = torch.nn.functional.cross_entropy

    def step():
        optimizer.zero_grad()
        loss(net(x), y).backward()
        optimizer.step()

    return step


def hand_count(model, batch):
    """FLOPs of one step's products counted from the layers' shapes (2 per multiply-add), for
    models of Dense and LSTM layers and layers without products; None for any other."""
    from handnet.layers import LSTM, Dense, Dropout, Flatten, Input

    total = 0
    for layer in model.layers:
        if isinstance(layer, Dense):
            inputs, units = layer.params["kernel"].shape
            passes = 3 if layer.needs_input_gradient else 2  # z, dW (and dx)
            total += passes * 2 * batch * inputs * units
        elif isinstance(layer, LSTM):
            # handnet.fast.recurrent's training loop: a step's product is [h; x_t; 1]·[R; W; b]
            # (the bias a row of the product), the first step's without h R (h_0 = 0); the
            # backward's dh = dz Rᵀ every step but the first (dh_0 goes nowhere), then one
            # product for [dR; dW; db] over all.
            (steps, features), units = layer.input_shape, layer.units
            width = 4 * units
            per_step = 2 * batch * width  # FLOPs per input row of a step's product
            forward = per_step * (steps * (features + 1) + (steps - 1) * units)
            weight_gradients = per_step * steps * (units + features + 1)
            dh = per_step * (steps - 1) * units
            dx = per_step * steps * features if layer.needs_input_gradient else 0
            total += forward + weight_gradients + dh + dx
        elif not isinstance(layer, (Dropout, Flatten, Input)):
            return None
    return total


# -- 2. the products alone (parent) -----------------------------------------------------------
def product_flops(record):
    """2 × multiply-adds of a matmul/dot; None for tensordot/einsum (timed, not counted)."""
    import numpy as np

    if record["kind"] not in ("matmul", "dot"):
        return None
    a, b = (r["shape"] for r in record["operands"])
    if not a or not b:
        return None
    if record["kind"] == "dot" and (len(a) > 2 or len(b) > 2):
        return 2 * int(np.prod(a)) * int(np.prod(b[:-2] + b[-1:]))
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    batch = np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2]))
    return 2 * int(np.prod(batch)) * a2[-2] * a2[-1] * b2[-1]


def strided_array(np, rng, spec):
    """An array of the recorded shape, strides and dtype, over random numbers."""
    dtype = np.dtype(spec["dtype"])
    shape, strides = spec["shape"], spec["strides"]
    if any(s < 0 for s in strides):
        return rng.standard_normal(shape).astype(dtype)
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides)) // dtype.itemsize
    base = rng.standard_normal(max(span, 1)).astype(dtype)
    return np.lib.stride_tricks.as_strided(base, shape, strides)


def layout(spec):
    """"C", "T" (the transpose of a C-ordered array) or "strided", for the table."""
    shape, strides = spec["shape"], spec["strides"]
    item = spec["itemsize"]
    expected, size = [], item
    for n in reversed(shape):
        expected.insert(0, size)
        size *= n
    if strides == expected or len(shape) < 2:
        return "C"
    if len(shape) == 2 and strides == [item, shape[0] * item]:
        return "T"
    return "strided"


def signature(record):
    return json.dumps({k: v for k, v in record.items() if k != "thread"}, sort_keys=True)


def product_runner(np, rng, record):
    """A function that runs the recorded product alone on fresh operands of its layout."""
    operands = [strided_array(np, rng, spec) for spec in record["operands"]]
    kind = record["kind"]
    if kind in ("matmul", "dot"):
        function = np.matmul if kind == "matmul" else np.dot
        if "out" in record:
            out = strided_array(np, rng, record["out"])
        else:
            out = np.asarray(function(*operands))
            out = np.empty_like(out, order="C")
        return lambda: function(*operands, out=out)
    if kind == "tensordot":
        axes = record["axes"]
        return lambda: np.tensordot(*operands, axes)
    optimize = record.get("optimize") or False
    return lambda: np.einsum(record["subscripts"], *operands, optimize=optimize)


def best_time(function, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best


def measure(name):
    import numpy as np
    from threadpoolctl import threadpool_limits

    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--record", name,
         "--threads", str(args.threads), "--batch-size", str(args.batch_size),
         *(["--im2col-products"] if args.im2col_products else [])],
        capture_output=True, text=True, check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"recording {name} failed:\n{child.stderr[-3000:]}")
    recorded = json.loads(child.stdout.strip().splitlines()[-1])
    records = recorded["records"]
    threads_used = len({r["thread"] for r in records})
    distinct = {}
    for record in records:
        entry = distinct.setdefault(signature(record), {"record": record, "per_thread": {}})
        entry["per_thread"][record["thread"]] = entry["per_thread"].get(record["thread"], 0) + 1
    rng = np.random.default_rng(0)
    runners = {key: product_runner(np, rng, entry["record"]) for key, entry in distinct.items()}
    blas_threads = 1 if threads_used > 1 else args.threads
    product_best = {key: float("inf") for key in distinct}

    model, step, split = make_step(name)
    twin = torch_step(name, model) if args.pytorch else None
    for _ in range(3):
        step()
        if twin is not None:
            twin()
    step_best = twin_best = float("inf")
    for _ in range(args.rounds):
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            for key, run in runners.items():
                run()
                product_best[key] = min(product_best[key], best_time(run, args.repeats))
        start = clock()
        for _ in range(args.steps):
            step()
        step_best = min(step_best, (clock() - start) / args.steps)
        if twin is not None:
            start = clock()
            for _ in range(args.steps):
                twin()
            twin_best = min(twin_best, (clock() - start) / args.steps)
    split.__exit__(None, None, None)

    per_thread = {}
    products = []
    for key, entry in distinct.items():
        record, seconds = entry["record"], product_best[key]
        for thread, count in entry["per_thread"].items():
            per_thread[thread] = per_thread.get(thread, 0.0) + count * seconds
        flops = product_flops(record)
        products.append({
            "kind": record["kind"],
            "operands": [
                {"shape": s["shape"], "layout": layout(s), "dtype": s["dtype"]}
                for s in record["operands"]
            ],
            "count": sum(entry["per_thread"].values()),
            "flops": flops,
            "seconds": seconds,
            "gflops": None if flops is None else round(flops / seconds / 1e9, 1),
        })
    floor = max(per_thread.values()) if per_thread else 0.0
    recorded_flops = sum((p["flops"] or 0) * p["count"] for p in products)
    counted = recorded["hand_count_flops"]
    return {
        "model": name,
        "products_of": "im2col" if args.im2col_products else "the step",
        "batch_size": args.batch_size,
        "threads": args.threads,
        "parts": threads_used,
        "step_ms": step_best * 1e3,
        "floor_ms": floor * 1e3,
        "ratio": step_best / floor if floor else float("nan"),
        "pytorch_step_ms": twin_best * 1e3 if twin is not None else None,
        "pytorch_ratio": twin_best / floor if twin is not None and floor else None,
        "products_per_step": len(records),
        "recorded_gflop": recorded_flops / 1e9,
        "hand_count_gflop": None if counted is None else counted / 1e9,
        "floor_gflops": recorded_flops / max(threads_used, 1) / floor / 1e9 if floor else None,
        "products": sorted(products, key=lambda p: -p["seconds"] * p["count"]),
    }


def main():
    if args.record:
        record_one_step(args.record)
        return
    import cpu

    machine = cpu.describe()
    print(cpu.headline(machine))
    results = [measure(name) for name in args.models]
    rows = [
        {**r, "hand": "-" if r["hand_count_gflop"] is None else f"{r['hand_count_gflop']:.4f}"}
        for r in results
    ]
    twin_columns = [
        ("pytorch_step_ms", "PyTorch step ms", "{:.2f}"),
        ("pytorch_ratio", "PyTorch ÷ floor", "{:.2f}"),
    ] if args.pytorch else []
    print_table(
        f"GEMM floor, batch {args.batch_size}, {args.threads} thread(s), {args.clock} time: "
        "step ÷ floor",
        rows,
        [("model", "model", "{}"), ("parts", "parts", "{}"), ("step_ms", "step ms", "{:.2f}"),
         ("floor_ms", "floor ms", "{:.2f}"), ("ratio", "step ÷ floor", "{:.2f}"),
         *twin_columns, ("products_per_step", "products", "{}"),
         ("recorded_gflop", "GFLOP rec.", "{:.4f}"),
         ("hand", "GFLOP hand", "{}"), ("floor_gflops", "GFLOP/s at floor", "{:.1f}")],
    )
    for result in results:
        print(f"\n{result['model']}: the largest products (all parts together)")
        for p in result["products"][:6]:
            shapes = " · ".join(
                f"{tuple(o['shape'])}{'ᵀ' if o['layout'] == 'T' else ''}" for o in p["operands"]
            )
            rate = "" if p["gflops"] is None else f"{p['gflops']:7.1f} GFLOP/s"
            print(f"  {p['count']:4d} × {p['kind']:<8} {shapes:<34} "
                  f"{p['seconds'] * 1e3:8.3f} ms {rate}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"machine": machine, "args": vars(args), "results": results}, file, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
