"""The ``handnet`` command: train, evaluate, predict, summary, gradcheck.

    handnet train --model mlp                       # train, test, plot: writes runs/mlp-mnist/
    handnet evaluate runs/mlp-mnist/model.npz       # test-set loss and accuracy
    handnet predict runs/mlp-mnist/model.npz 7.png  # the digit in a picture
    handnet summary mlp                             # layers, output shapes, parameter counts
    handnet gradcheck                               # every backward pass against finite differences

Errors that handnet raises on purpose (a missing file, a bad setting) end the command with
``handnet: error: <message>`` and exit status 2; a traceback means a bug.
"""

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, architectures, datasets, explain, keras_io, layers, plots, regularizers
from .errors import HandnetError
from .gradcheck import DEFAULT_TOLERANCE, gradcheck
from .preprocess import load_image, to_mnist
from .saving import load_model

#: --dataset name -> (title, loader module, class names for plots; None = the digits 0..9)
DATASETS = {
    "mnist": ("MNIST", datasets.mnist, None),
    "fashion": ("Fashion-MNIST", datasets.fashion_mnist, datasets.fashion_mnist.CLASS_NAMES),
}
RUN_FILES = (
    "model.npz",
    "history.json",
    "results.json",
    "curves.png",
    "confusion.png",
    "misclassified.png",
)


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error that argparse has already printed
        return stop.code if isinstance(stop.code, int) else 0
    try:
        return args.command(args)
    except HandnetError as error:
        return _fail(error)
    except BrokenPipeError:
        # `handnet ... | head` closed our stdout: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as error:  # an output folder that cannot be written, a full disk
        return _fail(error)
    except KeyboardInterrupt:
        print("handnet: interrupted", file=sys.stderr)
        return 130


def _fail(error):
    print(f"handnet: error: {error}", file=sys.stderr)
    return 2


def build_parser():
    parser = argparse.ArgumentParser(
        prog="handnet",
        description="Neural networks written by hand in NumPy, trained on handwritten digits.",
    )
    parser.add_argument("--version", action="version", version=f"handnet {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    recipes = "\n".join(
        f"  {name}: {recipe.optimizer}, learning rate {recipe.learning_rate:g}, {recipe.schedule} "
        f"schedule, {recipe.epochs} epochs, batch {recipe.batch_size}. {architecture.description}"
        for name, architecture in sorted(architectures.ARCHITECTURES.items())
        for recipe in [architecture.training]
    )
    train = commands.add_parser(
        "train",
        help="train a network, test it, and plot the run",
        description="Train on the training set (less a validation part), then test on the test "
        "set; writes model.npz, history.json, results.json and three plots.",
        epilog=f"Default settings (recipes) of each architecture:\n{recipes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--model",
        default="mlp",
        choices=sorted(architectures.ARCHITECTURES),
        help="architecture (default: mlp)",
    )
    train.add_argument(
        "--epochs", type=_positive_int, help="passes over the training set (default: the recipe's)"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, help="images per gradient step (default: the recipe's)"
    )
    train.add_argument(
        "--optimizer",
        choices=architectures.OPTIMIZER_NAMES,
        help="update rule (default: the recipe's)",
    )
    train.add_argument(
        "--lr",
        type=_positive_float,
        help="peak learning rate (default: the recipe's, or the optimizer's usual one)",
    )
    train.add_argument(
        "--schedule",
        choices=architectures.SCHEDULE_NAMES,
        help="learning-rate schedule (default: the recipe's)",
    )
    train.add_argument(
        "--warmup-steps",
        type=_non_negative_int,
        help="linear warm-up steps before the cosine decay",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the weights, shuffling and dropout (default: 0)",
    )
    _add_dataset_arguments(train)
    train.add_argument(
        "--train-limit",
        type=_positive_int,
        metavar="N",
        help="use only the first N training images (quick runs)",
    )
    train.add_argument(
        "--validation-split",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="last fraction of the training images held out to validate each epoch (default: 0.1)",
    )
    train.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the model, history and plots (default: runs/MODEL-DATASET)",
    )
    _add_json_argument(train)
    train.add_argument(
        "-q", "--quiet", action="store_true", help="no progress output while training"
    )
    train.set_defaults(command=train_command)

    evaluate = commands.add_parser("evaluate", help="test loss and accuracy of a saved model")
    evaluate.add_argument(
        "model", type=Path, metavar="MODEL", help="a model file written by train (model.npz)"
    )
    _add_dataset_arguments(evaluate)
    evaluate.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="also write confusion.png and misclassified.png here",
    )
    _add_json_argument(evaluate)
    evaluate.set_defaults(command=evaluate_command)

    predict = commands.add_parser("predict", help="read the digit in each image")
    predict.add_argument(
        "model", type=Path, metavar="MODEL", help="a model file written by train (model.npz)"
    )
    predict.add_argument(
        "images",
        type=Path,
        nargs="+",
        metavar="IMAGE",
        help="any picture Pillow reads (PNG, JPEG, …)",
    )
    _add_json_argument(predict)
    predict.set_defaults(command=predict_command)

    summary = commands.add_parser("summary", help="layers, output shapes and parameter counts")
    summary.add_argument(
        "target",
        metavar="MODEL.npz|ARCH",
        help=f"a model file or an architecture ({', '.join(sorted(architectures.ARCHITECTURES))})",
    )
    _add_json_argument(summary)
    summary.set_defaults(command=summary_command)

    check = commands.add_parser(
        "gradcheck", help="check every layer type's backward pass with finite differences"
    )
    check.add_argument(
        "--model",
        default="mlp",
        metavar="ARCH",
        help="architecture whose small copy (same layers, few weights) is checked end to end "
        "(default: mlp)",
    )
    _add_json_argument(check)
    check.set_defaults(command=gradcheck_command)

    explain = commands.add_parser(
        "explain", help="the forward pass step by step: formulas, shapes, weights"
    )
    explain.add_argument(
        "--model", default="mlp", metavar="MODEL.npz|ARCH", help="a model file or an architecture"
    )
    _add_json_argument(explain)
    explain.set_defaults(command=explain_command)

    keras_io.register_cli(commands)
    return parser


