"""What the network has learned: its first layer's weights as pictures, and every layer's weights
and gradients as histograms."""

import textwrap

import numpy as np
from matplotlib.ticker import MaxNLocator, NullLocator

from ..errors import HandnetError
from .figure import (
    DIVERGING,
    count_formatter,
    grid_figure,
    image_shape,
    plain_formatter,
    save,
    symmetric_limit,
)

MAX_FIRST_LAYER_PICTURES = 32
MIN_WIDTH = 7.0  # inches
VALUE_COLOUR = "tab:blue"
GRADIENT_COLOUR = "tab:purple"


def first_weighted_layer(model):
    """The first layer with a kernel (Dense or Conv2D): the one that looks at the pixels."""
    for layer in model.layers:
        if "kernel" in layer.params:
            return layer
    raise HandnetError(f"model {model.name!r} has no layer with a kernel (Dense, Conv2D) to draw")


def first_layer_pictures(model):
    """(layer, [(title, 2-D array) per picture], caption, matrix) of the first weighted layer;
    matrix is True when the one picture is the whole kernel (an input that is no image).

    Conv2D kernel (kh, kw, C, F): one kh×kw picture per filter (and per input channel when
    C > 1). Dense kernel (D, U) on an image of D pixels: unit u's D weights laid out as the image,
    the pattern of ink that excites it most; on any other input, one picture of the U×D matrix.
    At most 32 pictures.
    """
    layer = first_weighted_layer(model)
    kernel = np.asarray(layer.params["kernel"])
    if kernel.ndim == 4:
        height, width, channels, filters = kernel.shape
        pictures = [
            (f"filter {f}" + (f", in {c}" if channels > 1 else ""), kernel[:, :, c, f])
            for f in range(filters)
            for c in range(channels)
        ]
        caption = (
            f"{filters} filter{'s' if filters > 1 else ''} of {height}×{width} weights"
            + (f" × {channels} input channels" if channels > 1 else "")
            + "; each slides over the image: ink under a red weight raises its output, under a "
            "blue one lowers it"
        )
        return layer, pictures[:MAX_FIRST_LAYER_PICTURES], caption, False
    kernel = kernel.reshape(-1, kernel.shape[-1])  # (inputs, units), whatever the layer
    inputs, units = kernel.shape
    picture_shape = image_shape(model.input_shape, inputs)
    if picture_shape is None:
        picture = (f"{units} units × {inputs} inputs", kernel.T)
        return layer, [picture], "the kernel transposed: one row per unit", True
    pictures = [(f"unit {u}", kernel[:, u].reshape(picture_shape)) for u in range(units)]
    caption = (
        f"each picture is one unit's {inputs} input weights laid out as the "
        f"{picture_shape[0]}×{picture_shape[1]} image: ink on red pixels raises the unit's input, "
        "ink on blue ones lowers it. Pixels never inked (the border) get no gradient and keep "
        "the random speckle of initialization"
    )
    return layer, pictures[:MAX_FIRST_LAYER_PICTURES], caption, False


def plot_first_layer_weights(model, path, title="First-layer weights"):
    """The first Dense or Conv2D layer's weights as small pictures on one diverging colour scale
    centred at 0 (white), so that filters can be compared with each other."""
    layer, pictures, caption, matrix = first_layer_pictures(model)
    limit = symmetric_limit(np.concatenate([picture.ravel() for _, picture in pictures]))
    columns = min(len(pictures), 8)
    rows = -(-len(pictures) // columns)
    side = 1.0 if pictures[0][1].shape[0] < 10 else 1.25
    left, right, bottom = (0.8, 1.3, 0.6) if matrix else (0.2, 1.3, 0.15)
    # A few filters still get a figure wide enough for the caption, the grid in its middle.
    width = (9 if matrix else columns * side + (columns - 1) * 0.15) + left + right
    spare = max(0.0, MIN_WIDTH - width)
    left, right = left + spare / 2, right + spare / 2
    caption = textwrap.wrap(caption, int(max(width, MIN_WIDTH) * 13))
    top = 0.6 + 0.19 * len(caption)  # the heading, the caption's lines, the pictures' titles
    figure, grid = grid_figure(
        rows,
        columns,
        cell=(9, 4.5) if matrix else (side, side),
        gap=(0.15, 0.35),
        margins=(left, right, top, bottom),
    )
    for index, (name, picture) in enumerate(pictures):
        axes = figure.add_subplot(grid[divmod(index, columns)])
        image = axes.imshow(
            picture,
            cmap=DIVERGING,
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
            aspect="auto" if matrix else "equal",
        )
        axes.set_title(name, fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])
        if matrix:
            axes.set_xlabel("input")
            axes.set_ylabel("unit")
    width, height = figure.get_size_inches()
    # The colour bar: right of the grid, from its bottom to its first row of pictures.
    bar_left, bar_height = width - right + 0.3, height - top - 0.2 - bottom
    bar_axes = figure.add_axes(
        [bar_left / width, bottom / height, 0.15 / width, bar_height / height]
    )
    colour_bar = figure.colorbar(image, cax=bar_axes)
    colour_bar.set_label("weight")
    kernel = layer.params["kernel"]
    total = kernel.shape[-1] * (kernel.shape[-2] if kernel.ndim == 4 else 1)
    shown = f", the first {len(pictures)}" if len(pictures) < total and not matrix else ""
    heading = (
        f"{title}: {layer.name} ({type(layer).__name__}, kernel "
        f"{'×'.join(map(str, kernel.shape))}{shown})"
    )
    figure.suptitle("\n".join([heading, *caption]), fontsize=10)
    save(figure, path)


