"""The convolution family and 1-D pooling against Keras 3 on the torch backend, in float32:
for random inputs, weights and a random upstream gradient g, y, ∂L/∂x and ∂L/∂(every weight)
of L = Σ y · g equal torch autograd's through the Keras layer within 1e-5 (the gradcheck
measure: worst entry / largest entry).  The handnet layer is built from Keras's own config
(so the argument names are Keras's), and its weights are Keras's, by name, shape and order:
a Keras file maps onto it one to one."""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5

# (class name, arguments, per-sample input shape)
CASES = [
    ("Conv1D", {"filters": 3, "kernel_size": 3}, (9, 2)),
    ("Conv1D", {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"}, (9, 3)),
    ("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (8, 2)),
    ("Conv1D", {"filters": 3, "kernel_size": 2, "strides": 3, "padding": "causal"}, (10, 2)),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "groups": 2, "activation": "tanh"}, (7, 6)),
    ("Conv1D", {"filters": 6, "kernel_size": 2, "groups": 3, "padding": "same"}, (5, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 2}, (6, 5, 4)),
    ("Conv2D", {"filters": 6, "kernel_size": (2, 3), "groups": 3, "strides": 2, "padding": "same"},
     (7, 6, 6)),  # fmt: skip
    ("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 4, "dilation_rate": 2}, (7, 7, 4)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": 3}, (4, 5, 2)),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
     (4, 3, 3)),  # fmt: skip
    ("Conv2DTranspose", {"filters": 2, "kernel_size": (2, 3), "strides": (2, 3)}, (3, 3, 2)),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 2, "strides": 3}, (3, 2, 2)),  # s > k
    ("Conv2DTranspose",
     {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 0},
     (3, 4, 2)),  # fmt: skip
    ("Conv2DTranspose",
     {"filters": 3, "kernel_size": 4, "strides": (3, 2), "output_padding": (2, 1)},
     (3, 3, 2)),  # fmt: skip
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
     (4, 4, 3)),  # fmt: skip
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 2, "padding": "same"}, (4, 5, 2)),
    ("DepthwiseConv2D", {"kernel_size": 3}, (6, 5, 3)),
    ("DepthwiseConv2D", {"kernel_size": (3, 2), "strides": 2, "padding": "same",
                         "depth_multiplier": 2, "activation": "relu"}, (7, 6, 3)),  # fmt: skip
    ("DepthwiseConv2D", {"kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (6, 6, 2)),
    ("DepthwiseConv1D", {"kernel_size": 3, "depth_multiplier": 3}, (8, 2)),
    ("DepthwiseConv1D", {"kernel_size": 4, "strides": 2, "padding": "same"}, (9, 3)),
    ("SeparableConv2D", {"filters": 4, "kernel_size": 3}, (6, 6, 3)),
    ("SeparableConv2D", {"filters": 3, "kernel_size": (2, 3), "strides": 2, "padding": "same",
                         "depth_multiplier": 2, "activation": "tanh"}, (7, 5, 2)),  # fmt: skip
    ("SeparableConv1D", {"filters": 4, "kernel_size": 3, "depth_multiplier": 2}, (8, 3)),
    ("SeparableConv1D", {"filters": 2, "kernel_size": 2, "dilation_rate": 3, "padding": "same",
                         "use_bias": False}, (9, 2)),  # fmt: skip
    ("MaxPooling1D", {}, (9, 3)),
    ("MaxPooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (8, 2)),
    ("AveragePooling1D", {"pool_size": 3, "strides": 1}, (7, 2)),
    ("AveragePooling1D", {"pool_size": 2, "strides": 3, "padding": "same"}, (8, 2)),
    ("GlobalMaxPooling1D", {}, (6, 3)),
    ("GlobalMaxPooling1D", {"keepdims": True}, (6, 3)),
    ("GlobalAveragePooling1D", {}, (6, 3)),
    ("GlobalAveragePooling1D", {"keepdims": True}, (6, 3)),
    ("GlobalMaxPooling2D", {"keepdims": True}, (3, 4, 2)),
    ("GlobalAveragePooling2D", {"keepdims": True}, (3, 4, 2)),
]

#: Keras config entries that are not constructor arguments of handnet's layer (handled by
#: handnet.keras_io: initializers and dtype policies as Keras objects, and the data format).
NOT_COMPARED = {"name", "trainable", "dtype", "data_format", "activity_regularizer"}


def case_id(case):
    kind, args, shape = case
    return f"{kind}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


def handnet_arguments(keras_config, layer_class):
    """The entries of Keras's config that handnet's constructor takes, under the same names."""
    ours = layer_class(**_minimal(keras_config, layer_class)).get_config()
    return {
        key: value
        for key, value in keras_config.items()
        if key in ours
        and key not in NOT_COMPARED
        and not key.endswith(("_initializer", "_regularizer", "_constraint"))
    }


def _minimal(keras_config, layer_class):
    required = ("filters", "kernel_size")
    return {key: keras_config[key] for key in required if key in keras_config}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_outputs_and_gradients_match_keras(keras, torch, case):
    kind, args, shape = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, *shape)).astype("float32")
    theirs = getattr(keras.layers, kind)(**args)
    theirs.build((None, *shape))
    for weight in theirs.weights:  # not Keras's zero bias: every weight takes part
        weight.assign(rng.standard_normal(tuple(weight.shape)).astype("float32") * 0.5)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    upstream = rng.standard_normal(tuple(yt.shape)).astype("float32")
    (yt * torch.tensor(upstream)).sum().backward()

    layer_class = getattr(hn.layers, kind)
    config = theirs.get_config()
    ours = layer_class(**handnet_arguments(config, layer_class))
    # Every argument handnet has is one Keras has, under the same name.
    assert set(ours.get_config()) - NOT_COMPARED <= set(config) - NOT_COMPARED
    ours.build(shape)
    assert ours.name.split("_")[0] == theirs.name.split("_")[0]
    assert [(w.name, tuple(w.shape)) for w in theirs.weights] == [
        (name, value.shape) for name, value in ours.params.items()
    ]
    for weight in theirs.weights:
        ours.params[weight.name][...] = keras.ops.convert_to_numpy(weight)

    y = ours.forward(x)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float32
    assert relative_error(y, yt.detach().numpy()) < TOLERANCE
    dx = ours.backward(upstream)
    assert dx.dtype == np.float32
    assert relative_error(dx, xt.grad.numpy()) < TOLERANCE, "dx"
    for weight in theirs.weights:
        error = relative_error(ours.grads[weight.name], weight.value.grad.numpy())
        assert error < TOLERANCE, f"{weight.name}: {error:.1e}"
    assert ours.output_shape == tuple(theirs.compute_output_shape((None, *shape)))[1:]


