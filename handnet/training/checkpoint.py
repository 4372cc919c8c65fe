"""Training checkpoints: everything a fit needs to go on, bit for bit, where it stopped.

A checkpoint is one .npz file: a handnet model file (``load_model`` opens it: architecture,
weights, optimizer slots and step count, hence the schedule's position) plus one member,

    checkpoint.json   uint8 bytes of JSON: the epochs done, the history so far, the
                      ``bit_generator.state`` of every random generator the fit draws from
                      (shuffling, dropout masks, the data-parallel parts' masks, augmentation),
                      the partial epoch if the fit stopped inside one, and whatever the caller
                      adds (the command line keeps its settings there)

Why the generator states: a resumed fit must draw the same shuffles, masks and augmentations as
the run that was stopped. A checkpoint is written between two steps, so the states saved there
and put back before the next step continue every stream exactly, whatever seed (even none) the
generators started from. One exception: the epoch's order was drawn when the epoch began, so a
fit stopped inside an epoch also keeps the shuffle generator's state from before that draw
(PartialEpoch), and the resumed fit draws the same order again. Arrays go in .npy members, the
rest in JSON: nothing in a checkpoint is code, and no pickle is read.

The file is written atomically (handnet.atomic): a new checkpoint replaces the previous one only
once it is complete on disk, so a kill at any moment leaves the last complete checkpoint.
"""

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import saving
from ..atomic import remove_stale_temporaries
from ..errors import HandnetError
from ..model.history import History
from ..npz import read_npz

FORMAT = "handnet-checkpoint"
VERSION = 2  # 2 added the partial epoch
READABLE_VERSIONS = (1, 2)  # a version 1 file is a version 2 one stopped at an epoch's end
FILENAME = "checkpoint.npz"


@dataclass
class PartialEpoch:
    """An epoch stopped between two steps (Ctrl-C, SIGTERM: handnet.training.interrupt), with what a
    fit needs to finish it as if it had never stopped. It is the epoch after the epochs done.

    samples, batch_size   the data it was cut from: a fit on other data cannot continue it
    batches        batches of the epoch's order done (trained, or skipped as non-finite)
    shuffle_state  the shuffle generator's state before it drew the epoch's order: drawing
                   again gives the same order (a few numbers instead of ``samples`` indices)
    loss_sum, correct, seen, skipped   the running sums behind the epoch's logs,
                   loss = loss_sum / seen and accuracy = correct / seen
    seconds        training time spent in the epoch so far; its log adds the rest
    """

    samples: int
    batch_size: int
    batches: int = 0
    shuffle_state: dict | None = None
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    skipped: int = 0
    seconds: float = 0.0
    output_sums: list | None = None  # per output, for a model with several
    output_correct: list | None = None
    # The positions an accuracy is over when not the samples seen (a sequence output's N·T,
    # or its unmasked steps): handnet.training.step.EpochSums.
    counted: int | None = None
    output_counted: list | None = None


@dataclass
class FitState:
    """What a running fit keeps outside the model; ``Sequential.fit`` sets ``model.fit_state`` so
    that callbacks (BackupAndRestore) can save it and put it back.

    generators     {name: np.random.Generator} of every stream the fit draws from
    initial_epoch  the epoch the fit starts at; restoring a checkpoint moves it on
    history        the History callback that records the epochs' logs
    partial_epoch  where the epoch under way stands when the fit is stopped inside it, and,
                   restored from a checkpoint, the epoch the fit is to finish first
    """

    generators: dict
    initial_epoch: int = 0
    history: History = field(default_factory=History)
    partial_epoch: PartialEpoch | None = None

    def resume_epoch(self, samples, batch_size):
        """The PartialEpoch an epoch starts from, taken (the next epoch starts afresh): the one
        restored, or one with nothing done. A HandnetError when it was cut from other data."""
        partial, self.partial_epoch = self.partial_epoch, None
        if partial is None:
            return PartialEpoch(samples, batch_size)
        if (partial.samples, partial.batch_size) != (samples, batch_size):
            raise HandnetError(
                f"the checkpoint stopped inside an epoch of {partial.samples} samples in batches "
                f"of {partial.batch_size}; this fit has {samples} samples in batches of "
                f"{batch_size}: resume with the same data and batch size"
            )
        return partial


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
    epochs done, the history {"epoch": [...], "history": {key: [...]}}, the generator states,
    the caller's extra data, and the PartialEpoch when it was written inside an epoch."""

    model: object
    epoch: int
    history: dict
    generators: dict
    extra: object
    partial_epoch: PartialEpoch | None = None

    def position(self):
        """Where the run stands, in words: "after epoch 3", "after 40 batches of epoch 4"."""
        partial = self.partial_epoch
        return position(self.epoch, 0 if partial is None else partial.batches)


