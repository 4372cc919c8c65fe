"""The model's graph: one box a layer call (name, type, output shape), arrows from inputs to
outputs, drawn top to bottom.

The layout is layered, the simplest that reads well for the networks here:

    depth(input) = 0,   depth(node) = 1 + max depth of the nodes that made its inputs

(the longest path from an input), so every arrow points down and a chain is one column. On a
level the boxes sit at the mean column of their parents (the barycentre), pushed apart to
keep a box's width between them: two branches leaving one tensor (a residual block's
convolutions and its 1×1 shortcut) are drawn side by side and meet again under their Add.
An arrow that skips levels (an identity shortcut) runs around the right of the boxes it
passes, so that it never crosses one.
"""

from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

from .figure import DPI, save

# Sizes in inches: one column (a box and its gap), one level, and the box inside them.
COLUMN, LEVEL = 2.5, 0.62
BOX_WIDTH, BOX_HEIGHT = 2.2, 0.44
MARGIN, TITLE_ROOM, MIN_WIDTH = 0.35, 0.5, 3.6
FONT_SIZE = 7.5
#: Fill colour of a box by the family of its layer; others are grey.
COLOURS = {
    "Input": "#d9d9d9",
    "Conv2D": "#c6dbef",
    "Dense": "#c6dbef",
    "LSTM": "#c6dbef",
    "GRU": "#c6dbef",
    "SimpleRNN": "#c6dbef",
    "Bidirectional": "#c6dbef",
    "BatchNormalization": "#fdd0a2",
    "Activation": "#c7e9c0",
    "ReLU": "#c7e9c0",
    "LeakyReLU": "#c7e9c0",
    "Softmax": "#c7e9c0",
    "MaxPooling2D": "#dadaeb",
    "AveragePooling2D": "#dadaeb",
    "GlobalAveragePooling2D": "#dadaeb",
    "GlobalMaxPooling2D": "#dadaeb",
    "Dropout": "#f0f0f0",
}
MERGE_COLOUR = "#fcbba1"  # Add, Concatenate, …: where branches meet
OTHER_COLOUR = "#eeeeee"


@dataclass
class Box:
    """One box of the picture: an input or one call of a layer."""

    name: str
    kind: str
    shapes: list
    depth: int
    merges: bool = False
    column: float = 0.0

    @property
    def label(self):
        shapes = ", ".join("×".join(str(d) for d in shape) for shape in self.shapes)
        return f"{self.name}\n{self.kind} → {shapes}"


def graph_layout(model):
    """(boxes, edges) of a built model's graph: boxes {key: Box} with depth and column set,
    edges [(source key, target key)] from the box that made a tensor to each box reading it."""
    boxes, made_by, edges = {}, {}, []
    for name, tensor in zip(model.input_names, model.input_tensors):
        key = ("input", name)
        boxes[key] = Box(name, "Input", [tensor.per_sample_shape], depth=0)
        made_by[id(tensor)] = key
    for index, node in enumerate(model.nodes):
        key = ("node", index)
        sources = list(dict.fromkeys(made_by[id(tensor)] for tensor in node.inputs))
        boxes[key] = Box(
            node.layer.name,
            _kind(node.layer),
            [tensor.per_sample_shape for tensor in node.outputs],
            depth=1 + max(boxes[source].depth for source in sources),
            merges=node.takes_list,
        )
        edges += [(source, key) for source in sources]
        for tensor in node.outputs:
            made_by[id(tensor)] = key
    _place_columns(boxes, edges)
    return boxes, edges


def _kind(layer):
    """The layer's type, with its window and stride where it has them and its activation
    when it is not the identity: "Conv2D 3×3 stride 2", "Dense softmax"."""
    parts = [type(layer).__name__]
    window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    strides = getattr(layer, "strides", None)
    if window is not None:
        parts.append("×".join(map(str, window)))
    if strides is not None and any(step != 1 for step in strides):
        same = len(set(strides)) == 1
        parts.append("stride " + (str(strides[0]) if same else "×".join(map(str, strides))))
    activation = getattr(layer, "activation", None)
    if activation is not None and type(activation).__name__ != "Linear":
        parts.append(type(activation).__name__.lower())
    return " ".join(parts)


