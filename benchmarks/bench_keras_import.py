"""Inference speed of an imported Keras model: handnet vs Keras ``predict`` vs PyTorch.

The network is Keras's mnist_convnet example (Conv 32 → MaxPool → Conv 64 → MaxPool → Flatten
→ Dropout 0.5 → Dense 10 softmax), built and saved by Keras (untrained: speed does not depend
on the weights), read back with ``handnet.from_keras``. The PyTorch twin (benchmarks/twins.py)
gets the same weights, and all three are first checked to give the same outputs. Then each
classifies the same random images at batch 1000 and at batch 1, with the same thread count;
each measurement is repeated, interleaved across frameworks, and the best time is kept.

Keras ``predict`` has a fixed cost per call (it builds a data pipeline), which dominates at
batch 1; the ``Keras call`` row, ``model(x, training=False)``, shows the layers alone.

    python benchmarks/bench_keras_import.py [--threads 2] [--repeats 3] [--images 5000]
        [--json PATH]
"""

import argparse
import tempfile
from pathlib import Path

from common import best_of, print_table, set_threads, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--images", type=int, default=5000, help="images classified at batch 1000")
parser.add_argument("--single", type=int, default=200, help="images classified one at a time")
parser.add_argument("--json")
args = parser.parse_args()
set_threads(args.threads)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from twins import torch_input, torch_twin  # noqa: E402

import handnet as hn  # noqa: E402

torch.set_num_threads(args.threads)


def mnist_convnet():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def copy_weights_to_torch(model, twin):
    """Keras layout -> PyTorch layout: conv kernels (kh, kw, C, F) -> (F, C, kh, kw),
    dense (D, U) -> (U, D)."""
    weighted = [module for module in twin if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))]
    sources = [layer for layer in model.layers if layer.params]
    with torch.no_grad():
        for module, layer in zip(weighted, sources):
            kernel = layer.params["kernel"]
            order = (3, 2, 0, 1) if kernel.ndim == 4 else (1, 0)
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(order))))
            module.bias.copy_(torch.from_numpy(layer.params["bias"]))


keras_model = mnist_convnet()
with tempfile.TemporaryDirectory() as folder:
    keras_model.save(Path(folder) / "mnist_convnet.keras")
    model = hn.from_keras(Path(folder) / "mnist_convnet.keras")
twin = torch_twin(model).eval()
copy_weights_to_torch(model, twin)

rng = np.random.default_rng(0)
x = rng.random((args.images, 28, 28, 1), dtype=np.float32)
check = x[:64]
with torch.no_grad():
    torch_probabilities = torch.softmax(twin(torch_input(check)), dim=-1).numpy()
differences = {
    "Keras": float(np.abs(model.predict(check) - keras_model.predict(check, verbose=0)).max()),
    "PyTorch": float(np.abs(model.predict(check) - torch_probabilities).max()),
}
print(
    "max |handnet - other| on 64 images: "
    + ", ".join(f"{k} {v:.1e}" for k, v in differences.items())
)


def torch_predict(images, batch):
    with torch.no_grad():
        for start in range(0, len(images), batch):
            torch.softmax(twin(torch_input(images[start : start + batch])), dim=-1)


def keras_call(images, batch):
    for start in range(0, len(images), batch):
        keras.ops.convert_to_numpy(keras_model(images[start : start + batch], training=False))


CONTENDERS = {
    "handnet": lambda images, batch: model.predict(images, batch_size=batch),
    "Keras predict": lambda images, batch: keras_model.predict(images, batch_size=batch, verbose=0),
    "Keras call": keras_call,
    "PyTorch": torch_predict,
}

rows = []
for batch, images in ((1000, x), (1, x[: args.single])):
    timings = {name: [] for name in CONTENDERS}
    for run in CONTENDERS.values():  # warm-up: first calls at a new shape set up kernels and caches
        run(images[: 2 * batch], batch)
    for _ in range(args.repeats):
        for name, run in CONTENDERS.items():
            timings[name].append(best_of(lambda: run(images, batch), 1)[0])
    torch_best = min(timings["PyTorch"])
    for name, times in timings.items():
        best = min(times)
        rows.append(
            {
                "batch": batch,
                "framework": name,
                "images_per_s": len(images) / best,
                "best_s": best,
                "median_s": float(np.median(times)),
                "vs_pytorch": best / torch_best,
            }
        )

print_table(
    f"mnist_convnet inference, {args.threads} thread(s), best of {args.repeats}",
    rows,
    [
        ("batch", "batch", "{}"),
        ("framework", "framework", "{}"),
        ("images_per_s", "images/s", "{:,.0f}"),
        ("best_s", "best s", "{:.3f}"),
        ("median_s", "median s", "{:.3f}"),
        ("vs_pytorch", "time / PyTorch", "{:.2f}×"),
    ],
)
write_json(
    args.json,
    {
        "threads": args.threads,
        "repeats": args.repeats,
        "max_abs_difference": differences,
        "rows": rows,
    },
)
