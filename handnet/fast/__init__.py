"""The tuned array operations the layers run, each tested against its specification in
``handnet.ops`` (tests/layers/test_conv_spec_vs_fast.py).

``conv``    convolution: im2col through a strided view, the bias as a column of ones, backward
            in chunks, and a pool-major row order for a max pooling fused after it
``pool``    max and average pooling as two separable 1-D passes of strided slices
``fused``   a Conv2D and the non-overlapping MaxPooling2D after it as one operation
``grouped_conv``, ``depthwise``, ``separable``, ``conv1d``, ``conv_transpose``, ``pool1d``
            the catalogue's convolutions (tests/layers/test_conv_family_spec_vs_fast.py)
``recurrent`` LSTM and GRU step loops in preallocated buffers, the gates in place
            (tests/layers/test_recurrent_spec_vs_fast.py)
"""

from . import (
    conv, conv1d, conv_transpose, depthwise, fused, grouped_conv, pool, pool1d, recurrent,
    separable,
)

__all__ = [
    "conv", "conv1d", "conv_transpose", "depthwise", "fused", "grouped_conv", "pool", "pool1d",
    "recurrent", "separable",
]
