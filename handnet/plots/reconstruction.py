"""An autoencoder's pictures: test digits above their reconstructions, and the test set's codes
as points in the plane, coloured by the digit they are (a label the network never saw)."""

import numpy as np
from matplotlib import colormaps

from .figure import grid_figure, new_figure, save

#: Ten colours that stay apart (matplotlib's default cycle): one per digit.
CLASS_COLOURS = "tab10"


def pick_one_per_class(labels, per_class=1):
    """Indices of the first ``per_class`` samples of each class in ``labels``, class by class:
    a gallery that shows every digit, not whichever the test set happens to start with."""
    labels = np.asarray(labels).reshape(-1)
    picked = [np.flatnonzero(labels == k)[:per_class] for k in np.unique(labels)]
    return np.concatenate(picked) if picked else np.array([], dtype=int)


def plot_reconstructions(
    images, reconstructions, path, labels=None, per_class=2, title="Reconstructions"
):
    """Rows of test digits, each row followed by a row of what the network rebuilt of them,
    with each reconstruction's own mean squared error under it.

    images, reconstructions (N, 28, 28), (N, 784) or (N, 28, 28, 1) in [0, 1]; labels (N,)
    pick ``per_class`` digits of each class (without labels: the first 10·per_class images).
    Both rows share one grey scale from 0 to 1, so a faint stroke in the reconstruction is a
    faint stroke, not a contrast stretch.
    """
    images = np.asarray(images, dtype=float).reshape(-1, 28, 28)
    reconstructions = np.asarray(reconstructions, dtype=float).reshape(-1, 28, 28)
    if labels is None:
        shown = np.arange(min(10 * per_class, len(images)))
    else:
        shown = pick_one_per_class(labels, per_class)
    # One block per round of classes: digits 0–9, then their second examples, …
    columns = min(len(shown), 10)
    blocks = -(-len(shown) // columns) if columns else 0
    figure, grid = grid_figure(
        2 * blocks, columns, cell=(0.9, 0.9), gap=(0.08, 0.22), margins=(1.2, 0.15, 0.7, 0.1)
    )
    errors = ((reconstructions[shown] - images[shown]) ** 2).mean(axis=(1, 2))
    for position, sample in enumerate(shown):
        block, column = divmod(position, columns)
        for offset, picture in enumerate((images[sample], reconstructions[sample])):
            axes = figure.add_subplot(grid[2 * block + offset, column])
            axes.imshow(picture, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if offset:
                axes.set_title(f"MSE {errors[position]:.4f}", fontsize=7, pad=2)
            if column == 0:
                axes.set_ylabel("test digit" if offset == 0 else "rebuilt", fontsize=9)
    mean = float(errors.mean()) if len(shown) else float("nan")
    figure.suptitle(
        f"{title}\nodd rows: test digits; even rows: the network's reconstruction from its code "
        f"(mean MSE of these {len(shown)}: {mean:.4f})",
        fontsize=10,
    )
    save(figure, path)


def plot_embedding(
    points,
    labels,
    path,
    class_names=None,
    axis_labels=("code unit 1", "code unit 2"),
    title="The test set's codes",
    seed=0,
):
    """A scatter of ``points`` (N, 2), one dot per image, coloured by its class ``labels`` (N,),
    with each class's name written at its median point and a legend.

    The labels only colour the picture: an autoencoder never sees them, so digits that gather
    in clusters do so because they look alike, not because they were told apart. The dots are
    drawn in a shuffled order (``seed``), so that no class is painted over all the others.
    """
    points = np.asarray(points, dtype=float)
    labels = np.asarray(labels).reshape(-1)
    classes = np.unique(labels)
    names = class_names or [str(k) for k in range(int(classes.max()) + 1 if classes.size else 0)]
    colours = _colours(len(names))
    order = np.random.default_rng(seed).permutation(len(points))
    figure = new_figure(8, 7)
    axes = figure.subplots()
    axes.scatter(
        points[order, 0],
        points[order, 1],
        c=colours[labels[order]],
        s=3,
        alpha=0.5,
        linewidths=0,
        rasterized=True,
    )
    for k in classes:
        centre = np.median(points[labels == k], axis=0)
        axes.text(
            *centre,
            names[k],
            fontsize=13,
            weight="bold",
            ha="center",
            va="center",
            color=colours[k],
            bbox=dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.75, linewidth=0),
        )
        # An empty scatter per class gives the legend solid, readable markers.
        axes.scatter([], [], color=colours[k], s=30, label=names[k])
    axes.legend(
        title="digit",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=9,
        frameon=False,
    )
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    axes.grid(alpha=0.3)
    axes.set_title(title, fontsize=10)
    save(figure, path)


def _colours(count):
    """(count, 4) RGBA rows: tab10 for up to ten classes, evenly spaced hues beyond."""
    if count <= 10:
        return np.asarray(colormaps[CLASS_COLOURS].colors)[:count].reshape(-1, 3)
    return colormaps["hsv"](np.linspace(0, 1, count, endpoint=False))[:, :3]
