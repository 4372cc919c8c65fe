"""Non-finite numbers in training: caught at the step they appear, before they reach the weights.

One NaN or infinity applied to a weight stays there: every later output is NaN. So
``Sequential.fit`` checks each step before the optimizer applies it, the loss first, then every
gradient. Each gradient costs one sum: a NaN or ±inf anywhere makes the sum non-finite (and a sum
that merely overflows is confirmed element by element before it counts as a fault).

On a fault fit either stops with a TrainingDivergedError that names the step, the quantity and
the layer (``on_nonfinite="raise"``), or skips the batch (``on_nonfinite="skip"``): no update,
and the layers' running statistics put back as they were before the batch.
"""

import numpy as np

from ..errors import HandnetError, TrainingDivergedError
from ..validation import all_finite

MODES = ("raise", "skip")


def check_mode(on_nonfinite):
    if on_nonfinite not in MODES:
        raise HandnetError(f"on_nonfinite must be one of {MODES}, got {on_nonfinite!r}")
    return on_nonfinite


def fault(model, loss):
    """What is not finite in the step just computed: "loss", "<layer>/<param> gradient", or None."""
    if not np.isfinite(loss):
        return "loss"
    for key, _, grad in model.trainable_variables():
        if not all_finite(grad):
            return f"{key} gradient"
    return None


class StateGuard:
    """The layers' state (BatchNormalization's moving statistics) as it was before a step, to put
    back when the step is skipped: a forward pass on a bad batch has already updated it."""

    def __init__(self, model):
        self.copies = [
            (layer.state, key, value.copy())
            for layer in model.layers
            for key, value in layer.state.items()
        ]

    def save(self):
        for state, key, copy in self.copies:
            np.copyto(copy, state[key])

    def restore(self):
        for state, key, copy in self.copies:
            np.copyto(state[key], copy)


def parameters_finite(model):
    return all(np.isfinite(p).all() for layer in model.layers for p in layer.params.values())


def diverged(model, quantity, loss, x_batch, epoch, batch):
    """The TrainingDivergedError for a fault in ``quantity`` at this step, with where it starts."""
    step = model.optimizer.iterations + 1
    if quantity == "loss":
        what = f"the loss is {loss}"
    else:
        key = quantity.removesuffix(" gradient")
        grad = next(grad for name, _, grad in model.trainable_variables() if name == key)
        what = f"the gradient of {key} holds {_count_nonfinite(grad)}"
    origin, layer = _origin(model, x_batch)
    lr = float(model.optimizer.learning_rate)
    message = (
        f"training diverged at step {step} (epoch {epoch + 1}, batch {batch + 1}): {what}; "
        f"{origin}. The weights were not updated with it. Try a lower learning rate (now {lr:g}) "
        "or gradient clipping (an optimizer's clipnorm=1.0), or skip such batches "
        "(fit(on_nonfinite='skip'), handnet train --skip-nonfinite)"
    )
    return TrainingDivergedError(message, step=step, quantity=quantity, layer=layer)


def _count_nonfinite(values):
    nan = int(np.isnan(values).sum())
    infinite = int(np.isinf(values).sum())
    return f"{nan:,} NaN and {infinite:,} infinite values of {values.size:,}"


def _origin(model, x):
    """(a sentence, the layer name or None): where the batch first turns non-finite, found by
    running it through the layers one by one in inference mode (no dropout draw, no update of
    running statistics). It runs only when training stops, so it costs nothing while it goes."""
    with np.errstate(all="ignore"):  # the overflow is the finding here, not a warning
        return _first_nonfinite(model, x)


def _first_nonfinite(model, x):
    xs = x if isinstance(x, list) else [x]
    for array in xs:
        if not np.isfinite(array).all():
            return f"the input batch itself holds {_count_nonfinite(array)}", None
    for layer in model.layers:
        for key, value in layer.weights().items():
            if not np.isfinite(value).all():
                held = _count_nonfinite(value)
                return f"the weight {layer.name}/{key} already holds {held}", layer.name
    for node, output in model.trace(xs):
        outputs = output if isinstance(output, list) else [output]
        if not all(np.isfinite(value).all() for value in outputs):
            name = node.layer.name
            where = f"the first layer whose output is not finite (inference mode) is {name}"
            return where, name
    return "every layer's output is finite in inference mode: the loss or backward overflowed", None
