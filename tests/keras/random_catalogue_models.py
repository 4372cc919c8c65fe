"""Random Keras models of the catalogue's layers, for tests/keras/test_property_catalogue.py.

``architectures(keras)`` is a hypothesis strategy of an ``Architecture``: an input shape and a
list of nodes, each a layer (its Keras class name and arguments), a second call of an earlier
node's layer (shared weights), or a merge of two tensors; ``build_keras_model`` makes it a
Keras model (a Sequential, or the same chain as a functional model, or a graph).

The draw is a walk that tracks each tensor's per-sample shape: at every step it offers only the
layers valid at the current shape, draws their options within what Keras allows, and takes the
output shape from Keras itself (the layer called on a KerasTensor), so no size rule is written
twice. Layers with weights are drawn twice as often as the others (the training step needs
them). Sizes stay small (axes ≤ 16, the last ≤ 256, ≤ 512 values a sample): an example runs in
a fraction of a second. The architecture is plain data, so a failing example prints in full.
"""

import dataclasses
import itertools
import random

import numpy as np
from hypothesis import strategies as st
from keras_models import ACTIVATIONS, keras_chain, uneven_same_padding

MAX_SIZE = 16
MAX_LAST = 256  # the last axis: channels, or a flattened vector
MAX_VALUES = 512

#: Layers whose training-time output is random (their random streams differ by design).
RANDOM_IN_TRAINING = {
    "Dropout": "rate",
    "SpatialDropout1D": "rate",
    "SpatialDropout2D": "rate",
    "GaussianDropout": "rate",
    "AlphaDropout": "rate",
    "GaussianNoise": "stddev",
}
ELEMENTWISE_MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
MERGES = {*ELEMENTWISE_MERGES, "Concatenate"}


@dataclasses.dataclass
class Node:
    """A layer ``kind`` (a keras.layers class name, or "call": node ``args["node"]``'s layer
    called again) applied to ``inputs``: tensor indices, 0 the model's input, i + 1 node i's
    output."""

    kind: str
    args: dict
    inputs: tuple


@dataclasses.dataclass
class Architecture:
    input_shape: tuple
    nodes: list
    sequential: bool  # a chain built as keras.Sequential (else a functional model)
    seed: int

    def is_chain(self):
        return all(
            node.kind != "call" and node.kind not in MERGES and node.inputs == (index,)
            for index, node in enumerate(self.nodes)
        )

    def random_in_training(self):
        """The nodes whose training-time output is random (a rate or stddev above 0)."""
        return [
            node for node in self.nodes
            if node.kind in RANDOM_IN_TRAINING and node.args[RANDOM_IN_TRAINING[node.kind]] > 0
        ]


def keras_layer(keras, kind, args):
    if kind == "TimeDistributed":
        return keras.layers.TimeDistributed(keras_layer(keras, *args["layer"]))
    return getattr(keras.layers, kind)(**args)


def build_keras_model(keras, architecture):
    if architecture.is_chain():
        layers = [keras_layer(keras, node.kind, node.args) for node in architecture.nodes]
        return keras_chain(keras, layers, architecture.input_shape, not architecture.sequential)
    inputs = keras.Input(architecture.input_shape)
    tensors, layers = [inputs], []
    for node in architecture.nodes:
        if node.kind == "call":
            layer = layers[node.args["node"]]
        else:
            layer = keras_layer(keras, node.kind, node.args)
        layers.append(layer)
        arguments = [tensors[i] for i in node.inputs]
        tensors.append(layer(arguments if node.kind in MERGES else arguments[0]))
    return keras.Model(inputs, tensors[-1])


def output_shape(keras, kind, args, shapes):
    """The per-sample output shape Keras gives ``kind`` on inputs of ``shapes``; None when Keras
    refuses the shape (a window larger than its input), or a size falls outside 1 … MAX_SIZE
    (MAX_LAST for the last axis), or the values outside MAX_VALUES.

    Keras draws default seeds (initializers, noise layers) from Python's random module as it
    makes a layer: its state is put back, so that the draws of hypothesis stay reproducible."""
    inputs = [keras.KerasTensor((None, *shape)) for shape in shapes]
    state = random.getstate()
    try:
        layer = keras_layer(keras, kind, args)
        shape = tuple(layer(inputs if kind in MERGES else inputs[0]).shape)[1:]
    except ValueError:  # "Computed output size would be zero or negative"
        return None
    finally:
        random.setstate(state)
    fits = (
        all(1 <= size <= MAX_SIZE for size in shape[:-1])
        and 1 <= shape[-1] <= MAX_LAST
        and np.prod(shape) <= MAX_VALUES
    )
    return shape if fits else None


