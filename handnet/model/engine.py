"""Where a model finds the verbs that live above it in the package: fit (handnet.training),
save (handnet.saving) and to_keras (handnet.keras_io).

The model sits below training, saving and keras_io and imports none of them; each of those
registers its verb here when it is imported (``import handnet`` imports them all), and
``Model.fit`` hands over to whatever was registered. The dependency points one way only.
"""

from ..errors import HandnetError

_VERBS = {}


def provide(verb, function):
    """Register ``function(model, *args, **kwargs)`` as the implementation of ``model.<verb>``."""
    _VERBS[verb] = function


def run(verb, model, *args, default=None, **kwargs):
    """``verb``'s registered implementation (or ``default``) called on the model."""
    function = _VERBS.get(verb, default)
    if function is None:
        raise HandnetError(f"model.{verb} needs the rest of handnet: import handnet first")
    return function(model, *args, **kwargs)
