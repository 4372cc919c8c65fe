"""Training checkpoints: everything a fit needs to go on, bit for bit, where it stopped.

A checkpoint is one .npz file: a handnet model file (``load_model`` opens it: architecture,
weights, optimizer slots and step count, hence the schedule's position) plus one member,

    checkpoint.json   uint8 bytes of JSON: the epochs done, the history so far, and the
                      ``bit_generator.state`` of every random generator the fit draws from
                      (shuffling, dropout masks, the data-parallel parts' masks, augmentation),
                      and whatever the caller adds (the command line keeps its settings there)

Why the generator states: a resumed fit must draw the same shuffles, masks and augmentations as
the run that was stopped. ``Sequential.fit`` restarts at an epoch boundary, so the states saved at
the end of epoch k and put back before epoch k + 1 continue every stream exactly, whatever seed
(even none) the generators started from. Arrays go in .npy members, the rest in JSON: nothing in
a checkpoint is code, and no pickle is read.

The file is written atomically (handnet.atomic): a new checkpoint replaces the previous one only
once it is complete on disk, so a kill at any moment leaves the last complete checkpoint.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import saving
from .atomic import remove_stale_temporaries
from .callbacks import History
from .errors import HandnetError
from .npz import read_npz

FORMAT = "handnet-checkpoint"
VERSION = 1
FILENAME = "checkpoint.npz"


@dataclass
class FitState:
    """What a running fit keeps outside the model; ``Sequential.fit`` sets ``model.fit_state`` so
    that callbacks (BackupAndRestore) can save it and put it back.

    generators     {name: np.random.Generator} of every stream the fit draws from
    initial_epoch  the epoch the fit starts at; restoring a checkpoint moves it on
    history        the History callback that records the epochs' logs
    """

    generators: dict
    initial_epoch: int = 0
    history: History = field(default_factory=History)


def fit_generators(model, shuffle, split, augment_rng, augment):
    """{name: generator} for every generator a fit draws from. Names are positions ("part1/layer2":
    the third layer of the second part of each batch), not layer names, which differ between two
    otherwise equal models built in one process."""
    generators = {"shuffle": shuffle, "augment": augment_rng}
    for part, replica in enumerate(getattr(split, "replicas", [model])):
        for index, layer in enumerate(replica.layers):
            if isinstance(getattr(layer, "rng", None), np.random.Generator):
                generators[f"part{part}/layer{index}"] = layer.rng
    if isinstance(getattr(augment, "rng", None), np.random.Generator):  # an augmenter's own seed
        generators["augmenter"] = augment.rng
    return generators


@dataclass
class Checkpoint:
    """A checkpoint read back: the model (compiled, with its optimizer state), the number of
    epochs done, the history {"epoch": [...], "history": {key: [...]}}, the generator states and
    the caller's extra data."""

    model: object
    epoch: int
    history: dict
    generators: dict
    extra: object


