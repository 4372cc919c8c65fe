"""The confusion matrix: which classes the model takes for which."""

import numpy as np

from .figure import count_formatter, new_figure, save


def confusion_matrix(labels, predicted, num_classes=10):
    """counts[i, j] = how many samples of true class i were predicted as class j;  (K, K) int."""
    labels = np.asarray(labels, dtype=np.intp).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.intp).reshape(-1)
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def plot_confusion_matrix(labels, predicted, path, class_names=None, title="Confusion matrix"):
    """The K×K table of (true class, predicted class) counts, each cell written out.

    The colours follow a log scale: the diagonal holds ~1000 correct answers per class and the
    mistakes a handful each, so on a linear scale every mistake would look the same pale colour.
    Cells with no sample stay white.
    """
    # Here, not at the top: confusion_matrix above is plain NumPy, and a command that only
    # counts (train --no-plots) should not import matplotlib.
    from matplotlib.colors import LogNorm

    num_classes = len(class_names) if class_names else 10
    counts = confusion_matrix(labels, predicted, num_classes)
    names = list(class_names) if class_names else [str(k) for k in range(num_classes)]
    accuracy = np.trace(counts) / max(counts.sum(), 1)

    figure = new_figure(7.5, 6.5)
    axes = figure.subplots()
    shown = np.ma.masked_equal(counts, 0)
    image = axes.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)))
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.85)
    colour_bar.set_label("number of test images (log scale)")
    colour_bar.ax.yaxis.set_major_formatter(count_formatter())
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
    save(figure, path)
