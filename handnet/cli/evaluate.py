"""handnet evaluate and handnet predict: use a saved model on the test set or on pictures."""

import sys
from pathlib import Path

import numpy as np

from .. import plots
from ..errors import HandnetError
from ..preprocess import prepare_images, read_digit
from ..saving import load_model
from .common import (
    TEST_SET_PLOTS,
    add_dataset_arguments,
    add_json_argument,
    add_model_file_argument,
    load_dataset,
    plot_model,
    plot_reconstruction_set,
    plot_test_set,
    reconstruction_score,
    score,
    task_of,
    write_json,
)


def register(subparsers):
    evaluate = subparsers.add_parser(
        "evaluate",
        help="test loss and accuracy of a saved model (an autoencoder: its mean squared error)",
    )
    add_model_file_argument(evaluate)
    add_dataset_arguments(evaluate)
    evaluate.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="also write the pictures here: confusion.png, misclassified.png, first_layer.png, "
        "feature_maps.png, histograms.png, graph.png (an autoencoder: reconstructions.png and "
        "embedding.png instead of the first two)",
    )
    add_json_argument(evaluate)
    evaluate.set_defaults(command=evaluate_command)

    predict = subparsers.add_parser("predict", help="read the digit in each image")
    add_model_file_argument(predict)
    predict.add_argument(
        "images",
        type=Path,
        nargs="+",
        metavar="IMAGE",
        help="any picture Pillow reads (PNG, JPEG, …); one that cannot be read is named on "
        "stderr (exit status 2) and the others are still answered",
    )
    add_json_argument(predict)
    predict.set_defaults(command=predict_command)


def evaluate_command(args):
    model = load_model(args.model)
    if task_of(model) == "reconstruct":
        return _evaluate_reconstruction(args, model)
    if model.loss is None:
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    title, _, (x_test, y_test), class_names = load_dataset(args)
    x_prepared = prepare_images(x_test, model.input_shape)
    probabilities, scores = score(model, x_prepared, y_test)
    results = {
        "model": str(args.model),
        "dataset": args.dataset,
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "images": len(y_test),
        "confusion_matrix": plots.confusion_matrix(
            y_test, probabilities.argmax(axis=1), probabilities.shape[1]
        ).tolist(),
    }
    print(
        f"{args.model} on the {title} test set ({len(y_test):,} images): "
        f"accuracy {scores['accuracy']:.2%}, loss {scores['loss']:.4f}"
    )
    if args.plots:
        plot_test_set(
            args.plots,
            x_test,
            y_test,
            probabilities,
            class_names,
            title=f"{args.model}, {title} test set",
        )
        # Gradients of a batch the size of a usual training batch.
        batch = slice(0, 128)
        model_plots = plot_model(
            args.plots, model, x_prepared[batch], y_test[batch], class_names, str(args.model)
        )
        print(f"Wrote {args.plots}/: {' '.join(TEST_SET_PLOTS + tuple(model_plots))}")
    if args.json:
        write_json(args.json, results)
    return 0


def _evaluate_reconstruction(args, model):
    """evaluate for a model whose outputs are images shaped as its inputs (an autoencoder):
    the test set's mean squared error, and its own pictures."""
    if model.loss is None:
        model.compile("adam", "mean_squared_error", [])
    title, _, (x_test, y_test), class_names = load_dataset(args)
    x_prepared = prepare_images(x_test, model.input_shape)
    reconstructions, scores = reconstruction_score(model, x_prepared)
    results = {
        "model": str(args.model),
        "dataset": args.dataset,
        "task": "reconstruct",
        "test_mse": scores["mse"],
        "test_loss": scores["loss"],
        "images": len(x_test),
    }
    print(
        f"{args.model} on the {title} test set ({len(x_test):,} images): "
        f"mean squared error per pixel {scores['mse']:.5f} (pixels in [0, 1])"
    )
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        written, embedding = plot_reconstruction_set(
            args.plots,
            model,
            x_prepared,
            reconstructions,
            y_test,
            class_names,
            f"{args.model}, {title} test set",
        )
        results["embedding"] = embedding
        batch = slice(0, 128)
        model_plots = plot_model(
            args.plots, model, x_prepared[batch], None, class_names, str(args.model),
            task="reconstruct",
        )
        print(f"Wrote {args.plots}/: {' '.join(written + model_plots)}")
    if args.json:
        write_json(args.json, results)
    return 0


def predict_command(args):
    model = load_model(args.model, compile=False)
    if task_of(model) == "reconstruct":
        raise HandnetError(
            f"{args.model} outputs images shaped as its inputs {tuple(model.input_shape)} (an "
            "autoencoder), not one probability per digit: predict needs a classifier"
        )
    # Every image that reads is answered; one that does not (missing, not a picture, blank) is
    # named on stderr and makes the exit status 2, without losing the others' answers.
    read, failures = [], []
    for path in args.images:
        try:
            read.append((path, read_digit(path)))
        except HandnetError as error:
            message = str(error)
            named = message if message.startswith(str(path)) else f"{path}: {message}"
            failures.append((path, named))
    predictions = []
    if read:
        digits = np.stack([digit for _, digit in read])
        probabilities = model.predict(prepare_images(digits, model.input_shape))
        for (path, _), row in zip(read, probabilities):
            best = int(row.argmax())
            print(f"{path}: {best}  (probability {row[best]:.3f})")
            print("  " + "  ".join(f"{k}: {p:.3f}" for k, p in enumerate(row)))
            predictions.append(
                {"image": str(path), "prediction": best, "probabilities": row.tolist()}
            )
    for _, message in failures:
        print(f"handnet: error: {message}", file=sys.stderr)
    if args.json:
        errors = [{"image": str(path), "error": message} for path, message in failures]
        write_json(
            args.json, {"model": str(args.model), "predictions": predictions, "errors": errors}
        )
    return 2 if failures else 0
