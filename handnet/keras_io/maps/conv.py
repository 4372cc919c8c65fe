"""The convolutions, both directions (channels_last only: channels_first is refused):

    Conv1D, Conv2D              kernel                          (groups: grouped convolution)
    Conv2DTranspose             kernel (kh, kw, filters, C)     (output_padding)
    DepthwiseConv1D, …2D        kernel (…, C, depth_multiplier) Keras calls its initializer,
                                                                regularizer and constraint
                                                                "depthwise_*"
    SeparableConv1D, …2D        depthwise_kernel, pointwise_kernel

Every one has a bias (unless use_bias=False) and an activation. Keras's constraints and
activity_regularizer are refused unless unset; handnet's layers have none.
"""

from ... import layers
from ..options import LayerMapping, keras_activation, keras_initializers, keras_regularizer
from .registry import register

PADDINGS = ("valid", "same")


def convolution_from_keras(o, kernels, paddings=PADDINGS):
    """The options every convolution shares; ``kernels`` names its kernels' option prefixes
    ("kernel"; "depthwise"; "depthwise", "pointwise")."""
    o.data_format()
    o.unset("activity_regularizer", "bias_constraint", "lora_rank", "quantization_config")
    o.unset(*(f"{kernel}_constraint" for kernel in kernels))
    arguments = {
        **o.copy("kernel_size", "strides", "dilation_rate"),
        "padding": o.choice("padding", paddings, "valid"),
        "activation": o.activation(),
        "use_bias": bool(o.get("use_bias", True)),
        "bias_initializer": o.initializer("bias_initializer", "zeros"),
        "bias_regularizer": o.regularizer("bias_regularizer"),
    }
    for kernel in kernels:
        arguments[f"{kernel}_initializer"] = o.initializer(f"{kernel}_initializer",
                                                           "glorot_uniform")
        arguments[f"{kernel}_regularizer"] = o.regularizer(f"{kernel}_regularizer")
    return arguments


def convolution_to_keras(layer, config, kernels):
    keras_config = {
        **config,
        "data_format": "channels_last",
        "activation": keras_activation(layer, layer.activation),
        **keras_initializers(config, {"bias_initializer": "zeros", **{
            f"{kernel}_initializer": "glorot_uniform" for kernel in kernels}}),
        "bias_regularizer": keras_regularizer(config.get("bias_regularizer")),
        "activity_regularizer": None,
        "bias_constraint": None,
    }
    for kernel in kernels:
        keras_config[f"{kernel}_regularizer"] = keras_regularizer(
            config.get(f"{kernel}_regularizer")
        )
        keras_config[f"{kernel}_constraint"] = None
    return keras_config


# -- Conv1D, Conv2D ----------------------------------------------------------------------
def conv1d_from_keras(o):
    return {
        **convolution_from_keras(o, ("kernel",), ("valid", "same", "causal")),
        **o.copy("filters", "groups"),
    }


def conv2d_from_keras(o):
    return {**convolution_from_keras(o, ("kernel",)), **o.copy("filters", "groups")}


def conv_to_keras(layer, config):
    # groups comes from the layer's config: a grouped convolution stays grouped.
    return convolution_to_keras(layer, config, ("kernel",))


# -- Conv2DTranspose ---------------------------------------------------------------------
def conv_transpose_from_keras(o):
    return {**convolution_from_keras(o, ("kernel",)), **o.copy("filters", "output_padding")}


# -- depthwise and separable -------------------------------------------------------------
def depthwise_from_keras(o):
    return {**convolution_from_keras(o, ("depthwise",)), **o.copy("depth_multiplier")}


def depthwise_to_keras(layer, config):
    return convolution_to_keras(layer, config, ("depthwise",))


def separable_from_keras(o):
    return {
        **convolution_from_keras(o, ("depthwise", "pointwise")),
        **o.copy("filters", "depth_multiplier"),
    }


def separable_to_keras(layer, config):
    return convolution_to_keras(layer, config, ("depthwise", "pointwise"))


register(
    LayerMapping("Conv1D", layers.Conv1D, conv1d_from_keras, conv_to_keras),
    LayerMapping("Conv2D", layers.Conv2D, conv2d_from_keras, conv_to_keras),
    LayerMapping("Conv2DTranspose", layers.Conv2DTranspose, conv_transpose_from_keras,
                 conv_to_keras),
    LayerMapping("DepthwiseConv1D", layers.DepthwiseConv1D, depthwise_from_keras,
                 depthwise_to_keras),
    LayerMapping("DepthwiseConv2D", layers.DepthwiseConv2D, depthwise_from_keras,
                 depthwise_to_keras),
    LayerMapping("SeparableConv1D", layers.SeparableConv1D, separable_from_keras,
                 separable_to_keras),
    LayerMapping("SeparableConv2D", layers.SeparableConv2D, separable_from_keras,
                 separable_to_keras),
)
