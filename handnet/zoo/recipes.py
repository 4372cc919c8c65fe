"""Training recipes: the settings a network trains with, and the one way handnet trains one.

    recipe = architectures.get("cnn").training        # a TrainingRecipe
    run = recipes.train(recipe, (x_train, y_train), model, validation_split=0.1, seed=0)
    run.history.history["val_accuracy"], run.images   # {"train": 54000, "validation": 6000}

``train`` is what ``handnet train`` and ``handnet experiment`` both call (and ``handnet serve``,
through ``handnet train``): it counts the split as ``Model.fit`` does
(handnet.training.epochs.split_point), sizes the schedule to the steps that will run, builds
the optimizer, the loss and the augmentation, and fits.

A recipe's ``task`` says what the network learns:

    classify     labels y (N,) -> class probabilities; sparse categorical cross-entropy, accuracy
    reconstruct  the images themselves are the targets (an autoencoder): mean squared error
                 L = 1/(N·P) Σ (x̂ - x)² over the P pixels, and no accuracy (there are no classes)
"""

import math
import time
from dataclasses import dataclass

from .. import augment, losses, optimizers, schedules
from ..errors import HandnetError, TrainingDivergedError
from ..preprocess import prepare_images
from ..training.epochs import split_point

#: The first learning rate to try with each optimizer when a recipe names another one.
DEFAULT_LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.01,
    "adam": 1e-3,
    "adamw": 1e-3,
    "rmsprop": 1e-3,
}
OPTIMIZER_NAMES = tuple(DEFAULT_LEARNING_RATES)
SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine", "onecycle")
TASKS = ("classify", "reconstruct")
#: SGD's momentum μ for the "momentum" optimizer (the value nearly every paper uses).
MOMENTUM = 0.9


