"""Figures of a training run, written to PNG files.

Each function takes plain arrays or dicts and a path, draws one figure and saves it. Figures
are built with ``matplotlib.figure.Figure`` and rendered by Agg, never through pyplot: no window
opens, the user's backend (a notebook's, say) is left alone, and nothing stays registered in
pyplot's global list of figures, so there is nothing to close.
"""

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter, ScalarFormatter

DPI = 120
TRAIN_COLOUR = "tab:blue"
VALIDATION_COLOUR = "tab:orange"
RATE_COLOUR = "tab:gray"
# Training figures are running means over the epoch, taken while the weights still move (and
# with dropout on); validation is measured after the epoch. That is why validation can beat
# training early on, and the labels say so.
CURVES = (
    ("", "training (mean over the epoch)", TRAIN_COLOUR),
    ("val_", "validation (after the epoch)", VALIDATION_COLOUR),
)


def confusion_matrix(labels, predicted, num_classes=10):
    """counts[i, j] = how many samples of true class i were predicted as class j;  (K, K) int."""
    labels = np.asarray(labels, dtype=np.intp).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.intp).reshape(-1)
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def plot_training_curves(history, path, title="Training curves"):
    """Loss and accuracy per epoch, training vs validation, with the learning rate (grey, dashed,
    right-hand axis) under both.

    history: {"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
    "learning_rate": [...]} as ``model.fit(...).history``; missing keys are left out.
    """
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure = Figure(figsize=(11, 4.2), dpi=DPI, layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    panels = [
        (loss_axes, "loss", "loss (cross-entropy)", 1),
        (accuracy_axes, "accuracy", "accuracy", 100),
    ]
    for axes, key, label, factor in panels:
        for prefix, name, colour in CURVES:
            if prefix + key in history:
                values = np.asarray(history[prefix + key], dtype=float) * factor
                axes.plot(epochs, values, marker="o", markersize=3, color=colour, label=name)
        axes.set_title(label.capitalize())
        axes.set_xlabel("epoch")
        axes.set_ylabel(label + (" (%)" if factor == 100 else ""))
        axes.set_xlim(0.5, len(epochs) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.grid(alpha=0.3)
        if factor == 100:
            axes.yaxis.set_major_formatter(PercentFormatter(decimals=1))
        if "learning_rate" in history:
            rate_axes = axes.twinx()
            (line,) = rate_axes.plot(
                epochs,
                history["learning_rate"],
                linestyle="--",
                marker="x",
                markersize=4,
                color=RATE_COLOUR,
                label="learning rate",
            )
            rate_axes.set_ylabel("learning rate (end of epoch)", color=RATE_COLOUR)
            rate_axes.tick_params(axis="y", colors=RATE_COLOUR)
            rate_axes.set_ylim(bottom=0)
            # Ticks 0…8 with "×10⁻⁴" above the axis, rather than 0.0008-style labels.
            rate_formatter = ScalarFormatter(useMathText=True)
            rate_formatter.set_powerlimits((-2, 2))
            rate_axes.yaxis.set_major_formatter(rate_formatter)
    # Both panels share the three lines, so one legend under them serves both and hides no data.
    handles, labels = loss_axes.get_legend_handles_labels()
    if "learning_rate" in history:
        handles, labels = handles + [line], labels + [line.get_label()]
    figure.legend(handles, labels, loc="outside lower center", ncols=len(handles))
    figure.suptitle(title)
    _save(figure, path)


def plot_confusion_matrix(labels, predicted, path, class_names=None, title="Confusion matrix"):
    """The K×K table of (true class, predicted class) counts, each cell written out.

    The colours follow a log scale: the diagonal holds ~1000 correct answers per class and the
    mistakes a handful each, so on a linear scale every mistake would look the same pale colour.
    Cells with no sample stay white.
    """
    num_classes = len(class_names) if class_names else 10
    counts = confusion_matrix(labels, predicted, num_classes)
    names = list(class_names) if class_names else [str(k) for k in range(num_classes)]
    accuracy = np.trace(counts) / max(counts.sum(), 1)

    figure = Figure(figsize=(7.5, 6.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    shown = np.ma.masked_equal(counts, 0)
    image = axes.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)))
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.85)
    colour_bar.set_label("number of test images (log scale)")
    dark = np.log(np.maximum(counts, 1)) > 0.6 * np.log(max(counts.max(), 2))
    for i in range(num_classes):
        for j in range(num_classes):
            if counts[i, j]:
                weight = "bold" if i == j else "normal"
                colour = "white" if dark[i, j] else "black"
                axes.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=colour,
                    weight=weight,
                )
    axes.set_xticks(
        range(num_classes),
        names,
        rotation=45 if class_names else 0,
        ha="right" if class_names else "center",
    )
    axes.set_yticks(range(num_classes), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(
        f"{title}\n{counts.sum():,} images, accuracy {accuracy:.2%}; "
        "off-diagonal cells are the mistakes"
    )
    _save(figure, path)


def plot_misclassified(
    images, labels, probabilities, path, count=24, class_names=None, title="Misclassified"
):
    """A gallery of the most confident mistakes, each titled "true 7 → pred 2 (0.81)".

    images (N, 28, 28) or (N, 784), labels (N,), probabilities (N, K) from the model. The
    number in brackets is the probability the model gave its (wrong) answer; the most confident
    mistakes come first, since they are the most telling (and sometimes mislabelled digits).
    """
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    name = (lambda k: class_names[k]) if class_names else str

    columns = 6
    rows = max(int(np.ceil(len(shown) / columns)), 1)
    figure = Figure(figsize=(columns * 1.7, rows * 1.9 + 0.6), dpi=DPI, layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes in grid:
        axes.axis("off")
    for axes, index in zip(grid, shown):
        axes.imshow(images[index], cmap="gray_r", interpolation="nearest")
        # Class names are long ("Ankle boot"): give them a line each.
        separator = "\n" if class_names else " "
        axes.set_title(
            f"true {name(labels[index])}{separator}→ pred {name(predicted[index])} "
            f"({confidence[index]:.2f})",
            fontsize=9,
        )
    if len(shown):
        figure.suptitle(
            f"{title}: {len(shown)} of {len(wrong):,} mistakes among {len(labels):,} images, "
            "most confident first"
        )
    else:
        figure.suptitle(f"{title}: no mistakes among {len(labels):,} images")
    _save(figure, path)


def _save(figure, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