@pytest.mark.parametrize(
    "kind, args, shape",
    [
        ("Conv2DTranspose", {"filters": 2, "kernel_size": k, "strides": s, "padding": p,
                             "output_padding": op}, (3, 4, 1))
        for k in (1, 2, 3, 4)
        for s in (1, 2, 3)
        for p in ("valid", "same")
        for op in (None, 0, s - 1)
    ],
)  # fmt: skip
def test_transpose_output_sizes_match_keras(keras, kind, args, shape):
    """Keras's size rules, for kernels below, at and above the stride, with and without
    output_padding (forward values checked too: where the crop falls matters)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, *shape)).astype("float32")
    theirs = getattr(keras.layers, kind)(**args)
    expected_shape = tuple(theirs.compute_output_shape((None, *shape)))[1:]
    if min(expected_shape[:2]) < 1:
        with pytest.raises(hn.errors.InvalidInputError, match="output cells"):
            hn.layers.Conv2DTranspose(**args).build(shape)
        return
    expected = keras.ops.convert_to_numpy(theirs(x))
    ours = hn.layers.Conv2DTranspose(**args)
    ours.build(shape)
    assert ours.output_shape == expected_shape
    ours.params["kernel"][...] = keras.ops.convert_to_numpy(theirs.kernel)
    assert relative_error(ours.forward(x), expected) < TOLERANCE
