"""A small residual network for 28×28 digits, built as a graph (the functional API).

    x ─ Conv 3×3 16 ─ BN ─ ReLU ─ MaxPool 2                         28×28 -> 14×14
      ─ stage 16:  block, block                                     14×14
      ─ stage 32:  block (stride 2), block                          7×7
      ─ stage 64:  block (stride 2), block                          4×4
      ─ GlobalAveragePooling ─ Dropout ─ Dense 10 softmax

A residual block (He et al., 2016) adds its input back to what two convolutions make of it:

    h = ReLU(BN(Conv₁(x)));   y = ReLU(BN(Conv₂(h)) + shortcut(x))

so the block only has to learn the correction F(x) = y - x, and the gradient reaches the early
layers through the identity: ∂y/∂x = (I + ∂F/∂x) on the ReLU's active side, never a product of
many small Jacobians. Where a stage halves the image and widens the channels, the identity no
longer fits, and the shortcut becomes a 1×1 convolution with stride 2 followed by its own BN.

The convolutions have no bias, since each BN's β takes its place; He initialization keeps the
variance of ReLU activations level. The stem's max-pooling halves the image before the first
stage: it is what makes an epoch affordable on a CPU (the 28×28 stage would cost four times
as much) and a 14×14 digit still has all its strokes.
"""

from .. import layers
from ..model import Model


def residual_block(x, filters, strides=1, name="block"):
    """Conv-BN-ReLU-Conv-BN, plus the shortcut, then ReLU; ``x`` a symbolic (N, H, W, C).

    The first convolution carries the stride; the shortcut is the identity when the shape is
    kept (strides 1 and C == filters), else Conv 1×1 with the same stride and a BN.
    """
    conv = dict(use_bias=False, kernel_initializer="he_normal", padding="same")
    h = layers.Conv2D(filters, 3, strides=strides, name=f"{name}_conv1", **conv)(x)
    h = layers.BatchNormalization(name=f"{name}_bn1")(h)
    h = layers.Activation("relu", name=f"{name}_relu1")(h)
    h = layers.Conv2D(filters, 3, name=f"{name}_conv2", **conv)(h)
    h = layers.BatchNormalization(name=f"{name}_bn2")(h)
    shortcut = x
    if strides != 1 or x.per_sample_shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_shortcut", **conv)(x)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([h, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resnet_model(
    input_shape=(28, 28, 1),
    filters=(16, 32, 64),
    blocks=2,
    classes=10,
    dropout=0.1,
    stem_pool=True,
    seed=None,
    name="resnet",
):
    """The Model of the module docstring: one stage of ``blocks`` residual blocks per entry of
    ``filters``, each stage after the first starting with a stride-2 block."""
    inputs = layers.Input(input_shape, name="image")
    h = layers.Conv2D(
        filters[0], 3, padding="same", use_bias=False, kernel_initializer="he_normal",
        name="stem_conv",
    )(inputs)
    h = layers.BatchNormalization(name="stem_bn")(h)
    h = layers.Activation("relu", name="stem_relu")(h)
    if stem_pool:
        h = layers.MaxPooling2D(2, name="stem_pool")(h)
    for stage, count in enumerate(filters, start=1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            h = residual_block(h, count, strides=strides, name=f"stage{stage}_block{block}")
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    if dropout:
        h = layers.Dropout(dropout, name="dropout")(h)
    outputs = layers.Dense(classes, activation="softmax", name="classifier")(h)
    return Model(inputs, outputs, name=name, seed=seed)


def small_resnet_model(seed=None, name="resnet"):
    """The same layer types at toy sizes, for finite-difference checks: 8×8 inputs, stages of
    2 and 3 channels (so the second has a 1×1 strided shortcut), one block each, 3 classes."""
    return resnet_model(
        input_shape=(8, 8, 1), filters=(2, 3), blocks=1, classes=3, seed=seed,
        name=name,
    )
