"""Conv2D: window geometry, gradient checks, PyTorch and Keras as oracles, configs and saving."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from handnet.ops.padding import window_geometry


# -- geometry --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, window, stride, dilation, padding, expected",
    [
        (28, 3, 1, 1, "valid", (26, 0, 0)),
        (7, 3, 2, 1, "valid", (3, 0, 0)),
        (8, 3, 2, 1, "valid", (3, 0, 0)),  # floor((8 - 3) / 2) + 1
        (7, 3, 1, 2, "valid", (3, 0, 0)),  # dilated extent 5
        (5, 3, 1, 1, "same", (5, 1, 1)),
        (5, 2, 1, 1, "same", (5, 0, 1)),  # even kernel: the odd cell goes after (bottom/right)
        (5, 4, 1, 1, "same", (5, 1, 2)),
        (7, 3, 2, 1, "same", (4, 1, 1)),  # ceil(7 / 2) = 4, pad = 3·2 + 3 - 7 = 2
        (8, 3, 2, 1, "same", (4, 0, 1)),  # pad = 3·2 + 3 - 8 = 1, all of it after
        (6, 1, 3, 1, "same", (2, 0, 0)),  # a pad that would be negative is 0
        (6, 3, 1, 2, "same", (6, 2, 2)),  # dilated extent 5
    ],
)
def test_window_geometry(size, window, stride, dilation, padding, expected):
    assert window_geometry(size, window, stride, dilation, padding) == expected


def test_a_kernel_larger_than_the_input_is_refused_with_valid_padding():
    with pytest.raises(InvalidInputError, match="does not fit"):
        Conv2D(2, 5).build((4, 4, 1))
    Conv2D(2, 5, padding="same").build((4, 4, 1))  # fine: the input is padded


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"kernel_size": 3, "strides": (1,)}, "strides"),
        ({"kernel_size": 3, "padding": "full"}, "padding"),
        ({"kernel_size": 3, "dilation_rate": 0}, "dilation_rate"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(HandnetError, match=message):
        Conv2D(4, **arguments)


def test_input_must_be_images():
    with pytest.raises(InvalidInputError, match=r"\(height, width, channels\)"):
        Conv2D(4, 3).build((28, 28))
    layer = Conv2D(4, 3)
    layer.build((8, 8, 1))
    with pytest.raises(InvalidInputError, match=r"expected input shape \(None, 8, 8, 1\)"):
        layer.forward(np.zeros((2, 8, 8, 3), dtype=np.float32))


# -- forward on a hand-computed case ---------------------------------------------------------------
def test_forward_by_hand():
    layer = Conv2D(1, (2, 2), dtype="float64")
    layer.build((3, 3, 1), np.random.default_rng(0))
    layer.params["kernel"][...] = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    layer.params["bias"][...] = 0.5
    x = np.arange(9.0).reshape(1, 3, 3, 1)  # [[0 1 2] [3 4 5] [6 7 8]]
    # y[0, 0] = 0·1 + 1·2 + 3·3 + 4·4 + .5 = 27.5 (no flip: cross-correlation), and each step
    # right adds 1+2+3+4 = 10, each step down 3·10.
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], [[27.5, 37.5], [57.5, 67.5]])


@pytest.mark.parametrize("channels", [1, 9])  # both im2col layouts
def test_relu_backward_batch_after_batch_in_its_buffers_gives_the_spec(channels):
    """A ReLU Conv2D keeps its cols and its dz from batch to batch (written over): the second
    batch's gradients are still the spec's, and what the first batch handed out is unchanged."""
    from handnet.ops import conv_spec

    layer = Conv2D(3, 3, activation="relu", dtype="float64")
    layer.build((7, 6, channels), rng=np.random.default_rng(0))
    layer.needs_input_gradient = True
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal((2, 4, 7, 6, channels))
    y_first = layer.forward(first, training=True)
    dx_first = layer.backward(rng.standard_normal(y_first.shape))
    kept = y_first.copy(), dx_first.copy()
    dz_buffer = layer._dz

    y = layer.forward(second, training=True)
    dy = rng.standard_normal(y.shape)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    assert layer._dz is dz_buffer
    np.testing.assert_array_equal(dy, dy_before)
    np.testing.assert_array_equal(y_first, kept[0])
    np.testing.assert_array_equal(dx_first, kept[1])
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    z = conv_spec.conv2d_forward(second, kernel, bias)
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=1e-12, atol=1e-12)
    want = conv_spec.conv2d_backward(dy * (z > 0), second, kernel)
    for got, expected in zip((dx, layer.grads["kernel"], layer.grads["bias"]), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_same_padding_keeps_the_size_and_strides_divide_it():
    layer = Conv2D(5, (2, 3), strides=2, padding="same")
    layer.build((7, 8, 3))
    assert layer.output_shape == (4, 4, 5)
    assert layer.params["kernel"].shape == (2, 3, 3, 5)
    y = layer.forward(np.ones((2, 7, 8, 3), dtype=np.float32))
    assert y.shape == (2, 4, 4, 5) and y.dtype == np.float32


# -- gradient checks -------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("kernel_size, dilation_rate", [((3, 3), 1), ((2, 3), 1), ((3, 2), 2)])
def test_gradcheck(padding, strides, kernel_size, dilation_rate):
    layer = Conv2D(4, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate)
    report = hn.gradcheck(layer, input_shape=(7, 6, 3), batch_size=1)
    assert report.passed, str(report)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_gradcheck_through_activation_without_bias_with_regularizers(activation):
    layer = Conv2D(
        3, 3, padding="same", activation=activation, use_bias=False, kernel_regularizer="l2"
    )
    assert hn.gradcheck(layer, input_shape=(5, 5, 2), batch_size=2).passed


def test_gradcheck_bias_regularizer_and_batch():
    layer = Conv2D(
        2,
        2,
        strides=(2, 1),
        activation="relu",
        bias_regularizer={"l1": 0.1, "l2": 0.2},
        bias_initializer="ones",
    )
    assert hn.gradcheck(layer, input_shape=(5, 4, 2), batch_size=3).passed


def test_gradcheck_of_a_small_cnn_with_labels():
    model = hn.Sequential(
        [
            Input((6, 6, 2)),
            Conv2D(3, 3, padding="same", activation="relu"),
            MaxPooling2D(),
            Flatten(),
            Dense(4, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 2))
    report = hn.gradcheck(model, x=x, y=np.array([0, 3, 1]))
    assert report.passed, str(report)


# -- contract --------------------------------------------------------------------------------------
def test_first_layer_skips_the_input_gradient_but_fills_grads():
    layer = Conv2D(2, 3, activation="relu")
    layer.build((5, 5, 1), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 1)).astype(np.float32)
    dy = np.ones((2, 3, 3, 2), dtype=np.float32)
    layer.forward(x)
    dx = layer.backward(dy)
    kernel_grad = layer.grads["kernel"].copy()
    layer.needs_input_gradient = False
    layer.forward(x)
    assert layer.backward(dy) is None
    np.testing.assert_array_equal(layer.grads["kernel"], kernel_grad)
    assert dx.shape == x.shape


def test_backward_leaves_dy_alone_and_keeps_the_grad_arrays():
    layer = Conv2D(2, 3, activation="relu")
    layer.build((5, 5, 2), np.random.default_rng(0))
    kernel_grad = layer.grads["kernel"]
    rng = np.random.default_rng(1)
    layer.forward(rng.standard_normal((2, 5, 5, 2)).astype(np.float32))
    dy = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    saved = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(dy, saved)
    assert layer.grads["kernel"] is kernel_grad  # optimizers may hold on to it


def test_config_round_trip():
    layer = Conv2D(
        8,
        (3, 2),
        strides=(2, 1),
        padding="SAME",
        dilation_rate=(1, 2),
        activation="relu",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer="l2",
        name="features",
    )
    config = layer.get_config()
    json.dumps(config)
    assert config["kernel_size"] == [3, 2] and config["strides"] == [2, 1]
    assert config["padding"] == "same" and config["dilation_rate"] == [1, 2]
    assert Conv2D.from_config(config).get_config() == config


def test_a_saved_cnn_loads_back(tmp_path):
    layers = hn.layers
    model = hn.Sequential(
        [
            Input((9, 9, 1)),
            layers.ZeroPadding2D(((1, 0), (0, 2))),
            Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(pool_size=3, strides=2, padding="same"),
            Conv2D(3, (2, 2), strides=2, padding="same", dilation_rate=1, use_bias=False),
            layers.AveragePooling2D(pool_size=(2, 1), padding="same"),
            layers.GlobalMaxPooling2D(),
            Dense(3, activation="softmax"),
        ],
        seed=3,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 9, 9, 1)).astype(np.float32)
    model.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "cnn.npz")
    loaded = hn.load_model(tmp_path / "cnn.npz")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# -- PyTorch as the oracle -------------------------------------------------------------------------
def tensorflow_same_padding(size, kernel, stride, dilation):
    """(before, after) as TensorFlow documents "SAME": written out again here, independently."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@pytest.mark.torch
