"""The training engine, apart from the model: the loop (``fit``), the epochs and batches, one
step, the callbacks, checkpoints and signals, and the split of each batch across the cores.

``Model.fit`` hands over to ``handnet.training.fit``; the model imports nothing from here (the
verbs are registered with handnet.model.engine when this package is imported)."""

from ..model import INFERENCE_BATCH, INFERENCE_PART, engine
from .. import validation
from . import callbacks, checkpoint, interrupt, memory, nonfinite, parallel, progress
from .loop import fit


def inference_runner(model, n, batch_size):
    """(runner, batch size) for predict and evaluate over n samples (see Model.inference_runner)."""
    memory.keep_freed_memory()  # each pass's arrays reuse the last pass's pages
    if batch_size is not None:
        batch_size = validation.check_batch_size(batch_size, None)
        return parallel.splitter(model, batch_size=min(n, batch_size), samples=n), batch_size
    split = parallel.splitter(model, batch_size=min(n, INFERENCE_BATCH), samples=n)
    if isinstance(split, parallel.ProcessInference):
        return split, split.batch
    threads = getattr(split, "threads", 1)
    if threads < 2:  # one default pass holds n ≤ INFERENCE_BATCH: no wider one to weigh
        return split, (INFERENCE_BATCH if n <= INFERENCE_BATCH else
                       parallel.whole_pass(model, INFERENCE_BATCH))
    return split, parallel.inference_part(model, INFERENCE_PART) * threads


engine.provide("fit", fit)
engine.provide("inference_runner", inference_runner)

__all__ = [
    "callbacks", "checkpoint", "fit", "inference_runner", "interrupt", "memory", "nonfinite",
    "parallel", "progress",
]
