"""The execution plan's choices on graphs: fusion on and off, data parallelism across threads,
and freeing intermediate values as soon as no later step reads them."""

import tracemalloc

import numpy as np
import pytest

from handnet import layers
from handnet.layers.conv2d import Conv2D
from handnet.layers.fused import ConvMaxPool
from handnet.model import Model, Sequential
from handnet.training import parallel


def cnn(seed=0):
    """Conv2D(relu) → MaxPooling2D (fusable) twice, as a graph with a Concatenate head."""
    x = layers.Input((12, 12, 2), name="x")
    h = layers.Conv2D(4, 3, activation="relu", name="conv1")(x)
    h = layers.MaxPooling2D(2, name="pool1")(h)
    h = layers.Conv2D(6, 3, padding="same", name="conv2")(h)
    h = layers.MaxPooling2D(1, name="pool2")(h)
    flat = layers.Flatten(name="flat")(h)
    joined = layers.Concatenate(name="cat")([flat, layers.GlobalAveragePooling2D(name="gap")(x)])
    return Model(x, layers.Dense(5, activation="softmax", name="out")(joined), seed=seed)


def images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 12, 12, 2)).astype("f4"), rng.integers(0, 5, n)


def test_fuse_false_runs_the_plain_layers_and_fuse_true_fuses():
    fused, plain = cnn().compile("sgd"), cnn().compile("sgd", fuse=False)
    assert [type(s.layer) for s in fused.plan().steps].count(ConvMaxPool) == 2
    steps = [step.layer for step in plain.plan().steps]
    assert steps == plain.layers  # one step per layer, each the layer itself
    assert not any(isinstance(layer, ConvMaxPool) for layer in steps)


def test_with_fuse_false_stepping_in_lands_in_conv2d_forward(monkeypatch):
    calls = []
    original = Conv2D.forward

    def spy(self, x, training=False):
        calls.append(self.name)
        return original(self, x, training)

    monkeypatch.setattr(Conv2D, "forward", spy)
    x, _ = images()
    cnn().compile("sgd", fuse=False).predict(x)
    assert calls == ["conv1", "conv2"]
    calls.clear()
    cnn().compile("sgd").predict(x)
    assert calls == []  # fused: Conv2D.forward_max_pooled ran instead


def test_fuse_false_gives_the_same_forward_gradients_and_training():
    x, y = images()
    fused, plain = cnn().compile("sgd", fuse=True), cnn().compile("sgd", fuse=False)
    np.testing.assert_allclose(plain.predict(x), fused.predict(x), rtol=1e-5, atol=1e-7)
    loss_fused, _, _ = fused.compute_gradients(x, y)
    loss_plain, _, _ = plain.compute_gradients(x, y)
    assert loss_plain == pytest.approx(loss_fused, rel=1e-6)
    for (key, _, g_fused), (_, _, g_plain) in zip(
        fused.trainable_variables(), plain.trainable_variables(), strict=True
    ):
        np.testing.assert_allclose(g_plain, g_fused, rtol=1e-4, atol=1e-6, err_msg=key)
    for _ in range(3):
        fused.train_on_batch(x, y)
        plain.train_on_batch(x, y)
    for mine, theirs in zip(fused.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(theirs, mine, rtol=1e-4, atol=1e-6)
    assert not np.array_equal(fused.get_weights()[0], cnn().get_weights()[0])


# -- data parallelism ---------------------------------------------------------------------------
def residual_bn_model(seed=0, shared_bn=False):
    x = layers.Input((8, 8, 2), name="x")
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(x)
    norm = layers.BatchNormalization(name="bn")
    # No bias before BatchNormalization: its true gradient is 0 (BN subtracts the mean), so Adam
    # would move it by the sign of rounding noise, which differs between 1 and 2 threads.
    h = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(stem)
    h = layers.ReLU(name="relu")(layers.Add(name="add")([stem, norm(h)]))
    if shared_bn:
        h = norm(h)
    h = layers.Dropout(0.2, name="drop")(layers.Flatten(name="flat")(h))
    return Model(x, layers.Dense(3, activation="softmax", name="out")(h), seed=seed)


@pytest.fixture
def split_small_models(monkeypatch):
    """The test models are tiny: let them split (the real thresholds are about speed)."""
    monkeypatch.setattr(parallel, "MIN_WORK", 0)


def blobs(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 2)).astype("f4"), rng.integers(0, 3, n)


def test_a_graph_with_batch_norm_and_add_trains_split_as_whole(split_small_models):
    x, y = blobs()
    whole = residual_bn_model().compile("adam")
    split = residual_bn_model().compile("adam")
    split.get_layer("drop").rate = whole.get_layer("drop").rate = 0.0  # masks differ per thread
    splitter = parallel.splitter(split, 2, np.random.default_rng(0), 32)
    assert isinstance(splitter, parallel.BatchSplitter)
    # The replicas read the model's own parameter arrays (and own their gradients).
    for layer, twin in zip(split.layers, splitter.replicas[1].layers):
        for key in layer.params:
            assert twin.params[key] is layer.params[key]
            assert twin.grads[key] is not layer.grads[key]
    h_whole = whole.fit(x, y, epochs=2, batch_size=32, threads=1, seed=0, verbose=0)
    h_split = split.fit(x, y, epochs=2, batch_size=32, threads=2, seed=0, verbose=0)
    np.testing.assert_allclose(h_split.history["loss"], h_whole.history["loss"], rtol=1e-5)
    for key, mine in whole.weights().items():
        np.testing.assert_allclose(split.weights()[key], mine, rtol=1e-4, atol=1e-5, err_msg=key)
    # The moving statistics came from whole-batch statistics in both.
    bn_whole, bn_split = whole.get_layer("bn"), split.get_layer("bn")
    np.testing.assert_allclose(bn_split.state["moving_mean"], bn_whole.state["moving_mean"],
                               rtol=1e-5, atol=1e-6)


