"""The same network in PyTorch and in Keras, built from a handnet Sequential's layer list.

Only what the benchmarks need: Dense, Conv2D, Conv2DTranspose, MaxPooling2D, Flatten, Reshape,
Dropout, Activation, and the recurrent SimpleRNN, LSTM, GRU (batch_first in PyTorch, like
handnet's (N, T, D)). PyTorch runs in its native NCHW layout (what a PyTorch user would write);
Keras runs channels-last like handnet. A handnet model's Flatten of (H, W, C) is matched by
permuting to channels-last before flattening, and a Reshape to (H, W, C) by permuting back, so
the twins compute the same function.

Keras's "same" padding puts an odd cell of padding after (bottom/right); PyTorch's ``padding=``
is symmetric, and refuses "same" with strides. A strided Conv2D is therefore padded explicitly
(ZeroPad2d, as handnet.ops.padding computes it), and a Conv2DTranspose runs with no padding and
is then cropped (or zero-extended) to Keras's output window (handnet.ops.transpose_padding).
"""

from handnet.errors import HandnetError
from handnet.ops.padding import window_geometry_2d
from handnet.ops.transpose_padding import transpose_geometry_2d


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

    modules, shape = [], model.input_shape
    for layer in model.layers:
        config, kind = layer.get_config(), type(layer).__name__
        if kind == "Conv2D" and config["padding"] == "same" and tuple(config["strides"]) != (1, 1):
            _, ((top, bottom), (left, right)) = window_geometry_2d(
                shape[:2],
                config["kernel_size"],
                config["strides"],
                config["dilation_rate"],
                "same",
            )
            modules.append(nn.ZeroPad2d((left, right, top, bottom)))
            modules.append(
                nn.Conv2d(
                    shape[-1],
                    config["filters"],
                    tuple(config["kernel_size"]),
                    stride=tuple(config["strides"]),
                    dilation=tuple(config["dilation_rate"]),
                )
            )
        elif kind == "Conv2D":
            padding = "same" if config["padding"] == "same" else 0
            modules.append(
                nn.Conv2d(
                    shape[-1],
                    config["filters"],
                    tuple(config["kernel_size"]),
                    stride=tuple(config["strides"]),
                    padding=padding,
                )
            )
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
        ):
            options.pop(key, None)
        if kind not in (
            "Conv2D",
            "Conv2DTranspose",
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