@pytest.mark.parametrize(
    "kernel_size, strides, padding, dilation",
    [
        ((3, 3), (1, 1), "valid", (1, 1)),
        ((3, 2), (2, 1), "valid", (1, 2)),
        ((2, 2), (1, 1), "same", (1, 1)),  # even kernel: TF pads bottom/right only
        ((4, 3), (2, 2), "same", (1, 1)),
        ((3, 3), (2, 3), "same", (2, 1)),
    ],
)
def test_matches_torch_forward_and_backward(torch, kernel_size, strides, padding, dilation):
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 8, 4)).astype(np.float32)
    layer = Conv2D(
        5,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        bias_initializer="glorot_uniform",
    )
    layer.build(x.shape[1:], rng)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)  # NHWC -> NCHW
    kernel = torch.tensor(
        layer.params["kernel"].transpose(3, 2, 0, 1), requires_grad=True
    )  # (F, C, kh, kw)
    bias = torch.tensor(layer.params["bias"], requires_grad=True)
    padded = xt
    if padding == "same":
        top, bottom = tensorflow_same_padding(9, kernel_size[0], strides[0], dilation[0])
        left, right = tensorflow_same_padding(8, kernel_size[1], strides[1], dilation[1])
        padded = F.pad(xt, (left, right, top, bottom))
    yt = F.conv2d(padded, kernel, bias, stride=strides, dilation=dilation)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))

    close = {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **close)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **close)
    np.testing.assert_allclose(
        layer.grads["kernel"], kernel.grad.numpy().transpose(2, 3, 1, 0), **close
    )
    np.testing.assert_allclose(layer.grads["bias"], bias.grad.numpy(), **close)


