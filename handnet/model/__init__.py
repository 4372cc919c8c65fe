"""The model: a graph of layers (``Model``), the chain special case (``Sequential``), and the
execution plan that runs both. Training lives in handnet.training, files in handnet.saving."""

from .functional import (
    INFERENCE_BATCH,
    INFERENCE_PART,
    Model,
    count_correct,
    count_positions,
    summary_text,
)
from .sequential import Sequential

__all__ = [
    "INFERENCE_BATCH",
    "INFERENCE_PART",
    "Model",
    "Sequential",
    "count_correct",
    "count_positions",
    "summary_text",
]