# -- the layers, each a function (draw, shape) -> Keras arguments, or None where it fits not --
def _flag(draw):
    return draw(st.booleans())


def _divisor(draw, n):
    return draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))


def _axes(draw, rank):
    """-1, or a nonempty sorted list of the axes 1 … rank."""
    if rank == 1 or _flag(draw):
        return -1
    return sorted(draw(st.sets(st.integers(1, rank), min_size=1, max_size=rank)))


def _window(draw, spatial_rank):
    """kernel_size, strides and dilation_rate (Keras allows no dilation with strides > 1)."""
    strides = draw(st.integers(1, 2))
    return dict(
        kernel_size=tuple(draw(st.integers(1, 3)) for _ in range(spatial_rank)),
        strides=strides,
        dilation_rate=1 if strides > 1 else draw(st.integers(1, 2)),
    )


def _convolution(draw, spatial_rank, paddings=("valid", "same")):
    return dict(
        **_window(draw, spatial_rank),
        padding=draw(st.sampled_from(paddings)),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=_flag(draw),
    )


def _grouped_convolution(paddings):
    def draw_arguments(draw, shape):
        groups = _divisor(draw, shape[-1])
        spatial_rank = len(shape) - 1
        return dict(
            filters=groups * draw(st.integers(1, max(1, 6 // groups))),
            groups=groups,
            **_convolution(draw, spatial_rank, paddings),
            kernel_regularizer=draw(st.sampled_from([None, "l2"])),
        )

    return draw_arguments


def _conv2d_transpose(draw, shape):
    strides = tuple(draw(st.integers(1, 3)) for _ in range(2))
    padding = draw(st.sampled_from(["valid", "same"]))
    dilation = 1 if max(strides) > 1 else draw(st.integers(1, 2))
    output_padding = None
    if _flag(draw):
        output_padding = tuple(draw(st.integers(0, s - 1)) for s in strides)
    return dict(
        filters=draw(st.integers(1, 4)),
        kernel_size=tuple(draw(st.integers(1, 3)) for _ in range(2)),
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=dilation,
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=_flag(draw),
    )


def _depthwise(draw, shape):
    return dict(depth_multiplier=draw(st.integers(1, 2)), **_convolution(draw, len(shape) - 1))


def _separable(draw, shape):
    return dict(
        filters=draw(st.integers(1, 4)),
        depth_multiplier=draw(st.integers(1, 2)),
        **_convolution(draw, len(shape) - 1),
    )


def _pooling(average):
    def draw_arguments(draw, shape):
        spatial = shape[:-1]
        pool = tuple(draw(st.integers(1, 3)) for _ in spatial)
        strides = draw(st.sampled_from([None, 1, 2]))
        padding = draw(st.sampled_from(["valid", "same"]))
        steps = pool if strides is None else (strides,) * len(spatial)
        if average and padding == "same" and uneven_same_padding(spatial, pool, steps):
            # Keras's torch backend averages replicated edge cells there (docs/keras.md).
            padding = "valid"
        return dict(pool_size=pool, strides=strides, padding=padding)

    return draw_arguments


def _global_pooling(draw, shape):
    return dict(keepdims=_flag(draw))


def _up_sampling1d(draw, shape):
    return dict(size=draw(st.integers(1, 3)))


def _up_sampling2d(draw, shape):
    return dict(
        size=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        interpolation=draw(st.sampled_from(["nearest", "bilinear"])),
    )


def _crop(draw, size):
    """(before, after), leaving at least one cell."""
    before = draw(st.integers(0, size - 1))
    return (before, draw(st.integers(0, size - 1 - before)))


def _cropping1d(draw, shape):
    return dict(cropping=_crop(draw, shape[0]))


def _cropping2d(draw, shape):
    return dict(cropping=(_crop(draw, shape[0]), _crop(draw, shape[1])))


def _pad(draw):
    return (draw(st.integers(0, 2)), draw(st.integers(0, 2)))


def _zero_padding1d(draw, shape):
    return dict(padding=_pad(draw))


def _zero_padding2d(draw, shape):
    return dict(padding=(_pad(draw), _pad(draw)))


def _permute(draw, shape):
    return dict(dims=tuple(draw(st.permutations(range(1, len(shape) + 1)))))


def _resizing(draw, shape):
    """Resizing to 1-8 rows and columns: larger, smaller or equal, maybe cropped or framed to
    the target's aspect ratio."""
    args = dict(height=draw(st.integers(1, 8)), width=draw(st.integers(1, 8)),
                interpolation=draw(st.sampled_from(["bilinear", "nearest"])))
    fit = draw(st.sampled_from([None, "crop_to_aspect_ratio", "pad_to_aspect_ratio"]))
    if fit is not None:
        args[fit] = True
    return args


def _center_crop(draw, shape):
    """A centred window (or, larger than the image, Keras's crop-and-resize)."""
    return dict(height=draw(st.integers(1, shape[0] + 2)), width=draw(st.integers(1, shape[1] + 2)))


def _repeat_vector(draw, shape):
    return dict(n=draw(st.integers(1, 4)))


def _reshape(draw, shape):
    """A random factoring of the sample's values into one to three axes."""
    remaining, target = int(np.prod(shape)), []
    for _ in range(draw(st.integers(0, 2))):
        factor = _divisor(draw, remaining)
        target.append(factor)
        remaining //= factor
    return dict(target_shape=(*target, remaining))


def _nothing(draw, shape):
    return {}


def _dense(draw, shape):
    return dict(
        units=draw(st.integers(1, 6)),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=_flag(draw),
        kernel_regularizer=draw(st.sampled_from([None, "l2"])),
    )


#: Normalizing (nearly) constant values is ill-conditioned: y = (x - μ) / sqrt(v + ε) multiplies
#: the rounding of x - μ (~1e-7 · |x| in float32, in each framework its own) by 1 / sqrt(ε) when
#: v ≈ 0, and two such layers in a row by 1 / ε. Constant groups come by construction: one
#: value (an axis of size 1, GlobalPooling's keepdims), or copies along an axis (RepeatVector,
#: nearest UpSampling). So a normalization here spans the last axis (rarely copied: only by a
#: Concatenate of near copies) and at least two of its entries, and ε ≥ 1e-3 (a gain ≤ 32).
EPSILONS = [1e-3, 1e-2, 0.1]
#: Keras's torch backend computes a variance as E[x²] - E[x]² (keras.src.backend.torch.nn.
#: moments), which loses ~1e-7 · E[x²] to cancellation: y is then off by about that over
#: 2 (v + ε), above 1e-5 for a group of nearby values (measured: 2e-5 where handnet's two-pass
#: variance is 1.4e-6 from float64). GroupNormalization and a LayerNormalization over axes that
#: are not one trailing run take that path (rms_scaling and a trailing run do not): for them
#: ε ≥ 0.1 keeps Keras an oracle to 1e-5.
MOMENTS_EPSILONS = [0.1, 1.0]


def _layer_normalization(draw, shape):
    """The axes include the last; a run of axes is then a trailing run, which is what Keras's
    torch backend requires (it hands a run to torch's layer_norm, which normalizes trailing
    axes only: Keras fails on axis [1] of (2, 3))."""
    if shape[-1] < 2:
        return None
    axis = _axes(draw, len(shape))
    axis = -1 if axis == -1 else sorted({*axis, len(shape)})
    rms_scaling = _flag(draw)
    one_run = axis == -1 or axis == list(range(axis[0], len(shape) + 1))
    return dict(
        axis=axis,
        epsilon=draw(st.sampled_from(EPSILONS if one_run or rms_scaling else MOMENTS_EPSILONS)),
        center=_flag(draw),
        scale=_flag(draw),
        rms_scaling=rms_scaling,
    )


def _group_normalization(draw, shape):
    """Groups of two channels or more (see EPSILONS and MOMENTS_EPSILONS)."""
    channels = shape[-1]
    if channels < 2:
        return None
    groups = draw(st.sampled_from([g for g in range(1, channels // 2 + 1) if channels % g == 0]))
    return dict(groups=groups, epsilon=draw(st.sampled_from(MOMENTS_EPSILONS)),
                center=_flag(draw), scale=_flag(draw))


def _unit_normalization(draw, shape):
    return dict(axis=_axes(draw, len(shape)))


def _prelu(draw, shape):
    if _flag(draw):
        return dict(shared_axes=None)
    return dict(shared_axes=sorted(draw(st.sets(st.integers(1, len(shape)), min_size=1))))


def _elu(draw, shape):
    return dict(alpha=draw(st.sampled_from([1.0, 0.5, 2.0])))


def _rate(draw, shape):
    """0 three times in four: at 0 the layer takes part in the training step too."""
    return dict(rate=draw(st.sampled_from([0.0, 0.0, 0.0, 0.3])))


def _alpha_dropout(draw, shape):
    return dict(rate=draw(st.sampled_from([0.0, 0.0, 0.0, 0.2])))


def _gaussian_noise(draw, shape):
    return dict(stddev=draw(st.sampled_from([0.0, 0.0, 0.0, 0.5])))


def _activity_regularization(draw, shape):
    return dict(l1=draw(st.sampled_from([0.0, 0.01, 0.1])),
                l2=draw(st.sampled_from([0.0, 0.02, 0.1])))


def _time_distributed(draw, shape):
    """TimeDistributed around a layer drawn for one step's shape (shape[1:])."""
    kinds = [kind for kind in INNER_KINDS if len(shape) - 1 in LAYERS[kind][0]]
    kind = draw(st.sampled_from(kinds))
    args = LAYERS[kind][1](draw, shape[1:])
    return None if args is None else dict(layer=(kind, args))


ANY_RANK = (1, 2, 3, 4)
#: kind -> (the per-sample ranks it takes, the draw of its arguments)
LAYERS = {
    "Conv1D": ((2,), _grouped_convolution(("valid", "same", "causal"))),
    "Conv2D": ((3,), _grouped_convolution(("valid", "same"))),
    "Conv2DTranspose": ((3,), _conv2d_transpose),
    "DepthwiseConv1D": ((2,), _depthwise),
    "DepthwiseConv2D": ((3,), _depthwise),
    "SeparableConv1D": ((2,), _separable),
    "SeparableConv2D": ((3,), _separable),
    "MaxPooling1D": ((2,), _pooling(average=False)),
    "AveragePooling1D": ((2,), _pooling(average=True)),
    "MaxPooling2D": ((3,), _pooling(average=False)),
    "AveragePooling2D": ((3,), _pooling(average=True)),
    "GlobalMaxPooling1D": ((2,), _global_pooling),
    "GlobalAveragePooling1D": ((2,), _global_pooling),
    "GlobalMaxPooling2D": ((3,), _global_pooling),
    "GlobalAveragePooling2D": ((3,), _global_pooling),
    "UpSampling1D": ((2,), _up_sampling1d),
    "UpSampling2D": ((3,), _up_sampling2d),
    "Cropping1D": ((2,), _cropping1d),
    "Cropping2D": ((3,), _cropping2d),
    "Resizing": ((3,), _resizing),
    "CenterCrop": ((3,), _center_crop),
    "ZeroPadding1D": ((2,), _zero_padding1d),
    "ZeroPadding2D": ((3,), _zero_padding2d),
    "Permute": ((2, 3, 4), _permute),
    "RepeatVector": ((1,), _repeat_vector),
    "Reshape": (ANY_RANK, _reshape),
    "Flatten": ((2, 3, 4), _nothing),
    "TimeDistributed": ((2, 3, 4), _time_distributed),
    "Identity": (ANY_RANK, _nothing),
    "Dense": (ANY_RANK, _dense),
    "LayerNormalization": (ANY_RANK, _layer_normalization),
    "GroupNormalization": (ANY_RANK, _group_normalization),
    "UnitNormalization": (ANY_RANK, _unit_normalization),
    "PReLU": (ANY_RANK, _prelu),
    "ELU": (ANY_RANK, _elu),
    "Dropout": (ANY_RANK, _rate),
    "SpatialDropout1D": ((2,), _rate),
    "SpatialDropout2D": ((3,), _rate),
    "GaussianNoise": (ANY_RANK, _gaussian_noise),
    "GaussianDropout": (ANY_RANK, _rate),
    "AlphaDropout": (ANY_RANK, _alpha_dropout),
    "ActivityRegularization": (ANY_RANK, _activity_regularization),
}
WITH_WEIGHTS = {"Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
                "SeparableConv1D", "SeparableConv2D", "TimeDistributed", "Dense",
                "LayerNormalization", "GroupNormalization", "PReLU"}
#: What TimeDistributed wraps here: layers with weights or windows (not the random ones).
INNER_KINDS = ["Dense", "Conv1D", "Conv2D", "DepthwiseConv1D", "SeparableConv1D",
               "MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D", "Flatten",
               "LayerNormalization", "PReLU"]


# -- the walk ----------------------------------------------------------------------------------
@st.composite
def input_shapes(draw):
    rank = draw(st.sampled_from([1, 2, 2, 3, 3, 4]))
    sizes = {1: [(1, 8)], 2: [(2, 12), (1, 4)], 3: [(2, 8), (2, 8), (1, 4)],
             4: [(2, 4), (2, 6), (2, 6), (1, 3)]}[rank]
    return tuple(draw(st.integers(low, high)) for low, high in sizes)


def _add(draw, keras, nodes, shapes, kind, args, inputs):
    """Append the node if its output fits; returns whether it did."""
    shape = output_shape(keras, kind, args, [shapes[i] for i in inputs])
    if shape is None:
        return False
    nodes.append(Node(kind, args, tuple(inputs)))
    shapes.append(shape)
    return True


def _add_layer(draw, keras, nodes, shapes, source):
    shape = shapes[source]
    kinds = [kind for kind, (ranks, _) in LAYERS.items() if len(shape) in ranks]
    kind = draw(st.sampled_from(kinds + [kind for kind in kinds if kind in WITH_WEIGHTS]))
    args = LAYERS[kind][1](draw, shape)
    return args is not None and _add(draw, keras, nodes, shapes, kind, args, [source])


def _has_weights(node, nodes):
    return node.kind in WITH_WEIGHTS or (
        node.kind == "call" and nodes[node.args["node"]].kind in WITH_WEIGHTS
    )


def _merge(draw, keras, nodes, shapes, first, second):
    """A merge of tensor ``first`` and the branch that made ``second`` from it: elementwise (or
    Concatenate) for equal shapes, Concatenate along the one axis where they differ; nothing
    when they differ more. Subtract only when the branch has weights: t - f(t) for an f near
    the identity (Identity, Dropout(0), UnitNormalization of a unit vector) is rounding noise,
    or exactly 0, which a normalization after it blows up to order 1 in each framework's own
    way (or, at 0, Keras's gradient of the norm to NaN)."""
    a, b = shapes[first], shapes[second]
    if len(a) != len(b):
        return False
    differ = [axis + 1 for axis in range(len(a)) if a[axis] != b[axis]]
    if len(differ) > 1:
        return False
    if differ:
        kind, axis = "Concatenate", draw(st.sampled_from([differ[0], differ[0] - len(a) - 1]))
    else:
        weighted = any(_has_weights(node, nodes) for node in nodes[first:])
        kinds = [k for k in ELEMENTWISE_MERGES if weighted or k != "Subtract"]
        kind = draw(st.sampled_from([*kinds, "Concatenate"]))
        axis = draw(st.sampled_from([-1, *range(1, len(a) + 1)]))
    args = {"axis": axis} if kind == "Concatenate" else {}
    return _add(draw, keras, nodes, shapes, kind, args, [first, second])


def _shared_call(draw, keras, nodes, shapes, source):
    """The layer of an earlier node called again on ``source`` (same input shape)."""
    candidates = [
        index for index, node in enumerate(nodes)
        if node.kind != "call" and node.kind not in MERGES
        and shapes[node.inputs[0]] == shapes[source]
    ]
    if not candidates:
        return False
    index = draw(st.sampled_from(candidates))
    nodes.append(Node("call", {"node": index}, (source,)))
    shapes.append(shapes[index + 1])
    return True


@st.composite
def architectures(draw, keras):
    """A random Architecture: chains (half of them) or graphs with branches, merges and shared
    layers, of two to seven moves, and a Dense at the end when no layer has weights."""
    input_shape = draw(input_shapes())
    nodes, shapes = [], [input_shape]
    graph = _flag(draw)
    moves = ["layer", "layer", "branch", "shared"] if graph else ["layer"]
    for _ in range(draw(st.integers(2, 7))):
        move, source = draw(st.sampled_from(moves)), len(shapes) - 1
        if move == "layer":
            _add_layer(draw, keras, nodes, shapes, source)
        elif move == "shared":
            _shared_call(draw, keras, nodes, shapes, source)
        else:  # a branch of one or two layers (or a shared call), merged back with its source
            for step in range(draw(st.integers(1, 2))):
                branch = len(shapes) - 1 if step else source
                if not (_flag(draw) and _shared_call(draw, keras, nodes, shapes, branch)):
                    _add_layer(draw, keras, nodes, shapes, branch)
            if len(shapes) - 1 != source:
                _merge(draw, keras, nodes, shapes, source, len(shapes) - 1)
    if not any(node.kind in WITH_WEIGHTS for node in nodes):  # something for the step to train
        _add(draw, keras, nodes, shapes, "Dense", _dense(draw, shapes[-1]), [len(shapes) - 1])
    return Architecture(input_shape, nodes, sequential=not graph and _flag(draw),
                        seed=draw(st.integers(0, 2**32 - 1)))


def count_kinds(architecture):
    """{class name: count} of the layers (TimeDistributed's inner one as TimeDistributed(X))."""
    names = (
        f"TimeDistributed({node.args['layer'][0]})" if node.kind == "TimeDistributed" else node.kind
        for node in architecture.nodes
    )
    return {name: len(list(group)) for name, group in itertools.groupby(sorted(names))}