def _add_dataset_arguments(parser):
    parser.add_argument(
        "--dataset", default="mnist", choices=sorted(DATASETS), help="default: mnist"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder holding the dataset's files, if not downloaded",
    )


def _add_json_argument(parser):
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH"
    )


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


# -- train --------------------------------------------------------------------------------


def train_command(args):
    started = time.perf_counter()
    architecture = architectures.get(args.model)
    settings = _training_settings(args, architecture.training)
    out = args.out or Path("runs") / f"{args.model}-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)  # fail now, not after an hour of training

    title, (x_train, y_train), (x_test, y_test), class_names = _load_dataset(
        args, verbose=not args.quiet
    )
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    # Model.fit holds out the *last* fraction, before shuffling; count the same way.
    num_validation = round(len(x_train) * args.validation_split)
    num_fit = len(x_train) - num_validation
    if num_fit < 1 or (args.validation_split and num_validation < 1):
        raise HandnetError(
            f"{len(x_train)} training images cannot be split {1 - args.validation_split:g} / "
            f"{args.validation_split:g} into training and validation"
        )
    x_train = architectures.prepare_images(x_train, architecture.input_shape)
    x_test = architectures.prepare_images(x_test, architecture.input_shape)

    model = architectures.build(args.model, seed=args.seed)
    steps_per_epoch = math.ceil(num_fit / settings["batch_size"])
    optimizer = architectures.make_optimizer(
        settings["optimizer"],
        settings["learning_rate"],
        settings["schedule"],
        total_steps=steps_per_epoch * settings["epochs"],
        warmup_steps=settings["warmup_steps"],
    )
    model.compile(optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit_started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        validation_split=args.validation_split,
        verbose=0 if args.quiet else 1,
        seed=args.seed,
    )
    train_seconds = time.perf_counter() - fit_started
    probabilities, scores = _score(model, x_test, y_test)
    predicted = probabilities.argmax(axis=1)

    run_title = f"{args.model} on {title}"
    model.save(out / "model.npz")
    (out / "history.json").write_text(history.to_json() + "\n")
    plots.plot_training_curves(
        history.history, out / "curves.png", title=f"{run_title}: training curves"
    )
    plots.plot_confusion_matrix(
        y_test, predicted, out / "confusion.png", class_names, title=f"{run_title}, test set"
    )
    plots.plot_misclassified(
        x_test,
        y_test,
        probabilities,
        out / "misclassified.png",
        class_names=class_names,
        title=f"{run_title}, test set",
    )
    results = {
        "model": args.model,
        "dataset": args.dataset,
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "epochs": len(history.epoch),
        "steps_per_epoch": steps_per_epoch,
        "train_seconds": train_seconds,
        "train_images_per_second": num_fit * len(history.epoch) / train_seconds,
        "total_seconds": time.perf_counter() - started,
        "settings": settings,
        "images": {"train": num_fit, "validation": num_validation, "test": len(x_test)},
        "parameters": model.count_params(),
        "final_epoch": {key: values[-1] for key, values in history.history.items()},
        "confusion_matrix": plots.confusion_matrix(
            y_test, predicted, probabilities.shape[1]
        ).tolist(),
        "out": str(out),
        "files": list(RUN_FILES),
    }
    _write_json(out / "results.json", results)
    if args.json:
        _write_json(args.json, results)
    _print_run(run_title, results, args.json)
    return 0


