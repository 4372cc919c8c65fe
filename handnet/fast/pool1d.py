"""1-D pooling, vectorized: a sequence x (N, L, C) pooled as an image (N, 1, L, C) one row
high with windows 1×p, by ``handnet.fast.pool``'s separable passes (the row pass is then a
no-op of one tap).  ``handnet.ops.pool1d_spec`` is the specification.
"""

from . import pool


def max_pool1d_forward(x, pool_size=2, strides=2, padding="valid"):
    """(y (N, OL, C), cache for the backward pass)."""
    y, cache = pool.max_pool2d_forward(x[:, None], (1, pool_size), (1, strides), padding)
    return y[:, 0], cache


def max_pool1d_backward(dy, cache, pool_size=2, strides=2):
    """dx (N, L, C): each dy[n, t, c] lands on the first maximum of its window."""
    return pool.max_pool2d_backward(dy[:, None], cache, (1, pool_size), (1, strides))[:, 0]


def avg_pool1d_forward(x, pool_size=2, strides=2, padding="valid"):
    return pool.avg_pool2d_forward(x[:, None], (1, pool_size), (1, strides), padding)[:, 0]


def avg_pool1d_backward(dy, x_shape, pool_size=2, strides=2, padding="valid"):
    n, length, channels = x_shape
    dx = pool.avg_pool2d_backward(
        dy[:, None], (n, 1, length, channels), (1, pool_size), (1, strides), padding
    )
    return dx[:, 0]
