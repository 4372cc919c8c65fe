"""Errors that handnet raises on purpose, with a message that says what was
expected and what came."""


class HandnetError(Exception):
    """Base class of every error handnet raises deliberately; catch it to tell them
    apart from bugs."""


class InvalidInputError(HandnetError, ValueError):
    """An input array has the wrong shape or dtype for the layer or model it was given to."""


class TrainingDivergedError(HandnetError):
    """The training loss or a gradient became NaN or infinite: the learning rate is usually too
    high. ``step`` (the optimizer step, from 1), ``quantity`` ("loss" or "dense_1/kernel
    gradient") and ``layer`` (the first layer whose output is not finite, or None) say where."""

    def __init__(self, message, step=None, quantity=None, layer=None):
        super().__init__(message)
        self.step = step
        self.quantity = quantity
        self.layer = layer
