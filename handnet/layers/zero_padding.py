"""ZeroPadding2D: a border of zeros around each image."""

import numpy as np

from ..errors import HandnetError
from ..ops.padding import crop_spatial, pad_spatial
from .base import BackwardStep, Layer, batch
from .conv2d import require_images


def _padding_pairs(padding):
    """Keras's three forms — p, (p_h, p_w), ((top, bottom), (left, right)) — as the last."""

    def is_count(p):
        return isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0

    def is_pair(pair):
        return isinstance(pair, (list, tuple)) and len(pair) == 2 and all(map(is_count, pair))

    if is_count(padding):
        padding = (padding, padding)
    if isinstance(padding, (list, tuple)) and len(padding) == 2:
        rows, columns = ((p, p) if is_count(p) else p for p in padding)
        if is_pair(rows) and is_pair(columns):
            return tuple(map(int, rows)), tuple(map(int, columns))
    raise HandnetError(
        "ZeroPadding2D padding must be an int, (rows, columns) or ((top, bottom), (left, right)) "
        f"of non-negative ints, got {padding!r}"
    )


class ZeroPadding2D(Layer):
    """y = x with zero rows on top/bottom and zero columns left/right:
    (N, H, W, C) -> (N, top + H + bottom, left + W + right, C);  dx = dy without the border."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_pairs(padding)

    def compute_output_shape(self, input_shape):
        require_images(self, input_shape)
        (top, bottom), (left, right) = self.padding
        height, width, channels = input_shape
        return (top + height + bottom, left + width + right, channels)

    def forward(self, x, training=False):
        self.check_input(x)
        return pad_spatial(x, self.padding)

    def backward(self, dy):
        return crop_spatial(dy, self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": [list(pair) for pair in self.padding]}

    def explain(self):
        padding = self.get_config()["padding"]
        return f"padding {padding}", "y = x with zero rows/columns around it"

    def explain_backward(self, input_shape):
        (top, _), (left, _) = self.padding
        height, width, _ = input_shape
        rows, columns = f"{top}:{top + height}", f"{left}:{left + width}"
        formula = f"dx = dy[:, {rows}, {columns}, :]   (the border dropped)"
        return [BackwardStep("x", formula, batch(input_shape))]
