"""Learning curves: loss and accuracy per epoch, training vs validation, with the learning rate."""

import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .figure import new_figure, plain_formatter, save

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


def plot_training_curves(history, path, title="Training curves", loss_name="cross-entropy"):
    """Loss and accuracy per epoch, training vs validation, with the learning rate (grey, dashed,
    right-hand axis) under both.

    history: {"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
    "learning_rate": [...]} as ``model.fit(...).history``; missing keys are left out, and a
    history with no accuracy at all (an autoencoder's) gets the loss panel alone.
    loss_name: what the loss is, in the axis label ("mean squared error"; None: just "loss").
    """
    epochs = np.arange(1, len(history["loss"]) + 1)
    loss_label = f"loss ({loss_name})" if loss_name else "loss"
    if "accuracy" in history or "val_accuracy" in history:
        figure = new_figure(11, 4.2)
        loss_axes, accuracy_axes = figure.subplots(1, 2)
        panels = [
            (loss_axes, "loss", loss_label, 1),
            (accuracy_axes, "accuracy", "accuracy", 100),
        ]
    else:
        figure = new_figure(6.5, 4.2)
        loss_axes = figure.subplots()
        panels = [(loss_axes, "loss", loss_label, 1)]
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
            rate_axes.yaxis.set_major_formatter(plain_formatter())
    # Both panels share the three lines, so one legend under them serves both and hides no data.
    handles, labels = loss_axes.get_legend_handles_labels()
    if "learning_rate" in history:
        handles, labels = handles + [line], labels + [line.get_label()]
    # One panel alone is too narrow for the three entries side by side.
    columns = len(handles) if len(panels) > 1 else min(len(handles), 2)
    figure.legend(handles, labels, loc="outside lower center", ncols=columns)
    figure.suptitle(title)
    save(figure, path)
