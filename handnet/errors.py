"""Errors that handnet raises on purpose, with a message that says what was expected and what came."""


class HandnetError(Exception):
    """Base class of every error handnet raises deliberately; catch it to tell them apart from bugs."""


class InvalidInputError(HandnetError, ValueError):
    """An input array has the wrong shape or dtype for the layer or model it was given to."""
