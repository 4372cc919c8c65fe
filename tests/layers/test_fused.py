"""Conv2D → MaxPooling2D run as one fused step by Sequential: which pairs fuse, and that the
fused step gives the unfused layers' outputs and gradients (handnet.layers.fused)."""

import copy

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import handnet as hn
from handnet.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from handnet.layers.fused import ConvMaxPool, fusable
from handnet.fast import fused, winograd
from handnet.ops import conv_spec, pool_spec


class PlainConv2D(Conv2D):
    """A Conv2D subclass: it may change what the layer computes, so it is never fused."""


@pytest.mark.parametrize(
    "conv, pool, fuses",
    [
        (Conv2D(2, 3, activation="relu"), MaxPooling2D(2), True),
        (Conv2D(2, 3), MaxPooling2D((2, 3)), True),  # the identity commutes with max too
        (Conv2D(2, 3, strides=2, padding="same"), MaxPooling2D(3), True),
        (Conv2D(2, 3, activation="sigmoid"), MaxPooling2D(2), False),
        (Conv2D(2, 3, activation="relu"), MaxPooling2D(2, strides=1), False),  # windows overlap
        (Conv2D(2, 3, activation="relu"), MaxPooling2D(2, padding="same"), False),
        (PlainConv2D(2, 3, activation="relu"), MaxPooling2D(2), False),
    ],
)
def test_which_pairs_fuse(conv, pool, fuses):
    assert fusable(conv, pool) is fuses


def test_only_a_pool_right_after_the_conv_fuses():
    model = hn.Sequential(
        [
            Input((10, 10, 1)),
            Conv2D(2, 3, activation="relu"),
            Dropout(0.5),
            MaxPooling2D(),
            Conv2D(2, 3, activation="relu"),
            MaxPooling2D(),
        ]
    )
    steps = [step.layer for step in model.plan().steps]
    assert [type(step) for step in steps] == [Conv2D, Dropout, MaxPooling2D, ConvMaxPool]
    assert (steps[-1].conv, steps[-1].pool) == tuple(model.layers[-2:])


def run_unfused(model, x, dy):
    """Forward and backward layer by layer, as Sequential did before fusing: (y, dx)."""
    for layer in model.layers:
        layer.needs_input_gradient = True
        x = layer.forward(x, training=True)
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
    return x, dy


@pytest.mark.parametrize(
    "conv_options, pool_size, input_shape",
    [
        ({"activation": "relu"}, 2, (11, 10, 3)),  # odd conv output: its last row is dropped
        ({"activation": "relu", "use_bias": False}, (3, 2), (12, 9, 1)),
        ({"strides": 2, "padding": "same", "dilation_rate": 1}, 2, (13, 13, 9)),
        ({"dilation_rate": 2, "activation": "relu", "bias_initializer": "ones"}, 2, (10, 10, 2)),
    ],
)
def test_fused_steps_equal_the_layers_one_by_one(conv_options, pool_size, input_shape):
    model = hn.Sequential(
        [
            Input(input_shape),
            Conv2D(4, 3, dtype="float64", **conv_options),
            MaxPooling2D(pool_size, dtype="float64"),
            Conv2D(3, 2, activation="relu", dtype="float64"),
            MaxPooling2D(dtype="float64"),
        ],
        seed=0,
    ).build()
    assert all(isinstance(step.layer, ConvMaxPool) for step in model.plan().steps)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, *input_shape))
    x[:, :4] = 0  # a blank band, as MNIST's borders: ties in every window there
    unfused = copy.deepcopy(model)

    y = model.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy, input_gradient=True)
    y_unfused, dx_unfused = run_unfused(unfused, x, dy)

    np.testing.assert_allclose(y, y_unfused, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_unfused, rtol=1e-12, atol=1e-12)
    for fused_layer, layer in zip(model.layers, unfused.layers):
        for key in layer.grads:
            np.testing.assert_allclose(
                fused_layer.grads[key], layer.grads[key], rtol=1e-12, atol=1e-12, err_msg=key
            )