@dataclass(frozen=True)
class TrainingRecipe:
    """Default training settings; every field can be overridden from the command line."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_steps: int = 0
    epochs: int = 20
    batch_size: int = 128
    #: handnet.augment.RandomAffine arguments, e.g. {"rotation": 10, "shift": 0.1}; None: off
    augment: dict | None = None
    label_smoothing: float = 0.0
    #: "classify" (labels, cross-entropy) or "reconstruct" (the inputs are the targets, MSE)
    task: str = "classify"
    #: Adam's and AdamW's (β₁, β₂); None: Keras's (0.9, 0.999). Shorter memories, such as
    #: (0.7, 0.9), follow a one-epoch schedule faster (the GPU speed runs' choice)
    betas: tuple | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise HandnetError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if self.task == "reconstruct":
            # fit's augmenter moves the inputs only: the targets would stay where they were, and
            # the network would learn to undo the warp instead of to reproduce its input.
            if self.augment is not None:
                raise HandnetError(
                    "augmentation is refused for a reconstruction (task 'reconstruct'): it "
                    "would warp the inputs but not their targets, the same images; train "
                    "without --augment"
                )
            if self.label_smoothing:
                raise HandnetError(
                    "label smoothing is for classes; a reconstruction (task 'reconstruct') "
                    f"has none, got label_smoothing={self.label_smoothing}"
                )


def make_optimizer(name, learning_rate, schedule, total_steps, warmup_steps=0, betas=None):
    """An optimizer whose learning rate follows ``schedule`` over ``total_steps`` updates
    (``betas``: Adam's and AdamW's (β₁, β₂), None for their defaults; other rules have none).

    constant     lr
    step         lr, then lr/10 after a third of the steps, lr/100 after two thirds
    exponential  lr · 0.01^(t / total_steps): smoothly down to 1 % of lr
    cosine       half a cosine from lr to 0; with ``warmup_steps``, a linear rise from 0 first
    onecycle     one cycle (schedules.OneCycle): up from lr/25 to lr over the first 30 % of the
                 steps (or ``warmup_steps``), then down to lr/250000, both along half a cosine
    """
    if name not in OPTIMIZER_NAMES:
        raise HandnetError(
            f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZER_NAMES)}"
        )
    if not learning_rate > 0:
        raise HandnetError(f"the learning rate must be positive, got {learning_rate}")
    total_steps = max(int(total_steps), 1)
    if warmup_steps and schedule not in ("cosine", "onecycle"):
        raise HandnetError("warm-up steps work with the cosine and onecycle schedules only")
    if not 0 <= warmup_steps < total_steps:
        raise HandnetError(
            f"warm-up steps must be in [0, {total_steps}) (the training steps), got {warmup_steps}"
        )
    if schedule == "constant":
        rate = schedules.Constant(learning_rate)
    elif schedule == "step":
        rate = schedules.StepDecay(learning_rate, step_size=math.ceil(total_steps / 3), gamma=0.1)
    elif schedule == "exponential":
        rate = schedules.ExponentialDecay(learning_rate, decay_steps=total_steps, decay_rate=0.01)
    elif schedule == "cosine":
        rate = schedules.CosineDecay(
            0.0 if warmup_steps else learning_rate,
            decay_steps=total_steps - warmup_steps,
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    elif schedule == "onecycle":
        pct_start = warmup_steps / total_steps if warmup_steps else 0.3
        rate = schedules.OneCycle(learning_rate, total_steps, pct_start=pct_start)
    else:
        raise HandnetError(
            f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULE_NAMES)}"
        )
    if name == "momentum":
        return optimizers.SGD(rate, momentum=MOMENTUM)
    if betas is not None and name in ("adam", "adamw"):
        beta_1, beta_2 = betas
        return optimizers.OPTIMIZERS[name](rate, beta_1=beta_1, beta_2=beta_2)
    return optimizers.OPTIMIZERS[name](rate)


@dataclass
class Run:
    """What ``train`` did: the model, its History (None if training diverged), the steps of an
    epoch, the images that trained and validated, and the seconds fit took."""

    model: object
    history: object
    steps_per_epoch: int
    images: dict
    train_seconds: float
    #: the TrainingDivergedError that ended the fit, with ``keep_divergence``; else None
    diverged: TrainingDivergedError | None = None


def split_counts(samples, validation_split):
    """{"train": n, "validation": m} as ``Model.fit`` cuts ``samples`` (the last m validate)."""
    if not 0 <= validation_split < 1:
        raise HandnetError(f"the validation split must be in [0, 1), got {validation_split}")
    trained = split_point(samples, validation_split) if validation_split else samples
    return {"train": trained, "validation": samples - trained}


def train(
    recipe,
    data,
    model,
    *,
    validation_split=0.1,
    seed=None,
    callbacks=None,
    verbose=0,
    threads=None,
    on_nonfinite="raise",
    keep_divergence=False,
):
    """Compile ``model`` (built) as ``recipe`` says and fit it on ``data``; a Run.

    data             (images, labels): uint8 images (N, 28, 28) in 0..255 (or floats in [0, 1]),
                     put in the model's input layout here (``prepare_images``); augmentation
                     sees them as images whatever that layout. With ``recipe.task``
                     "reconstruct" the labels are not trained on: the targets are the images
    validation_split the last fraction held out to validate each epoch (0: none)
    keep_divergence  a loss or gradient gone non-finite ends training and is kept in
                     ``run.diverged`` (the history then lives in the caller's callbacks)
    seed, callbacks, verbose, threads, on_nonfinite   passed to ``Model.fit``
    """
    images, labels = data
    counts = split_counts(len(images), validation_split)
    steps_per_epoch = math.ceil(counts["train"] / recipe.batch_size)
    optimizer = make_optimizer(
        recipe.optimizer,
        recipe.learning_rate,
        recipe.schedule,
        total_steps=steps_per_epoch * recipe.epochs,
        warmup_steps=recipe.warmup_steps,
        betas=recipe.betas,
    )
    x = prepare_images(images, model.input_shape)
    if recipe.task == "reconstruct":
        if tuple(model.output_shape) != tuple(model.input_shape):
            raise HandnetError(
                f"a reconstruction needs outputs shaped as the inputs, got input "
                f"{tuple(model.input_shape)} -> output {tuple(model.output_shape)}"
            )
        model.compile(optimizer, loss=losses.MeanSquaredError(), metrics=[])
        targets = x
    else:
        loss = losses.SparseCategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        model.compile(optimizer, loss=loss, metrics=["accuracy"])
        targets = labels
    augmenter = None
    if recipe.augment is not None:
        augmenter = augment.RandomAffine(**recipe.augment, image_shape=images.shape[1:])
    history, diverged = None, None
    started = time.perf_counter()
    try:
        history = model.fit(
            x,
            targets,
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            validation_split=validation_split,
            verbose=verbose,
            seed=seed,
            augment=augmenter,
            callbacks=callbacks,
            threads=threads,
            on_nonfinite=on_nonfinite,
        )
    except TrainingDivergedError as error:
        if not keep_divergence:
            raise
        diverged = error
    seconds = time.perf_counter() - started
    return Run(model, history, steps_per_epoch, counts, seconds, diverged)
