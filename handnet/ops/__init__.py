"""The array operations behind the image layers, written to be read: the specification.

``conv_spec`` and ``pool_spec`` are loops that read like the formulas; ``im2col`` is the
convolution as one matrix product, plainly (one copy per kernel tap); ``padding`` holds the
window arithmetic (output sizes, "same" padding) that every version shares; ``recurrent_spec``
is the LSTM and GRU step loops, one expression per equation.  The tuned versions
the layers run live one level up, in ``handnet.fast``, each tested against these.
"""

from . import (
    conv1d_spec,
    conv_spec,
    conv_transpose_spec,
    depthwise_spec,
    grouped_conv_spec,
    im2col,
    padding,
    padding1d,
    pool1d_spec,
    pool_spec,
    recurrent_spec,
    separable_spec,
    transpose_padding,
)

__all__ = [
    "conv1d_spec", "conv_spec", "conv_transpose_spec", "depthwise_spec", "grouped_conv_spec",
    "im2col", "padding", "padding1d", "pool1d_spec", "pool_spec", "recurrent_spec",
    "separable_spec", "transpose_padding",
]
