"""Feature maps: what each layer makes of one input image."""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .figure import DIVERGING, DPI, image_shape, save, symmetric_limit, tile

MAX_CHANNELS = 64
MAP_COLUMNS = 16
MAX_BARS = 32
# Panels are placed by hand, in inches: constrained layout would take most of the drawing time.
WIDTH, LEFT, RIGHT, TOP = 11.0, 1.0, 1.5, 0.45
TITLE, GAP, LABELS = 0.3, 0.2, 0.45
MAX_MAP_HEIGHT = 2.6


def layer_outputs(model, image):
    """[(layer, output for this one image)] for every node of the model's graph, at inference,
    in topological order (a chain: layer by layer).

    The layers run one by one, never fused (a Sequential fuses Conv2D → MaxPooling2D), so that
    the convolution's own output is seen too.
    """
    x = np.asarray(image, dtype=model.dtype).reshape(1, *model.input_shape)
    return [(node.layer, output[0]) for node, output in model.trace(x)]


def plot_feature_maps(
    model, image, path, label=None, class_names=None, title="Feature maps of one image"
):
    """One panel per layer, top to bottom, of what the layer outputs for ``image``:

    - images (H, W, C): the C channels (the first 64) as a grid of H×W maps on one colour scale;
    - vectors of up to 32 values (the class probabilities, say): a bar chart;
    - longer vectors (Flatten, hidden Dense layers): rows of cells, one cell a value;
    - an output equal to its input (Dropout at inference): one line that says so.

    image: one sample, in any shape with the model's input size (28×28, 784, 28×28×1), scaled as
    the model expects. label: its true class, shown in the first panel's title.
    """
    names = class_names or [str(k) for k in range(model.output_shape[-1])]
    previous = np.asarray(image, dtype=float).reshape(model.input_shape)
    # An MLP's input is a vector of pixels, but it is read best as the picture it is.
    picture_shape = image_shape(model.input_shape, previous.size)
    picture = previous.reshape(*picture_shape, 1) if picture_shape else previous
    shown = "" if label is None else f", true class {names[int(label)]}"
    as_picture = "" if picture.shape == previous.shape else " (shown as the picture)"
    heading = f"input {_shape_text(previous)}{as_picture}{shown}"
    panels = [_panel(heading, picture, "pixel value", "gray_r")]
    outputs = layer_outputs(model, image)
    for index, (layer, output) in enumerate(outputs, start=1):
        heading = f"{index}. {layer.name} ({_kind(layer)})"
        if output.shape == previous.shape and np.array_equal(output, previous):
            why = " (dropout acts only while training)" if type(layer).__name__ == "Dropout" else ""
            line = f"{heading}: output = input at inference{why}"
            panels.append({"heading": line, "height": 0.4})
        elif index == len(outputs) and _probabilities(output, names):
            best = int(output.argmax())
            answer = f"class probabilities; the model answers {names[best]} ({output[best]:.2f})"
            panels.append(_bars(f"{heading}: {answer}", output, names, probabilities=True))
        else:
            heading += f" → {_shape_text(output)}{_zeros(layer, output)}"
            panels.append(_panel(heading, output))
        previous = output

    height = TOP + sum(panel["height"] for panel in panels)
    figure = Figure(figsize=(WIDTH, height), dpi=DPI)
    top = height - TOP
    for panel in panels:
        _draw(figure, panel, top, height)
        top -= panel["height"]
    figure.suptitle(title, fontsize=12, weight="bold", y=1 - 0.12 / height, va="top")
    save(figure, path)


def _kind(layer):
    activation = getattr(layer, "activation", None)
    kind = type(layer).__name__
    return kind if activation is None else f"{kind}, {type(activation).__name__.lower()}"


def _probabilities(output, names):
    return output.size == len(names) and np.all(output >= 0) and abs(output.sum() - 1) < 1e-3


def _zeros(layer, output):
    """For a ReLU layer, how many units are off (output 0) for this image."""
    activation = type(getattr(layer, "activation", layer)).__name__
    if activation not in ("ReLU", "ReLU6"):
        return ""
    return f"; {int(np.sum(output == 0)):,} of {output.size:,} values are 0 (the ReLU is off)"


def _shape_text(values):
    return "×".join(map(str, values.shape))


