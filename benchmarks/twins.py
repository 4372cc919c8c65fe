"""The same network in PyTorch and in Keras, built from a handnet Sequential's layer list.

Only what the benchmarks need: Dense, Conv2D, Conv2DTranspose, DepthwiseConv2D, MaxPooling2D,
BatchNormalization, GlobalAveragePooling2D, Flatten, Reshape, Dropout, Activation, and the
recurrent SimpleRNN, LSTM, GRU (batch_first in PyTorch, like handnet's (N, T, D)). PyTorch runs
in its native NCHW layout (what a PyTorch user would write); Keras runs channels-last like
handnet. A handnet model's Flatten of (H, W, C) is matched by permuting to channels-last before
flattening, and a Reshape to (H, W, C) by permuting back, so the twins compute the same function.

"same" padding puts the odd cell after (bottom/right), as Keras and TensorFlow do; PyTorch's
``padding="same"`` refuses strides (at stride 1 it too puts the odd cell at the end), so the
PyTorch twin pads explicitly
(nn.ZeroPad2d, as handnet.ops.padding computes it) before a convolution with ``padding=0``; a
Conv2DTranspose runs with no padding and is then cropped (or zero-extended) to Keras's output
window (handnet.ops.transpose_padding). A depthwise convolution is PyTorch's ``groups=C``
convolution, output channel c·M + m from input channel c, Keras's order.
``copy_weights_to_torch`` and ``copy_weights_to_keras`` give a twin handnet's weights, so tests
can compare outputs.

A graph is no layer list: the Vision Transformer (handnet.zoo.vit) gets a PyTorch twin written
as a PyTorch user writes a ViT (``ViT``: Conv2d patches, nn.MultiheadAttention, pre-LayerNorm
blocks), read from the vit's layers in their order (``vit_layout``); its Keras twin is
handnet's own Keras export (keras_io), which holds only Keras core layers.
"""

import tempfile
from pathlib import Path

import numpy as np

from handnet.errors import HandnetError
from handnet.ops.padding import window_geometry_2d
from handnet.ops.transpose_padding import transpose_geometry_2d

#: Layers with weights that ``copy_weights_to_torch`` knows how to lay out for PyTorch.
TORCH_WEIGHT_LAYOUTS = ("Conv2D", "DepthwiseConv2D", "Dense", "BatchNormalization")


def same_padding_2d(config, shape):
    """(left, right, top, bottom) zero cells, nn.ZeroPad2d's order, for a "same" window of
    ``config`` on an input of per-sample ``shape`` (H, W, C): handnet.ops.padding's geometry,
    the odd cell after (Keras's rule)."""
    _, ((top, bottom), (left, right)) = window_geometry_2d(
        shape[:2], config["kernel_size"], config["strides"], config["dilation_rate"], "same"
    )
    return left, right, top, bottom


def _torch_convolution(nn, config, shape, out_channels, groups):
    """[ZeroPad2d (for "same"),] Conv2d: PyTorch's padding="same" refuses strides."""
    modules = []
    if config["padding"] == "same":
        pads = same_padding_2d(config, shape)
        if any(pads):
            modules.append(nn.ZeroPad2d(pads))
    modules.append(
        nn.Conv2d(
            shape[-1],
            out_channels,
            tuple(config["kernel_size"]),
            stride=tuple(config["strides"]),
            dilation=tuple(config["dilation_rate"]),
            groups=groups,
            bias=config["use_bias"],
        )
    )
    return modules


