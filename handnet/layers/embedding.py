"""Embedding: integer indices looked up as rows of a trained table."""

import numpy as np

from .. import initializers, regularizers
from ..errors import HandnetError, InvalidInputError
from .base import BackwardStep, Layer, weight_gradient


class Embedding(Layer):
    """y = E[x]: each integer index in x picks a row of the table E (Keras's "embeddings").

    Shapes:  x (N, *S) integers in [0, input_dim) — (N, T) for sequences —,
             E = embeddings (input_dim, output_dim),  y (N, *S, output_dim).

    Loop spec:   for every position p of x:  y[p] = E[x[p]]
    Vectorized:  y = E[x] (one fancy-indexing gather).

    Backward, given dy = ∂L/∂y: y[p] depends on row E[v] exactly when x[p] = v, so by the chain
    rule summed over every position that read the row
        dE[v] = Σ_p [x[p] = v] · dy[p]
    — an index that occurs twice (a word repeated in a sentence) gets both gradients ADDED.
    That is a scatter-add, ``np.add.at(dE, x, dy)``: unbuffered, whereas ``dE[x] += dy``
    would keep only one of the repeated writes. Rows no index read get 0. The indices are
    integers, not a function of anything trained, so there is no ∂L/∂x: backward returns None.

    ``mask_zero=True``: index 0 is padding; the layer makes the mask x != 0 (N, *S) for the
    layers after it (a recurrent layer then skips those steps), as Keras does — the row E[0]
    still exists and is looked up, so input_dim counts the padding index too.

    Inputs come cast to the model's float dtype (handnet.model.functional.Model.prepare_x); a
    float holds every integer below 2**24 (float32) or 2**53 (float64) exactly, so the cast
    loses nothing for any table that fits in memory, and ``forward`` checks that every value
    is a whole number in range (a clear error instead of NumPy's wraparound for -1).
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        mask_zero=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        if self.input_dim < 1 or self.output_dim < 1:
            raise HandnetError(
                f"Embedding needs input_dim >= 1 and output_dim >= 1, got {input_dim} and "
                f"{output_dim}"
            )
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)

    @property
    def makes_mask(self):
        return self.mask_zero

    def build(self, input_shape, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        init = initializers.get(self.embeddings_initializer)
        self.add_param("embeddings", init((self.input_dim, self.output_dim), rng, self.dtype))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def regularized_params(self):
        if self.embeddings_regularizer is not None:
            yield "embeddings", self.embeddings_regularizer

    def indices(self, x):
        """x as np.intp indices, after checking that they are whole numbers in [0, input_dim)."""
        x = np.asarray(x)
        if x.dtype.kind == "f":
            exact = 2 ** (np.finfo(x.dtype).nmant + 1)
            if self.input_dim > exact:
                raise InvalidInputError(
                    f"layer {self.name!r} (Embedding) has input_dim {self.input_dim}, above "
                    f"2**{np.finfo(x.dtype).nmant + 1}: {x.dtype} indices are not all exact "
                    "(run the model in float64, or pass integer arrays to the layer)"
                )
            fractional = ~np.isfinite(x) | (x != np.floor(x))
            if fractional.any():
                raise InvalidInputError(
                    f"layer {self.name!r} (Embedding) looks up integer indices, got "
                    f"non-integer values such as {_first(x[fractional])}"
                )
        elif x.dtype.kind not in "iub":
            raise InvalidInputError(
                f"layer {self.name!r} (Embedding) looks up integer indices, got dtype {x.dtype}"
            )
        if x.size:
            low, high = x.min(), x.max()
            if low < 0 or high >= self.input_dim:
                bad = low if low < 0 else high
                raise InvalidInputError(
                    f"layer {self.name!r} (Embedding) has input_dim {self.input_dim}: indices "
                    f"must be in [0, {self.input_dim - 1}], got {_first(np.array([bad]))}"
                )
        return x.astype(np.intp)

    def forward(self, x, training=False):
        self.check_input(x)
        self._indices = self.indices(x)
        return self.params["embeddings"][self._indices]

    def backward(self, dy):
        gradient = self.grads["embeddings"]
        gradient[...] = 0
        # Scatter-add: repeated indices sum their rows (see the docstring).
        np.add.at(gradient, self._indices.reshape(-1), dy.reshape(-1, self.output_dim))
        self.add_regularization_gradients()
        return None

    def compute_mask(self, x, mask):
        """x != 0 with mask_zero (the incoming mask is not used, as in Keras), else None."""
        if not self.mask_zero:
            return None
        return np.asarray(x) != 0

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": self.embeddings_initializer,
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "mask_zero": self.mask_zero,
        }

    def explain(self):
        padding = ";  mask = (x != 0): index 0 is padding" if self.mask_zero else ""
        return (
            f"{self.input_dim} indices → vectors of {self.output_dim}",
            f"y = E[x], E ({self.input_dim}, {self.output_dim}){padding}",
        )

    def explain_backward(self, input_shape):
        over = "p" if len(input_shape) == 1 else "positions p"
        return [
            weight_gradient(
                self, "embeddings",
                f"dE[v] = Σ_({over}) [x[p] = v] · dy[p]   (a scatter-add: repeats add up)", "E",
            ),
            BackwardStep(None, "no dx: the indices are integers, nothing upstream trains", ()),
        ]


def _first(values):
    value = values.reshape(-1)[0]
    return value.item() if hasattr(value, "item") else value