def _training_settings(args, recipe):
    """The recipe's settings, overridden by the options given. An optimizer other than the
    recipe's starts from its own usual learning rate, not from the recipe's."""
    optimizer = args.optimizer or recipe.optimizer
    if args.lr is not None:
        learning_rate = args.lr
    elif optimizer == recipe.optimizer:
        learning_rate = recipe.learning_rate
    else:
        learning_rate = architectures.DEFAULT_LEARNING_RATES[optimizer]
    if not 0 <= args.validation_split < 1:
        raise HandnetError(f"--validation-split must be in [0, 1), got {args.validation_split}")
    return {
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "schedule": args.schedule or recipe.schedule,
        "warmup_steps": recipe.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        "epochs": args.epochs or recipe.epochs,
        "batch_size": args.batch_size or recipe.batch_size,
        "seed": args.seed,
        "validation_split": args.validation_split,
        "train_limit": args.train_limit,
    }


def _print_run(run_title, results, json_path):
    settings, images = results["settings"], results["images"]
    epochs = results["epochs"]
    warmup = f" after {settings['warmup_steps']} warm-up steps" if settings["warmup_steps"] else ""
    print(
        f"{run_title}: test accuracy {results['test_accuracy']:.2%}, "
        f"test loss {results['test_loss']:.4f}"
    )
    print(
        f"  {epochs} epoch{'s' if epochs != 1 else ''} of {results['steps_per_epoch']} steps × "
        f"{settings['batch_size']} images; {settings['optimizer']}, learning rate "
        f"{settings['learning_rate']:g}, {settings['schedule']} schedule{warmup}; "
        f"seed {settings['seed']}"
    )
    print(
        f"  {images['train']:,} training, {images['validation']:,} validation (held out from "
        f"training), {images['test']:,} test images; {results['parameters']:,} parameters"
    )
    print(
        f"  training took {results['train_seconds']:.1f} s, "
        f"{results['train_images_per_second']:,.0f} images/s"
    )
    print(
        f"Wrote {results['out']}/: {' '.join(RUN_FILES)}"
        + (f"; and {json_path}" if json_path else "")
    )


def _load_dataset(args, verbose=False):
    title, module, class_names = DATASETS[args.dataset]
    train, test = module.load_data(args.data_dir, verbose=verbose)
    return title, train, test, class_names


def _score(model, x, y):
    """Test-set probabilities (N, K) and {"loss", "accuracy"}, from one forward pass.

    ``model.evaluate`` would give the same numbers, but the plots need the probabilities too,
    and a second pass over 10,000 images costs a CNN several seconds.
    """
    probabilities = model.predict(x)
    loss = model.loss(y, probabilities) + model.regularization_penalty()
    accuracy = float((probabilities.argmax(axis=1) == y).mean())
    return probabilities, {"loss": loss, "accuracy": accuracy}


def _write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


# -- evaluate, predict, summary ------------------------------------------------------------


