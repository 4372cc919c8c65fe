"""The data of a fit: checked, split for validation, and cut into shuffled mini-batches."""

from dataclasses import dataclass

import numpy as np

from ..errors import HandnetError, InvalidInputError
from .. import validation


@dataclass
class FitData:
    """x and y as lists (one array per model input and output), and the validation data."""

    x: list
    y: list
    validation: tuple | None  # (x list, y list) or None

    @property
    def samples(self):
        return len(self.x[0])

    @classmethod
    def prepare(cls, model, x, y, validation_data=None, validation_split=0.0):
        """Check x and y against the model; hold out the *last* ``validation_split`` of them
        before shuffling, as Keras does (the split point is int(N · (1 - split)))."""
        xs = model.prepare_x(x)
        if len(xs[0]) == 0:
            raise InvalidInputError(f"fit needs at least one sample, got x of shape {xs[0].shape}")
        ys = model.prepare_y(y, len(xs[0]))
        held_out = None
        if validation_split and validation_data is None:
            cut = split_point(len(xs[0]), validation_split)
            held_out = ([a[cut:] for a in xs], [a[cut:] for a in ys])
            xs, ys = [a[:cut] for a in xs], [a[:cut] for a in ys]
        elif validation_data is not None:
            x_val = model.prepare_x(validation_data[0], "validation x")
            held_out = (x_val, model.prepare_y(validation_data[1], len(x_val[0]), "validation y"))
        return cls(xs, ys, held_out)


def split_point(samples, validation_split):
    """How many of ``samples`` train when ``validation_split`` is held out: int(N·(1 - split)),
    Keras's rule. The one place this is computed (the CLI reports what fit does)."""
    if not 0 < validation_split < 1:
        raise HandnetError(f"validation_split must be in (0, 1), got {validation_split}")
    cut = int(samples * (1 - validation_split))
    if cut == 0 or cut == samples:
        raise HandnetError(
            f"validation_split={validation_split} of {samples} samples leaves {cut} for "
            f"training and {samples - cut} for validation; each needs at least one"
        )
    return cut


def batches(order, batch_size, start_batch=0):
    """(batch number, indices) of each mini-batch of the epoch's ``order``, from ``start_batch``."""
    for batch, start in enumerate(range(0, len(order), batch_size)):
        if batch >= start_batch:
            yield batch, order[start : start + batch_size]


def epoch_order(rng, samples, shuffle):
    """The epoch's sample order: a permutation drawn from ``rng``, or 0, 1, 2, … unshuffled."""
    return rng.permutation(samples) if shuffle else np.arange(samples)


def check_batch_size(batch_size):
    return validation.check_batch_size(batch_size, 32)
