"""The settings one experiment run is made of: their names, how each is written, their defaults.

A run is a flat dict of settings, e.g. {"hidden": [256, 128], "activation": "relu", "lr": 0.1}.
Each value may come typed from a TOML file or as text from the command line; ``parse`` turns
either into one JSON-ready form, so the same run always gets the same config and the same name.
"""

import inspect
import math
from dataclasses import dataclass

from .. import activations, initializers
from ..datasets import DATASETS
from ..errors import HandnetError
from ..zoo import architectures, recipes


@dataclass(frozen=True)
class Setting:
    name: str
    expects: str  # said in errors: "lr expects a positive number, got 'abc'"
    help: str
    parse: object  # value (typed, or text) -> the normalized value; ValueError when malformed


def _number(value):
    if isinstance(value, bool):  # True is an int to Python, not a number to a user
        raise ValueError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _whole(value, minimum):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError
    number = int(value)
    if number < minimum:
        raise ValueError
    return number


def _positive(value):
    number = _number(value)
    if number <= 0:
        raise ValueError
    return number


def _non_negative(value):
    number = _number(value)
    if number < 0:
        raise ValueError
    return number


def _fraction(value):
    number = _number(value)
    if not 0 <= number < 1:
        raise ValueError
    return number


def _boolean(value):
    if isinstance(value, bool):
        return value
    words = {"true": True, "on": True, "yes": True, "1": True,
             "false": False, "off": False, "no": False, "0": False}
    if isinstance(value, str) and value.lower() in words:
        return words[value.lower()]
    raise ValueError


def _layer_sizes(value):
    """128 -> [128];  "256,128", "256-128" or [256, 128] -> [256, 128]."""
    if isinstance(value, str):
        parts = value.replace("-", ",").split(",")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    sizes = [_whole(part.strip() if isinstance(part, str) else part, 1) for part in parts]
    if not sizes:
        raise ValueError
    return sizes


def _one_of(names):
    def parse(value):
        if value not in names:
            raise ValueError
        return value

    return parse


def _limit(value):
    """A number of training images, or "all"."""
    return None if value in (None, "all") else _whole(value, 1)


SETTINGS = {
    setting.name: setting
    for setting in (
        Setting("model", f"one of {', '.join(sorted(architectures.ARCHITECTURES))}",
                "a named architecture; only mlp takes hidden, activation, initializer and "
                "batch_norm", _one_of(architectures.ARCHITECTURES)),
        Setting("dataset", f"one of {', '.join(sorted(DATASETS))}", "the images",
                _one_of(DATASETS)),
        Setting("hidden", "layer sizes such as 256,128 (256-128 in --vary)",
                "hidden layer widths, input side first", _layer_sizes),
        Setting("activation", "an activation such as sigmoid, tanh, relu, leaky_relu",
                "of the hidden layers", _one_of(activations.ACTIVATIONS)),
        Setting("initializer", f"one of {', '.join(initializers.INITIALIZERS)}",
                "of the hidden layers' kernels", _one_of(initializers.INITIALIZERS)),
        Setting("optimizer", f"one of {', '.join(recipes.OPTIMIZER_NAMES)}",
                "the update rule", _one_of(recipes.OPTIMIZER_NAMES)),
        Setting("lr", "a positive number", "the peak learning rate", _positive),
        Setting("schedule", f"one of {', '.join(recipes.SCHEDULE_NAMES)}",
                "how the learning rate moves over the run", _one_of(recipes.SCHEDULE_NAMES)),
        Setting("batch_size", "a whole number ≥ 1", "images per step",
                lambda value: _whole(value, 1)),
        Setting("epochs", "a whole number ≥ 1", "passes over the training images",
                lambda value: _whole(value, 1)),
        Setting("dropout", "a number in [0, 1)", "the dropout rate after each hidden layer",
                _fraction),
        Setting("l2", "a number ≥ 0", "λ of the L2 penalty λ·Σw² on every kernel",
                _non_negative),
        Setting("batch_norm", "true or false", "BatchNormalization before each activation",
                _boolean),
        Setting("seed", "a whole number ≥ 0", "of the weights, shuffling and dropout",
                lambda value: _whole(value, 0)),
        Setting("train_limit", "a whole number ≥ 1 or all",
                "train on the first N training images (quick experiments)", _limit),
        Setting("validation_split", "a number in [0, 1)",
                "last fraction of those images held out to validate each epoch", _fraction),
    )
}

