"""What every figure shares: its resolution, how it is saved, and colour scales.

Figures are built with ``matplotlib.figure.Figure`` and rendered by Agg, never through pyplot: no
window opens, the user's backend (a notebook's, say) is left alone, and nothing stays registered
in pyplot's global list of figures, so there is nothing to close.

matplotlib is imported inside the functions that draw: it takes half a second to load, which a
command that draws nothing (``handnet train --no-plots``, the speed run) should not pay.
"""

import io
import math

import numpy as np

from ..atomic import write_bytes_atomic

DPI = 120
# Weights and gradients are signed: white is zero, red positive, blue negative.
DIVERGING = "RdBu_r"


def new_figure(width, height):
    """A figure whose panels matplotlib places itself (constrained layout) around their labels."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def grid_figure(rows, columns, cell, gap, margins):
    """A figure of rows × columns equal cells laid out by hand, and its GridSpec.

    cell (width, height), gap (across, down) and margins (left, right, top, bottom) in inches.
    Constrained layout would measure every tick label of every panel, twice: for grids of many
    small panels that doubles the drawing time, and fixed room for the labels does as well.
    """
    from matplotlib.figure import Figure

    (width, height), (across, down), (left, right, top, bottom) = cell, gap, margins
    figure_width = left + right + columns * width + (columns - 1) * across
    figure_height = top + bottom + rows * height + (rows - 1) * down
    figure = Figure(figsize=(figure_width, figure_height), dpi=DPI)
    grid = figure.add_gridspec(
        rows,
        columns,
        left=left / figure_width,
        right=1 - right / figure_width,
        top=1 - top / figure_height,
        bottom=bottom / figure_height,
        wspace=across / width,
        hspace=down / height,
    )
    return figure, grid


def save(figure, path):
    """Render ``figure`` as a PNG at ``path`` (folders created), atomically: a run interrupted
    while plotting leaves the old picture or none, never half a PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue())


def image_shape(input_shape, size):
    """(height, width) of a model's per-sample input of ``size`` values when it is one grey
    image: (28, 28, 1), or a square number of pixels such as an MLP's 784; None otherwise."""
    if len(input_shape) == 3 and input_shape[-1] == 1:
        return tuple(input_shape[:2])
    side = math.isqrt(size)
    return (side, side) if side * side == size else None


def symmetric_limit(values):
    """max |finite value| (1 if there is none, or all are 0): the ±limit of a diverging scale
    centred at 0. A diverged run's NaNs must not break the picture of it."""
    values = np.asarray(values, dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    limit = float(finite.max()) if finite.size else 0.0
    return limit if limit > 0 else 1.0


def plain_formatter():
    """Tick labels as short numbers (0.0005, 1e-05, 1000), each readable on its own: no offset
    such as "×10⁻⁴" at the end of the axis to combine them with, and no mathtext, whose
    typesetting would take most of a figure's drawing time."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:.3g}")


def count_formatter():
    """Counts on a log axis as 1, 10, 100, 1,000 rather than 10⁰…10³ (or 1e+03)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")


def tile(images, columns, gap=1):
    """Images (K, h, w) laid out row by row in one (rows·(h+gap) - gap, columns·(w+gap) - gap)
    array, the gaps NaN so that imshow leaves them blank. One image of many tiles draws far
    faster than one axes per tile."""
    images = np.asarray(images, dtype=float)
    count, height, width = images.shape
    rows = -(-count // columns)
    mosaic = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        mosaic[top : top + height, left : left + width] = images[index]
    return mosaic
