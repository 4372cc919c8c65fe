"""fit: the training loop, as the algorithm reads.

    for each epoch:
        for each mini-batch (x_b, y_b) of a shuffled order:
            forward, loss, backward      (model.compute_gradients, split across cores)
            update                       (optimizer.apply)
            callbacks.on_batch_end
        evaluate on the validation data; callbacks.on_epoch_end (History records the logs)

Everything around it has its own module: the data and batches (epochs), one step (step), the
running sums of an epoch (EpochSums), the callbacks (callbacks.CallbackList), checkpoints and
signals (checkpoint, interrupt), the split across cores (parallel) and the progress bar.
"""

import time

import numpy as np

from . import callbacks as callbacks_module
from . import checkpoint, interrupt, memory, nonfinite, parallel
from ..errors import HandnetError
from .progress import EpochProgress
from .epochs import FitData, batches, check_batch_size, epoch_order
from .step import EpochSums, train_step


def fit(
    model,
    x,
    y,
    epochs=1,
    batch_size=32,
    validation_data=None,
    validation_split=0.0,
    shuffle=True,
    callbacks=None,
    verbose=1,
    seed=None,
    initial_epoch=0,
    threads=None,
    augment=None,
    on_nonfinite="raise",
):
    """Train ``model`` for ``epochs`` passes over (x, y) in shuffled mini-batches; a History.

    x (N, *input_shape), y (N,) integer labels (or (N, K) for categorical/mse losses); lists or
    dicts by name for several inputs and outputs.
    ``validation_split`` holds out the *last* fraction of the data before shuffling, as Keras.
    ``seed`` fixes the shuffling and dropout masks: same seed (and same ``threads``), same run.
    ``threads`` (default: as many as NumPy's BLAS uses) splits each batch across threads,
    one core each (handnet.training.parallel); 1 runs each batch whole (BLAS keeps its own threads).
    ``augment(x_batch, rng) -> x_batch'`` (e.g. handnet.augment.RandomAffine) transforms each
    training batch, drawing from a generator seeded by ``seed``; validation data stays as it is.
    A step whose loss or gradients are not finite stops training with a TrainingDivergedError
    (``on_nonfinite="raise"``) or is skipped (``"skip"``; logs count ``skipped_batches``).
    While it runs, ``model.fit_state`` (handnet.training.checkpoint.FitState) holds its generators
    and history, so a callback (callbacks.BackupAndRestore) can save the run and resume it. With
    such a backup, Ctrl-C or SIGTERM ends the step under way, backs that point up and raises
    handnet.training.interrupt.TrainingInterrupted (a KeyboardInterrupt); a second one stops at
    once.
    """
    model.require_compiled()
    nonfinite.check_mode(on_nonfinite)
    if augment is not None and (not callable(augment) or len(model.input_names) > 1):
        raise HandnetError(
            f"augment must be callable as augment(x, rng) on a one-input model, got {augment!r}"
        )
    data = FitData.prepare(model, x, y, validation_data, validation_split)
    batch_size = check_batch_size(batch_size)
    memory.keep_freed_memory()  # each step's arrays reuse the last step's pages
    rng = np.random.default_rng(seed)
    seed_layers(model, rng)
    split = parallel.splitter(model, threads, rng.spawn(1)[0], batch_size, verbose)
    augment_rng = rng.spawn(1)[0]  # spawned last: runs without augment draw as before
    history = callbacks_module.History()
    generators = checkpoint.fit_generators(model, rng, split, augment_rng, augment)
    model.fit_state = checkpoint.FitState(generators, initial_epoch, history)
    guard = nonfinite.StateGuard(model) if on_nonfinite == "skip" else None
    # A masked output's loss is a mean per batch: validated in the training batches, as Keras.
    masked = data.validation is not None and any(model.masked_outputs(data.validation[0]))
    validation_batch = batch_size if masked else None
    callback_list = callbacks_module.CallbackList([history, *(callbacks or [])], model)
    callback_list.on_train_begin()
    model.stop_training = False

    # With a backup, Ctrl-C and SIGTERM wait for the step under way (handnet.training.interrupt).
    with interrupt.deferred(enabled=bool(callback_list.backups), announce=verbose > 0) as stop:
        for epoch in range(model.fit_state.initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            shuffle_state = rng.bit_generator.state  # to draw this order again on resuming
            order = epoch_order(rng, data.samples, shuffle)
            progress = EpochProgress(epoch, epochs, data.samples, verbose)
            # A fit resumed inside this epoch goes on from its sums after the batches done.
            sums = EpochSums.resume(model, model.fit_state.resume_epoch(data.samples, batch_size))
            with split:
                for batch, index in batches(order, batch_size, sums.partial.batches):
                    x_batch = [a[index] for a in data.x]
                    if augment is not None:
                        x_batch = [augment(x_batch[0], augment_rng)]
                    y_batch = [a[index] for a in data.y]
                    step = train_step(model, split, x_batch, y_batch, guard, epoch, batch)
                    sums.add(step, y_batch)
                    if step is not None:
                        progress.update(len(index), *sums.running())
                        callback_list.on_batch_end(batch, {"loss": step[0]})
                    if stop.requested:  # the step is complete: back it up and stop
                        model.fit_state.partial_epoch = sums.partial_at(batch + 1, shuffle_state)
                        raise callback_list.interrupted(stop, epoch, batch + 1)
            logs = sums.logs(on_nonfinite == "skip")
            if data.validation is not None:
                validation = model.evaluate(*data.validation, batch_size=validation_batch)
                logs.update({f"val_{k}": v for k, v in validation.items()})
            logs["learning_rate"] = float(model.optimizer.learning_rate)
            logs["seconds"] = time.perf_counter() - sums.started
            progress.close(logs)
            callback_list.on_epoch_end(epoch, logs)
            if stop.requested:  # came after the last step: the epoch's end is the point
                raise callback_list.interrupted(stop, epoch + 1, 0)
            if model.stop_training:
                break
    callback_list.on_train_end()
    model.history = history
    return history


def seed_layers(model, rng):
    """Give every layer that draws (Dropout's masks) a child of ``rng``, unless it has a seed of
    its own: one child per layer of the model, in order (a nested model's layers share its)."""
    for layer, child in zip(model.layers, rng.spawn(len(model.layers))):
        if hasattr(layer, "flat_layers"):
            seed_layers(layer, child)
        elif hasattr(layer, "rng") and getattr(layer, "seed", None) is None:
            layer.rng = child
