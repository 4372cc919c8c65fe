"""A gallery of misclassified digits, each with the probabilities the model gave every class."""

import numpy as np

from .figure import grid_figure, save

TRUE_COLOUR = "tab:green"
PREDICTED_COLOUR = "tab:red"
OTHER_COLOUR = "0.7"


def plot_misclassified(
    images, labels, probabilities, path, count=24, class_names=None, title="Misclassified"
):
    """The most confident mistakes, each titled "true 7 → pred 2 (0.81)" above a bar chart of
    the K predicted probabilities (red: the wrong answer, green: the true class).

    images (N, 28, 28) or (N, 784), labels (N,), probabilities (N, K) from the model. The
    number in brackets is the probability the model gave its (wrong) answer; the most confident
    mistakes come first, since they are the most telling (and sometimes mislabelled digits).
    """
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities)
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    name = (lambda k: class_names[k]) if class_names else str

    columns = 6
    rows = max(-(-len(shown) // columns), 1)
    figure, grid = grid_figure(
        rows, columns, cell=(1.5, 2.25), gap=(0.25, 0.5), margins=(0.3, 0.25, 0.95, 0.25)
    )
    for index, sample in enumerate(shown):
        # Each cell: the digit, and under it the bars of its K probabilities.
        digit_cell, bar_cell = grid[divmod(index, columns)].subgridspec(
            2, 1, height_ratios=[3, 1.1], hspace=0.08
        )
        digit_axes = figure.add_subplot(digit_cell)
        digit_axes.imshow(images[sample], cmap="gray_r", interpolation="nearest")
        digit_axes.set_xticks([])
        digit_axes.set_yticks([])
        # Class names are long ("Ankle boot"): give them a line each.
        separator = "\n" if class_names else " "
        digit_axes.set_title(
            f"true {name(labels[sample])}{separator}→ pred {name(predicted[sample])} "
            f"({confidence[sample]:.2f})",
            fontsize=9,
        )
        bar_axes = figure.add_subplot(bar_cell)
        colours = [OTHER_COLOUR] * num_classes
        colours[labels[sample]] = TRUE_COLOUR
        colours[predicted[sample]] = PREDICTED_COLOUR
        bar_axes.bar(range(num_classes), probabilities[sample], color=colours, width=0.8)
        bar_axes.set_ylim(0, 1)
        bar_axes.set_yticks([0, 1])
        bar_axes.set_xticks(range(num_classes))
        bar_axes.tick_params(labelsize=6, length=2, pad=1)
        bar_axes.spines[["top", "right"]].set_visible(False)
    if len(shown):
        figure.suptitle(
            f"{title}: {len(shown)} of {len(wrong):,} mistakes among {len(labels):,} images, "
            "most confident first\nbars: the probability of each class "
            "(red: the model's answer, green: the true class)"
        )
    else:
        figure.suptitle(f"{title}: no mistakes among {len(labels):,} images")
    save(figure, path)
