"""Bidirectional: a recurrent layer run over the sequence both ways, its two outputs merged."""

import copy

import numpy as np

from ..errors import HandnetError
from ..validation import check_float_dtype
from .base import BackwardStep, Layer, batch, serialize
from .gru import GRU
from .lstm import LSTM
from .recurrent import Recurrent
from .simple_rnn import SimpleRNN

#: The layers a Bidirectional can wrap, by the class name its config stores.
WRAPPABLE = {cls.__name__: cls for cls in (GRU, LSTM, SimpleRNN)}

DIRECTIONS = ("forward_layer", "backward_layer")
MERGE_MODES = ("concat", "sum", "mul", "ave")


class _BothDirections:
    """One of the wrapper's tables (params, grads, state), made of its two layers' own.

    Reading joins them, keyed "forward_layer/kernel", …, "backward_layer/bias", over the same
    arrays: an optimizer or a checkpoint that writes into them writes into the layers.
    Assigning a table hands each half back to its layer (handnet.training.parallel gives each
    replica fresh gradient arrays this way).
    """

    def __set_name__(self, owner, name):
        self.table = name

    def __get__(self, wrapper, owner=None):
        if wrapper is None:
            return self
        return {
            f"{direction}/{key}": value
            for direction in DIRECTIONS
            for key, value in getattr(getattr(wrapper, direction), self.table).items()
        }

    def __set__(self, wrapper, table):
        if DIRECTIONS[0] not in vars(wrapper):  # Layer.__init__'s empty tables: nothing to hand out
            return
        for direction in DIRECTIONS:
            prefix = f"{direction}/"
            part = {k[len(prefix) :]: v for k, v in table.items() if k.startswith(prefix)}
            setattr(getattr(wrapper, direction), self.table, part)