@pytest.mark.parametrize("channels", [1, 9])  # im2col column-major; Winograd (fast.winograd)
def test_buffers_reused_batch_after_batch_leave_what_was_handed_out_alone(channels):
    """The fused step writes cols, its conv outputs, the winners and dz (Winograd: its tiles,
    the winners and its workspace) into the previous batch's arrays: the second batch still
    gives the unfused layers' results, and the outputs and input gradients of the first
    batch, which the caller holds, do not change."""
    model = hn.Sequential(
        [
            Input((10, 9, channels)),
            Conv2D(4, 3, activation="relu", dtype="float64"),
            MaxPooling2D(dtype="float64"),
            Conv2D(3, 2, activation="relu", dtype="float64"),
            MaxPooling2D(dtype="float64"),
        ],
        seed=0,
    ).build()
    unfused = copy.deepcopy(model)
    rng = np.random.default_rng(3)
    first, second = rng.standard_normal((2, 6, 10, 9, channels))
    first[:, :3] = 0  # ties
    y_first = model.forward(first, training=True)
    dy_first = rng.standard_normal(y_first.shape)
    dx_first = model.backward(dy_first, input_gradient=True)
    kept = y_first.copy(), dx_first.copy()
    conv = model.layers[0]
    names = ["_cols", "_cells", "_winner", "_dcells"]
    if channels >= winograd.FROM_CHANNELS:
        names = ["_tiles", "_winner", "_winograd_memory"]
    buffers = [getattr(conv, name) for name in names]
    assert all(isinstance(buffer, np.ndarray) for buffer in buffers)

    y = model.forward(second, training=True)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy, input_gradient=True)
    y_unfused, dx_unfused = run_unfused(unfused, second, dy)

    assert all(getattr(conv, name) is then for name, then in zip(names, buffers))  # written over
    np.testing.assert_array_equal(y_first, kept[0])
    np.testing.assert_array_equal(dx_first, kept[1])
    np.testing.assert_allclose(y, y_unfused, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_unfused, rtol=1e-12, atol=1e-12)
    for fused_layer, layer in zip(model.layers, unfused.layers):
        for key in layer.grads:
            np.testing.assert_allclose(
                fused_layer.grads[key], layer.grads[key], rtol=1e-12, atol=1e-12, err_msg=key
            )


