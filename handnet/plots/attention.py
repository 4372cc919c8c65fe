"""Where a transformer looks: attention maps over the digit, per head and rolled out.

A MultiHeadAttention layer's weights P (N, heads, T, T) say, for each query token i, how much
of each key token j it mixes in (each row sums to 1). A ViT has no class token here (it reads
the mean token), so "where the network looks" from the mean query is the mean of P's rows:

    a_h[j] = 1/T Σ_i P_h[i, j]                         (heads, T): one map per head

Attention rollout (Abnar & Zuidema, 2020) follows the information through every block: the
residual connection carries each token on beside what attention mixes in, so a block maps
tokens by Â_l = ½ (mean over heads of P_l) + ½ I (rows renormalized), and L blocks by

    R = Â_L ⋯ Â_2 Â_1,      r[j] = 1/T Σ_i R[i, j]    how much input patch j reaches the end

Each map of T = (28/p)² numbers is laid over the image as its (28/p)×(28/p) grid of patches.
"""

import math

import numpy as np

from ..layers import MultiHeadAttention
from .figure import grid_figure, save


def attention_weights(model, x, trace=None):
    """[(layer name, P (N, heads, Tq, Tk))] for every MultiHeadAttention node of ``model``, in
    topological order, at inference: each layer is called again on its traced inputs, asking
    for its scores. ``trace``: the (node, output) pairs of ``model.trace(x)`` if the caller
    has them already (the draw-a-digit server does), so the model is not run twice."""
    values = {id(t): v for t, v in zip(model.input_tensors, model.as_inputs(x))}
    found = []
    for node, result in model.trace(x) if trace is None else trace:
        if isinstance(node.layer, MultiHeadAttention):
            named = node.layer.split_inputs([values[id(t)] for t in node.inputs])
            _, scores = node.layer(
                named["query"], named["value"], named["key"],
                attention_mask=named["attention_mask"],
                use_causal_mask=node.options.get("use_causal_mask", False),
                return_attention_scores=True,
            )
            found.append((node.layer.name, np.asarray(scores)))
        for tensor, value in zip(node.outputs, result if len(node.outputs) > 1 else [result]):
            values[id(tensor)] = value
    return found


def rollout(weights):
    """R = Â_L ⋯ Â_1 (N, T, T) from [P_l (N, heads, T, T)], Â_l = ½ mean_h P_l + ½ I with its
    rows renormalized (module docstring). All layers must attend over the same T tokens."""
    result = None
    for p in weights:
        mixed = 0.5 * p.mean(axis=1) + 0.5 * np.eye(p.shape[-1])
        mixed /= mixed.sum(axis=-1, keepdims=True)
        result = mixed if result is None else mixed @ result
    return result


def mean_query_maps(model, x):
    """(per-head maps of the last attention layer (N, heads, T), rollout map (N, T), its layer
    name) for the images x: the rows of P (or R) averaged over the queries."""
    weights = attention_weights(model, x)
    if not weights:
        raise ValueError(f"model {model.name!r} has no MultiHeadAttention layer")
    name, last = weights[-1]
    rolled = rollout([p for _, p in weights])
    return last.mean(axis=2), rolled.mean(axis=1), name


def _over_image(ax, image, tokens_map, title):
    """The grey image and, on top, the map upsampled to the image's grid of patches."""
    side = math.isqrt(tokens_map.size)
    height, width = image.shape[:2]
    patch = np.kron(tokens_map.reshape(side, side), np.ones((height // side, width // side)))
    ax.imshow(image.reshape(height, width), cmap="gray", interpolation="nearest")
    ax.imshow(patch / max(patch.max(), 1e-12), cmap="inferno", alpha=0.55,
              interpolation="nearest", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_attention(model, images, path, labels=None, title="Where the network looks"):
    """attention.png: one row per image (up to 8): the digit, then each head of the last block
    from the mean query, then the rollout over every block (module docstring)."""
    images = np.asarray(images, dtype=model.dtype)[:8]
    heads, rolled, name = mean_query_maps(model, images)
    side = math.isqrt(heads.shape[-1])
    if side * side != heads.shape[-1]:
        raise ValueError(f"{heads.shape[-1]} tokens are not a square grid of patches")
    columns = heads.shape[1] + 2
    figure, grid = grid_figure(
        len(images), columns, cell=(1.3, 1.3), gap=(0.1, 0.35), margins=(0.2, 0.2, 0.75, 0.1)
    )
    for row, image in enumerate(images):
        ax = figure.add_subplot(grid[row, 0])
        ax.imshow(image[..., 0] if image.ndim == 3 else image, cmap="gray")
        ax.set_title("digit" if labels is None else f"digit {labels[row]}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        for h in range(heads.shape[1]):
            _over_image(figure.add_subplot(grid[row, 1 + h]), image, heads[row, h],
                        f"{name} head {h + 1}")
        _over_image(figure.add_subplot(grid[row, columns - 1]), image, rolled[row],
                    "rollout, all blocks")
    figure.suptitle(
        f"{title}: attention from the mean query over {side}×{side} patches (bright = more)",
        fontsize=10,
    )
    save(figure, path)
