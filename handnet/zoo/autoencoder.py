"""A convolutional autoencoder for 28×28 digits: squeeze an image into a short code, then
rebuild the image from the code alone.

    x 28×28×1 ─ Conv 3×3 32, stride 2 ─ Conv 3×3 64, stride 2 ─ Flatten ─ Dense → code z
              14×14×32                  7×7×64                    3136
    z ─ Dense 3136 ─ Reshape 7×7×64 ─ Conv2DTranspose 32, stride 2 ─ Conv2DTranspose 1, stride 2
                                      14×14×32                       28×28×1, sigmoid → x̂

Trained with x as its own target, on the mean squared error over the P = 784 pixels:

    L = 1/(N·P) Σ_n Σ_p (x̂[n, p] - x[n, p])²,   ∂L/∂x̂ = 2 (x̂ - x) / (N·P)

No label is used: whatever the code keeps of a digit, the network found it worth keeping to
redraw it.

The encoder downsamples with strided convolutions, not pooling: a Conv2D with stride 2 and
"same" padding reads every pixel and writes one output per 2×2 block, so H×W -> ⌈H/2⌉×⌈W/2⌉,
and it learns how to summarise the block. The decoder upsamples with Conv2DTranspose, the
adjoint of a strided Conv2D: where the convolution gathers a 3×3 window into one output, the
transpose scatters each input, weighted by the kernel, onto a 3×3 window of an output twice the
size (strides 2, "same": H -> 2H), overlaps summed. It is exactly the map a Conv2D's backward
pass applies to its output gradient, here with weights of its own.

The last layer's sigmoid keeps every pixel in (0, 1), the range of the prepared images. The
code z is linear (no activation): its units are free to take any sign and scale, which the
embedding picture reads as coordinates.
"""

import numpy as np

from .. import layers
from ..errors import HandnetError
from ..model import Model


def autoencoder_layers(filters=(32, 64), code=16, image=28, bias_initializer="zeros"):
    """The layers of the module docstring: one stride-2 Conv2D per entry of ``filters`` down to
    the Dense ``code`` (named "code", so that the encoder can be cut there), and the mirror
    image up, Conv2DTranspose of stride 2, to one sigmoid channel of ``image``×``image``.

    ``image`` must be divisible by 2**len(filters) for the decoder to land on the same size.
    """
    side = image // 2 ** len(filters)
    relu = dict(
        activation="relu",
        kernel_initializer="he_normal",
        bias_initializer=bias_initializer,
        padding="same",
        strides=2,
    )
    encoder = [
        layers.Conv2D(count, 3, name=f"encode{index}", **relu)
        for index, count in enumerate(filters, start=1)
    ]
    unfolded = side * side * filters[-1]
    decoder = [
        layers.Dense(
            unfolded,
            activation="relu",
            kernel_initializer="he_normal",
            bias_initializer=bias_initializer,
            name="expand",
        ),
        layers.Reshape((side, side, filters[-1]), name="unflatten"),
    ]
    widths = [*reversed(filters[:-1]), 1]
    # The output layer's sigmoid is not a ReLU: Glorot's scale, not He's, suits it.
    sigmoid = dict(relu, activation="sigmoid", kernel_initializer="glorot_uniform")
    for index, count in enumerate(widths, start=1):
        options = sigmoid if index == len(widths) else relu
        decoder.append(layers.Conv2DTranspose(count, 3, name=f"decode{index}", **options))
    return [*encoder, layers.Flatten(name="flatten"), layers.Dense(code, name="code"), *decoder]


def small_autoencoder_layers():
    """The same layer types at toy sizes, for finite-difference checks: 8×8 images, 2 and 3
    channels, a code of 2.

    Its biases start small and random, not at 0: with so few units, many of "expand"'s ReLUs
    are off, so some of decode1's outputs see only zeros, and a zero bias would put their
    pre-activation exactly at the ReLU's kink, where it has no derivative for finite
    differences to check."""
    return autoencoder_layers(filters=(2, 3), code=2, image=8, bias_initializer="random_uniform")


# -- reading the code --------------------------------------------------------------------

#: The name of the bottleneck layer, where ``encoder`` cuts the network.
CODE_LAYER = "code"


def encoder(model, layer=CODE_LAYER):
    """The first half of ``model``: a Model from its input to the output of ``layer``, sharing
    its weights (Keras's ``Model(model.input, model.get_layer("code").output)``)."""
    (node,) = model.nodes_of(model.get_layer(layer))
    return Model(model.input_tensors[0], node.outputs[0], name=f"{model.name}_encoder")


def principal_plane(codes):
    """The codes (N, D) projected onto their first two principal axes, (N, 2), and the share
    of the codes' variance each axis carries.

    PCA by the singular value decomposition of the centred codes: C = Z - mean = U S Vᵀ; the
    rows of Vᵀ are the axes, in order of the variance s_i²/N along them, and C Vᵀ[:2]ᵀ the
    coordinates. A code of 2 needs none: its own two units are the plane.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2 or len(codes) < 2:
        raise HandnetError(f"expected codes (N ≥ 2, D ≥ 2), got shape {codes.shape}")
    centred = codes - codes.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    # An SVD fixes each axis only up to its sign: make the largest component positive, so
    # that the same codes always give the same picture.
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * signs[:, None]
    variance = singular**2
    return centred @ axes[:2].T, variance[:2] / variance.sum()
