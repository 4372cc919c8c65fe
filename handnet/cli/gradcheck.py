"""handnet gradcheck: every layer type's backward pass, and a small model's, against finite
differences."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import layers, regularizers
from ..gradcheck import DEFAULT_TOLERANCE, gradcheck
from ..zoo import architectures
from .common import add_json_argument, write_json


def register(subparsers):
    check = subparsers.add_parser(
        "gradcheck", help="check every layer type's backward pass with finite differences"
    )
    check.add_argument(
        "--model",
        default="mlp",
        metavar="ARCH",
        help="architecture whose small copy (same layers, few weights) is checked end to end "
        "(default: mlp)",
    )
    add_json_argument(check)
    check.set_defaults(command=gradcheck_command)


@dataclass(frozen=True)
class LayerCheck:
    """How to check one layer type: a small instance, the per-sample input shape (a list of
    shapes for a layer that takes several inputs, the merge layers), and whether to run it in
    training mode (dropout masks, batch statistics)."""

    make: Callable[[], layers.Layer]
    input_shape: tuple | list
    training: bool = False
    inputs: Callable[[], np.ndarray] | None = None  # x itself, when N(0, 1) will not do


_L2 = regularizers.L1L2(l2=0.01)  # so that the checks cover the penalty's gradient too

#: One entry per layer type in handnet.layers.LAYERS (small sizes: the check costs two forward
#: passes per weight and input entry); a type missing here is reported as unchecked.
LAYER_CHECKS = {
    "Activation": LayerCheck(lambda: layers.Activation("softmax"), (5,)),
    "AveragePooling2D": LayerCheck(
        lambda: layers.AveragePooling2D(2, strides=1, padding="same"), (4, 4, 2)
    ),
    "BatchNormalization": LayerCheck(lambda: layers.BatchNormalization(), (3, 3, 2), training=True),
    "Bidirectional": LayerCheck(
        lambda: layers.Bidirectional(
            layers.LSTM(2, return_sequences=True, kernel_regularizer=_L2), merge_mode="mul"
        ),
        (3, 2),
    ),
    "Conv2D": LayerCheck(
        lambda: layers.Conv2D(
            3, 3, strides=2, padding="same", activation="tanh", kernel_regularizer=_L2
        ),
        (5, 5, 2),
    ),
    "Dense": LayerCheck(lambda: layers.Dense(4, activation="tanh", kernel_regularizer=_L2), (3,)),
    "Dropout": LayerCheck(lambda: layers.Dropout(0.5), (6,), training=True),
    "Flatten": LayerCheck(lambda: layers.Flatten(), (2, 3, 2)),
    "GRU": LayerCheck(lambda: layers.GRU(3, return_sequences=True, kernel_regularizer=_L2), (3, 2)),
    "GlobalAveragePooling2D": LayerCheck(lambda: layers.GlobalAveragePooling2D(), (3, 3, 2)),
    "GlobalMaxPooling2D": LayerCheck(lambda: layers.GlobalMaxPooling2D(), (3, 3, 2)),
    "Input": LayerCheck(lambda: layers.Input((4,)), (4,)),
    "LSTM": LayerCheck(lambda: layers.LSTM(3, recurrent_regularizer=_L2), (3, 2)),
    "LeakyReLU": LayerCheck(lambda: layers.LeakyReLU(0.2), (6,)),
    "MaxPooling2D": LayerCheck(lambda: layers.MaxPooling2D(2), (4, 4, 2)),
    "ReLU": LayerCheck(lambda: layers.ReLU(max_value=1.0, negative_slope=0.1), (6,)),
    "Rescaling": LayerCheck(lambda: layers.Rescaling(0.5, offset=0.1), (4,)),
    "Reshape": LayerCheck(lambda: layers.Reshape((3, 4)), (12,)),
    "SimpleRNN": LayerCheck(lambda: layers.SimpleRNN(3, return_sequences=True), (3, 2)),
    "Softmax": LayerCheck(lambda: layers.Softmax(), (5,)),
    "ZeroPadding2D": LayerCheck(lambda: layers.ZeroPadding2D(((1, 0), (2, 1))), (3, 3, 2)),
    # The merge layers take a list: each ∂L/∂x_k is checked, with broadcasting where it applies
    # (the gradient of a broadcast input is summed over the axes it was stretched along).
    "Add": LayerCheck(lambda: layers.Add(), [(2, 3), (2, 3), (1, 3)]),
    "Average": LayerCheck(lambda: layers.Average(), [(2, 3), (3,)]),
    "Concatenate": LayerCheck(lambda: layers.Concatenate(axis=1), [(2, 3), (1, 3)]),
    "Dot": LayerCheck(lambda: layers.Dot(axes=2, normalize=True), [(2, 3), (4, 3)]),
    "Maximum": LayerCheck(lambda: layers.Maximum(), [(2, 3), (2, 3), (2, 3)]),
    "Minimum": LayerCheck(lambda: layers.Minimum(), [(2, 3), (2, 1)]),
    "Multiply": LayerCheck(lambda: layers.Multiply(), [(2, 3), (2, 3), (3,)]),
    "Subtract": LayerCheck(lambda: layers.Subtract(), [(4,), (4,)]),
    # -- the Keras layer catalogue (branch cat1) --
    "GroupNormalization": LayerCheck(lambda: layers.GroupNormalization(2), (3, 4)),
    "LayerNormalization": LayerCheck(lambda: layers.LayerNormalization(axis=[1, 2]), (2, 3)),
    "UnitNormalization": LayerCheck(lambda: layers.UnitNormalization(), (5,)),
    "ELU": LayerCheck(lambda: layers.ELU(0.7), (6,)),
    "PReLU": LayerCheck(
        lambda: layers.PReLU(lambda shape, rng, dtype: rng.uniform(0.1, 0.5, shape).astype(dtype),
                             shared_axes=[1]),
        (3, 2),
    ),
    "Cropping1D": LayerCheck(lambda: layers.Cropping1D((1, 2)), (5, 2)),
    "Cropping2D": LayerCheck(lambda: layers.Cropping2D(((1, 0), (0, 2))), (3, 4, 2)),
    "Identity": LayerCheck(lambda: layers.Identity(), (4,)),
    "Permute": LayerCheck(lambda: layers.Permute((3, 1, 2)), (2, 3, 2)),
    "RepeatVector": LayerCheck(lambda: layers.RepeatVector(3), (4,)),
    "UpSampling1D": LayerCheck(lambda: layers.UpSampling1D(3), (3, 2)),
    "UpSampling2D": LayerCheck(
        lambda: layers.UpSampling2D((2, 3), interpolation="bilinear"), (3, 2, 2)
    ),
    "ZeroPadding1D": LayerCheck(lambda: layers.ZeroPadding1D((2, 1)), (3, 2)),
    "Resizing": LayerCheck(lambda: layers.Resizing(5, 3, crop_to_aspect_ratio=True), (4, 5, 2)),
    "CenterCrop": LayerCheck(lambda: layers.CenterCrop(2, 3), (4, 4, 2)),
    "Normalization": LayerCheck(
        lambda: layers.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0]), (2, 3)
    ),
    # Embedding: integer indices (no input row), two of them repeated, so that the check
    # covers the scatter-add. Masking: the check nudges x, which would flip a masked step's
    # mask, so it runs on real steps; tests/layers/test_masking.py checks the masked ones.
    "Embedding": LayerCheck(
        lambda: layers.Embedding(5, 3, embeddings_regularizer=_L2),
        (4,),
        inputs=lambda: np.array([[1, 0, 3, 1], [4, 4, 2, 0], [2, 3, 1, 1]]),
    ),
    "Masking": LayerCheck(lambda: layers.Masking(0.0), (4, 2)),
    # Attention: [query, value] (and a key for Attention). MultiHeadAttention without biases
    # here: its key bias has gradient 0 exactly (the softmax ignores a constant added to a row
    # of scores), so its relative error is round-off over round-off; tests/layers/
    # test_attention.py checks the biases and the masks.
    "EinsumDense": LayerCheck(
        lambda: layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de",
                                   activation="tanh", kernel_regularizer=_L2),
        (3, 4),
    ),
    "MultiHeadAttention": LayerCheck(
        lambda: layers.MultiHeadAttention(2, 3, value_dim=2, dropout=0.3, use_bias=False,
                                          kernel_regularizer=_L2),
        [(3, 4), (5, 2)],
        training=True,
    ),
    "Attention": LayerCheck(
        lambda: layers.Attention(use_scale=True, score_mode="concat", dropout=0.3),
        [(3, 4), (5, 2), (5, 4)],
        training=True,
    ),
    "AdditiveAttention": LayerCheck(lambda: layers.AdditiveAttention(), [(3, 4), (5, 4)]),
}


TABLE_ROW = "{:<34} {:<32} {:<14} {:>11} {:>11}  {}"


def gradcheck_command(args):
    architecture = architectures.get(args.model.removesuffix("-small"))
    checks = []
    for name in sorted(layers.LAYERS):
        if name in LAYER_CHECKS:
            check = LAYER_CHECKS[name]
            x = None if check.inputs is None else check.inputs()
            report = gradcheck(
                check.make(), x, input_shape=check.input_shape, training=check.training
            )
            checks.append((f"layer {name}", report, False))
    unchecked = sorted(set(layers.LAYERS) - set(LAYER_CHECKS))

    model = architectures.build(architecture.name, seed=0, small=True)
    rng = np.random.default_rng(0)
    if architecture.training.task == "reconstruct":
        # An autoencoder's targets are its inputs: pixels in [0, 1], through the MSE.
        model.compile("sgd", "mean_squared_error", [])
        x = rng.random((4, *model.input_shape))
        y = x
    else:
        model.compile("sgd", "sparse_categorical_crossentropy")
        x = rng.standard_normal((4, *model.input_shape))
        y = rng.integers(0, model.output_shape[-1], size=4)
    # With targets the check covers the loss too (for a classifier: the fused softmax +
    # cross-entropy gradient).
    report = gradcheck(model, x, y, training=True)
    checks.append((f"model {architecture.name} (small) + loss", report, True))

    _print_table(checks)
    failed = [label for label, report, _ in checks if not report.passed]
    worst = max(report.worst for _, report, _ in checks)
    if unchecked:
        print(f"not checked (no entry in handnet.cli.LAYER_CHECKS): {', '.join(unchecked)}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (worst relative error {worst:.2e})")
    else:
        print(f"all {len(checks)} checks passed (worst relative error {worst:.2e})")
    if args.json:
        write_json(
            args.json,
            {
                "passed": not failed,
                "tolerance": DEFAULT_TOLERANCE,
                "checks": [{"name": label, **report.as_dict()} for label, report, _ in checks],
                "unchecked": unchecked,
            },
        )
    return 1 if failed else 0


def _print_table(checks):
    """One row per checked quantity of each (label, report, show_layer) check."""
    print(
        "Gradient check: backward passes against central differences in float64 "
        f"(tolerance {DEFAULT_TOLERANCE:.0e})"
    )
    print(TABLE_ROW.format("check", "quantity", "shape", "max |grad|", "rel. error", "result"))
    for label, report, show_layer in checks:
        for index, row in enumerate(report.rows):
            quantity = (
                f"{row.layer}/{row.quantity}"
                if show_layer and row.layer != "(input)"
                else row.quantity
            )
            verdict = "ok" if row.error < report.tolerance else "FAIL"
            shown_label = label if index == 0 else ""
            print(
                TABLE_ROW.format(
                    shown_label,
                    quantity,
                    str(row.shape),
                    f"{row.scale:.3e}",
                    f"{row.error:.2e}",
                    verdict,
                )
            )


# The convolution family and 1-D pooling (one block, kept apart: other layer families add theirs).
LAYER_CHECKS.update(
    {
        "Conv1D": LayerCheck(
            lambda: layers.Conv1D(
                4,
                3,
                strides=2,
                padding="causal",
                groups=2,
                activation="tanh",
                kernel_regularizer=_L2,
            ),
            (7, 4),
        ),
        "Conv2DTranspose": LayerCheck(
            lambda: layers.Conv2DTranspose(
                3, 3, strides=2, padding="same", activation="tanh", kernel_regularizer=_L2
            ),
            (3, 3, 2),
        ),
        "DepthwiseConv1D": LayerCheck(
            lambda: layers.DepthwiseConv1D(
                3,
                padding="same",
                depth_multiplier=2,
                dilation_rate=2,
                depthwise_regularizer=_L2,
            ),
            (6, 2),
        ),
        "DepthwiseConv2D": LayerCheck(
            lambda: layers.DepthwiseConv2D(
                3,
                strides=2,
                padding="same",
                depth_multiplier=2,
                activation="tanh",
                depthwise_regularizer=_L2,
            ),
            (5, 5, 2),
        ),
        "SeparableConv1D": LayerCheck(
            lambda: layers.SeparableConv1D(
                3, 3, strides=2, depth_multiplier=2, activation="tanh", pointwise_regularizer=_L2
            ),
            (7, 2),
        ),
        "SeparableConv2D": LayerCheck(
            lambda: layers.SeparableConv2D(
                3,
                3,
                padding="same",
                depth_multiplier=2,
                activation="tanh",
                depthwise_regularizer=_L2,
                pointwise_regularizer=_L2,
            ),
            (4, 4, 2),
        ),
        "AveragePooling1D": LayerCheck(
            lambda: layers.AveragePooling1D(2, strides=1, padding="same"), (5, 2)
        ),
        "GlobalAveragePooling1D": LayerCheck(lambda: layers.GlobalAveragePooling1D(), (5, 2)),
        "GlobalMaxPooling1D": LayerCheck(lambda: layers.GlobalMaxPooling1D(keepdims=True), (5, 2)),
        "MaxPooling1D": LayerCheck(
            lambda: layers.MaxPooling1D(3, strides=2, padding="same"), (7, 2)
        ),
    }
)


# Noise and regularization, augmentation and TimeDistributed (one block: branch cat2). The noise
# and augmentation layers are checked in training mode, their draws held fixed (gradcheck
# re-seeds them before every evaluation); at inference they are the identity.
LAYER_CHECKS.update(
    {
        "SpatialDropout1D": LayerCheck(lambda: layers.SpatialDropout1D(0.4), (5, 3), True),
        "SpatialDropout2D": LayerCheck(lambda: layers.SpatialDropout2D(0.3), (3, 3, 2), True),
        "GaussianNoise": LayerCheck(lambda: layers.GaussianNoise(0.5), (6,), True),
        "GaussianDropout": LayerCheck(lambda: layers.GaussianDropout(0.3), (6,), True),
        "AlphaDropout": LayerCheck(lambda: layers.AlphaDropout(0.2), (6,), True),
        "ActivityRegularization": LayerCheck(
            lambda: layers.ActivityRegularization(l1=0.01, l2=0.02), (6,), True
        ),
        "RandomFlip": LayerCheck(lambda: layers.RandomFlip(), (4, 5, 2), True),
        "RandomRotation": LayerCheck(lambda: layers.RandomRotation(0.2), (5, 6, 2), True),
        "RandomTranslation": LayerCheck(
            lambda: layers.RandomTranslation(0.3, 0.2, fill_mode="nearest"), (5, 6, 2), True
        ),
        "RandomZoom": LayerCheck(
            lambda: layers.RandomZoom(0.3, fill_mode="constant", fill_value=0.5), (5, 6, 2), True
        ),
        "RandomContrast": LayerCheck(
            lambda: layers.RandomContrast(0.5, value_range=(-1, 1)), (4, 4, 2), True
        ),
        "RandomBrightness": LayerCheck(
            lambda: layers.RandomBrightness(0.3, value_range=(-1, 1)), (4, 4, 2), True
        ),
        "RandomCrop": LayerCheck(lambda: layers.RandomCrop(4, 4), (3, 8, 2), True),
        "TimeDistributed": LayerCheck(
            lambda: layers.TimeDistributed(
                layers.Dense(3, activation="tanh", kernel_regularizer=_L2)
            ),
            (4, 2),
        ),
    }
)
