"""The convolution family (Conv1D, grouped Conv2D, Conv2DTranspose, DepthwiseConv1D/2D,
SeparableConv1D/2D) and 1-D pooling as layers: hand-computed cases, gradient checks in float64
with random upstream gradients, the layer contract, configs, explain, errors, and models that
train, save and load."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import (
    AveragePooling1D,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
    SeparableConv1D,
    SeparableConv2D,
)


# -- hand-computed cases --------------------------------------------------------------------------
def test_causal_conv1d_by_hand():
    layer = Conv1D(1, 2, padding="causal", dilation_rate=2, use_bias=False, dtype="float64")
    layer.build((5, 1))
    layer.params["kernel"][...] = np.array([10.0, 1.0]).reshape(2, 1, 1)
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)  # 1 2 3 4 5
    # y[t] = 10·x[t - 2] + 1·x[t], x[< 0] = 0: nothing from the future.
    np.testing.assert_array_equal(layer.forward(x)[0, :, 0], [1, 2, 13, 24, 35])


def test_grouped_conv2d_keeps_groups_apart():
    """groups=2 with a kernel of ones: filter 0 sums channel 0, filter 1 channel 1."""
    layer = Conv2D(2, 1, groups=2, use_bias=False, kernel_initializer="ones", dtype="float64")
    layer.build((1, 1, 2))
    assert layer.params["kernel"].shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(layer.forward(np.array([[[[3.0, 5.0]]]])), [[[[3.0, 5.0]]]])


def test_conv2d_transpose_by_hand():
    """One input cell of value 2, kernel [[1, 2], [3, 4]], stride 2: the kernel times 2, placed
    at (0, 0); the next cell (value 1) lands two columns on, with no overlap."""
    layer = Conv2DTranspose(1, 2, strides=2, use_bias=False, dtype="float64")
    layer.build((1, 2, 1))
    layer.params["kernel"][...] = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    y = layer.forward(np.array([2.0, 1.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[2, 4, 1, 2], [6, 8, 3, 4]])


def test_depthwise_by_hand():
    layer = DepthwiseConv1D(2, depth_multiplier=2, use_bias=False, dtype="float64")
    layer.build((3, 1))
    layer.params["kernel"][...] = np.array([[1.0, -1.0], [1.0, 1.0]]).reshape(2, 1, 2)
    y = layer.forward(np.array([1.0, 2.0, 4.0]).reshape(1, 3, 1))
    # channel 0·2 + 0: x[t] + x[t+1];  channel 0·2 + 1: -x[t] + x[t+1]
    np.testing.assert_array_equal(y[0], [[3, 1], [6, 2]])


def test_pooling1d_by_hand_and_the_first_maximum_takes_the_gradient():
    x = np.array([1.0, 5.0, 5.0, 2.0, 7.0]).reshape(1, 5, 1)
    layer = MaxPooling1D(2, padding="same", dtype="float64")
    np.testing.assert_array_equal(layer(x)[0, :, 0], [5, 5, 7])
    np.testing.assert_array_equal(
        layer.backward(np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1))[0, :, 0], [0, 1, 2, 0, 3]
    )
    average = AveragePooling1D(2, padding="same", dtype="float64")
    np.testing.assert_array_equal(average(x)[0, :, 0], [3, 3.5, 7])  # the last window: 1 cell


# -- gradient checks (random upstream gradients, float64) ------------------------------------
GRADCHECKS = [
    (lambda: Conv1D(3, 3, activation="tanh", kernel_regularizer="l2"), (6, 2)),
    (lambda: Conv1D(4, 2, strides=2, padding="same", groups=2, bias_regularizer="l1"), (7, 4)),
    (lambda: Conv1D(2, 3, padding="causal", dilation_rate=2, use_bias=False), (6, 3)),
    (lambda: Conv2D(6, (2, 3), strides=(2, 1), padding="same", groups=3), (5, 4, 3)),
    (lambda: Conv2D(4, 3, groups=4, activation="relu", dilation_rate=2), (6, 6, 4)),
    (lambda: Conv2DTranspose(3, 3, activation="sigmoid"), (3, 2, 2)),
    (lambda: Conv2DTranspose(2, (3, 2), strides=(2, 3), padding="same"), (2, 3, 3)),
    (lambda: Conv2DTranspose(2, 2, strides=3, output_padding=(2, 1), use_bias=False), (2, 2, 2)),
    (
        lambda: Conv2DTranspose(2, 3, dilation_rate=2, padding="same", kernel_regularizer="l2"),
        (3, 3, 1),
    ),  # fmt: skip
    (lambda: DepthwiseConv2D(3, depth_multiplier=2, activation="tanh"), (4, 5, 2)),
    (lambda: DepthwiseConv2D((2, 3), strides=2, padding="same", bias_regularizer="l2"), (5, 5, 3)),
    (
        lambda: DepthwiseConv1D(3, strides=2, depth_multiplier=3, depthwise_regularizer="l1"),
        (7, 2),
    ),  # fmt: skip
    (
        lambda: SeparableConv2D(3, (3, 2), strides=(1, 2), padding="same", depth_multiplier=2),
        (4, 5, 2),
    ),  # fmt: skip
    (lambda: SeparableConv2D(2, 2, use_bias=False, pointwise_regularizer="l2"), (3, 3, 3)),
    (lambda: SeparableConv1D(3, 3, dilation_rate=2, padding="same", activation="tanh"), (6, 2)),
    (lambda: MaxPooling1D(3, strides=1), (6, 2)),
    (lambda: AveragePooling1D(3, strides=2, padding="same"), (6, 2)),
    (lambda: GlobalMaxPooling1D(), (4, 3)),
    (lambda: GlobalAveragePooling1D(keepdims=True), (4, 3)),
]


@pytest.mark.parametrize("make, input_shape", GRADCHECKS)
def test_gradcheck(make, input_shape):
    report = hn.gradcheck(make(), input_shape=input_shape, batch_size=2)
    assert report.passed, str(report)


def test_gradcheck_of_a_small_sequence_model_with_labels():
    model = hn.Sequential(
        [
            hn.layers.Input((8, 2)),
            Conv1D(4, 3, padding="causal", activation="relu", groups=2),
            SeparableConv1D(4, 2, depth_multiplier=2, activation="tanh"),
            MaxPooling1D(2),
            DepthwiseConv1D(2, padding="same"),
            GlobalAveragePooling1D(),
            hn.layers.Dense(3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((3, 8, 2))
    report = hn.gradcheck(model, x=x, y=np.array([0, 2, 1]))
    assert report.passed, str(report)


# -- the layer contract ---------------------------------------------------------------------------
CONTRACT = [
    (lambda: Conv1D(3, 2, groups=1, activation="relu"), (5, 2)),
    (lambda: Conv1D(4, 2, groups=2), (5, 2)),
    (lambda: Conv2D(4, 2, groups=2, activation="relu"), (4, 4, 2)),
    (lambda: Conv2DTranspose(3, 2, strides=2, activation="relu"), (3, 3, 2)),
    (lambda: DepthwiseConv2D(2, depth_multiplier=2, activation="relu"), (4, 4, 2)),
    (lambda: DepthwiseConv1D(2), (5, 3)),
    (lambda: SeparableConv2D(3, 2, activation="relu"), (4, 4, 2)),
    (lambda: SeparableConv1D(3, 2, padding="same"), (5, 2)),
]


@pytest.mark.parametrize("make, input_shape", CONTRACT)
def test_backward_leaves_dy_alone_keeps_grad_arrays_and_skips_dx_when_not_needed(make, input_shape):
    layer = make()
    layer.build(input_shape, np.random.default_rng(0))
    grads = dict(layer.grads)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *input_shape)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.shape == (2, *layer.output_shape)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    saved = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, saved)
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert all(layer.grads[key] is grads[key] for key in grads)  # optimizers hold on to them
    first = {key: value.copy() for key, value in layer.grads.items()}
    layer.needs_input_gradient = False
    layer.forward(x)
    assert layer.backward(dy) is None
    for key, value in first.items():
        np.testing.assert_array_equal(layer.grads[key], value)


@pytest.mark.parametrize(
    "layer, per_sample",
    [
        (MaxPooling1D(2), (4, 3)),
        (AveragePooling1D(2, strides=1), (4, 3)),
        (GlobalMaxPooling1D(), (4, 3)),
        (GlobalAveragePooling1D(keepdims=True), (4, 3)),
    ],
)
def test_pooling_backward_leaves_dy_alone(layer, per_sample):
    rng = np.random.default_rng(0)
    y = layer(rng.standard_normal((2, *per_sample)).astype(np.float32))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    saved = dy.copy()
    assert layer.backward(dy).shape == (2, *per_sample)
    np.testing.assert_array_equal(dy, saved)


# -- configs and explain --------------------------------------------------------------------------
CONFIGURED = [
    Conv1D(8, (3,), strides=2, padding="CAUSAL", dilation_rate=1, groups=2, activation="relu",
           use_bias=False, kernel_initializer="he_normal", kernel_regularizer="l2"),
    Conv2D(6, (3, 2), groups=3, padding="same"),
    Conv2DTranspose(4, (3, 2), strides=(2, 2), padding="same", output_padding=1,
                    dilation_rate=1, bias_regularizer={"l1": 0.1}),
    DepthwiseConv2D((3, 3), strides=2, padding="same", depth_multiplier=3,
                    depthwise_regularizer="l1", activation="tanh"),
    DepthwiseConv1D(5, padding="same", depth_multiplier=2, dilation_rate=2),
    SeparableConv2D(5, 3, depth_multiplier=2, pointwise_initializer="he_uniform",
                    pointwise_regularizer="l2"),
    SeparableConv1D(5, 3, strides=1, dilation_rate=3, depthwise_initializer="ones"),
    MaxPooling1D(3, strides=1, padding="same"),
    AveragePooling1D(),
    GlobalMaxPooling1D(keepdims=True),
    GlobalAveragePooling1D(),
]  # fmt: skip


@pytest.mark.parametrize("layer", CONFIGURED, ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    config = layer.get_config()
    json.dumps(config)
    again = type(layer).from_config(config)
    assert again.get_config() == config
    assert hn.layers.deserialize(hn.layers.serialize(layer)).get_config() == config


def test_config_values():
    conv, transpose = CONFIGURED[0].get_config(), CONFIGURED[2].get_config()
    assert conv["kernel_size"] == [3] and conv["padding"] == "causal" and conv["groups"] == 2
    assert transpose["output_padding"] == [1, 1] and transpose["kernel_size"] == [3, 2]
    assert CONFIGURED[1].get_config()["groups"] == 3
    assert CONFIGURED[3].get_config()["depthwise_regularizer"] == {"l1": 0.01, "l2": 0.0}


@pytest.mark.parametrize(
    "layer",
    [layer for layer in CONFIGURED if type(layer) is not Conv2D],  # Conv2D: handnet.explain
    ids=lambda layer: type(layer).__name__,
)
def test_explain(layer):
    headline, formula = layer.explain()
    assert isinstance(headline, str) and isinstance(formula, str)
    assert "y[" in formula or "y =" in formula


def test_explain_says_the_options():
    assert Conv1D(8, 3, strides=2, padding="causal", groups=2).explain() == (
        "8 filters of width 3, stride 2, dilation 1, causal padding, 2 groups",
        "y[n,t,f] = b[f] + Σ_(u,c) causal_pad(x)[n, 2t+u, g·C/G + c] · K[u,c,f]",
    )
    headline, formula = Conv2DTranspose(4, 3, strides=2, activation="relu").explain()
    assert "adjoint of Conv2D" in headline
    assert formula.startswith("full[n, 2i+u, 2j+v, f] += Σ_c K[u,v,f,c] · x[n,i,j,c]")
    assert formula.endswith("y = relu(b[f] + crop(full))")
    assert DepthwiseConv2D(3, depth_multiplier=2).explain()[1] == (
        "y[n,i,j,c·M+m] = b[c·M+m] + Σ_(u,v) x[n, i+u, j+v, c] · K[u,v,c,m]"
    )
    assert SeparableConv1D(3, 3, dilation_rate=2, use_bias=False).explain()[1] == (
        "d[n,t,c·M+m] = Σ_u x[n, t+2u, c] · D[u,c,m];  y[n,t,f] = Σ_k d[n,t,k] · P[k,f]"
    )
    assert GlobalMaxPooling1D(keepdims=True).explain() == (
        "max over all steps, to (N, 1, C)",
        "y[n,c] = max_t x[n,t,c]",
    )


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Conv1D(0, 3), "filters"),
        (lambda: Conv1D(4, (3, 3)), "kernel_size"),
        (lambda: Conv1D(4, 3, padding="full"), "padding"),
        (lambda: Conv1D(4, 3, groups=3), "groups=3"),
        (lambda: Conv1D(4, 3, groups=0), "groups"),
        (lambda: Conv2D(4, 3, groups=3), "groups=3"),
        (lambda: Conv2DTranspose(2, 3, strides=2, output_padding=2), "output_padding"),
        (lambda: Conv2DTranspose(2, 3, output_padding=(0, 0, 0)), "output_padding"),
        (lambda: Conv2DTranspose(2, 3, padding="causal"), "padding"),
        (lambda: DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier"),
        (lambda: DepthwiseConv1D(3, padding="causal"), "padding"),
        (lambda: SeparableConv1D(3, 3, padding="causal"), "padding"),
        (lambda: SeparableConv2D(-1, 3), "filters"),
        (lambda: MaxPooling1D(0), "pool_size"),
        (lambda: AveragePooling1D(2, strides=(1, 1)), "strides"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(HandnetError, match=message):
        make()


@pytest.mark.parametrize(
    "layer, per_sample, message",
    [
        (Conv1D(2, 3), (5, 5, 1), r"\(steps, channels\)"),
        (Conv1D(4, 3, groups=2), (5, 3), "3 channels do not split into groups=2"),
        (Conv2D(4, 3, groups=2), (5, 5, 3), "3 channels do not split into groups=2"),
        (Conv1D(2, 4), (3, 1), "does not fit"),
        (Conv2DTranspose(2, 3), (5, 1), r"\(height, width, channels\)"),
        (Conv2DTranspose(2, 2, padding="same", output_padding=0), (1, 1, 1), "output cells"),
        (DepthwiseConv2D(3), (2, 2, 1), "does not fit"),
        (DepthwiseConv1D(3), (4, 4, 1), r"\(steps, channels\)"),
        (SeparableConv2D(2, 3), (5, 1), r"\(height, width, channels\)"),
        (MaxPooling1D(), (4,), r"\(steps, channels\)"),
        (GlobalAveragePooling1D(), (4, 4, 1), r"\(steps, channels\)"),
    ],
)
def test_bad_shapes_are_refused(layer, per_sample, message):
    with pytest.raises(InvalidInputError, match=message):
        layer.build(per_sample)


def test_wrong_input_shape_at_forward():
    layer = Conv1D(2, 3)
    layer.build((6, 2))
    with pytest.raises(InvalidInputError, match=r"expected input shape \(None, 6, 2\)"):
        layer.forward(np.zeros((1, 6, 3), dtype=np.float32))


# -- models ---------------------------------------------------------------------------------------
def test_grouped_conv2d_is_not_fused_with_its_pooling():
    """The fused Conv2D + MaxPooling2D path is for ungrouped convolutions only."""
    from handnet.layers.fused import fusable

    pool = hn.layers.MaxPooling2D()
    assert fusable(Conv2D(4, 3, activation="relu"), pool)
    assert not fusable(Conv2D(4, 3, groups=2, activation="relu"), pool)


def test_models_of_the_family_train_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    models = {
        "sequence": (
            [
                hn.layers.Input((10, 3)),
                Conv1D(6, 3, padding="causal", groups=3, activation="relu"),
                MaxPooling1D(2),
                SeparableConv1D(4, 2, depth_multiplier=2, activation="relu"),
                DepthwiseConv1D(2, padding="same"),
                AveragePooling1D(2, strides=1),
                GlobalMaxPooling1D(),
                hn.layers.Dense(3, activation="softmax"),
            ],
            (10, 3),
        ),
        "image": (
            [
                hn.layers.Input((6, 6, 2)),
                Conv2D(4, 3, groups=2, activation="relu"),
                Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
                DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu"),
                SeparableConv2D(3, 2, padding="same"),
                hn.layers.GlobalAveragePooling2D(keepdims=True),
                hn.layers.Flatten(),
                hn.layers.Dense(3, activation="softmax"),
            ],
            (6, 6, 2),
        ),
    }
    for name, (layers, shape) in models.items():
        model = hn.Sequential(layers, seed=1)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = rng.standard_normal((12, *shape)).astype(np.float32)
        y = rng.integers(0, 3, 12)
        before = model.evaluate(x, y)["loss"]
        model.fit(x, y, epochs=5, batch_size=4, verbose=0)
        after = model.evaluate(x, y)["loss"]
        assert after < before, name
        model.save(tmp_path / f"{name}.npz")
        loaded = hn.load_model(tmp_path / f"{name}.npz")
        assert loaded.get_config() == model.get_config()
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