def batch_gradients(model, x, y):
    """{layer name: {parameter: ∂L/∂parameter}} of one batch (x, y) in training mode (dropout
    on, batch statistics), as the last training step saw them. The model needs a loss
    (``compile``); its moving statistics are put back as they were, so plotting changes nothing.
    """
    if model.loss is None:
        raise HandnetError("compile the model first: the gradients need its loss")
    saved = [
        (layer, {key: value.copy() for key, value in layer.state.items()}) for layer in model.layers
    ]
    try:
        model.compute_gradients(x, y, training=True)
    finally:
        for layer, state in saved:
            for key, value in state.items():
                np.copyto(layer.state[key], value)
    return {
        layer.name: {key: np.array(grad) for key, grad in layer.grads.items()}
        for layer in model.layers
        if layer.trainable and layer.params
    }


def plot_weight_histograms(model, path, gradients=None, title="Weights and gradients"):
    """One row per parameter array (kernel, bias, gamma, …): the histogram of its values, and
    beside it that of its gradients (``batch_gradients``) when given.

    Weights show whether initialization and training kept them at a sane scale; gradients
    (counts on a log scale for large arrays: the tails matter) whether each layer still learns:
    a layer whose gradients are all ~0 has stopped learning, and ones far larger destabilize.
    """
    arrays = [
        (layer.name, key, np.asarray(value))
        for layer in model.layers
        for key, value in layer.params.items()
    ]
    if not arrays:
        raise HandnetError(f"model {model.name!r} has no weights to draw")
    columns = 2 if gradients is not None else 1
    figure, grid = grid_figure(
        len(arrays), columns, cell=(4.6, 1.35), gap=(0.9, 0.8), margins=(0.75, 0.25, 0.8, 0.5)
    )
    for row, (layer_name, key, values) in enumerate(arrays):
        name = f"{layer_name} / {key}"
        axes = figure.add_subplot(grid[row, 0])
        _histogram(axes, values, name, "value", VALUE_COLOUR, log=False)
        if gradients is None:
            continue
        axes = figure.add_subplot(grid[row, 1])
        gradient = gradients.get(layer_name, {}).get(key)
        if gradient is None:
            axes.set_axis_off()
            axes.set_title(f"{name}: frozen, no gradient", fontsize=9)
        else:
            # Counts on a log scale show the tails, where they have a few thousand values.
            log = np.size(gradient) >= 1000
            _histogram(axes, gradient, f"∂L/∂({name})", "gradient", GRADIENT_COLOUR, log=log)
    note = "" if gradients is None else "; right: the gradients of one training batch"
    figure.suptitle(f"{title}: one row per parameter array{note}", fontsize=11)
    save(figure, path)


def _histogram(axes, values, name, what, colour, log):
    shape = "×".join(map(str, np.shape(values))) or "1"
    values = np.asarray(values, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    broken = values.size - finite.size
    if finite.size:
        # One filled outline, not a rectangle per bin: a tenth of the drawing time.
        bins = min(60, max(finite.size // 4, 5))
        axes.hist(finite, bins=bins, color=colour, log=log, histtype="stepfilled")
        if log:
            axes.yaxis.set_major_formatter(count_formatter())
            axes.yaxis.set_minor_locator(NullLocator())
        axes.axvline(0, color="0.3", linewidth=0.8, linestyle=":")
        stats = f"mean {finite.mean():.2g}, std {finite.std():.2g}"
    else:
        stats = "no finite value"
    if broken:
        stats += f", {broken:,} NaN/inf left out"
    axes.set_title(f"{name} ({shape}): {stats}", fontsize=9)
    axes.set_xlabel(what)
    axes.set_ylabel("count (log scale)" if log else "count")
    axes.xaxis.set_major_locator(MaxNLocator(nbins=6))
    axes.xaxis.set_major_formatter(plain_formatter())
    axes.grid(alpha=0.3)