def evaluate_command(args):
    model = load_model(args.model)
    if model.loss is None:
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    title, _, (x_test, y_test), class_names = _load_dataset(args)
    probabilities, scores = _score(
        model, architectures.prepare_images(x_test, model.input_shape), y_test
    )
    predicted = probabilities.argmax(axis=1)
    results = {
        "model": str(args.model),
        "dataset": args.dataset,
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "images": len(y_test),
        "confusion_matrix": plots.confusion_matrix(
            y_test, predicted, probabilities.shape[1]
        ).tolist(),
    }
    print(
        f"{args.model} on the {title} test set ({len(y_test):,} images): "
        f"accuracy {scores['accuracy']:.2%}, loss {scores['loss']:.4f}"
    )
    if args.plots:
        plots.plot_confusion_matrix(
            y_test,
            predicted,
            args.plots / "confusion.png",
            class_names,
            title=f"{args.model}, {title} test set",
        )
        plots.plot_misclassified(
            x_test,
            y_test,
            probabilities,
            args.plots / "misclassified.png",
            class_names=class_names,
            title=f"{args.model}, {title} test set",
        )
        print(f"Wrote {args.plots}/: confusion.png misclassified.png")
    if args.json:
        _write_json(args.json, results)
    return 0


def predict_command(args):
    model = load_model(args.model, compile=False)
    digits = []
    for path in args.images:
        try:
            digits.append(to_mnist(load_image(path)))
        except HandnetError as error:
            message = str(error)
            raise HandnetError(
                message if message.startswith(str(path)) else f"{path}: {message}"
            ) from None
    probabilities = model.predict(architectures.prepare_images(np.stack(digits), model.input_shape))
    predictions = []
    for path, row in zip(args.images, probabilities):
        best = int(row.argmax())
        print(f"{path}: {best}  (probability {row[best]:.3f})")
        print("  " + "  ".join(f"{k}: {p:.3f}" for k, p in enumerate(row)))
        predictions.append({"image": str(path), "prediction": best, "probabilities": row.tolist()})
    if args.json:
        _write_json(args.json, {"model": str(args.model), "predictions": predictions})
    return 0


def _model_or_architecture(target):
    """A handnet .npz, a Keras .keras/.h5 file, or a named architecture."""
    if Path(target).suffix in (".npz", ".keras", ".h5") or Path(target).is_file():
        return keras_io.load_any(target)
    if target in architectures.ARCHITECTURES:
        return architectures.build(target)
    known = ", ".join(sorted(architectures.ARCHITECTURES))
    raise HandnetError(f"{target!r} is neither a model file nor an architecture ({known})")


def explain_command(args):
    model = _model_or_architecture(args.model)
    print(explain.explain(model))
    if args.json:
        _write_json(args.json, {"name": model.name, "layers": explain.layer_table(model)})
    return 0


def summary_command(args):
    model = _model_or_architecture(args.target)
    model.summary()
    if args.json:
        _write_json(
            args.json,
            {
                "name": model.name,
                "input_shape": list(model.input_shape),
                "layers": [
                    {
                        "name": layer.name,
                        "class_name": type(layer).__name__,
                        "output_shape": list(layer.output_shape),
                        "parameters": layer.count_params(),
                    }
                    for layer in model.layers
                ],
                "total_parameters": model.count_params(),
                "trainable_parameters": sum(
                    layer.count_params() for layer in model.layers if layer.trainable
                ),
            },
        )
    return 0


# -- gradcheck ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCheck:
    """How to check one layer type: a small instance, the per-sample input shape, and whether
    to run it in training mode (dropout masks, batch statistics)."""

    make: Callable[[], layers.Layer]
    input_shape: tuple
    training: bool = False


_L2 = regularizers.L1L2(l2=0.01)  # so that the checks cover the penalty's gradient too