#: What a run gets for a setting it does not name. None: the architecture's recipe decides.
DEFAULTS = {
    "model": "mlp",
    "dataset": "mnist",
    "hidden": None,
    "activation": None,
    "initializer": None,
    "optimizer": None,
    "lr": None,
    "schedule": None,
    "batch_size": None,
    "epochs": None,
    "dropout": None,
    "l2": 0.0,
    "batch_norm": None,
    "seed": 0,
    "train_limit": None,
    "validation_split": 0.1,
}

# The defaults of architectures.mlp_layers, so an experiment's default MLP is the network that
# `handnet train --model mlp` trains.
_MLP_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(architectures.mlp_layers).parameters.items()
}
#: setting -> the mlp_layers argument it sets; other architectures have their layers fixed.
MLP_ONLY = {
    "hidden": "hidden",
    "activation": "activation",
    "initializer": "kernel_initializer",
    "batch_norm": "batch_norm",
}


def parse(name, value, where):
    """The normalized value of setting ``name``; ``where`` says where it was written, for errors."""
    if name not in SETTINGS:
        raise HandnetError(
            f"{where}: unknown setting {name!r}; expected one of {', '.join(SETTINGS)}"
        )
    setting = SETTINGS[name]
    try:
        return setting.parse(value)
    except (ValueError, TypeError):
        raise HandnetError(f"{where}: {name} expects {setting.expects}, got {value!r}") from None


def format_value(value):
    """A value as run names and table cells show it: 0.1, 256-128, true."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.12g}"  # 0.1, 3, 1e-05: short, and two values rarely look alike
    return "all" if value is None else str(value)


def resolve(requested):
    """Every setting of one run, the defaults filled in from DEFAULTS and the recipe.

    As ``handnet train``: an optimizer other than the recipe's starts from its own usual
    learning rate. Raises HandnetError for settings that do not fit together.
    """
    config = {**DEFAULTS, **requested}
    architecture = architectures.get(config["model"])
    recipe = architecture.training
    if recipe.task != "classify":
        raise HandnetError(
            f"handnet experiment compares classifiers by their accuracy; {config['model']} "
            f"learns to {recipe.task} its inputs (task {recipe.task!r}): train it with "
            f"`handnet train --model {config['model']}`"
        )
    if config["model"] == "mlp":
        for name, argument in MLP_ONLY.items():
            if config[name] is None:
                config[name] = _MLP_DEFAULTS[argument]
        config["hidden"] = list(config["hidden"])
        if config["dropout"] is None:
            config["dropout"] = _MLP_DEFAULTS["dropout"]
    else:
        fixed = [name for name in MLP_ONLY if config[name] is not None]
        if fixed:
            verb = "applies" if len(fixed) == 1 else "apply"
            raise HandnetError(
                f"{', '.join(fixed)} {verb} to model mlp only; {config['model']}'s layers are "
                "fixed (its dropout and l2 can be set)"
            )
    if config["optimizer"] is None:
        config["optimizer"] = recipe.optimizer
    if config["lr"] is None:
        config["lr"] = (
            recipe.learning_rate
            if config["optimizer"] == recipe.optimizer
            else recipes.DEFAULT_LEARNING_RATES[config["optimizer"]]
        )
    for name in ("schedule", "batch_size", "epochs"):
        if config[name] is None:
            config[name] = getattr(recipe, name)
    _check_split(config)
    return config


def _check_split(config):
    """Model.fit keeps the first int(N·(1 - split)) images for training, the rest to validate."""
    split, limit = config["validation_split"], config["train_limit"]
    if limit is None or split == 0:
        return
    kept = int(limit * (1 - split))
    if kept < 1 or kept == limit:
        raise HandnetError(
            f"train_limit {limit} with validation_split {split:g} leaves {kept} images for "
            f"training and {limit - kept} to validate; each needs at least one"
        )
