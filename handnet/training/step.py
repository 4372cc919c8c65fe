"""One training step, and the running sums an epoch's logs come from."""

import math
import time

from . import checkpoint, nonfinite
from ..model import count_correct, count_positions


def train_step(model, split, x_batch, y_batch, guard, epoch, batch):
    """One step of gradient descent on x_batch (lists of (n, *input_shape)) and y_batch (labels
    (n,) or targets (n, K) per output): the gradients ∂L/∂θ (split across threads), a look for
    NaN and infinity, then θ ← optimizer update. Returns (mean loss L, predictions, the
    outputs' masks (None where an output carries none)), or None when the batch is skipped for
    not being finite (``guard``: on_nonfinite="skip")."""
    if guard:
        guard.save()
    batch_loss, predictions = split.compute_gradients(x_batch, y_batch)
    fault = nonfinite.fault(model, batch_loss)
    if fault and guard:
        guard.restore()
        if nonfinite.parameters_finite(model):  # else skipping cannot recover
            return None
    if fault:
        raise nonfinite.diverged(model, fault, batch_loss, x_batch, epoch, batch)
    model.optimizer.apply(model.trainable_variables())
    # The pass compute_gradients ran; a model with a masked output trains whole (parallel).
    return batch_loss, predictions, list(model.plan().output_masks)


class EpochSums:
    """The sums behind an epoch's logs: loss = Σ n_b·L_b / Σ n_b, accuracy = correct / seen, per
    output when the model has several. Kept in a checkpoint.PartialEpoch, so that a fit stopped
    inside the epoch can go on with them. A sequence output's accuracy is over its positions
    (N·T, or the unmasked ones, Σ m, as Keras's): then ``counted`` holds them instead of seen."""

    def __init__(self, model, partial):
        self.model = model
        self.partial = partial
        self.outputs = len(model.output_names)
        self.accuracy = [bool(m) for m in model.output_metrics]
        if self.outputs > 1 and partial.output_sums is None:
            partial.output_sums = [0.0] * self.outputs
            partial.output_correct = [0] * self.outputs
        if self.outputs > 1 and partial.output_counted is None:
            partial.output_counted = [None] * self.outputs
        self.started = time.perf_counter() - partial.seconds

    @classmethod
    def resume(cls, model, partial):
        return cls(model, partial)

    def add(self, step, y_batch):
        p = self.partial
        if step is None:
            p.skipped += 1
            return
        batch_loss, predictions, masks = step
        n = len(y_batch[0])
        seen, p.seen = p.seen, p.seen + n
        p.loss_sum += batch_loss * n
        predictions = predictions if self.outputs > 1 else [predictions]
        if self.outputs == 1:
            if self.accuracy[0]:
                p.correct += count_correct(predictions[0], y_batch[0], masks[0])
                positions = count_positions(predictions[0], masks[0])
                p.counted = _counted(p.counted, seen, positions, n)
            return
        outputs = zip(y_batch, predictions, masks)
        for k, (target, prediction, mask) in enumerate(outputs):
            p.output_sums[k] += float(self.model.output_loss(k, target, prediction, mask)) * n
            if self.accuracy[k]:
                p.output_correct[k] += count_correct(prediction, target, mask)
                positions = count_positions(prediction, mask)
                p.output_counted[k] = _counted(p.output_counted[k], seen, positions, n)

    def running(self):
        """(mean loss, accuracy or None) so far, for the progress bar."""
        p = self.partial
        accuracy = None
        if self.outputs == 1 and self.accuracy[0]:
            accuracy = _fraction(p.correct, p.seen if p.counted is None else p.counted)
        return p.loss_sum / p.seen, accuracy

    def logs(self, count_skipped):
        p = self.partial
        logs = {"loss": p.loss_sum / p.seen if p.seen else math.nan}
        if self.outputs == 1:
            if self.accuracy[0]:
                counted = p.seen if p.counted is None else p.counted
                logs["accuracy"] = _fraction(p.correct, counted) if p.seen else math.nan
        else:
            for name, total, hits, counted, wanted in zip(
                self.model.output_names,
                p.output_sums,
                p.output_correct,
                p.output_counted or [None] * self.outputs,
                self.accuracy,
            ):
                logs[f"{name}_loss"] = total / p.seen if p.seen else math.nan
                if wanted:
                    counted = p.seen if counted is None else counted
                    logs[f"{name}_accuracy"] = _fraction(hits, counted) if p.seen else math.nan
        if count_skipped:
            logs["skipped_batches"] = p.skipped
        return logs

    def partial_at(self, batches, shuffle_state):
        """The PartialEpoch of this point: ``batches`` done, for a checkpoint."""
        p = self.partial
        p.batches, p.shuffle_state = batches, shuffle_state
        p.seconds = time.perf_counter() - self.started
        return checkpoint.PartialEpoch(**vars(p))


def _counted(counted, seen, positions, n):
    """The positions an accuracy is over after a batch of n samples with ``positions``: None
    while they are the samples seen (a row per sample), else the running count."""
    if counted is None and positions == n:
        return None
    return (seen if counted is None else counted) + positions


def _fraction(hits, count):
    """hits / count; 0 when nothing counted (a sequence of padding alone), as Keras's."""
    return hits / count if count else 0.0