def _place_columns(boxes, edges):
    """Columns level by level: each box at its parents' mean column, then boxes on one level
    pushed apart to at least one column between centres, the level kept centred on the mean
    of where its boxes wanted to be."""
    parents = {}
    for source, target in edges:
        parents.setdefault(target, []).append(source)
    levels = {}
    for key, box in boxes.items():  # in topological order: parents are placed first
        levels.setdefault(box.depth, []).append(key)
    for depth in sorted(levels):
        keys = levels[depth]
        wanted = {}
        for order, key in enumerate(keys):
            above = parents.get(key)
            wanted[key] = (
                sum(boxes[p].column for p in above) / len(above) if above else float(order)
            )
        keys = sorted(keys, key=lambda k: wanted[k])  # stable: ties keep the graph's order
        columns = [wanted[keys[0]]]
        for key in keys[1:]:
            columns.append(max(wanted[key], columns[-1] + 1.0))
        shift = sum(wanted.values()) / len(keys) - sum(columns) / len(keys)
        for key, column in zip(keys, columns):
            boxes[key].column = column + shift


def plot_model_graph(model, path, title=None):
    """Draw the graph of a built ``model`` (a Sequential or a functional Model) to ``path``.

    Each box: the layer's name, then its type (with its activation) and output shape per
    sample; arrows go from the box that made a tensor to every box that reads it.
    """
    boxes, edges = graph_layout(model)
    low = min(box.column for box in boxes.values())
    high = max(box.column for box in boxes.values())
    skips = any(boxes[t].depth - boxes[s].depth > 1 for s, t in edges)
    depth = max(box.depth for box in boxes.values())
    width = max(2 * MARGIN + (high - low) * COLUMN + BOX_WIDTH + (0.5 if skips else 0), MIN_WIDTH)
    offset = (width - 2 * MARGIN - (high - low) * COLUMN - BOX_WIDTH - (0.5 if skips else 0)) / 2
    height = 2 * MARGIN + TITLE_ROOM + depth * LEVEL + BOX_HEIGHT
    figure = Figure(figsize=(width, height), dpi=DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, width)
    axes.set_ylim(0, height)
    axes.axis("off")

    def centre(box):
        x = offset + MARGIN + BOX_WIDTH / 2 + (box.column - low) * COLUMN
        y = height - MARGIN - TITLE_ROOM - BOX_HEIGHT / 2 - box.depth * LEVEL
        return x, y

    for box in boxes.values():
        x, y = centre(box)
        colour = MERGE_COLOUR if box.merges else COLOURS.get(box.kind.split()[0], OTHER_COLOUR)
        axes.add_patch(
            FancyBboxPatch(
                (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2),
                BOX_WIDTH,
                BOX_HEIGHT,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=colour,
                edgecolor="#525252",
                linewidth=0.8,
            )
        )
        name, rest = box.label.split("\n")
        axes.text(x, y + 0.08, name, ha="center", va="center", fontsize=FONT_SIZE, weight="bold")
        axes.text(x, y - 0.09, rest, ha="center", va="center", fontsize=FONT_SIZE)

    for source, target in edges:
        axes.add_patch(_arrow(boxes, source, target, centre))
    heading = title or f"{model.name}: the graph"
    count = len(boxes) - len(model.input_names)
    top = height - MARGIN / 2
    axes.text(width / 2, top, heading, ha="center", va="top", fontsize=10, weight="bold")
    axes.text(
        width / 2,
        top - 0.22,
        f"{count} layer calls, {len(edges)} edges; output shapes per sample",
        ha="center",
        va="top",
        fontsize=FONT_SIZE,
    )
    save(figure, path)


def _arrow(boxes, source, target, centre):
    """A straight arrow to the next level; around the right of the boxes in between when the
    arrow skips levels (a shortcut), so that it crosses none of them."""
    (x0, y0), (x1, y1) = centre(boxes[source]), centre(boxes[target])
    style = dict(arrowstyle="-|>", mutation_scale=8, color="#252525", linewidth=0.8)
    span = boxes[target].depth - boxes[source].depth
    if span == 1:
        return FancyArrowPatch((x0, y0 - BOX_HEIGHT / 2), (x1, y1 + BOX_HEIGHT / 2), **style)
    passed = [
        centre(box)[0]
        for box in boxes.values()
        if boxes[source].depth < box.depth < boxes[target].depth
    ]
    side = max([x0, x1, *passed]) + BOX_WIDTH / 2 + 0.2
    path = Path(
        [
            (x0 + BOX_WIDTH / 2, y0),
            (side, y0),
            (side, y1),
            (x1 + BOX_WIDTH / 2, y1),
        ],
        [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO],
    )
    return FancyArrowPatch(path=path, **style, shrinkA=0, shrinkB=0)