def test_a_model_with_fused_steps_passes_gradcheck():
    model = hn.Sequential(
        [
            Input((9, 9, 2)),
            Conv2D(3, 3, activation="relu", kernel_regularizer="l2"),
            MaxPooling2D(),
            Conv2D(2, 2, padding="same"),
            MaxPooling2D(),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert sum(isinstance(step.layer, ConvMaxPool) for step in model.build().plan().steps) == 2
    assert hn.gradcheck(model, input_shape=(9, 9, 2)).passed
    x = np.random.default_rng(2).standard_normal((3, 9, 9, 2))
    report = hn.gradcheck(model, x=x, y=np.array([0, 2, 1]), training=True)
    assert report.passed, str(report)


@pytest.mark.parametrize("frozen", [True, False])
def test_a_frozen_first_conv_gets_no_gradient_and_batch_sizes_can_change(frozen, monkeypatch):
    """Frozen, the fused conv's backward never runs and its gradients are exactly 0 (the plan
    zeroes an inactive step's: not last step's, and here not the NaN put in them); the kernel
    stays. Trainable (the control), the same fused backward runs and fills them."""
    model = hn.Sequential(
        [Input((8, 8, 1)), Conv2D(2, 3, activation="relu"), MaxPooling2D(), Flatten(), Dense(2)],
        seed=0,
    )
    model.compile(optimizer="sgd", loss="mse")
    conv = model.layers[0]
    conv.trainable = not frozen
    model.build()
    for gradient in conv.grads.values():
        gradient[...] = np.nan  # overwritten whether computed or zeroed
    kernel = conv.params["kernel"].copy()
    fused_backwards = []
    real = Conv2D.backward_max_pooled
    monkeypatch.setattr(
        Conv2D, "backward_max_pooled", lambda self, dy: fused_backwards.append(1) or real(self, dy)
    )
    rng = np.random.default_rng(0)
    for batch in (4, 3, 4):  # the conv reuses its im2col buffer only when the shape matches
        x = rng.standard_normal((batch, 8, 8, 1)).astype(np.float32)
        model.train_on_batch(x, rng.standard_normal((batch, 2)).astype(np.float32))
    if frozen:
        assert fused_backwards == []
        assert all(not gradient.any() for gradient in conv.grads.values())  # 0, not NaN
        np.testing.assert_array_equal(conv.params["kernel"], kernel)
    else:
        assert len(fused_backwards) == 3
        assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in conv.grads.values())
        assert not np.array_equal(conv.params["kernel"], kernel)
    assert model.predict(x).shape == (4, 2)


@settings(max_examples=30, deadline=None)
@given(
    input_shape=st.tuples(st.integers(4, 9), st.integers(4, 9), st.sampled_from([1, 2, 9])),
    kernel_size=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    pool_size=st.one_of(st.none(), st.integers(1, 2), st.just((2, 1))),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_inference_with_paired_rows_then_backward_equals_training(
    input_shape, kernel_size, padding, pool_size, use_bias, seed
):
    """An inference forward of a Conv2D fused with a max pooling runs the paired path
    (fused.paired_conv2d_max_pool_forward) where pairs_pay says so (9 channels here); it gives
    the spec's outputs, and a backward pass after it (as gradcheck runs) reruns the training
    forward and gives the training path's gradients. A Conv2D alone keeps its one path."""
    options = {"padding": padding, "activation": "relu", "use_bias": use_bias}
    conv = Conv2D(3, kernel_size, dtype="float64", **options)
    stack = [Input(input_shape), conv]
    if pool_size is not None:
        stack.append(MaxPooling2D(pool_size, dtype="float64"))
    try:
        model = hn.Sequential(stack, seed=seed).build()
    except hn.errors.HandnetError:
        assume(False)  # a window larger than the input
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *input_shape))
    if use_bias:
        conv.params["bias"][...] = rng.standard_normal(3)

    y_inference = model.forward(x, training=False)
    assert x.dtype == y_inference.dtype == conv.params["kernel"].dtype == np.float64
    window = (conv.kernel_size, (1, 1), padding, (1, 1))
    paired = pool_size is not None and fused.pairs_pay(x.shape, *window, stack[-1].pool_size)
    assert (pool_size is not None and conv._layout(x, stack[-1].pool_size).paired) is paired
    z = conv_spec.conv2d_forward(x, conv.params["kernel"], conv.params.get("bias"), padding=padding)
    z = np.maximum(z, 0)
    if pool_size is not None:
        pool = stack[-1].pool_size
        z = pool_spec.max_pool2d_forward(z, pool, pool)
    np.testing.assert_allclose(y_inference, z, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y_inference.shape)
    dx_inference = model.backward(dy, input_gradient=True)
    grads_inference = {key: value.copy() for key, value in conv.grads.items()}

    y_training = model.forward(x, training=True)
    dx_training = model.backward(dy, input_gradient=True)
    np.testing.assert_allclose(y_inference, y_training, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_inference, dx_training, rtol=1e-12, atol=1e-12)
    for key, value in conv.grads.items():
        np.testing.assert_allclose(grads_inference[key], value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("paired_from_images", [1, 10**9])  # paired rows, pool-major cols
@pytest.mark.parametrize(
    "padding, pool_size, use_bias",
    [("valid", 2, True), ("same", (2, 1), False), ("valid", 3, True)],
)
def test_each_inference_path_of_a_layer_then_backward_equals_training(
    paired_from_images, padding, pool_size, use_bias, monkeypatch
):
    """Both inference paths through the layer (fused.conv2d_max_pool_inference, the path
    chosen by pairs_pay's batch size: forced here), at two batch sizes in turn and back: the
    spec's outputs each time, and a backward pass after an inference forward gives the
    training path's gradients (the training forward is rerun first: Winograd for the 2×2
    pooling, im2col for the others)."""
    monkeypatch.setattr(fused, "PAIRED_FROM_IMAGES", paired_from_images)
    conv = Conv2D(3, 3, padding=padding, activation="relu", use_bias=use_bias, dtype="float64")
    pool = MaxPooling2D(pool_size, dtype="float64")
    model = hn.Sequential([Input((9, 10, 9)), conv, pool], seed=4).build()
    rng = np.random.default_rng(4)
    if use_bias:
        conv.params["bias"][...] = rng.standard_normal(3)
    for batch in (1, 3, 1):
        x = rng.standard_normal((batch, 9, 10, 9))
        y_inference = model.forward(x, training=False)
        assert conv._layout(x, pool.pool_size).paired is (paired_from_images == 1)
        kernel, bias = conv.params["kernel"], conv.params.get("bias")
        z = conv_spec.conv2d_forward(x, kernel, bias, padding=padding)
        spec = pool_spec.max_pool2d_forward(np.maximum(z, 0), pool.pool_size, pool.pool_size)
        np.testing.assert_allclose(y_inference, spec, rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(y_inference.shape)
        dx_inference = model.backward(dy, input_gradient=True)
        grads_inference = {key: value.copy() for key, value in conv.grads.items()}
        y_training = model.forward(x, training=True)
        dx_training = model.backward(dy, input_gradient=True)
        if paired_from_images == 1 or conv._tiles is not None:  # other sums (Winograd's)
            np.testing.assert_allclose(y_inference, y_training, rtol=1e-12, atol=1e-12)
        else:  # the training forward's cols and product
            np.testing.assert_array_equal(y_inference, y_training)
        np.testing.assert_allclose(dx_inference, dx_training, rtol=1e-12, atol=1e-12)
        for key, value in conv.grads.items():
            np.testing.assert_allclose(grads_inference[key], value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("paired_from_images", [1, 10**9])
def test_inference_follows_weights_changed_in_place(paired_from_images, monkeypatch):
    """The inference paths keep their weight matrices from call to call, and rebuild them on
    every call: after the optimizer's steps (in place), set_weights (in place too) and a
    write into the kernel by hand, predict gives what a fresh model with those weights gives,
    at batch 1 and at a larger batch."""
    monkeypatch.setattr(fused, "PAIRED_FROM_IMAGES", paired_from_images)

    def make():
        return hn.Sequential(
            [
                Input((12, 12, 1)),
                Conv2D(8, 3, activation="relu"),
                MaxPooling2D(),
                Conv2D(8, 3, activation="relu"),
                Conv2D(6, 2, activation="relu"),
                MaxPooling2D(),
                Flatten(),
                Dense(3, activation="softmax"),
            ],
            seed=0,
        )

    model = make()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]

    def check():
        fresh = make().build()
        fresh.set_weights(model.get_weights())
        for batch in (x[:1], x):
            np.testing.assert_array_equal(model.predict(batch), fresh.predict(batch))

    model.predict(x[:1])
    model.predict(x)
    before = model.predict(x)
    model.train_on_batch(x, y)
    assert not np.array_equal(model.predict(x), before)
    check()
    model.set_weights([1.5 * w for w in model.get_weights()])
    check()
    convs[1].params["kernel"][0, 0] *= -1
    convs[2].params["bias"][...] = 0.25
    check()
    paired = any(layout.paired for layer in convs for layout in layer._layouts.values())
    assert paired is (paired_from_images == 1)


def test_a_replica_shares_no_inference_array():
    """Layer.replica drops the arrays a layer writes into (threads run replicas at once): the
    inference paths' too, their layouts (no arrays) may be shared."""
    conv = Conv2D(4, 3, activation="relu")
    model = hn.Sequential([Input((8, 8, 9)), conv, MaxPooling2D()], seed=0).build()
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 9)).astype(np.float32)
    y = model.forward(x, training=False)
    twin = conv.replica()
    arrays = [name for name, value in vars(conv).items() if isinstance(value, np.ndarray)]
    assert "_inference_weights" in arrays and "_cols" in arrays
    assert all(getattr(twin, name) is None for name in arrays if name.startswith("_"))
    np.testing.assert_array_equal(twin.forward_max_pooled(x, (2, 2)), y)
    assert not np.shares_memory(twin._inference_weights, conv._inference_weights)