def test_split_predictions_equal_whole(split_small_models):
    x, _ = blobs()
    model = residual_bn_model()
    splitter = parallel.splitter(model, 2, np.random.default_rng(0), 64)
    with splitter:
        split = splitter.forward([x])
    np.testing.assert_allclose(split, model.forward([x]), rtol=1e-5, atol=1e-7)


def test_a_graph_that_cannot_split_runs_whole_and_says_why(split_small_models, capsys):
    model = residual_bn_model(shared_bn=True).compile("adam")
    runner = parallel.splitter(model, 2, np.random.default_rng(0), 32, verbose=1)
    assert isinstance(runner, parallel.Serial)
    line = capsys.readouterr().out.strip()
    assert line == (
        "handnet.training.parallel: 2 threads wanted, each batch runs whole: layer 'bn' "
        "(BatchNormalization) is called 2 times: its parts cannot share whole-batch statistics"
    )
    x, y = blobs()
    model.fit(x, y, epochs=1, batch_size=32, threads=2, verbose=1)
    assert "is called 2 times" in capsys.readouterr().out
    parallel.splitter(model, 2, None, 32, verbose=0)
    assert capsys.readouterr().out == ""


def test_the_whole_run_reasons_name_the_cause(monkeypatch, capsys):
    model = residual_bn_model()
    parallel.splitter(model, 2, None, 16, verbose=1)
    assert "batches of 16 are too small" in capsys.readouterr().out
    parallel.splitter(model, 2, None, 64, verbose=1)
    assert f"multiply-adds per sample, below the {parallel.MIN_WORK:,}" in capsys.readouterr().out
    parallel.splitter(model, 1, None, 64, verbose=1)  # one thread asked: nothing to explain
    assert capsys.readouterr().out == ""


def test_a_nested_model_with_batch_norm_called_twice_runs_whole(split_small_models):
    inner_x = layers.Input((4,), name="ix")
    inner = Model(inner_x, layers.BatchNormalization(name="ibn")(inner_x), name="inner")
    x = layers.Input((4,), name="x")
    model = Model(x, layers.Dense(2, name="o")(inner(inner(x))))
    assert isinstance(parallel.splitter(model, 2, None, 32), parallel.Serial)


# -- freeing intermediates ----------------------------------------------------------------------
def residual_cnn(blocks=10, channels=16, size=28, seed=0):
    """``blocks`` blocks of Conv2D-BN-ReLU-Conv2D-BN-Add-ReLU at size × size × channels."""
    x = layers.Input((size, size, 1), name="x")
    h = layers.Conv2D(channels, 3, padding="same", activation="relu", name="stem")(x)
    for b in range(blocks):
        y = layers.Conv2D(channels, 3, padding="same", name=f"b{b}_conv1")(h)
        y = layers.ReLU(name=f"b{b}_relu1")(layers.BatchNormalization(name=f"b{b}_bn1")(y))
        y = layers.Conv2D(channels, 3, padding="same", name=f"b{b}_conv2")(y)
        y = layers.BatchNormalization(name=f"b{b}_bn2")(y)
        h = layers.ReLU(name=f"b{b}_relu2")(layers.Add(name=f"b{b}_add")([h, y]))
    pooled = layers.GlobalAveragePooling2D(name="gap")(h)
    return Model(x, layers.Dense(10, activation="softmax", name="out")(pooled), seed=seed)


def peak_bytes(run):
    """Peak bytes traced while ``run()`` runs (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_freeing_intermediates_lowers_the_forward_peak(monkeypatch):
    """With freeing, a block's BatchNormalization outputs and sums go once read; without it
    (every value kept to the end of the pass), the peak grows by about one tensor a layer.
    (At batch 128 the forward peak was 386 MB with freeing and 557 MB without.)"""
    model = residual_cnn().compile("sgd")
    x = np.random.default_rng(0).standard_normal((16, 28, 28, 1)).astype("f4")
    plan = model.plan()
    plan.forward([x], training=True)  # warm: the layers' reused buffers exist
    freed = peak_bytes(lambda: plan.forward([x], training=True))
    # Nothing is read "for the last time": the schedule frees no value.
    monkeypatch.setattr(plan, "_schedule", [(*entry[:4], []) for entry in plan._schedule])
    kept = peak_bytes(lambda: plan.forward([x], training=True))
    tensor = 16 * 28 * 28 * 16 * 4
    # 10 blocks each free at least two tensors (a BN output and the Add's sum) early.
    assert kept - freed > 10 * 2 * tensor * 0.9, (freed / 2**20, kept / 2**20)
    monkeypatch.undo()
    np.testing.assert_array_equal(plan.forward([x])[0], model.forward(x))


def test_the_plan_frees_each_value_after_its_last_reader():
    model = residual_cnn(blocks=2, channels=2, size=6)
    plan = model.plan()
    names = {}
    for node in model.nodes:
        for tensor in node.outputs:
            names[tensor] = node.layer.name
    for key, last in plan.last_read.items():
        if key in plan.outputs:
            assert last == len(plan.steps)
            continue
        readers = [i for i, step in enumerate(plan.steps) if key in step.inputs]
        assert last == max(readers)
    # The residual input of each block is read by its Add, steps after the convs.
    first_add = next(i for i, s in enumerate(plan.steps) if s.layer.name == "b0_add")
    stem = next(i for i, s in enumerate(plan.steps) if s.layer.name == "stem")
    assert plan.last_read[plan.steps[stem].outputs[0]] == first_add
    assert isinstance(model, Model) and not isinstance(model, Sequential)