# -- Keras as the oracle of "same" -----------------------------------------------------------------
@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_same_padding_matches_keras(keras):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    for kernel_size, strides in [((2, 2), 1), ((4, 3), 2)]:
        ours = Conv2D(4, kernel_size, strides=strides, padding="same")
        ours.build(x.shape[1:], rng)
        theirs = keras.layers.Conv2D(4, kernel_size, strides=strides, padding="same")
        theirs.build((None, *x.shape[1:]))
        theirs.set_weights([ours.params["kernel"], ours.params["bias"]])
        expected = keras.ops.convert_to_numpy(theirs(x))
        np.testing.assert_allclose(ours.forward(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 9])  # both im2col layouts
@pytest.mark.parametrize("padding, strides", [("valid", 1), ("same", 2)])
def test_inference_forward_is_the_training_forward_and_backward_may_follow(
    channels, padding, strides
):
    """A Conv2D alone at inference (conv.conv2d_inference: geometry worked out once per input
    shape, cols and weight matrix in the previous call's arrays) gives the training forward's
    z bit for bit, at batch sizes that change and come back, and leaves the cols a backward
    pass needs."""
    conv = Conv2D(4, 3, strides=strides, padding=padding, activation="relu", dtype="float64")
    conv.build((7, 8, channels), rng=np.random.default_rng(0))
    conv.params["bias"][...] = np.random.default_rng(1).standard_normal(4)
    rng = np.random.default_rng(2)
    for batch in (1, 3, 1):
        x = rng.standard_normal((batch, 7, 8, channels))
        y_inference = conv.forward(x, training=False).copy()
        dy = rng.standard_normal(y_inference.shape)
        dx_inference = conv.backward(dy)
        grads = {key: value.copy() for key, value in conv.grads.items()}
        np.testing.assert_array_equal(y_inference, conv.forward(x, training=True))
        np.testing.assert_array_equal(dx_inference, conv.backward(dy))
        for key, value in conv.grads.items():
            np.testing.assert_array_equal(grads[key], value)
    assert len(conv._layouts) == 2  # one per batch size met