class Bidirectional(Layer):
    """Keras's Bidirectional: one copy of a recurrent layer reads the sequence forward, another
    reads it backward (x_T first), and their outputs are merged.

        a = forward_layer(x)                    x (N, T, D)
        b = backward_layer(x reversed in time)  the backward copy's state after x_t is b_t
        with return_sequences: b is reversed back, so that step t of a and of b line up
        (both (N, T, U)); without it a = h_T of the forward pass, b = the backward pass's last
        state, which has read x_1 last (both (N, U)).

    merge_mode, and the gradient each direction receives from dy = ∂L/∂y:
        "concat"  y = [a | b]   (…, U_f + U_b)   da = dy[…, :U_f],  db = dy[…, U_f:]
        "sum"     y = a + b                      da = db = dy
        "ave"     y = (a + b) / 2                da = db = dy / 2
        "mul"     y = a · b                      da = dy · b,  db = dy · a
    Keras's merge_mode=None returns the two outputs as a list, which a Sequential (a chain of
    single arrays) cannot pass on, so handnet refuses it.

    Backward: dx = (forward_layer's dx from da) + (backward_layer's dx from db, reversed back in
    time), each layer filling its own parameter gradients by backpropagation through time.

    With a mask m (N, T) (0 = padding; handnet.model.plan brings it): the forward layer reads
    it as is, the backward layer reversed in time, and each carries its state over the masked
    steps (handnet.layers.recurrent). With return_sequences Keras then zeroes both outputs at
    the masked steps (it sets zero_output_for_mask on the two layers):
        a_t = m_t · a'_t,  b_t = m_t · b'_t           y from a and b as above
    and backward da' = m_t · da, db' = m_t · db. Without return_sequences the two last states
    are merged as they are; the output mask is the input's with return_sequences, else none.

    The forward copy is made from the wrapped layer's config (named "forward_<name>"), the
    backward one likewise ("backward_<name>") unless ``backward_layer`` is given; Keras also
    sets go_backwards=True on it, where handnet reverses its input here instead. Parameters
    are keyed "forward_layer/kernel", …, "backward_layer/bias" (Keras's .keras file groups them
    under the same two names).
    """

    takes_mask = True
    params = _BothDirections()
    grads = _BothDirections()
    state = _BothDirections()

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        _check_recurrent("layer", layer)
        if merge_mode not in MERGE_MODES:
            raise HandnetError(
                f"Bidirectional merge_mode must be one of {', '.join(map(repr, MERGE_MODES))}, got "
                f"{merge_mode!r}"
                + (
                    " (Keras's None returns two outputs, which a Sequential cannot pass on)"
                    if merge_mode is None
                    else ""
                )
            )
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        if backward_layer is None:
            backward_layer = self._copy_of(layer, "backward_")
        _check_recurrent("backward_layer", backward_layer)
        if backward_layer.return_sequences != layer.return_sequences:
            raise HandnetError(
                f"Bidirectional's two layers must agree on return_sequences: the forward layer has "
                f"{layer.return_sequences}, backward_layer {backward_layer.return_sequences}"
            )
        if merge_mode != "concat" and backward_layer.units != layer.units:
            raise HandnetError(
                f"Bidirectional merge_mode={merge_mode!r} combines the two outputs entry by entry, "
                f"so both layers need the same units; got {layer.units} and {backward_layer.units} "
                "(merge_mode='concat' accepts different ones)"
            )
        self.forward_layer = self._copy_of(layer, "forward_")
        self.backward_layer = backward_layer.cast(self.dtype)
        self._inference_input = None  # (x, mask) of an inference forward with "mul" (forward)

    def _copy_of(self, layer, prefix):
        """A fresh layer from ``layer``'s config, as Keras makes the two directions."""
        name = layer.name.removeprefix(prefix)
        config = {**layer.get_config(), "name": f"{prefix}{name}", "dtype": self.dtype.name}
        return type(layer).from_config(config)

    @property
    def return_sequences(self):
        return self.forward_layer.return_sequences

    def directions(self):
        return self.forward_layer, self.backward_layer

    # -- construction -------------------------------------------------------------------
    def build(self, input_shape, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        for direction, child in zip(self.directions(), rng.spawn(2)):
            if not direction.built:  # a given backward_layer may come built, as in Keras
                direction.build(input_shape, rng=child)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        forward_shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode != "concat":
            return forward_shape
        return (*forward_shape[:-1], forward_shape[-1] + self.backward_layer.units)

    def cast(self, dtype):
        self.dtype = check_float_dtype(dtype)
        for direction in self.directions():
            direction.cast(dtype)
        return self

    def regularization_penalty(self):
        return sum(direction.regularization_penalty() for direction in self.directions())

    def __copy__(self):
        """A shallow copy with shallow copies of its two layers: the same parameter arrays, its
        own caches (handnet.training.parallel's replicas run one copy per thread)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.forward_layer = copy.copy(self.forward_layer)
        twin.backward_layer = copy.copy(self.backward_layer)
        return twin

    # -- computation ----------------------------------------------------------------------
    def forward(self, x, training=False, mask=None):
        """x (N, T, D) -> y (N, T, U_f + U_b) or (N, U_f + U_b) for "concat"; U for the others.
        mask (N, T) or None: the steps that are real (see the class docstring)."""
        # "mul" differentiates through a and b: a backward after an inference forward (whose
        # outputs may differ from the training pass's by rounding, handnet.fast.recurrent's
        # LSTM) runs the training forward again first, as the wrapped layers do
        self._inference_input = (x, mask) if not training and self.merge_mode == "mul" else None
        backward_mask = None if mask is None else np.asarray(mask)[:, ::-1]
        a = self.forward_layer.forward(x, training=training, mask=mask)
        b = self.backward_layer.forward(x[:, ::-1], training=training, mask=backward_mask)
        self._keep = None
        if self.return_sequences:
            b = b[:, ::-1]
            if mask is not None:  # Keras's zero_output_for_mask
                self._keep = np.asarray(mask, dtype=bool)[..., None]
                a, b = np.where(self._keep, a, 0), np.where(self._keep, b, 0)
        if self.merge_mode == "mul":
            self._a, self._b = a, b
        if self.merge_mode == "concat":
            return np.concatenate([a, b], axis=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "ave":
            return (a + b) * a.dtype.type(0.5)
        return a * b

    def backward(self, dy):
        """dy (shape of y) -> dx (N, T, D); fills both layers' parameter gradients."""
        if self._inference_input is not None:
            x, mask = self._inference_input
            self.forward(x, training=True, mask=mask)
        if self.merge_mode == "concat":
            units = self.forward_layer.units
            da, db = dy[..., :units], dy[..., units:]
        elif self.merge_mode == "sum":
            da = db = dy
        elif self.merge_mode == "ave":
            da = db = dy * dy.dtype.type(0.5)
        else:
            da, db = dy * self._b, dy * self._a
        if self._keep is not None:  # the masked steps' outputs were zeros
            da, db = np.where(self._keep, da, 0), np.where(self._keep, db, 0)
        if self.return_sequences:  # the backward layer produced its steps in reading order
            db = db[:, ::-1]
        for direction in self.directions():
            direction.needs_input_gradient = self.needs_input_gradient
        dx_forward = self.forward_layer.backward(da)
        dx_backward = self.backward_layer.backward(db)
        if not self.needs_input_gradient:
            return None
        return dx_forward + dx_backward[:, ::-1]

    def compute_mask(self, x, mask):
        return mask if self.return_sequences else None

    # -- description ----------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize(self.forward_layer),
            "backward_layer": serialize(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = _wrapped_from(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = _wrapped_from(config["backward_layer"])
        return cls(**config)

    def __repr__(self):
        return f"Bidirectional({self.forward_layer!r}, merge_mode={self.merge_mode!r})"

    #: How the two directions' outputs a and b are joined, in ``explain``.
    MERGE_FORMULAS = {
        "concat": "[a, b] (side by side)", "sum": "a + b", "mul": "a · b", "ave": "(a + b) / 2",
    }

    def explain(self):
        """The wrapped layer's headline and step equations, both directions and their merge."""
        headline, equations = self.forward_layer.explain()
        merge = self.MERGE_FORMULAS[self.merge_mode]
        return (
            f"{type(self.forward_layer).__name__} both ways, {headline}",
            f"{equations};  a = that layer over x_1…x_T, b = a copy over x_T…x_1 "
            f"(its outputs put back in time order);  y = {merge}",
        )

    MERGE_GRADIENTS = {
        "concat": "da = dy[…, :{units}],  db = dy[…, {units}:]",
        "sum": "da = db = dy",
        "ave": "da = db = dy / 2",
        "mul": "da = dy · b,  db = dy · a",
    }

    def explain_backward(self, input_shape):
        """Each direction's backpropagation through time, from its share of dy; their weight
        gradients under the wrapper's keys ("forward_layer/kernel", …)."""
        split = self.MERGE_GRADIENTS[self.merge_mode].format(units=self.forward_layer.units)
        if self.return_sequences:
            split += ";  db reversed in time (the backward copy read x_T first)"
        lines = [
            BackwardStep(None, split, batch(self.compute_output_shape(input_shape))),
            BackwardStep(None, "a: the forward layer's backward with dy := da;  b: the backward "
                         "layer's with dy := db", ()),
        ]
        for direction, letter in zip(DIRECTIONS, "ab"):
            for step in getattr(self, direction).explain_backward(input_shape):
                of = None if step.of == "x" else f"{direction}/{step.of}" if step.of else None
                lines.append(step._replace(of=of, formula=f"{letter}: {step.formula}"))
        formula = "dx = (a's dx) + (b's dx reversed in time)"
        lines.append(BackwardStep("x", formula, batch(input_shape)))
        return lines


def _check_recurrent(argument, layer):
    if not isinstance(layer, Recurrent):
        raise HandnetError(
            f"Bidirectional's {argument} must be a recurrent layer (SimpleRNN, LSTM or GRU), got "
            f"{type(layer).__name__}" + (f" {layer.name!r}" if isinstance(layer, Layer) else "")
        )


def _wrapped_from(spec):
    """The recurrent layer of a {"class_name", "config"} spec (see ``serialize``)."""
    class_name = spec.get("class_name")
    if class_name not in WRAPPABLE:
        raise HandnetError(
            f"Bidirectional wraps one of {sorted(WRAPPABLE)}, got a {class_name!r} layer"
        )
    return WRAPPABLE[class_name].from_config(spec.get("config", {}))
