"""What several handnet commands share: their common arguments, the data sets, scoring, output."""

import argparse
import json
import math
from pathlib import Path

from .. import losses, plots
from ..datasets import DATASETS
from ..layers import MultiHeadAttention
from ..zoo import autoencoder


def add_dataset_arguments(parser):
    parser.add_argument(
        "--dataset", default="mnist", choices=sorted(DATASETS), help="default: mnist"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder holding the dataset's files, if not downloaded",
    )


def add_json_argument(parser):
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH"
    )


def add_model_file_argument(parser):
    parser.add_argument(
        "model", type=Path, metavar="MODEL", help="a model file written by train (model.npz)"
    )


def load_dataset(args, verbose=False):
    """(title, (x_train, y_train), (x_test, y_test), class names) of the --dataset chosen."""
    dataset = DATASETS[args.dataset]
    train, test = dataset.load_data(args.data_dir, verbose=verbose)
    return dataset.title, train, test, dataset.class_names


def score(model, x, y):
    """Test-set probabilities (N, K) and {"loss", "accuracy"}, from one forward pass.

    ``model.evaluate`` would give the same numbers, but the plots need the probabilities too,
    and a second pass over 10,000 images costs a CNN several seconds.
    """
    probabilities = model.predict(x)
    loss = model.loss(y, probabilities) + model.regularization_penalty()
    accuracy = float((probabilities.argmax(axis=1) == y).mean())
    return probabilities, {"loss": loss, "accuracy": accuracy}


TEST_SET_PLOTS = ("confusion.png", "misclassified.png")
MODEL_PLOTS = ("first_layer.png", "feature_maps.png", "histograms.png", "graph.png")
#: What a reconstruction (an autoencoder) draws of the test set instead of TEST_SET_PLOTS.
RECONSTRUCTION_PLOTS = ("reconstructions.png", "embedding.png")


def task_of(model):
    """"reconstruct" for a network whose output has the shape of its input (an autoencoder:
    image in, image out), else "classify" (a classifier outputs one probability per class)."""
    same = tuple(model.output_shape) == tuple(model.input_shape)
    return "reconstruct" if same else "classify"


def reconstruction_score(model, x):
    """Reconstructions of x (N, *input_shape) and {"mse", "loss"} from one forward pass: the
    mean squared error per pixel, as the model trained on it (the loss adds any penalty)."""
    reconstructions = model.predict(x)
    mse = losses.MeanSquaredError()(x, reconstructions)
    return reconstructions, {"mse": mse, "loss": mse + model.regularization_penalty()}


def plot_reconstruction_set(folder, model, x, reconstructions, labels, class_names, title):
    """Write reconstructions.png, and embedding.png when the model has a layer named "code"
    (handnet.zoo.autoencoder.CODE_LAYER); returns (the files written, a description of the
    embedding for results.json or None).

    The embedding is the code itself when it has 2 units, else the codes' first two principal
    axes (computed from these codes, labels unused), and the picture says which."""
    plots.plot_reconstructions(
        x, reconstructions, folder / "reconstructions.png", labels=labels, title=title
    )
    if autoencoder.CODE_LAYER not in [layer.name for layer in model.layers]:
        return ["reconstructions.png"], None
    codes = autoencoder.encoder(model).predict(x)
    codes = codes.reshape(len(codes), -1)
    units = codes.shape[1]
    if units == 2:
        points, axis_labels = codes, ("code unit 1", "code unit 2")
        described = {"kind": "code", "code_units": 2}
        how = "the 2-unit codes themselves"
    else:
        points, shares = autoencoder.principal_plane(codes)
        axis_labels = tuple(
            f"principal axis {k + 1} of the codes ({share:.0%} of their variance)"
            for k, share in enumerate(shares)
        )
        described = {"kind": "pca", "code_units": units, "variance_shares": shares.tolist()}
        how = f"the {units}-unit codes on their first two principal axes (PCA)"
    plots.plot_embedding(
        points,
        labels,
        folder / "embedding.png",
        class_names=class_names,
        axis_labels=axis_labels,
        title=f"{title}: {how}\none dot per image ({len(codes):,}), coloured by its digit, "
        "a label the network never saw",
    )
    return list(RECONSTRUCTION_PLOTS), described


def plot_test_set(folder, x_test, y_test, probabilities, class_names, title):
    """Write confusion.png and misclassified.png of the test-set probabilities (N, K) to folder."""
    plots.plot_confusion_matrix(
        y_test, probabilities.argmax(axis=1), folder / "confusion.png", class_names, title=title
    )
    plots.plot_misclassified(
        x_test,
        y_test,
        probabilities,
        folder / "misclassified.png",
        class_names=class_names,
        title=title,
    )


def plot_model(folder, model, x, y, class_names, title, task="classify"):
    """Write first_layer.png (its weights), feature_maps.png (x[0] through every layer),
    histograms.png (every weight, and its gradient on the batch x, y) and graph.png (its layers
    and how they connect) of a compiled model, and attention.png (where it looks) when it has
    MultiHeadAttention layers. With ``task`` "reconstruct" the targets of the gradients are the
    images x themselves, and y is not used. Returns the names of the files written."""
    if task == "reconstruct":
        y, label, class_names = x, None, None
    else:
        label = y[0]
    plots.plot_first_layer_weights(
        model, folder / "first_layer.png", title=f"{title}: first-layer weights"
    )
    plots.plot_feature_maps(
        model,
        x[0],
        folder / "feature_maps.png",
        label=label,
        class_names=class_names,
        title=f"{title}: what each layer makes of one image",
    )
    plots.plot_weight_histograms(
        model,
        folder / "histograms.png",
        plots.batch_gradients(model, x, y),
        title=f"{title}: weights and gradients",
    )
    plots.plot_model_graph(model, folder / "graph.png", title=f"{title}: the graph")
    written = list(MODEL_PLOTS)
    if any(isinstance(layer, MultiHeadAttention) for layer in model.flat_layers()):
        plots.plot_attention(
            model, x[:6], folder / "attention.png", labels=None if label is None else y[:6],
            title=f"{title}: where it looks",
        )
        written.append("attention.png")
    return written


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


# argparse names the type function in its message for text that is no number at all
# ("invalid positive_int value: 'abc'"): these names are part of the command's output.
def positive_int(text):
    return whole_number(text, minimum=1)


def non_negative_int(text):
    return whole_number(text, minimum=0)


def positive_float(text):
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def whole_number(text, minimum):
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {minimum}, got {text}")
    return value