def save(path, model, epoch, extra=None):
    """Write a checkpoint of ``model`` and its running fit (``model.fit_state``) after ``epoch``
    epochs to ``path``, atomically. A failed write (full disk, read-only folder) raises a
    HandnetError and leaves the previous checkpoint as it was."""
    state = model.fit_state
    info = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "history": {"epoch": state.history.epoch, "history": state.history.history},
        "generators": {name: rng.bit_generator.state for name, rng in state.generators.items()},
        "extra": extra,
    }
    arrays = saving.model_arrays(model)
    arrays["checkpoint.json"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    try:
        saving.write_npz_atomic(path, arrays)
    except OSError as error:
        reason = error.strerror or str(error)
        raise HandnetError(
            f"could not write the checkpoint {path} ({reason}); the previous checkpoint there, if "
            "any, is untouched. Free some disk space or choose a writable folder"
        ) from error


def read(path):
    """The Checkpoint at ``path``; a HandnetError when it is missing, damaged or not one."""
    path = Path(path)
    model = saving.load_model(path)  # checks the archive, the weights and the optimizer state
    raw = read_npz(path, what="handnet checkpoint").get("checkpoint.json")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise HandnetError(f"{path} is a model file, not a checkpoint (no checkpoint.json)")
    try:
        info = json.loads(raw.tobytes().decode())
        if info.get("format") != FORMAT or info.get("version") != VERSION:
            raise HandnetError(
                f"{path}: checkpoint format {info.get('format')!r} version {info.get('version')}, "
                f"this handnet reads {FORMAT!r} version {VERSION}"
            )
        epoch = info["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise HandnetError(f"{path}: the epochs done should be an integer ≥ 0, got {epoch!r}")
        generators = dict(info["generators"])
        saved_history = info["history"]
        history = {"epoch": list(saved_history["epoch"]), "history": dict(saved_history["history"])}
    except HandnetError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError,
            ValueError) as error:  # fmt: skip
        reason = f"{type(error).__name__}: {error}"
        raise HandnetError(f"{path}: malformed checkpoint.json ({reason})") from None
    return Checkpoint(model, epoch, history, generators, info.get("extra"))


def restore(model, path):
    """Put the checkpoint at ``path`` into ``model`` and its running fit (``model.fit_state``):
    weights, optimizer state and schedule, generator states, history, and the epoch to start at.
    Returns the Checkpoint."""
    checkpoint = read(path)
    saved, fit_state = checkpoint.model, model.fit_state
    _check_same_model(path, saved, model)  # before anything changes
    if set(checkpoint.generators) != set(fit_state.generators):
        raise HandnetError(
            f"{path} holds the random generators {sorted(checkpoint.generators)}, this fit draws "
            f"from {sorted(fit_state.generators)}: resume with the same layers, augmentation and "
            "threads as the run that wrote it"
        )
    model.set_weights(saved.get_weights())
    # Optimizer slots are keyed "slot/layer name/param"; the names are the saved model's.
    names = {old.name: new.name for old, new in zip(saved.layers, model.layers)}
    state = {}
    for key, value in saved.optimizer.get_state().items():
        slot, _, rest = key.partition("/")
        layer, _, param = rest.partition("/")
        state[f"{slot}/{names[layer]}/{param}" if param else key] = value
    model.optimizer.set_state(state)
    model.optimizer.schedule = saved.optimizer.schedule  # ReduceLROnPlateau may have changed it
    for name, rng in fit_state.generators.items():
        try:
            rng.bit_generator.state = checkpoint.generators[name]
        except (TypeError, ValueError, KeyError) as error:
            message = f"{path}: the state of generator {name!r} is malformed ({error})"
            raise HandnetError(message) from None
    fit_state.history.epoch = list(checkpoint.history["epoch"])
    saved_history = checkpoint.history["history"]
    fit_state.history.history = {key: list(values) for key, values in saved_history.items()}
    fit_state.initial_epoch = max(fit_state.initial_epoch, checkpoint.epoch)
    return checkpoint


def _check_same_model(path, saved, model):
    saved_types = [type(layer).__name__ for layer in saved.layers]
    types = [type(layer).__name__ for layer in model.layers]
    if saved_types != types:
        raise HandnetError(f"{path} holds a model of layers {saved_types}, this one has {types}")
    if type(saved.optimizer) is not type(model.optimizer):
        raise HandnetError(
            f"{path} was trained with {type(saved.optimizer).__name__}, this model is compiled "
            f"with {type(model.optimizer).__name__}"
        )


def prepare_folder(folder):
    """Create ``folder`` if needed and delete the temporary files of checkpoint writers that were
    killed mid-write; returns the checkpoint's path in it."""
    path = Path(folder) / FILENAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or error
        raise HandnetError(f"cannot create the checkpoint folder {folder} ({reason})") from None
    remove_stale_temporaries(path)
    return path
