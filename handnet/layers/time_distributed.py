"""TimeDistributed: one layer applied to every time step of a sequence, with the same weights."""

from ..errors import HandnetError, InvalidInputError
from ..validation import check_float_dtype
from .base import BackwardStep, Layer
from .masking import KERAS_READS_MASK


class _InnerTable:
    """The wrapper's params, grads or state: the inner layer's own dict, under the same keys
    (Keras names TimeDistributed(Dense)'s weights "kernel" and "bias", as the Dense's). Assigning
    a table hands it to the inner layer (Layer.replica gives each replica fresh gradients so)."""

    def __set_name__(self, owner, name):
        self.table = name

    def __get__(self, wrapper, owner=None):
        if wrapper is None:
            return self
        return getattr(wrapper.layer, self.table)

    def __set__(self, wrapper, table):
        if "layer" not in vars(wrapper):  # Layer.__init__'s empty tables: nothing to hand over
            return
        setattr(wrapper.layer, self.table, table)


class TimeDistributed(Layer):
    """y[:, t] = layer(x[:, t]) for every step t, one set of weights for all steps.

    Shapes: x (N, T, *inner) -> y (N, T, *inner_out), where the layer maps (M, *inner) to
    (M, *inner_out). The steps are independent, so they are run as one batch of N·T samples:

        forward:   x (N, T, *inner) -> reshape (N·T, *inner) -> layer -> (N·T, *out)
                   -> reshape (N, T, *out)
        backward:  dy (N, T, *out) -> reshape (N·T, *out) -> layer.backward -> dx (N·T, *inner)
                   -> reshape (N, T, *inner)

    The weights are used at every step, so their gradient is the sum over steps (and samples),
    ∂L/∂θ = Σ_{n, t} ∂L/∂y[n, t] · ∂y[n, t]/∂θ, which the inner layer's backward computes on the
    N·T rows at once. Keras loops over the T steps instead; the result is the same. A layer that
    normalizes over its batch (BatchNormalization) sees all N·T rows as one batch here.

    Weights, gradients and moving statistics are the inner layer's, under its names; a random
    inner layer (Dropout) draws from its own generator, which ``fit(seed=...)`` seeds through
    this wrapper's ``rng``.
    """

    params = _InnerTable()
    grads = _InnerTable()
    state = _InnerTable()

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise HandnetError(
                f"TimeDistributed wraps a layer (e.g. TimeDistributed(Dense(8))), got "
                f"{type(layer).__name__}"
            )
        if getattr(layer, "returns_list", False):
            raise HandnetError(
                f"TimeDistributed needs a layer with one output, got {type(layer).__name__} "
                f"{layer.name!r} with several"
            )
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        self.layer = layer.cast(self.dtype)

    @property
    def supports_masking(self):
        """Keras's TimeDistributed passes a mask (N, T) on, and hands it to the inner layer only
        when that layer's call reads one: here an inner layer that reads none (a Dense) runs on
        every step and the mask goes on; one that would read it (handnet.layers.masking's
        KERAS_READS_MASK, a recurrent layer) is refused."""
        reads = getattr(self.layer, "takes_mask", False) or any(
            kind.__name__ in KERAS_READS_MASK for kind in type(self.layer).__mro__
        )
        return not reads

    @property
    def state_changes_in_training(self):
        """The inner layer's (handnet.training.parallel splits a batch when the state stays)."""
        return getattr(self.layer, "state_changes_in_training", True)

    # -- the inner layer's generator, so that fit's seed_layers reaches it -------------------
    @property
    def rng(self):
        if not hasattr(self.layer, "rng"):
            raise AttributeError("rng")  # hasattr(wrapper, "rng") is False: nothing to seed
        return self.layer.rng

    @rng.setter
    def rng(self, value):
        if hasattr(self.layer, "rng"):
            self.layer.rng = value

    @property
    def seed(self):
        return getattr(self.layer, "seed", None)

    # -- construction -------------------------------------------------------------------
    def build(self, input_shape, rng=None):
        shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
        if shape is None or len(shape) < 2 or not all(isinstance(d, int) for d in shape):
            raise InvalidInputError(
                f"TimeDistributed {self.name!r} expects sequences (steps, …) per sample with at "
                f"least one axis after the steps, got per-sample shape {input_shape!r}"
            )
        if not self.layer.built:
            self.layer.build(shape[1:], rng=rng)
        elif tuple(self.layer.input_shape) != shape[1:]:
            raise InvalidInputError(
                f"TimeDistributed {self.name!r}: its layer {self.layer.name!r} was built for "
                f"per-step shape {self.layer.input_shape}, the steps here are {shape[1:]}"
            )
        super().build(shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.layer.compute_output_shape(tuple(input_shape[1:])))

    def cast(self, dtype):
        self.dtype = check_float_dtype(dtype)
        self.layer.cast(dtype)
        return self

    def regularization_penalty(self):
        return self.layer.regularization_penalty()

    def __copy__(self):
        """A shallow copy with a shallow copy of the inner layer: the same parameter arrays, its
        own caches (handnet.parallel's replicas run one copy per thread)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.layer = self.layer.replica(share_state=True)  # Layer.replica copies it if asked
        return twin

    # -- computation ----------------------------------------------------------------------
    def forward(self, x, training=False):
        self.check_input(x)
        n, steps = x.shape[:2]
        rows = self.layer.forward(x.reshape(n * steps, *x.shape[2:]), training=training)
        return rows.reshape(n, steps, *rows.shape[1:])

    def backward(self, dy):
        n, steps = dy.shape[:2]
        self.layer.needs_input_gradient = self.needs_input_gradient
        dx = self.layer.backward(dy.reshape(n * steps, *dy.shape[2:]))
        if dx is None:
            return None
        return dx.reshape(n, steps, *dx.shape[1:])

    # -- description ----------------------------------------------------------------------
    def get_config(self):
        from . import serialize  # the layer registry imports this module

        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config):
        from . import deserialize  # the layer registry imports this module

        config = dict(config)
        layer = config.get("layer")
        if not isinstance(layer, dict):
            raise HandnetError(
                f"TimeDistributed config needs 'layer': {{'class_name': …, 'config': …}}, got "
                f"{layer!r}"
            )
        config["layer"] = deserialize(layer)
        return cls(**config)

    def explain(self):
        """(headline, formula): what the layer computes, for ``handnet.explain``."""
        inner = getattr(self.layer, "explain", None)
        headline, formula = inner() if inner else (type(self.layer).__name__, "f(x)")
        return (
            f"at every time step, the same {type(self.layer).__name__}: {headline}",
            f"y[:, t] = f(x[:, t]),  f: {formula}",
        )

    def explain_backward(self, input_shape):
        """The inner layer's backward on the N·T rows, its batch shapes shown with the steps."""
        steps = int(input_shape[0])
        lines = [BackwardStep(None, f"the inner layer's backward on N·{steps} rows (one per step); "
                              "its weights' gradients sum over the steps", ())]
        for step in self.layer.explain_backward(tuple(input_shape[1:])):
            shape = step.shape
            if shape and shape[0] == "N":
                shape = ("N", steps, *shape[1:])
            lines.append(step._replace(shape=shape))
        return lines

    def __repr__(self):
        return f"TimeDistributed({self.layer!r})"