def _panel(heading, values, colour_label="activation", cmap=None):
    """What one layer's drawing needs: the array to show, its labels and its size in inches."""
    panel = {"heading": heading, "colour_label": colour_label, "cmap": cmap}
    available = WIDTH - LEFT - RIGHT
    if values.ndim == 3:
        channels = values.shape[2]
        count = min(channels, MAX_CHANNELS)
        columns = min(count, MAP_COLUMNS)
        if count < channels:
            panel["heading"] += f" (the first {count} channels)"
        mosaic = tile(np.moveaxis(values[:, :, :count], 2, 0), columns)
        aspect = mosaic.shape[1] / mosaic.shape[0]
        width = min(available, MAX_MAP_HEIGHT * aspect)
        panel.update(mosaic=mosaic, width=width, drawing=width / aspect, below=GAP)
        panel["rows"] = (values.shape[0], columns, count) if channels > 1 else None
    elif values.size <= MAX_BARS:
        return _bars(heading, values, [str(k) for k in range(values.size)], probabilities=False)
    else:
        columns = 64 if values.size <= 1024 else 128
        rows = -(-values.size // columns)
        padded = np.full(rows * columns, np.nan)  # the last row's blank cells
        padded[: values.size] = values.ravel()
        drawing = float(np.clip(rows * available / columns, 0.3, 1.8))
        panel.update(mosaic=padded.reshape(rows, columns), width=available, drawing=drawing)
        panel.update(below=LABELS, row_length=columns)
    panel["height"] = TITLE + panel["drawing"] + panel["below"]
    return panel


def _bars(heading, values, names, probabilities):
    drawing = 1.1
    return {
        "heading": heading,
        "bars": values,
        "names": names,
        "probabilities": probabilities,
        "drawing": drawing,
        "height": TITLE + drawing + LABELS,
    }


def _draw(figure, panel, top, height):
    """Draw ``panel`` with its upper edge ``top`` inches above the figure's bottom."""
    if "drawing" not in panel:
        figure.text(0.5, (top - TITLE / 2) / height, panel["heading"], ha="center", va="center")
        return
    width = panel.get("width", WIDTH - LEFT - RIGHT)
    bottom = top - TITLE - panel["drawing"]
    axes = figure.add_axes(
        [LEFT / WIDTH, bottom / height, width / WIDTH, panel["drawing"] / height]
    )
    axes.set_title(panel["heading"], fontsize=10, loc="left")
    if "bars" in panel:
        _draw_bars(axes, panel)
        return
    mosaic = panel["mosaic"]
    # Signed outputs on a scale centred at 0; others (ReLU's, pixels) from 0 to their maximum.
    limit = symmetric_limit(mosaic)
    if panel["cmap"] is None and np.any(mosaic < 0):
        image = axes.imshow(mosaic, cmap=DIVERGING, vmin=-limit, vmax=limit)
    else:
        image = axes.imshow(mosaic, cmap=panel["cmap"] or "viridis", vmin=0, vmax=limit)
    image.set_interpolation("nearest")
    axes.set_aspect("auto")
    if "row_length" in panel:
        length = panel["row_length"]
        axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda row, _: f"{int(row) * length}"))
        axes.set_ylabel("first value\nof the row", fontsize=8)
        axes.set_xlabel(f"+ position in the row (0–{length - 1})", fontsize=8)
        axes.tick_params(labelsize=7)
    elif panel.get("rows"):
        map_height, columns, count = panel["rows"]
        rows = -(-count // columns)
        step = map_height + 1
        axes.set_yticks(
            [row * step + (map_height - 1) / 2 for row in range(rows)],
            [f"{row * columns}–{min((row + 1) * columns, count) - 1}" for row in range(rows)],
            fontsize=7,
        )
        axes.set_ylabel("channels", fontsize=8)
        axes.set_xticks([])
    else:
        axes.set_xticks([])
        axes.set_yticks([])
    bar_axes = figure.add_axes(
        [(LEFT + width + 0.12) / WIDTH, bottom / height, 0.12 / WIDTH, panel["drawing"] / height]
    )
    colour_bar = figure.colorbar(image, cax=bar_axes)
    colour_bar.set_label(panel["colour_label"], fontsize=8)
    colour_bar.ax.tick_params(labelsize=7)


def _draw_bars(axes, panel):
    values, names, probabilities = panel["bars"], panel["names"], panel["probabilities"]
    colours = ["tab:blue"] * len(values)
    if probabilities:
        colours[int(np.argmax(values))] = "tab:red"
        axes.set_ylim(0, 1)
    axes.bar(range(len(values)), values, color=colours)
    axes.axhline(0, color="0.3", linewidth=0.8)
    axes.set_xticks(range(len(values)), names, fontsize=8)
    axes.set_ylabel("probability" if probabilities else "activation", fontsize=8)
    axes.set_xlabel("class" if probabilities else "unit", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(axis="y", alpha=0.3)
