"""A network trained by Keras, run by handnet: compare-keras over the whole MNIST test set.

For each named architecture, handnet builds the untrained network and exports it to a Keras
file (handnet's own writer); Keras loads that file (safe mode) and trains it on MNIST with its
own fit, Adam and loss (MSE on the pixels for the autoencoder, sparse cross-entropy for the
classifiers); the trained model is saved by Keras as .keras and as legacy .h5; then handnet
imports both files and ``compare_keras`` runs all 10,000 test images through Keras and
handnet, node by node.

    cd benchmarks && ../.venv/bin/python compare_keras_trained.py --models autoencoder mobile \\
        [--epochs 2] [--train-limit N] [--out ../runs/keras-trained] [--json report.json]

Keras's training is the oracle here, not a benchmark: its wall time is printed, not compared.
"""

import argparse
import sys
import time
from pathlib import Path

from common import set_threads, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", nargs="+", default=["autoencoder", "mobile"])
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--train-limit", type=int, help="train on the first N images only")
parser.add_argument("--samples", type=int, default=10000, help="test images compared")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--out", type=Path, default=Path("../runs/keras-trained"))
parser.add_argument("--json")
args = parser.parse_args()
set_threads(args.threads)

import keras  # noqa: E402

from handnet.datasets import mnist  # noqa: E402
from handnet.keras_io.compare import compare_keras  # noqa: E402
from handnet.preprocess import prepare_images  # noqa: E402
from handnet.zoo import architectures  # noqa: E402


def keras_trained(name, data):
    """Export handnet's untrained ``name``, train it in Keras, save .keras and .h5; the paths."""
    (x_train, y_train), _ = data
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    model = architectures.build(name, seed=0)
    reconstruct = getattr(architectures.get(name).training, "task", "classify") == "reconstruct"
    model.to_keras(folder / "untrained.keras")
    twin = keras.saving.load_model(folder / "untrained.keras", safe_mode=True)
    x = prepare_images(x_train[: args.train_limit], model.input_shape)
    y = x if reconstruct else y_train[: args.train_limit]
    keras.utils.set_random_seed(0)
    twin.compile(
        keras.optimizers.Adam(1e-3),
        "mse" if reconstruct else "sparse_categorical_crossentropy",
        metrics=None if reconstruct else ["accuracy"],
    )
    started = time.perf_counter()
    twin.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    seconds = time.perf_counter() - started
    paths = {"keras": folder / "trained.keras", "h5": folder / "trained.h5"}
    twin.save(paths["keras"])
    twin.save(paths["h5"])
    return paths, reconstruct, seconds


def main():
    data = mnist.load_data()
    (_, _), (x_test, y_test) = data
    report = {"samples": args.samples, "epochs": args.epochs, "models": {}}
    worst = 0.0
    for name in args.models:
        paths, reconstruct, seconds = keras_trained(name, data)
        entry = {"keras_train_seconds": seconds, "files": {}}
        x = prepare_images(x_test, architectures.get(name).input_shape)
        for kind, path in paths.items():
            compared = compare_keras(
                path, x, None if reconstruct else y_test, samples=args.samples
            )
            entry["files"][kind] = compared.as_dict()
            print(f"\n{name} trained by Keras, {kind} file, {args.samples:,} test images:")
            print(compared)
            worst = max(worst, compared.worst)
        report["models"][name] = entry
    write_json(args.json, report)
    print(f"\nworst node difference over every model and file: {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
