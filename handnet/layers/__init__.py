"""Every handnet layer, importable as ``handnet.layers.Dense`` and so on."""

from ..errors import HandnetError
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from .attention import AdditiveAttention, Attention, MultiHeadAttention
from .base import Layer, serialize
from .batch_normalization import BatchNormalization
from .bidirectional import Bidirectional
from .conv1d import Conv1D
from .conv2d import Conv2D
from .conv_transpose import Conv2DTranspose
from .core import Activation, Flatten, Input, Reshape
from .dense import Dense
from .depthwise import DepthwiseConv1D, DepthwiseConv2D
from .dropout import Dropout
from .einsum_dense import EinsumDense
from .embedding import Embedding
from .gru import GRU
from .lstm import LSTM
from .masking import Masking
from .merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Merge,
    Minimum,
    Multiply,
    Subtract,
)
from .noise import (
    ActivityRegularization,
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
)
from .normalization import GroupNormalization, LayerNormalization, UnitNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .pooling1d import (
    AveragePooling1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
)
from .preprocessing import Normalization
from .rescaling import Rescaling
from .resizing import CenterCrop, Resizing
from .reshaping import (
    Cropping1D,
    Cropping2D,
    Identity,
    Permute,
    RepeatVector,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
)
from .separable import SeparableConv1D, SeparableConv2D
from .simple_rnn import SimpleRNN
from .time_distributed import TimeDistributed
from .zero_padding import ZeroPadding2D

LAYERS = {
    cls.__name__: cls
    for cls in (
        Activation, BatchNormalization, Dense, Dropout, Flatten, Input, LeakyReLU, ReLU, Rescaling,
        Reshape, Softmax,
        AveragePooling2D, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D,
        ZeroPadding2D,
        Bidirectional, GRU, LSTM, SimpleRNN,
        Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract,
        GroupNormalization, LayerNormalization, UnitNormalization,
        Normalization, ELU, PReLU,
        Cropping1D, Cropping2D, Identity, Permute, RepeatVector, UpSampling1D, UpSampling2D,
        ZeroPadding1D, CenterCrop, Resizing,
        Conv1D, Conv2DTranspose, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
        SeparableConv2D,
        AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D,
        ActivityRegularization, AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout1D,
        SpatialDropout2D, TimeDistributed,
        RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation,
        RandomTranslation, RandomZoom,
        Embedding, Masking,
        AdditiveAttention, Attention, EinsumDense, MultiHeadAttention,
    )
}


def deserialize(spec):
    """A layer from {"class_name": ..., "config": {...}} as written by ``Sequential.get_config``."""
    class_name = spec.get("class_name")
    if class_name not in LAYERS:
        raise HandnetError(f"unknown layer type {class_name!r}; handnet has {sorted(LAYERS)}")
    return LAYERS[class_name].from_config(spec.get("config", {}))


__all__ = ["Layer", "Merge", *sorted(LAYERS), "deserialize", "serialize"]
