"""The same network in PyTorch and in Keras, built from a handnet Sequential's layer list.

Only what the benchmarks need: Dense, Conv2D, MaxPooling2D, Flatten, Dropout, Activation.
PyTorch runs in its native NCHW layout (what a PyTorch user would write); Keras runs
channels-last like handnet. A handnet model's Flatten of (H, W, C) is matched by permuting to
channels-last before flattening, so the twins compute the same function.
"""

from handnet.errors import HandnetError


def torch_twin(model):
    import torch
    from torch import nn

    activation_modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}

    class ChannelsLastFlatten(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1) if x.ndim == 4 else x.flatten(1)

    modules, shape = [], model.input_shape
    for layer in model.layers:
        config, kind = layer.get_config(), type(layer).__name__
        if kind == "Conv2D":
            padding = "same" if config["padding"] == "same" else 0
            modules.append(nn.Conv2d(shape[-1], config["filters"], tuple(config["kernel_size"]),
                                     stride=tuple(config["strides"]), padding=padding))
        elif kind == "MaxPooling2D":
            modules.append(nn.MaxPool2d(tuple(config["pool_size"]), tuple(config["strides"])))
        elif kind == "Dense":
            modules.append(nn.Linear(shape[-1], config["units"]))
        elif kind == "Flatten":
            modules.append(ChannelsLastFlatten())
        elif kind == "Dropout":
            modules.append(nn.Dropout(config["rate"]))
        elif kind != "Activation":
            raise HandnetError(f"no PyTorch twin for {kind}")
        name = config.get("activation")
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
        options = {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype", "seed")}
        for key in ("kernel_regularizer", "bias_regularizer", "kernel_initializer", "bias_initializer"):
            options.pop(key, None)
        if kind not in ("Conv2D", "MaxPooling2D", "Dense", "Flatten", "Dropout", "Activation"):
            raise HandnetError(f"no Keras twin for {kind}")
        stack.append(getattr(keras.layers, kind)(**options))
    return keras.Sequential(stack)
