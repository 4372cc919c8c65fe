"""Bidirectional: gradients against finite differences for every merge, the backward direction
against its definition (a layer reading x_T … x_t), config, saving, the optimizer, parallel
replicas, checkpoints, and errors."""

import copy

import numpy as np
import pytest

import handnet as hn
from handnet.training import checkpoint, parallel
from handnet.errors import HandnetError
from handnet.layers import GRU, LSTM, Bidirectional, Dense, Input, SimpleRNN

RECURRENT = [SimpleRNN, LSTM, GRU]
MERGE_MODES = ["concat", "sum", "mul", "ave"]


def built(layer, shape, seed=0):
    layer.build(shape, rng=np.random.default_rng(seed))
    return layer


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("layer_class", RECURRENT, ids=lambda c: c.__name__)
def test_gradients_match_finite_differences(layer_class, return_sequences, merge_mode):
    layer = Bidirectional(layer_class(2, return_sequences=return_sequences), merge_mode=merge_mode)
    report = hn.gradcheck(layer, input_shape=(3, 2), batch_size=2)  # a random upstream gradient
    assert report.passed, str(report)
    assert {row.quantity for row in report.rows} >= {
        "forward_layer/kernel",
        "backward_layer/kernel",
    }


def test_gradients_with_a_given_backward_layer_of_other_units_and_regularizers():
    layer = Bidirectional(
        LSTM(2, return_sequences=True, kernel_regularizer="l2"),
        backward_layer=GRU(3, return_sequences=True, recurrent_regularizer="l1"),
    )
    report = hn.gradcheck(layer, input_shape=(3, 2), batch_size=2)
    assert report.passed, str(report)
    assert built(layer, (3, 2)).output_shape == (3, 5)


def test_the_backward_direction_at_step_t_has_read_the_sequence_from_its_end_to_t():
    timesteps, features = 5, 3
    layer = built(Bidirectional(LSTM(4, return_sequences=True)), (timesteps, features))
    x = np.random.default_rng(1).standard_normal((2, timesteps, features))
    y = layer.forward(x)
    for t in range(timesteps):
        # A one-way LSTM with the backward direction's weights, fed x_T, x_{T-1}, …, x_t.
        oracle = built(LSTM(4), (timesteps - t, features))
        for key, value in layer.backward_layer.params.items():
            oracle.params[key][...] = value
        np.testing.assert_allclose(
            y[:, t, 4:], oracle.forward(x[:, t:][:, ::-1]), rtol=1e-5, atol=1e-6
        )
    forward_only = built(LSTM(4, return_sequences=True), (timesteps, features))
    for key, value in layer.forward_layer.params.items():
        forward_only.params[key][...] = value
    np.testing.assert_array_equal(y[..., :4], forward_only.forward(x))


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
def test_merges_and_shapes(merge_mode):
    layer = built(Bidirectional(GRU(3), merge_mode=merge_mode), (4, 2))
    x = np.random.default_rng(2).standard_normal((5, 4, 2)).astype(np.float32)
    a = layer.forward_layer.forward(x)
    b = layer.backward_layer.forward(x[:, ::-1])
    expected = {
        "concat": np.concatenate([a, b], axis=-1),
        "sum": a + b,
        "mul": a * b,
        "ave": (a + b) / 2,
    }[merge_mode]
    y = layer.forward(x)
    assert y.shape == (5, *layer.output_shape) and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_backward_leaves_the_upstream_gradient_untouched(merge_mode, return_sequences):
    layer = built(
        Bidirectional(SimpleRNN(3, return_sequences=return_sequences), merge_mode), (4, 2)
    )
    y = layer.forward(np.random.default_rng(3).standard_normal((2, 4, 2)))
    dy = np.random.default_rng(4).standard_normal(y.shape)
    saved = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(dy, saved)


def test_config_round_trip_and_names():
    wrapped = LSTM(3, return_sequences=True, unit_forget_bias=False, name="encoder")
    layer = Bidirectional(wrapped, merge_mode="mul", name="both_ways")
    assert (layer.forward_layer.name, layer.backward_layer.name) == (
        "forward_encoder",
        "backward_encoder",
    )
    assert layer.forward_layer is not wrapped  # a copy made from its config, as in Keras
    config = layer.get_config()
    assert config["layer"]["class_name"] == "LSTM" and config["merge_mode"] == "mul"
    rebuilt = hn.layers.deserialize({"class_name": "Bidirectional", "config": config})
    assert rebuilt.get_config() == config
    assert rebuilt.forward_layer.name == layer.forward_layer.name  # not forward_forward_…
    assert repr(rebuilt).startswith("Bidirectional(LSTM(units=3")


