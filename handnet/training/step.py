"""One training step, and the running sums an epoch's logs come from."""

import math
import time

from . import checkpoint, nonfinite
from ..model import count_correct


def train_step(model, split, x_batch, y_batch, guard, epoch, batch):
    """One step of gradient descent on x_batch (lists of (n, *input_shape)) and y_batch (labels
    (n,) or targets (n, K) per output): the gradients ∂L/∂θ (split across threads), a look for
    NaN and infinity, then θ ← optimizer update. Returns (mean loss L, predictions), or None
    when the batch is skipped for not being finite (``guard``: on_nonfinite="skip")."""
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
    return batch_loss, predictions


class EpochSums:
    """The sums behind an epoch's logs: loss = Σ n_b·L_b / Σ n_b, accuracy = correct / seen, per
    output when the model has several. Kept in a checkpoint.PartialEpoch, so that a fit stopped
    inside the epoch can go on with them."""

    def __init__(self, model, partial):
        self.model = model
        self.partial = partial
        self.outputs = len(model.output_names)
        self.accuracy = [bool(m) for m in model.output_metrics]
        if self.outputs > 1 and partial.output_sums is None:
            partial.output_sums = [0.0] * self.outputs
            partial.output_correct = [0] * self.outputs
        self.started = time.perf_counter() - partial.seconds

    @classmethod
    def resume(cls, model, partial):
        return cls(model, partial)

    def add(self, step, y_batch):
        p = self.partial
        if step is None:
            p.skipped += 1
            return
        batch_loss, predictions = step
        n = len(y_batch[0])
        p.loss_sum += batch_loss * n
        p.seen += n
        predictions = predictions if self.outputs > 1 else [predictions]
        if self.outputs == 1:
            if self.accuracy[0]:
                p.correct += count_correct(predictions[0], y_batch[0])
            return
        outputs = zip(self.model.losses, y_batch, predictions)
        for k, (loss, target, prediction) in enumerate(outputs):
            p.output_sums[k] += float(loss(target, prediction)) * n
            if self.accuracy[k]:
                p.output_correct[k] += count_correct(prediction, target)

    def running(self):
        """(mean loss, accuracy or None) so far, for the progress bar."""
        p = self.partial
        accuracy = p.correct / p.seen if self.outputs == 1 and self.accuracy[0] else None
        return p.loss_sum / p.seen, accuracy

    def logs(self, count_skipped):
        p = self.partial
        logs = {"loss": p.loss_sum / p.seen if p.seen else math.nan}
        if self.outputs == 1:
            if self.accuracy[0]:
                logs["accuracy"] = p.correct / p.seen if p.seen else math.nan
        else:
            for name, total, hits, wanted in zip(
                self.model.output_names, p.output_sums, p.output_correct, self.accuracy
            ):
                logs[f"{name}_loss"] = total / p.seen if p.seen else math.nan
                if wanted:
                    logs[f"{name}_accuracy"] = hits / p.seen if p.seen else math.nan
        if count_skipped:
            logs["skipped_batches"] = p.skipped
        return logs

    def partial_at(self, batches, shuffle_state):
        """The PartialEpoch of this point: ``batches`` done, for a checkpoint."""
        p = self.partial
        p.batches, p.shuffle_state = batches, shuffle_state
        p.seconds = time.perf_counter() - self.started
        return checkpoint.PartialEpoch(**vars(p))
