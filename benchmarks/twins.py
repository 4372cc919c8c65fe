"""The same network in PyTorch and in Keras, built from a handnet Sequential's layer list.

Only what the benchmarks need: Dense, Conv2D, MaxPooling2D, Flatten, Dropout, Activation, and
the recurrent SimpleRNN, LSTM, GRU (batch_first in PyTorch, like handnet's (N, T, D)).
PyTorch runs in its native NCHW layout (what a PyTorch user would write); Keras runs
channels-last like handnet. A handnet model's Flatten of (H, W, C) is matched by permuting to
channels-last before flattening, so the twins compute the same function.
"""

from handnet.errors import HandnetError


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

    modules, shape = [], model.input_shape
    for layer in model.layers:
        config, kind = layer.get_config(), type(layer).__name__
        if kind == "Conv2D":
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
            "MaxPooling2D",
            "Dense",
            "Flatten",
            "Dropout",
            "Activation",
            "SimpleRNN",
            "LSTM",
            "GRU",
        ):
            raise HandnetError(f"no Keras twin for {kind}")
        stack.append(getattr(keras.layers, kind)(**options))
    return keras.Sequential(stack)