def torch_twin(model):
    """The PyTorch twin of a handnet Sequential (an nn.Sequential), or of the vit (``ViT``)."""
    from torch import nn

    if not _is_chain(model):
        return vit_torch_twin(model)

    activation_modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    recurrent_modules = {"SimpleRNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}

    class Recurrent(nn.Module):
        """PyTorch's RNNs return (every h_t, final states); Keras's return h_T unless asked."""

        def __init__(self, kind, features, units, return_sequences):
            super().__init__()
            self.rnn = recurrent_modules[kind](features, units, batch_first=True)
            self.return_sequences = return_sequences

        def forward(self, x):
            outputs = self.rnn(x)[0]
            return outputs if self.return_sequences else outputs[:, -1]

    class ChannelsLastFlatten(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1) if x.ndim == 4 else x.flatten(1)

    class ChannelsLastReshape(nn.Module):
        """handnet's Reshape to (H, W, C), then to PyTorch's (C, H, W)."""

        def __init__(self, target_shape):
            super().__init__()
            self.target_shape = tuple(target_shape)

        def forward(self, x):
            y = x.reshape(len(x), *self.target_shape)
            return y.permute(0, 3, 1, 2) if y.ndim == 4 else y

    class CropToWindow(nn.Module):
        """The output window of a transposed convolution's full result: F.pad with negative
        widths crops, positive ones append zeros."""

        def __init__(self, crops):
            super().__init__()
            (top, bottom), (left, right) = crops
            self.pad = (-left, -right, -top, -bottom)

        def forward(self, x):
            return nn.functional.pad(x, self.pad)

    class GlobalAveragePooling(nn.Module):
        def __init__(self, keepdims):
            super().__init__()
            self.keepdims = keepdims

        def forward(self, x):  # NCHW: the mean over H and W
            return x.mean(dim=(2, 3), keepdim=self.keepdims)

    modules, shape = [], model.input_shape
    for layer in model.layers:
        config, kind = layer.get_config(), type(layer).__name__
        if kind == "Conv2D":
            modules += _torch_convolution(
                nn, config, shape, config["filters"], config.get("groups", 1)
            )
        elif kind == "DepthwiseConv2D":
            channels = shape[-1]
            modules += _torch_convolution(
                nn, config, shape, channels * config["depth_multiplier"], channels
            )
        elif kind == "BatchNormalization":
            # Keras's moving average keeps `momentum` of the old value; PyTorch's takes
            # `momentum` of the new one.
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            modules.append(
                norm(shape[-1], eps=config["epsilon"], momentum=1 - config["momentum"])
            )
        elif kind == "GlobalAveragePooling2D":
            modules.append(GlobalAveragePooling(config["keepdims"]))
        elif kind == "Conv2DTranspose":
            _, crops, _ = transpose_geometry_2d(
                shape[:2],
                config["kernel_size"],
                config["strides"],
                config["dilation_rate"],
                config["padding"],
                config["output_padding"],
            )
            modules.append(
                nn.ConvTranspose2d(
                    shape[-1],
                    config["filters"],
                    tuple(config["kernel_size"]),
                    stride=tuple(config["strides"]),
                    dilation=tuple(config["dilation_rate"]),
                )
            )
            modules.append(CropToWindow(crops))
        elif kind == "Reshape":
            modules.append(ChannelsLastReshape(config["target_shape"]))
        elif kind == "Cropping2D":
            modules.append(CropToWindow(config["cropping"]))
        elif kind == "MaxPooling2D":
            modules.append(nn.MaxPool2d(tuple(config["pool_size"]), tuple(config["strides"])))
        elif kind in recurrent_modules:
            modules.append(Recurrent(kind, shape[-1], config["units"], config["return_sequences"]))
        elif kind == "Dense":
            modules.append(nn.Linear(shape[-1], config["units"]))
        elif kind == "Flatten":
            modules.append(ChannelsLastFlatten())
        elif kind == "Dropout":
            modules.append(nn.Dropout(config["rate"]))
        elif kind != "Activation":
            raise HandnetError(f"no PyTorch twin for {kind}")
        # A recurrent layer's activation is inside its cell, not after it.
        name = config.get("activation") if kind not in recurrent_modules else None
        if name in activation_modules:
            modules.append(activation_modules[name]())
        shape = layer.output_shape
    # The softmax is left to cross_entropy (logits), as PyTorch code does.
    return nn.Sequential(*modules)


def copy_weights_to_torch(model, net):
    """Give ``net`` (``torch_twin(model)``) the weights of the handnet ``model``, in PyTorch's
    layouts: a kernel (kh, kw, C_in/G, F) becomes (F, C_in/G, kh, kw); a depthwise kernel
    (kh, kw, C, M) becomes (C·M, 1, kh, kw), channel c·M + m; a Dense kernel is transposed."""
    import torch

    if not _is_chain(model):
        return copy_weights_to_vit(model, net)
    weighted = [layer for layer in model.layers if layer.count_params()]
    modules = [module for module in net if any(True for _ in module.parameters(recurse=False))]
    if len(weighted) != len(modules):
        raise HandnetError(
            f"{len(weighted)} handnet layers with weights, {len(modules)} PyTorch modules"
        )
    for layer, module in zip(weighted, modules, strict=True):
        kind, weights = type(layer).__name__, layer.weights()
        if kind not in TORCH_WEIGHT_LAYOUTS:
            raise HandnetError(f"no PyTorch weight layout for {kind}")
        if kind == "BatchNormalization":
            pairs = [
                ("weight", "gamma"),
                ("bias", "beta"),
                ("running_mean", "moving_mean"),
                ("running_var", "moving_variance"),
            ]
            values = {target: weights[source] for target, source in pairs if source in weights}
        else:
            kernel = weights["kernel"]
            if kind == "DepthwiseConv2D":
                kernel = kernel.reshape(*kernel.shape[:2], 1, -1)
            kernel = kernel.T if kind == "Dense" else kernel.transpose(3, 2, 0, 1)
            values = {"weight": kernel, "bias": weights.get("bias")}
        with torch.no_grad():
            for target, value in values.items():
                if value is not None:
                    getattr(module, target).copy_(torch.from_numpy(value.copy()))


def torch_input(x):
    """NHWC images -> NCHW tensor; flat rows stay as they are."""
    import torch

    tensor = torch.from_numpy(x)
    return tensor.permute(0, 3, 1, 2).contiguous() if tensor.ndim == 4 else tensor


def keras_twin(model):
    """The Keras twin of a handnet Sequential, built layer by layer from the configs; for a
    graph (the vit), handnet's own export (keras_io), read back in safe mode, with handnet's
    weights in it already."""
    import keras

    if not _is_chain(model):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{model.name}.keras"
            model.to_keras(path)
            return keras.saving.load_model(path, safe_mode=True)
    stack = [keras.Input(model.input_shape)]
    for layer in model.layers:
        config, kind = layer.get_config(), type(layer).__name__
        options = {
            k: v for k, v in config.items() if k not in ("name", "trainable", "dtype", "seed")
        }
        for key in (
            "kernel_regularizer",
            "bias_regularizer",
            "kernel_initializer",
            "bias_initializer",
            "depthwise_regularizer",
            "depthwise_initializer",
        ):
            options.pop(key, None)
        if kind not in (
            "Conv2D",
            "Conv2DTranspose",
            "DepthwiseConv2D",
            "BatchNormalization",
            "GlobalAveragePooling2D",
            "MaxPooling2D",
            "Dense",
            "Flatten",
            "Reshape",
            "Dropout",
            "Activation",
            "SimpleRNN",
            "LSTM",
            "GRU",
        ):
            raise HandnetError(f"no Keras twin for {kind}")
        stack.append(getattr(keras.layers, kind)(**options))
    return keras.Sequential(stack)


def copy_weights_to_keras(model, twin):
    """Give ``twin`` (``keras_twin(model)``) the weights of the handnet ``model``: the same
    names, shapes and order (kernel, bias; gamma, beta, moving_mean, moving_variance). A graph's
    Keras layers are found by name (the export keeps handnet's names)."""
    if not _is_chain(model):
        for layer in model.layers:
            if layer.params:
                twin.get_layer(layer.name).set_weights(list(layer.weights().values()))
        return
    for layer, keras_layer in zip(model.layers, twin.layers, strict=True):
        keras_layer.set_weights(list(layer.weights().values()))


# -- the Vision Transformer: a graph, twinned by its structure -----------------------------


def _is_chain(model):
    """Whether ``model`` is a Sequential, a layer list the generic twins can walk."""
    return type(model).__name__ == "Sequential"


def vit_layout(model):
    """The parts of a handnet vit (handnet.zoo.vit.vit_model), from its layers in order:

        Conv2D (kernel = stride) · Reshape (T, d) · EinsumDense "abc,c->abc" bias "bc"
        · [LayerNormalization · MultiHeadAttention · Add · LayerNormalization
           · Dense (gelu) · Dense · Add] × L · LayerNormalization · GlobalAveragePooling1D
        · [Dropout] · Dense

    -> {"patch", "position", "blocks": [(ln1, attention, ln2, mlp1, mlp2)], "final_ln",
    "dropout" (a layer or None), "classifier"}. HandnetError names the first layer that does
    not fit: another graph has no twin here.
    """
    layers = list(model.layers)
    expected = ["Conv2D", "Reshape", "EinsumDense"]
    block = ["LayerNormalization", "MultiHeadAttention", "Add", "LayerNormalization", "Dense",
             "Dense", "Add"]
    depth = sum(type(layer).__name__ == "MultiHeadAttention" for layer in layers)
    expected += block * depth + ["LayerNormalization", "GlobalAveragePooling1D"]
    if len(layers) == len(expected) + 2:
        expected.append("Dropout")
    expected.append("Dense")
    kinds = [type(layer).__name__ for layer in layers]
    for index, (kind, wanted) in enumerate(zip(kinds + [None] * len(expected), expected)):
        if kind != wanted:
            raise HandnetError(
                f"no PyTorch twin for {model.name!r}: a vit's layer {index} is a {wanted}, "
                f"got {kind or 'nothing'} ({' → '.join(kinds[: index + 1])})"
            )
    if len(kinds) != len(expected):
        raise HandnetError(f"no PyTorch twin for {model.name!r}: layers after the classifier")
    patch, position = layers[0], layers[2]
    patch_config = patch.get_config()
    if (
        patch.kernel_size != patch.strides
        or patch_config["padding"] != "valid"
        or patch_config["activation"] != "linear"
        or tuple(patch_config["dilation_rate"]) != (1, 1)
        or patch_config.get("groups", 1) != 1
    ):
        raise HandnetError(
            f"no PyTorch twin: the patch embedding is a linear, valid, undilated Conv2D "
            f"whose kernel is its stride, got {patch_config}"
        )
    config = position.get_config()
    if (config["equation"], config["bias_axes"]) != ("abc,c->abc", "bc"):
        raise HandnetError(
            f"no PyTorch twin: the position embedding is EinsumDense 'abc,c->abc' with bias "
            f"'bc', got {config['equation']!r} with {config['bias_axes']!r}"
        )
    blocks = []
    for start in range(3, 3 + 7 * depth, 7):
        ln1, attention, _, ln2, mlp1, mlp2, _ = layers[start : start + 7]
        features = ln1.input_shape[-1]
        if attention.num_heads * attention.key_dim != features or (
            attention.value_dim != attention.key_dim
        ):
            raise HandnetError(
                f"no PyTorch twin: nn.MultiheadAttention splits d = {features} features into "
                f"heads of d/heads; {attention.name!r} has {attention.num_heads} heads × "
                f"key_dim {attention.key_dim}, value_dim {attention.value_dim}"
            )
        activations = (mlp1.get_config()["activation"], mlp2.get_config()["activation"])
        if activations != ("gelu", "linear"):
            raise HandnetError(f"no PyTorch twin: the MLP's activations are {activations}")
        blocks.append((ln1, attention, ln2, mlp1, mlp2))
    dropout = layers[-2] if kinds[-2] == "Dropout" else None
    final_ln = layers[-4 if dropout else -3]
    for norm in [final_ln] + [layer for parts in blocks for layer in (parts[0], parts[2])]:
        config = norm.get_config()
        if config["axis"] not in (-1, [-1], 2, [2]) or not config["center"] or not (
            config["scale"]
        ) or config["rms_scaling"]:
            raise HandnetError(
                f"no PyTorch twin for {norm.name!r}: nn.LayerNorm normalizes the last axis "
                f"with a scale and a shift, got {config}"
            )
    return {"patch": patch, "position": position, "blocks": blocks, "final_ln": final_ln,
            "dropout": dropout, "classifier": layers[-1]}


def vit_torch_twin(model):
    """A ViT nn.Module computing what the handnet vit ``model`` computes (logits: the softmax is
    left to cross_entropy). Inputs NCHW, as PyTorch code has them.

    Conv2d(kernel = stride) → (N, d, H', W') → flatten(2).transpose(1, 2) → (N, T, d): token
    t = row·W' + column, the order of handnet's Reshape of (H', W', d). Then x·s + P (the
    EinsumDense position embedding: a scale and a bias per position, so both nets have the
    same parameters), the blocks (x + MHA(LN x), then x + MLP(LN x)), LayerNorm, the mean
    token, dropout, Linear. nn.GELU's default is the exact erf form, handnet's and Keras's;
    each LayerNorm takes handnet's epsilon (Keras's 1e-3 default differs from PyTorch's 1e-5).
    """
    import torch
    from torch import nn

    layout = vit_layout(model)

    class Block(nn.Module):
        def __init__(self, ln1, attention, ln2, mlp1, mlp2):
            super().__init__()
            features, hidden = ln1.input_shape[-1], mlp1.get_config()["units"]
            self.ln1 = nn.LayerNorm(features, eps=ln1.epsilon)
            self.attention = nn.MultiheadAttention(
                features, attention.num_heads, dropout=attention.dropout,
                bias=attention.use_bias, batch_first=True,
            )
            self.ln2 = nn.LayerNorm(features, eps=ln2.epsilon)
            self.mlp = nn.Sequential(
                nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, features)
            )

        def forward(self, x):
            h = self.ln1(x)
            x = x + self.attention(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            patch, position = layout["patch"], layout["position"]
            tokens, features = position.output_shape
            self.patch_embedding = nn.Conv2d(
                patch.input_shape[-1], features, tuple(patch.kernel_size),
                stride=tuple(patch.strides), bias=patch.use_bias,
            )
            self.position_scale = nn.Parameter(torch.ones(features))
            self.position = nn.Parameter(torch.zeros(tokens, features))
            self.blocks = nn.Sequential(*(Block(*parts) for parts in layout["blocks"]))
            self.final_ln = nn.LayerNorm(features, eps=layout["final_ln"].epsilon)
            rate = layout["dropout"].get_config()["rate"] if layout["dropout"] else 0.0
            self.dropout = nn.Dropout(rate)
            self.classifier = nn.Linear(features, layout["classifier"].get_config()["units"])

        def forward(self, x):
            x = self.patch_embedding(x).flatten(2).transpose(1, 2)
            x = self.blocks(x * self.position_scale + self.position)
            return self.classifier(self.dropout(self.final_ln(x).mean(dim=1)))

    return ViT()


def copy_weights_to_vit(model, net):
    """Give ``net`` (``vit_torch_twin(model)``) the weights of the handnet vit ``model``.

    MultiHeadAttention's kernels (d, h, k) flatten to (d, h·k), head-major, which is how
    nn.MultiheadAttention splits its projections into heads; its in_proj_weight stacks the
    transposed query, key and value kernels into (3·h·k, d), out_proj.weight is the output
    kernel (h, v, d) flattened to (h·v, d) and transposed. Dense and Conv2D as in
    ``copy_weights_to_torch``; LayerNorm's gamma, beta are weight, bias.
    """
    import torch

    layout = vit_layout(model)
    values = {}

    def dense(prefix, layer):
        values[f"{prefix}.weight"] = layer.params["kernel"].T
        values[f"{prefix}.bias"] = layer.params["bias"]

    def norm(prefix, layer):
        values[f"{prefix}.weight"] = layer.params["gamma"]
        values[f"{prefix}.bias"] = layer.params["beta"]

    patch = layout["patch"]
    values["patch_embedding.weight"] = patch.params["kernel"].transpose(3, 2, 0, 1)
    if patch.use_bias:
        values["patch_embedding.bias"] = patch.params["bias"]
    values["position_scale"] = layout["position"].params["kernel"]
    values["position"] = layout["position"].params["bias"]
    for index, (ln1, attention, ln2, mlp1, mlp2) in enumerate(layout["blocks"]):
        prefix, p = f"blocks.{index}", attention.params
        norm(f"{prefix}.ln1", ln1)
        norm(f"{prefix}.ln2", ln2)
        dense(f"{prefix}.mlp.0", mlp1)
        dense(f"{prefix}.mlp.2", mlp2)
        features = ln1.input_shape[-1]
        values[f"{prefix}.attention.in_proj_weight"] = np.concatenate(
            [p[f"{name}/kernel"].reshape(features, -1).T for name in ("query", "key", "value")]
        )
        values[f"{prefix}.attention.out_proj.weight"] = (
            p["attention_output/kernel"].reshape(-1, features).T
        )
        if attention.use_bias:
            values[f"{prefix}.attention.in_proj_bias"] = np.concatenate(
                [p[f"{name}/bias"].reshape(-1) for name in ("query", "key", "value")]
            )
            values[f"{prefix}.attention.out_proj.bias"] = p["attention_output/bias"]
    norm("final_ln", layout["final_ln"])
    dense("classifier", layout["classifier"])
    state = net.state_dict()
    if set(values) != set(state):
        raise HandnetError(
            f"the twin's parameters {sorted(set(state) - set(values))} have no handnet weights, "
            f"handnet's {sorted(set(values) - set(state))} no place in the twin"
        )
    with torch.no_grad():
        for name, value in values.items():
            if tuple(state[name].shape) != value.shape:
                raise HandnetError(
                    f"{name}: PyTorch's shape {tuple(state[name].shape)}, handnet's {value.shape}"
                )
            state[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
