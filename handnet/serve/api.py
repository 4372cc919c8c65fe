"""The JSON API of ``handnet serve`` as pure functions: request body → 28×28 digit → prediction.

    POST /api/predict   {"image": "data:image/png;base64,…"}    a drawing, photo or scan, any
                                                                size, dark or light ink
                        {"pixels": [[0..255] × 28] × 28}        already MNIST-style: white ink
                                                                on black, used as it is
                        optional "model": an id from GET /api/models
    → {"model", "digit", "probabilities": [10], "input": 28×28 in [0, 1],
       "activations": {layer name: summary}, "milliseconds"}
       and, for a transformer (MultiHeadAttention layers), "attention": where it looks

An "image" goes through handnet.preprocess.read_digit, the preparation ``handnet predict`` uses;
"input" in the answer is its result, exactly what the network is shown. Bad requests raise
RequestError, which carries the HTTP status the server answers with.
"""

import base64
import binascii
import json
import time

import math

import numpy as np

from ..errors import HandnetError
from ..layers import Conv2D, Dense
from ..plots.attention import attention_weights, rollout
from ..preprocess import prepare_images, read_digit

#: Largest request body read; a base64 photo of a few megabytes fits.
MAX_BODY_BYTES = 8 * 2**20
#: Largest image decoded, checked in the file's header before any pixel is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096
SIZE = 28
#: A convolution layer's summary shows its first channels (the same ones for every drawing, so
#: one filter can be watched as the drawing changes), whole: a 28×28 input gives maps of at
#: most 28×28, and 0..255 integers keep them short in JSON.
MAX_CHANNELS_SHOWN = 16
#: A dense layer's summary holds at most this many of its units.
MAX_UNITS_SHOWN = 256
#: Attention weights are sent with this many decimals (a 49-token map's weights are ~0.02).
ATTENTION_DECIMALS = 6


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def body_length(content_type, content_length):
    """The number of body bytes to read, from the request's headers, checked before reading."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RequestError(415, f"expected Content-Type application/json, got {content_type!r}")
    if content_length is None:
        raise RequestError(411, "a Content-Length header is required")
    try:
        length = int(content_length)
    except ValueError:
        raise RequestError(400, f"Content-Length is not a number: {content_length!r}") from None
    if length < 0:
        raise RequestError(400, f"Content-Length is negative: {length}")
    if length > MAX_BODY_BYTES:
        raise RequestError(
            413, f"the body has {length:,} bytes; the server reads at most {MAX_BODY_BYTES:,}"
        )
    return length


def parse_body(body):
    """Bytes of a JSON object -> dict."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, f"the body is not valid JSON ({error})") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"expected a JSON object, got {type(payload).__name__}")
    return payload


def model_id(payload):
    """The "model" asked for, or None for the server's default."""
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, f'"model" must be a string (an id), got {type(model).__name__}')
    return model


def digit_from_payload(payload):
    """{"image": data URL or base64} or {"pixels": 28×28} -> float32 (28, 28) in [0, 1]."""
    if ("image" in payload) == ("pixels" in payload):
        raise RequestError(400, 'expected exactly one of "image" and "pixels"')
    if "pixels" in payload:
        return _pixels(payload["pixels"])
    try:
        return read_digit(_image_bytes(payload["image"]), max_pixels=MAX_IMAGE_PIXELS)
    except HandnetError as error:  # not an image, too large, blank
        raise RequestError(400, str(error)) from None


def _image_bytes(image):
    if not isinstance(image, str):
        raise RequestError(400, f'"image" must be a string, got {type(image).__name__}')
    if image.startswith("data:"):
        header, comma, image = image.partition(",")
        if not comma or not header.endswith(";base64"):
            raise RequestError(400, '"image" must be a base64 data URL: data:image/png;base64,…')
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, '"image" is not valid base64') from None


def _pixels(pixels):
    rows_ok = isinstance(pixels, list) and len(pixels) == SIZE
    if not rows_ok or not all(isinstance(row, list) and len(row) == SIZE for row in pixels):
        raise RequestError(400, '"pixels" must be 28 rows of 28 numbers')
    # bool is an int in Python, and json gives true/false as bools: refuse them by exact type.
    if not all(type(value) in (int, float) for row in pixels for value in row):
        raise RequestError(400, '"pixels" must hold numbers only')
    array = np.array(pixels, dtype=np.float32)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise RequestError(400, '"pixels" must lie in 0..255')
    return array / 255


