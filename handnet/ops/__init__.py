"""The array operations behind the image layers, written twice.

``conv_spec`` and ``pool_spec`` are loops that read like the formulas: the specification, to
read first.  ``conv`` and ``pool`` are the vectorized versions the layers run, tested against
the specification.  ``padding`` holds the window arithmetic (output sizes, "same" padding)
that both share.
"""

from . import conv, conv_spec, padding, pool, pool_spec

__all__ = ["conv", "conv_spec", "padding", "pool", "pool_spec"]
