"""Each layer family's Keras mapping, import and export side by side, one file a family:

    dense.py          Dense                        core.py        Flatten, Reshape, Dropout,
    conv.py           Conv1D, Conv2D (groups),                    Activation, Rescaling
                      Conv2DTranspose, Depthwise-, activations.py ReLU, LeakyReLU, Softmax,
                      SeparableConv1D/2D                          ELU, PReLU
    pooling.py        Max/Average/Global pooling,  merging.py     Add, …, Concatenate, Dot
                      1D and 2D                    recurrent.py   SimpleRNN, LSTM, GRU,
    normalization.py  Batch-, Layer-, Group-,                     Bidirectional, TimeDistributed
                      UnitNormalization            noise.py       SpatialDropout1D/2D, Gaussian-
    preprocessing.py  Normalization                               Noise/Dropout, AlphaDropout,
    reshaping.py      Identity, Permute, Repeat-                  ActivityRegularization
                      Vector, Cropping1D/2D,       augmentation.py RandomFlip, …, RandomCrop,
                      ZeroPadding1D/2D,                           RandomBrightness
                      UpSampling1D/2D
    attention.py      EinsumDense, MultiHeadAttention, Attention, AdditiveAttention (their
                      calls on several tensors, MultiHeadAttention's sublayer weight groups)

Each registers its ``LayerMapping``s (handnet.keras_io.options) with ``registry``;
``catalogue`` lists every other Keras 3 layer class with the reason handnet does not import it.
Each handnet layer keeps its weights in Keras's order (kernel, bias; gamma, beta, moving_mean,
moving_variance; depthwise_kernel, pointwise_kernel, bias), so "vars/0, 1, …" of a .keras file
map onto ``layer.weights()`` in order.
"""

from . import (
    activations,
    attention,
    augmentation,
    conv,
    core,
    dense,
    merging,
    noise,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    reshaping,
)
from .registry import (
    BY_HANDNET_CLASS,
    CODE_LAYERS,
    KERAS_LAYERS,
    batch_shapes,
    canonical,
    keras_class_of,
    keras_classes,
    keras_layer_entry,
    layer_from_keras,
    layer_to_keras,
    markdown_table,
    refusal,
    status,
    supported_keras_classes,
    unknown_layer_error,
)

FAMILIES = (activations, attention, augmentation, conv, core, dense, merging, noise, normalization,
            pooling,
            preprocessing, recurrent, reshaping)

__all__ = [
    "BY_HANDNET_CLASS", "CODE_LAYERS", "FAMILIES", "KERAS_LAYERS", "batch_shapes", "canonical",
    "keras_class_of", "keras_classes", "keras_layer_entry", "layer_from_keras", "layer_to_keras",
    "markdown_table", "refusal", "status", "supported_keras_classes", "unknown_layer_error",
]