def position(epochs_done, batches):
    """Where a run stands, in words: "after epoch 3" (``batches`` 0), "after 1 batch of
    epoch 4", "after 40 batches of epoch 4"."""
    if not batches:
        return f"after epoch {epochs_done}"
    return f"after {batches} batch{'es' if batches > 1 else ''} of epoch {epochs_done + 1}"


def save(path, model, epoch, extra=None):
    """Write a checkpoint of ``model`` and its running fit (``model.fit_state``) after ``epoch``
    epochs (and its ``partial_epoch``, if set) to ``path``, atomically. A failed write (full
    disk, read-only folder) raises a HandnetError and leaves the previous checkpoint as it was."""
    state = model.fit_state
    partial = state.partial_epoch
    info = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "history": {"epoch": state.history.epoch, "history": state.history.history},
        "generators": {name: rng.bit_generator.state for name, rng in state.generators.items()},
        "partial_epoch": None if partial is None else dataclasses.asdict(partial),
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
        if info.get("format") != FORMAT or info.get("version") not in READABLE_VERSIONS:
            raise HandnetError(
                f"{path}: checkpoint format {info.get('format')!r} version {info.get('version')}, "
                f"this handnet reads {FORMAT!r} versions {READABLE_VERSIONS}"
            )
        epoch = info["epoch"]
        if not _whole(epoch):
            raise HandnetError(f"{path}: the epochs done should be an integer ≥ 0, got {epoch!r}")
        generators = dict(info["generators"])
        saved_history = info["history"]
        history = {"epoch": list(saved_history["epoch"]), "history": dict(saved_history["history"])}
        partial = info.get("partial_epoch")
        partial = None if partial is None else _partial_epoch(path, partial)
    except HandnetError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError,
            ValueError) as error:  # fmt: skip
        reason = f"{type(error).__name__}: {error}"
        raise HandnetError(f"{path}: malformed checkpoint.json ({reason})") from None
    return Checkpoint(model, epoch, history, generators, info.get("extra"), partial)


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _partial_epoch(path, fields):
    """The PartialEpoch of checkpoint.json's fields, checked: the counts whole and consistent."""
    partial = PartialEpoch(**fields)  # a TypeError names a missing or unknown field
    counts = (partial.samples, partial.batch_size, partial.batches, partial.correct,
              partial.seen, partial.skipped)  # fmt: skip
    numbers = (partial.loss_sum, partial.seconds)
    if (
        not all(_whole(count) for count in counts)
        or not all(isinstance(number, (int, float)) for number in numbers)
        or not 0 < partial.batches <= math.ceil(partial.samples / max(partial.batch_size, 1))
        or not (partial.counted is None or _whole(partial.counted))
        or not partial.correct <= (partial.seen if partial.counted is None else partial.counted)
        or not partial.seen <= partial.samples
        or not isinstance(partial.shuffle_state, dict)
    ):
        raise HandnetError(f"{path}: the partial epoch is malformed ({fields})")
    partial.loss_sum = float(partial.loss_sum)  # as fit sums it, even when JSON wrote 0
    return partial


def restore(model, path):
    """Put the checkpoint at ``path`` into ``model`` and its running fit (``model.fit_state``):
    weights, optimizer state and schedule, generator states, history, the epoch to start at and,
    from a checkpoint written inside an epoch, the partial epoch to finish first. Returns the
    Checkpoint."""
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
        _set_state(path, name, rng, checkpoint.generators[name])
    partial = checkpoint.partial_epoch
    if partial is not None:  # fit draws the epoch's order again, from where it drew it first
        _set_state(path, "shuffle", fit_state.generators["shuffle"], partial.shuffle_state)
    fit_state.history.epoch = list(checkpoint.history["epoch"])
    saved_history = checkpoint.history["history"]
    fit_state.history.history = {key: list(values) for key, values in saved_history.items()}
    fit_state.initial_epoch = max(fit_state.initial_epoch, checkpoint.epoch)
    fit_state.partial_epoch = partial
    return checkpoint


def _set_state(path, name, rng, state):
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as error:
        message = f"{path}: the state of generator {name!r} is malformed ({error})"
        raise HandnetError(message) from None


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
