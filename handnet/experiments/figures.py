"""The figures of an experiment's report (handnet.experiments.report): every run's learning
curves overlaid, accuracy.png and loss.png."""

import numpy as np
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..plots.figure import new_figure, save

#: Loss curves go on a log scale when their largest value is this many times their smallest.
LOG_SCALE_RATIO = 10
#: The step-by-step loss is averaged over this fraction (1/SMOOTHING) of an epoch's steps.
SMOOTHING = 10
DIVERGED_MARKER = {"marker": "X", "markersize": 11, "markeredgecolor": "black", "linestyle": "none"}


def colours_for(results, varied):
    """For one numeric setting, an ordered colour map: small to large reads dark to light
    (purple, red, yellow). Otherwise distinct colours."""
    values = [result["varied"].get(varied[0]) for result in results] if len(varied) == 1 else []
    numeric = values and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in values
    )
    if numeric and len(results) > 1:
        return [colormaps["plasma"](0.88 * i / (len(results) - 1)) for i in range(len(results))]
    palette = colormaps["tab10" if len(results) <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(len(results))]


def _finite(values):
    return np.array([np.nan if value is None else value for value in values], dtype=float)


def _epoch_axis(axes, histories):
    longest = max([len(history["epoch"]) for history in histories] + [1])
    axes.set_xlabel("epoch")
    axes.set_xlim(0, longest + 0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)


def _finish(figure, runs_title, styles, title, path):
    """Two legends right of the plot, where they cover no curve: which colour is which run, and
    what each line style means."""
    figure.legend(loc="outside right upper", title=runs_title, fontsize=9, title_fontsize=9)
    style_handles = [Line2D([], [], color="black", **style) for _, style in styles]
    figure.legend(style_handles, [label for label, _ in styles], loc="outside right lower",
                  fontsize=8, title="lines", title_fontsize=8)
    figure.suptitle(title, fontsize=13)
    save(figure, path)


def plot_accuracy(histories, results, labels, legend_title, colours, title, path):
    figure = new_figure(11, 5.5)
    axes = figure.subplots()
    for history, label, colour in zip(histories, labels, colours):
        logs, epochs = history["history"], np.arange(1, len(history["epoch"]) + 1)
        axes.plot(epochs, _finite(logs.get("val_accuracy", [])) * 100, color=colour, marker="o",
                  markersize=4, linewidth=2, label=label)
        axes.plot(epochs, _finite(logs.get("accuracy", [])) * 100, color=colour, linestyle="--",
                  linewidth=1.2, alpha=0.8)
    axes.set_title("Accuracy per epoch")
    axes.set_ylabel("accuracy")
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    _epoch_axis(axes, histories)
    styles = [
        ("validation, after each epoch", {"marker": "o", "markersize": 4, "linewidth": 2}),
        ("training, mean over the epoch", {"linestyle": "--", "linewidth": 1.2}),
    ]
    _finish(figure, legend_title, styles, title, path)


def plot_loss(histories, results, labels, legend_title, colours, title, path):
    """Left: the training loss step by step (a running mean, or the noise of single batches
    hides the trend), which shows oscillation and blow-ups within an epoch. Right: per epoch,
    training and validation, where a growing gap is overfitting."""
    figure = new_figure(13, 5.5)
    step_axes, epoch_axes = figure.subplots(1, 2, sharey=True)
    window = max(1, min(history["steps_per_epoch"] for history in histories) // SMOOTHING)
    plotted = []
    for history, result, label, colour in zip(histories, results, labels, colours):
        logs, epochs = history["history"], np.arange(1, len(history["epoch"]) + 1)
        steps = _running_mean(_finite(history["batch_loss"]), window)
        # The mean of steps i-w+1..i is drawn at the end of step i, at epoch (i + 1) / steps.
        step_x = np.arange(window, len(history["batch_loss"]) + 1) / history["steps_per_epoch"]
        step_axes.plot(step_x, steps, color=colour, linewidth=1)
        if result["diverged"] and len(steps):
            step_axes.plot(step_x[-1], steps[-1], color=colour, **DIVERGED_MARKER)
        epoch_loss = _finite(logs.get("loss", []))
        epoch_axes.plot(epochs, epoch_loss, color=colour, marker="o", markersize=4, linewidth=2,
                        label=label)
        epoch_axes.plot(epochs, _finite(logs.get("val_loss", [])), color=colour, linestyle="--",
                        linewidth=1.2, alpha=0.8)
        plotted += [steps, epoch_loss, _finite(logs.get("val_loss", []))]
    values = np.concatenate(plotted) if plotted else np.array([])
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) and values.max() > LOG_SCALE_RATIO * values.min():
        step_axes.set_yscale("log")
    step_axes.set_title(
        f"Training loss at each step (mean of the last {window} steps)"
        if window > 1 else "Training loss at each step"
    )
    epoch_axes.set_title("Loss per epoch")
    log_scale = step_axes.get_yscale() == "log"
    step_axes.set_ylabel("loss (cross-entropy" + (", log scale)" if log_scale else ")"))
    for axes in (step_axes, epoch_axes):
        _epoch_axis(axes, histories)
    epoch_axes.tick_params(labelleft=True)
    styles = [
        ("training, mean over the epoch", {"marker": "o", "markersize": 4, "linewidth": 2}),
        ("validation, after each epoch", {"linestyle": "--", "linewidth": 1.2}),
    ]
    if any(result["diverged"] for result in results):
        styles.append(("last step before the loss\nbecame NaN or infinite", DIVERGED_MARKER))
    _finish(figure, legend_title, styles, title, path)


def _running_mean(values, window):
    """means[i] = mean of values[i : i + window]; (len - window + 1,). NaN stays NaN."""
    if len(values) < window:
        return np.array([])
    sums = np.cumsum(np.concatenate([[0.0], values]))
    return (sums[window:] - sums[:-window]) / window