#: One entry per layer type in handnet.layers.LAYERS (small sizes: the check costs two forward
#: passes per weight and input entry); a type missing here is reported as unchecked.
LAYER_CHECKS = {
    "Activation": LayerCheck(lambda: layers.Activation("softmax"), (5,)),
    "AveragePooling2D": LayerCheck(
        lambda: layers.AveragePooling2D(2, strides=1, padding="same"), (4, 4, 2)
    ),
    "BatchNormalization": LayerCheck(lambda: layers.BatchNormalization(), (3, 3, 2), training=True),
    "Conv2D": LayerCheck(
        lambda: layers.Conv2D(
            3, 3, strides=2, padding="same", activation="tanh", kernel_regularizer=_L2
        ),
        (5, 5, 2),
    ),
    "Dense": LayerCheck(lambda: layers.Dense(4, activation="tanh", kernel_regularizer=_L2), (3,)),
    "Dropout": LayerCheck(lambda: layers.Dropout(0.5), (6,), training=True),
    "Flatten": LayerCheck(lambda: layers.Flatten(), (2, 3, 2)),
    "GlobalAveragePooling2D": LayerCheck(lambda: layers.GlobalAveragePooling2D(), (3, 3, 2)),
    "GlobalMaxPooling2D": LayerCheck(lambda: layers.GlobalMaxPooling2D(), (3, 3, 2)),
    "Input": LayerCheck(lambda: layers.Input((4,)), (4,)),
    "LeakyReLU": LayerCheck(lambda: layers.LeakyReLU(0.2), (6,)),
    "MaxPooling2D": LayerCheck(lambda: layers.MaxPooling2D(2), (4, 4, 2)),
    "ReLU": LayerCheck(lambda: layers.ReLU(max_value=1.0, negative_slope=0.1), (6,)),
    "Rescaling": LayerCheck(lambda: layers.Rescaling(0.5, offset=0.1), (4,)),
    "Reshape": LayerCheck(lambda: layers.Reshape((3, 4)), (12,)),
    "Softmax": LayerCheck(lambda: layers.Softmax(), (5,)),
    "ZeroPadding2D": LayerCheck(lambda: layers.ZeroPadding2D(((1, 0), (2, 1))), (3, 3, 2)),
}


TABLE_ROW = "{:<34} {:<22} {:<14} {:>11} {:>11}  {}"


def gradcheck_command(args):
    architecture = architectures.get(args.model.removesuffix("-small"))
    checks = []
    for name in sorted(layers.LAYERS):
        if name in LAYER_CHECKS:
            check = LAYER_CHECKS[name]
            report = gradcheck(check.make(), input_shape=check.input_shape, training=check.training)
            checks.append((f"layer {name}", report, False))
    unchecked = sorted(set(layers.LAYERS) - set(LAYER_CHECKS))

    model = architectures.build(architecture.name, seed=0, small=True)
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *model.input_shape))
    y = rng.integers(0, model.output_shape[-1], size=4)
    # With labels the check covers the loss too: the fused softmax + cross-entropy gradient.
    report = gradcheck(model, x, y, training=True)
    checks.append((f"model {architecture.name} (small) + loss", report, True))

    print(
        "Gradient check: backward passes against central differences in float64 "
        f"(tolerance {DEFAULT_TOLERANCE:.0e})"
    )
    print(TABLE_ROW.format("check", "quantity", "shape", "max |grad|", "rel. error", "result"))
    for label, report, show_layer in checks:
        for index, row in enumerate(report.rows):
            quantity = (
                f"{row.layer}/{row.quantity}"
                if show_layer and row.layer != "(input)"
                else row.quantity
            )
            verdict = "ok" if row.error < report.tolerance else "FAIL"
            shown_label = label if index == 0 else ""
            print(
                TABLE_ROW.format(
                    shown_label,
                    quantity,
                    str(row.shape),
                    f"{row.scale:.3e}",
                    f"{row.error:.2e}",
                    verdict,
                )
            )
    failed = [label for label, report, _ in checks if not report.passed]
    worst = max(report.worst for _, report, _ in checks)
    if unchecked:
        print(f"not checked (no entry in handnet.cli.LAYER_CHECKS): {', '.join(unchecked)}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (worst relative error {worst:.2e})")
    else:
        print(f"all {len(checks)} checks passed (worst relative error {worst:.2e})")
    if args.json:
        _write_json(
            args.json,
            {
                "passed": not failed,
                "tolerance": DEFAULT_TOLERANCE,
                "checks": [{"name": label, **report.as_dict()} for label, report, _ in checks],
                "unchecked": unchecked,
            },
        )
    return 1 if failed else 0