def model_with_bidirectional(seed=3, dtype="float32"):
    model = hn.Sequential(
        [
            Input((4, 3)),
            Bidirectional(GRU(4, return_sequences=True), merge_mode="ave", dtype=dtype),
            Bidirectional(LSTM(3, kernel_regularizer="l2"), dtype=dtype),
            Dense(3, activation="softmax", dtype=dtype),
        ],
        seed=seed,
    )
    model.compile(hn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    return model.build()


def sequences(samples=96, seed=7):
    rng = np.random.default_rng(seed)
    y = np.arange(samples) % 3
    x = rng.standard_normal((samples, 4, 3)).astype(np.float32) + y[:, None, None]
    return x, y


def test_parameters_are_named_per_direction_and_trained_by_the_optimizer():
    model = model_with_bidirectional()
    names = [key for key, _, _ in model.trainable_variables()]
    assert names[:3] == [
        f"{model.layers[0].name}/forward_layer/kernel",
        f"{model.layers[0].name}/forward_layer/recurrent_kernel",
        f"{model.layers[0].name}/forward_layer/bias",
    ]
    assert model.layers[0].count_params() == 2 * model.layers[0].forward_layer.count_params()
    x, y = sequences()
    before = model.get_weights()
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_save_and_load_round_trip(tmp_path):
    model = model_with_bidirectional()
    x, y = sequences()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=0)
    model.save(tmp_path / "model.npz")
    loaded = hn.load_model(tmp_path / "model.npz")
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # The optimizer's slots came back too: one more epoch gives the same weights bit for bit.
    for trained in (model, loaded):
        trained.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=1)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def split_tiny_models(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK", 0)


def test_replicas_share_parameters_and_own_gradients_and_caches():
    layer = built(Bidirectional(LSTM(3)), (4, 2))
    twin = layer.replica(np.random.default_rng(0))
    assert twin.forward_layer is not layer.forward_layer
    for key, value in layer.params.items():
        assert twin.params[key] is value
        assert twin.grads[key] is not layer.grads[key]
    assert copy.copy(layer).backward_layer.params["kernel"] is layer.backward_layer.params["kernel"]


@pytest.mark.usefixtures("split_tiny_models")
def test_a_split_batch_gives_the_whole_batchs_gradients():
    whole = model_with_bidirectional(dtype="float64")
    split_model = model_with_bidirectional(dtype="float64")
    x, y = sequences(64)
    loss, predictions, _ = whole.compute_gradients(x.astype(np.float64), y)
    with parallel.BatchSplitter(split_model, 2) as split:
        split_loss, split_predictions = split.compute_gradients(x.astype(np.float64), y)
    np.testing.assert_allclose(split_loss, loss, rtol=1e-12)
    np.testing.assert_allclose(split_predictions, predictions, rtol=1e-12, atol=1e-15)
    for a, b in zip(whole.layers, split_model.layers):
        for key in a.grads:
            np.testing.assert_allclose(
                b.grads[key], a.grads[key], rtol=1e-10, atol=1e-14, err_msg=key
            )


@pytest.mark.usefixtures("split_tiny_models")
def test_training_on_two_threads_equals_one_thread():
    serial, split = model_with_bidirectional(), model_with_bidirectional()
    x, y = sequences()
    serial.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=0, threads=1)
    split.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=0, threads=2)
    for a, b in zip(serial.get_weights(), split.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


class InterruptAt(hn.callbacks.Callback):
    """Raises KeyboardInterrupt at the second batch of epoch 1 (a stop that does not wait)."""

    def __init__(self):
        self.current = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if self.current == 1 and batch == 1:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


@pytest.mark.usefixtures("split_tiny_models")
def test_an_interrupted_run_on_two_threads_resumes_bit_for_bit(tmp_path):
    x, y = sequences()

    def fit(model, callbacks=None):
        return model.fit(
            x, y, epochs=3, batch_size=32, verbose=0, seed=5, threads=2, callbacks=callbacks
        )

    reference = model_with_bidirectional()
    fit(reference)
    with pytest.raises(KeyboardInterrupt):
        fit(model_with_bidirectional(), [hn.callbacks.BackupAndRestore(tmp_path), InterruptAt()])
    assert checkpoint.read(tmp_path / checkpoint.FILENAME).epoch == 1
    resumed = model_with_bidirectional()
    fit(resumed, [hn.callbacks.BackupAndRestore(tmp_path)])
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("merge_mode", ["max", None, "Concat"])
def test_an_unknown_merge_mode_is_refused_naming_the_supported_ones(merge_mode):
    with pytest.raises(
        HandnetError, match=r"merge_mode must be one of 'concat', 'sum', 'mul', 'ave'"
    ):
        Bidirectional(LSTM(3), merge_mode=merge_mode)


def test_none_merge_mode_says_why():
    with pytest.raises(HandnetError, match="two outputs"):
        Bidirectional(LSTM(3), merge_mode=None)


@pytest.mark.parametrize("wrapped", [Dense(3), "lstm"], ids=["Dense", "str"])
def test_a_non_recurrent_layer_is_refused(wrapped):
    with pytest.raises(HandnetError, match=r"must be a recurrent layer \(SimpleRNN, LSTM or GRU\)"):
        Bidirectional(wrapped)
    with pytest.raises(HandnetError, match="backward_layer must be a recurrent layer"):
        Bidirectional(LSTM(3), backward_layer=wrapped)


def test_mismatched_directions_are_refused():
    with pytest.raises(HandnetError, match="return_sequences"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3, return_sequences=True))
    with pytest.raises(HandnetError, match="same units; got 3 and 2"):
        Bidirectional(LSTM(3), merge_mode="sum", backward_layer=GRU(2))


def test_the_input_must_be_a_sequence():
    with pytest.raises(HandnetError, match=r"sequences \(None, timesteps, features\)"):
        Bidirectional(LSTM(3)).build((12,))


@pytest.mark.parametrize("merge_mode, merge", [("concat", "y = [a, b]"), ("mul", "y = a · b")])
def test_explain_shows_both_directions_and_the_merge(merge_mode, merge):
    from handnet.explain import explain

    model = hn.Sequential(
        [hn.layers.Input((5, 3)), Bidirectional(hn.layers.GRU(4), merge_mode=merge_mode)], seed=0
    ).build()
    text = explain(model)
    assert "GRU both ways, 4 units" in text and "x_T…x_1" in text and merge in text
