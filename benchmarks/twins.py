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
"""

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
    from torch import nn

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
    import keras

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
    names, shapes and order (kernel, bias; gamma, beta, moving_mean, moving_variance)."""
    for layer, keras_layer in zip(model.layers, twin.layers, strict=True):
        keras_layer.set_weights(list(layer.weights().values()))