def predict(served, digit):
    """Run ``served``'s model on ``digit`` (28, 28), layer by layer, and answer in JSON-ready form.

    The layers run one at a time, in the graph's order (``Model.trace``, not the fused steps of
    the execution plan), so that each layer's output can be summarized; the numbers are the
    same. The answer is the model's (first) output. A model with MultiHeadAttention layers
    also gets its attention maps (``summarize_attention``).
    """
    started = time.perf_counter()
    model = served.model
    inputs = prepare_images(digit[None], model.input_shape).astype(model.dtype, copy=False)
    activations = {}
    answer = model.output_tensors[0]
    attention = None
    with served.lock:
        x = inputs
        trace = list(model.trace(inputs))  # kept for the attention maps
        for node, output in trace:
            outputs = output if len(node.outputs) > 1 else [output]
            for tensor, value in zip(node.outputs, outputs):
                if tensor is answer:
                    x = value
            summary = summarize(node.layer, outputs[0][0])
            if summary is not None:
                activations[node.layer.name] = summary
        if served.has_attention:
            attention = summarize_attention(model, inputs, trace)
    probabilities = x[0].astype(float)
    result = {
        "model": served.id,
        "digit": int(probabilities.argmax()),
        "probabilities": [round(p, 6) for p in probabilities.tolist()],
        "input": np.round(digit, 3).tolist(),
        "activations": activations,
    }
    if attention is not None:
        result["attention"] = attention
    result["milliseconds"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def summarize_attention(model, x, trace=None):
    """Where a transformer looks, for one image x (1, H, W, C): JSON-ready maps over its grid
    of patches, or None when its attention is not over a square grid of tokens. ``trace``:
    ``model.trace(x)``'s (node, output) pairs, when the caller has run it already.

    From handnet.plots.attention, as ``--plots`` draws them: each MultiHeadAttention layer's
    weights P (heads, T, T) averaged over the queries, a_h[j] = 1/T Σ_i P_h[i, j] (the model
    reads the mean token, so the mean query is the one that matters), and the rollout over
    every layer, r[j] = 1/T Σ_i R[i, j] with R = Â_L ⋯ Â_1 (Abnar & Zuidema, 2020). Each map
    sums to 1 over the T = S² tokens and is sent as an S × S grid, patch (row, column) of the
    image, for the page to lay over the digit:

        {"grid": [S, S], "layers": [{"name", "heads": (heads, S, S)}, …], "rollout": (S, S)}
    """
    weights = attention_weights(model, x, trace)
    shapes = {p.shape[2:] for _, p in weights}
    tokens = next(iter(shapes))[0] if len(shapes) == 1 else 0
    side = math.isqrt(tokens)
    # Self-attention over one grid in every layer: cross-attention, or tokens that are no
    # square of patches, have no picture over the digit.
    if len(shapes) != 1 or tokens != next(iter(shapes))[1] or side * side != tokens:
        return None

    def grid(values):
        return np.round(values.reshape(*values.shape[:-1], side, side).astype(float),
                        ATTENTION_DECIMALS).tolist()

    return {
        "grid": [side, side],
        "layers": [{"name": name, "heads": grid(p[0].mean(axis=1))} for name, p in weights],
        "rollout": grid(rollout([p for _, p in weights])[0].mean(axis=0)),
    }


def summarize(layer, output):
    """A compact, JSON-ready view of one sample's ``output`` of ``layer``; None for layers
    that are not shown.

    Conv2D (H, W, C): {"maps": the first ≤16 channels (≤16, H, W), scaled to 0..255 by the
    largest value shown (negative values show as 0), "max": that value}.
    Dense (U,): {"values": the first ≤256 activations}.
    """
    if isinstance(layer, Conv2D) and output.ndim == 3:
        channels = min(output.shape[-1], MAX_CHANNELS_SHOWN)
        maps = np.maximum(np.moveaxis(output[..., :channels], -1, 0), 0).astype(np.float32)
        peak = float(maps.max())
        scaled = np.round(maps * (255 / peak)) if peak > 0 else np.zeros_like(maps)
        return {
            "type": "Conv2D",
            "shape": list(output.shape),
            "maps": scaled.astype(np.uint8).tolist(),
            "max": round(peak, 4),
        }
    if isinstance(layer, Dense) and output.ndim == 1:
        return {
            "type": "Dense",
            "shape": list(output.shape),
            "activation": type(layer.activation).__name__.lower(),
            "values": np.round(output[:MAX_UNITS_SHOWN].astype(float), 4).tolist(),
        }
    return None
