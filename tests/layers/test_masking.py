"""Embedding, Masking, and masks through the graph into SimpleRNN, LSTM, GRU and Bidirectional:
the formulas, gradient checks in float64 (masked tails and a masked step in the middle), the
mask's path through the execution plan, configs, explain, errors, and a padded model that
trains. Keras parity: tests/keras/test_masking_keras.py."""

import warnings

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.explain import explain
from handnet.gradcheck import gradcheck, relative_error
from handnet.layers import (
    GRU,
    LSTM,
    Add,
    BatchNormalization,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    Masking,
    SimpleRNN,
    TimeDistributed,
)
from handnet.model.plan import Plan

T = 6
TOLERANCE = 1e-7


def padded_tokens(rng, vocabulary=6, batch=4):
    """(batch, T) indices, 0 = padding: a masked tail, a masked step in the middle, a padded
    first step, a sequence with one real step."""
    x = rng.integers(1, vocabulary, size=(batch, T))
    x[0, 4:] = 0
    x[1, 2] = 0
    x[2, 0] = 0
    x[3, 1:] = 0
    return x


def step_mask():
    mask = np.ones((4, T), dtype=bool)
    mask[0, 4:] = False
    mask[1, 2] = False
    mask[2, 0] = False
    mask[3, 1:] = False
    return mask


def numeric_gradient(f, array, h=1e-6):
    grad = np.zeros_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        plus = f()
        flat[i] = saved - h
        minus = f()
        flat[i] = saved
        out[i] = (plus - minus) / (2 * h)
    return grad


# -- Embedding ------------------------------------------------------------------------------
def test_embedding_looks_up_rows_and_scatter_adds_repeated_indices():
    rng = np.random.default_rng(0)
    layer = Embedding(5, 3)
    layer.build((4,), rng=rng)
    x = np.array([[1, 1, 0, 4], [4, 2, 1, 1]])
    y = layer.forward(x)
    table = layer.params["embeddings"]
    assert y.shape == (2, 4, 3) and y.dtype == np.float32
    for n in range(2):  # the loop spec
        for t in range(4):
            assert np.array_equal(y[n, t], table[x[n, t]])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    assert layer.backward(dy) is None  # integer indices have no gradient
    expected = np.zeros_like(table)
    for n in range(2):
        for t in range(4):
            expected[x[n, t]] += dy[n, t]  # index 1 read four times: four rows added
    np.testing.assert_allclose(layer.grads["embeddings"], expected, rtol=1e-6)
    assert np.all(layer.grads["embeddings"][3] == 0)  # never read
    # A second pass starts from zero again, not from the first pass's sums.
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["embeddings"], expected, rtol=1e-6)


def test_embedding_gradient_check():
    x = np.array([[1, 0, 3, 1], [4, 4, 2, 0], [2, 3, 1, 1]])
    layer = Embedding(5, 3, embeddings_regularizer=hn.regularizers.L1L2(l2=0.01))
    report = gradcheck(layer, x)
    assert report.passed, str(report)
    assert [row.quantity for row in report.rows] == ["embeddings"]  # no row for integer x


def test_embedding_of_any_rank_and_keras_initializer():
    layer = Embedding(10, 4)
    layer.build((2, 3), rng=np.random.default_rng(0))
    assert layer.forward(np.zeros((5, 2, 3), dtype=int)).shape == (5, 2, 3, 4)
    table = layer.params["embeddings"]
    assert table.shape == (10, 4) and np.abs(table).max() <= 0.05  # Keras's U(-0.05, 0.05)


@pytest.mark.parametrize(
    "x, message",
    [
        ([[0, 5]], r"indices must be in \[0, 4\], got 5"),
        ([[-1, 2]], r"indices must be in \[0, 4\], got -1"),
        ([[0.5, 2]], "non-integer values such as 0.5"),
        ([[np.nan, 2]], "non-integer values such as nan"),
    ],
)
def test_embedding_refuses_indices_out_of_range_or_not_whole(x, message):
    layer = Embedding(5, 2)
    layer.build((2,))
    with pytest.raises(InvalidInputError, match=message):
        layer.forward(np.array(x, dtype=np.float32 if np.asarray(x).dtype.kind == "f" else int))


def test_embedding_refuses_a_table_too_large_for_exact_float32_indices():
    layer = Embedding(2**24 + 1, 1)  # not built: the check comes before the table is read
    with pytest.raises(InvalidInputError, match=r"above 2\*\*24.*float64"):
        layer.indices(np.zeros((1, 2), dtype=np.float32))
    assert layer.indices(np.zeros((1, 2), dtype=np.float64)).dtype == np.intp


def test_model_with_an_embedding_first_keeps_integer_inputs_exact():
    """Inputs are cast to the model's float32, which holds every index < 2**24 exactly: a
    token id beyond float16's or bfloat16's range comes back as the same row."""
    embedding = Embedding(70_000, 2)
    model = hn.Sequential([Input((3,)), embedding], seed=0).build()
    x = np.array([[69_999, 65_537, 1]])
    table = embedding.params["embeddings"]
    np.testing.assert_array_equal(model.predict(x), table[x])
    with pytest.raises(InvalidInputError, match="input_dim 70000"):
        model.predict(np.array([[70_000, 0, 0]]))


# -- Masking --------------------------------------------------------------------------------
def test_masking_zeroes_masked_steps_and_makes_the_mask():
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    x[0, 1] = 7.0
    x[1, 3] = 7.0
    x[1, 0, 0] = 7.0  # one feature equal to mask_value is not enough
    layer = Masking(7.0)
    layer.build((4, 3))
    y = layer.forward(x)
    mask = layer.compute_mask(x, None)
    np.testing.assert_array_equal(mask, [[True, False, True, True], [True, True, True, False]])
    assert np.all(y[0, 1] == 0) and np.all(y[1, 3] == 0)
    np.testing.assert_array_equal(y[mask], x[mask])
    dy = np.ones_like(y)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx, np.where(mask[..., None], dy, 0))
    report = gradcheck(Masking(7.0), input_shape=(4, 3))  # real steps only: see LAYER_CHECKS
    assert report.passed, str(report)


# -- masked recurrent layers ----------------------------------------------------------------
RECURRENT = [
    lambda rs: SimpleRNN(3, return_sequences=rs),
    lambda rs: LSTM(3, return_sequences=rs),
    lambda rs: GRU(3, return_sequences=rs),
    lambda rs: Bidirectional(LSTM(3, return_sequences=rs)),
    lambda rs: Bidirectional(GRU(2, return_sequences=rs), merge_mode="mul"),
    lambda rs: Bidirectional(SimpleRNN(2, return_sequences=rs), merge_mode="ave"),
]
RECURRENT_IDS = ["SimpleRNN", "LSTM", "GRU", "Bi-LSTM", "Bi-GRU-mul", "Bi-SimpleRNN-ave"]


@pytest.mark.parametrize("make", RECURRENT, ids=RECURRENT_IDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_recurrent_layer_gradient_check(make, return_sequences):
    """∂L/∂θ and ∂L/∂x against central differences with the mask held fixed; the masked
    steps' inputs get exactly 0."""
    rng = np.random.default_rng(1)
    layer = make(return_sequences).cast("float64")
    layer.build((T, 2), rng=rng)
    x = rng.standard_normal((4, T, 2))
    mask = step_mask()
    y = layer.forward(x, mask=mask)
    upstream = rng.standard_normal(y.shape)
    layer.needs_input_gradient = True
    dx = layer.backward(upstream)
    analytic = {key: value.copy() for key, value in layer.grads.items()}

    def loss():
        return float((layer.forward(x, mask=mask) * upstream).sum())

    for key, param in layer.params.items():
        error = relative_error(analytic[key], numeric_gradient(loss, param))
        assert error < TOLERANCE, f"{key}: {error:.2e}"
    assert relative_error(dx, numeric_gradient(loss, x)) < TOLERANCE
    assert np.all(dx[~mask] == 0)


@pytest.mark.parametrize("kind", [SimpleRNN, LSTM, GRU])
def test_masked_steps_carry_the_state_and_output_it(kind):
    """h_t = h_(t-1) at a masked step; with return_sequences the output there is that carried
    state (Keras: the previous output, 0 before any real step); the result equals running the
    real steps alone."""
    rng = np.random.default_rng(2)
    layer = kind(3, return_sequences=True)
    layer.build((T, 2), rng=rng)
    x = rng.standard_normal((4, T, 2)).astype(np.float32)
    mask = step_mask()
    y = layer.forward(x, mask=mask)
    np.testing.assert_array_equal(y[0, 4], y[0, 3])
    np.testing.assert_array_equal(y[0, 5], y[0, 3])
    np.testing.assert_array_equal(y[1, 2], y[1, 1])
    assert np.all(y[2, 0] == 0)
    for n in range(4):
        real = x[n : n + 1, mask[n]]
        alone = kind.from_config(layer.get_config())
        alone.build((real.shape[1], 2))
        for key in layer.params:
            alone.params[key][...] = layer.params[key]
        np.testing.assert_allclose(alone.forward(real)[0], y[n, mask[n]], atol=1e-6)
    last = kind.from_config({**layer.get_config(), "return_sequences": False})
    last.build((T, 2))
    for key in layer.params:
        last.params[key][...] = layer.params[key]
    np.testing.assert_array_equal(last.forward(x, mask=mask), y[:, -1])


def test_a_mask_of_all_true_runs_the_plain_loop_bit_for_bit():
    rng = np.random.default_rng(3)
    layer = LSTM(3, return_sequences=True)
    layer.build((T, 2), rng=rng)
    x = rng.standard_normal((2, T, 2)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x, mask=np.ones((2, T), bool)), layer.forward(x))


def test_a_mask_of_the_wrong_shape_is_refused():
    layer = GRU(2)
    layer.build((T, 2))
    with pytest.raises(InvalidInputError, match=r"mask of shape \(4, 5\).*expected"):
        layer.forward(np.zeros((4, T, 2)), mask=np.ones((4, 5), bool))


def test_bidirectional_with_sequences_zeroes_the_masked_steps():
    rng = np.random.default_rng(4)
    layer = Bidirectional(SimpleRNN(2, return_sequences=True))
    layer.build((T, 2), rng=rng)
    x = rng.standard_normal((4, T, 2)).astype(np.float32)
    mask = step_mask()
    y = layer.forward(x, mask=mask)
    assert np.all(y[~mask] == 0) and np.all(y[mask] != 0)
    # The backward direction reads the real steps in reverse: for sequence 3 (one real step
    # first), its output there is one step from h_0, as the forward direction's is.
    alone = SimpleRNN.from_config(layer.backward_layer.get_config())
    alone.build((1, 2))
    for key in alone.params:
        alone.params[key][...] = layer.backward_layer.params[key]
    np.testing.assert_allclose(y[3, 0, 2:], alone.forward(x[3:4, :1])[0, 0], atol=1e-6)


# -- models: masks through the plan ---------------------------------------------------------
def token_model(recurrent, seed=0, vocabulary=6):
    inputs = Input((T,))
    x = Embedding(vocabulary, 3, mask_zero=True)(inputs.tensor)
    x = recurrent(x)
    return hn.Model(inputs.tensor, Dense(2)(x), seed=seed)


@pytest.mark.parametrize("make", RECURRENT, ids=RECURRENT_IDS)
def test_embedding_mask_zero_model_gradient_check(make):
    """Embedding(mask_zero=True) → recurrent (a stack of two when return_sequences) → Dense,
    on padded tokens: every weight, the table's included."""
    inputs = Input((T,))
    x = Embedding(6, 3, mask_zero=True)(inputs.tensor)
    x = make(True)(x)
    x = Dropout(0.3)(x)  # passes the mask on, in training mode too
    x = make(False)(x)
    model = hn.Model(inputs.tensor, Dense(2)(x), seed=0)
    report = gradcheck(model, padded_tokens(np.random.default_rng(5)), training=True)
    assert report.passed, str(report)
    assert {row.layer for row in report.rows} == {m.name for m in model.layers if m.params}


def test_masking_model_gradient_check_and_no_gradient_to_padding():
    inputs = Input((T, 2))
    x = Masking(0.0)(inputs.tensor)
    x = GRU(3, return_sequences=True)(x)
    x = Dense(3, activation="tanh")(x)  # time-distributed, passes the mask on
    model = hn.Model(inputs.tensor, LSTM(2)(x), seed=0)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, T, 2))
    x[~step_mask()] = 0
    report = gradcheck(model, x)  # nudging a padded step's zeros would unmask it: see below
    assert report.rows[-1].quantity == "x"
    assert max(row.error for row in report.rows[:-1]) < TOLERANCE, str(report)
    model.cast("float64")
    model.forward(x)
    dx = model.backward(rng.standard_normal((4, 2)), input_gradient=True)
    assert np.all(dx[~step_mask()] == 0) and np.all(dx[step_mask()] != 0)


def test_models_without_a_mask_source_run_the_plain_loop(monkeypatch):
    model = hn.Sequential([Input((T, 2)), LSTM(3), Dense(2)], seed=0)
    plan = model.plan()
    assert not plan.masked
    monkeypatch.setattr(Plan, "_forward_masked", lambda *a: pytest.fail("masked loop ran"))
    model.predict(np.zeros((2, T, 2)))
    assert Embedding(3, 2).makes_mask is False  # mask_zero=False: no mask either
    assert not hn.Sequential([Input((T,)), Embedding(3, 2), LSTM(2)]).plan().masked


def test_mask_goes_through_supporting_layers_and_stops_at_the_last_state():
    inputs = Input((T,))
    e = Embedding(6, 3, mask_zero=True)(inputs.tensor)
    d = Dense(4)(e)
    seq = LSTM(3, return_sequences=True)(Dropout(0.5)(d))
    last = GRU(2)(seq)
    model = hn.Model(inputs.tensor, [seq, last], seed=0)
    tokens = padded_tokens(np.random.default_rng(7))
    plan = model.plan()
    outputs = plan.forward([tokens.astype(np.float32)])
    np.testing.assert_array_equal(plan.output_masks[0], tokens != 0)
    assert plan.output_masks[1] is None
    traced = dict((node.layer.name, out) for node, out in model.trace(tokens.astype(np.float32)))
    np.testing.assert_array_equal(traced[model.layers[-1].name], outputs[1])


def test_mask_passes_through_the_layers_keras_passes_it_through():
    model = hn.Sequential(
        [
            Input((T,)),
            Embedding(6, 3, mask_zero=True),
            hn.layers.ReLU(),
            hn.layers.LayerNormalization(),
            hn.layers.GaussianNoise(0.1),
            LSTM(2, return_sequences=True),
        ],
        seed=0,
    )
    tokens = padded_tokens(np.random.default_rng(11))
    plan = model.plan()
    plan.forward([tokens.astype(np.float32)], training=True)
    np.testing.assert_array_equal(plan.output_masks[0], tokens != 0)


def test_a_mask_made_inside_a_nested_model_comes_out_of_it():
    """Keras propagates a nested model's output mask: the LSTM after it skips the padding."""
    inner_input = Input((T,))
    embedding = Embedding(6, 3, mask_zero=True)
    inner = hn.Model(inner_input.tensor, Dense(4)(embedding(inner_input.tensor)), seed=0)
    outer_input = Input((T,))
    lstm = LSTM(2)
    model = hn.Model(outer_input.tensor, lstm(inner(outer_input.tensor)), seed=1)
    tokens = padded_tokens(np.random.default_rng(12))
    y = model.predict(tokens)
    hidden = inner.predict(tokens)
    np.testing.assert_array_equal(y, lstm.forward(hidden, mask=tokens != 0))
    assert not np.array_equal(y, lstm.forward(hidden))


def test_layers_keras_would_make_use_the_mask_refuse_it():
    inputs = Input((T,))
    e = Embedding(6, 3, mask_zero=True)(inputs.tensor)
    model = hn.Model(inputs.tensor, Add()([e, e]))
    with pytest.raises(HandnetError, match=r"\(Add\) receives a mask.*not support"):
        model.predict(np.ones((1, T)))
    model = hn.Sequential([Input((T,)), Embedding(6, 3, mask_zero=True), BatchNormalization()])
    with pytest.raises(HandnetError, match=r"\(BatchNormalization\) receives a mask"):
        model.predict(np.ones((1, T)))
    inner = hn.Sequential([Input((T, 3)), LSTM(2)])
    model = hn.Sequential([Input((T,)), Embedding(6, 3, mask_zero=True), inner])
    with pytest.raises(HandnetError, match=r"\(Sequential\) receives a mask"):
        model.predict(np.ones((1, T)))


def test_layers_without_mask_support_drop_it_with_keras_warning():
    model = hn.Sequential(
        [Input((T,)), Embedding(6, 3, mask_zero=True), Flatten(), Dense(2)], seed=0
    )
    with pytest.warns(UserWarning, match="does not support masking and drops the mask"):
        model.predict(np.ones((1, T)))
    assert model.plan().output_masks == [None]


def tagger(seed=0, head=None):
    """Embedding(mask_zero=True) -> LSTM(return_sequences) -> a per-step head: its output
    (N, T, K) carries the padding mask to the loss."""
    inputs = Input((T,))
    x = Embedding(6, 3, mask_zero=True)(inputs.tensor)
    x = LSTM(4, return_sequences=True)(x)
    y = (head or Dense(3, activation="softmax"))(x)
    return hn.Model(inputs.tensor, y, seed=seed)


@pytest.mark.parametrize(
    "head, loss",
    [
        (None, "sparse_categorical_crossentropy"),  # the fused softmax + cross-entropy start
        (lambda: TimeDistributed(Dense(3)), "from_logits"),
        (lambda: Dense(2, activation="tanh"), "mse"),
    ],
    ids=["softmax", "time_distributed_logits", "mse"],
)
def test_masked_sequence_loss_gradient_check(head, loss):
    """The training loss L = Σ m·ℓ / Σ m of a sequence output carrying a mask: every weight's
    gradient against central differences of that loss, in float64."""
    rng = np.random.default_rng(7)
    model = tagger(head=head and head()).cast("float64")
    if loss == "from_logits":
        loss = hn.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss)
    x = padded_tokens(rng)
    y = rng.uniform(-1, 1, (4, T, 2)) if loss == "mse" else rng.integers(0, 3, (4, T))
    # h = 1e-5: the recurrent kernel's gradient is ~4e-4, where h = 1e-6's rounding noise
    # (~1e-16 · L / h) alone is 3e-7 relative.
    report = gradcheck(model, x, y=y, training=True, h=1e-5)
    assert report.passed, str(report)
    # The loss is the masked mean: a padded step's target changes nothing.
    loss_value = model.compute_gradients(x, y)[0]
    mask = step_mask()
    assert abs(loss_value - model.output_loss(0, y, model.predict(x), mask)) < 1e-12
    other = np.where(mask if loss != "mse" else mask[..., None], y, y * 0 + 1)
    assert model.compute_gradients(x, other)[0] == loss_value


def test_masked_sequence_output_trains_and_evaluates():
    """Tagging: each real token's label is whether it is even; the padding is left out of the
    loss and of the accuracy, which becomes perfect."""
    rng = np.random.default_rng(9)
    n = 256
    tokens = rng.integers(1, 6, (n, T))
    lengths = rng.integers(1, T + 1, n)
    tokens[np.arange(T) >= lengths[:, None]] = 0
    labels = np.where(tokens == 0, 1, tokens % 2 == 0).astype(int)  # padding says "even"
    model = tagger(head=Dense(2, activation="softmax"))
    model.compile(hn.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    history = model.fit(tokens, labels, epochs=6, batch_size=32, verbose=0, seed=0, threads=1)
    losses = history.history["loss"]
    assert losses[-1] < 0.2 * losses[0], losses
    logs = model.evaluate(tokens, labels)
    predicted = model.predict(tokens).argmax(-1)
    mask = tokens != 0
    assert logs["accuracy"] == ((predicted == labels) & mask).sum() / mask.sum()
    assert logs["accuracy"] > 0.99
    assert history.history["accuracy"][-1] > 0.95


def test_masked_sequence_output_trains_whole_when_split():
    """Its loss is a mean over the batch's unmasked steps, which parts of the batch cannot
    add up to: the data-parallel runner runs such a model's steps whole, and predicts split."""
    from handnet.training import parallel

    rng = np.random.default_rng(10)
    x, y = padded_tokens(rng, batch=64), rng.integers(0, 3, (64, T))
    serial = tagger()
    serial.compile("sgd", "sparse_categorical_crossentropy")
    split_model = tagger()
    split_model.compile("sgd", "sparse_categorical_crossentropy")
    expected = serial.compute_gradients(x, y)[0]
    with parallel.BatchSplitter(split_model, 2, np.random.default_rng(0)) as split:
        loss, _ = split.compute_gradients([x], [y])
        outputs, masks, _ = split.evaluate_pass([x])
    assert split._masked_outputs is True
    assert abs(loss - expected) < 1e-6
    for layer, twin in zip(serial.layers, split_model.layers):
        for key in layer.grads:
            assert np.allclose(layer.grads[key], twin.grads[key], atol=1e-7)
    assert np.array_equal(masks[0], x != 0)
    assert np.allclose(outputs[0], serial.predict(x), atol=1e-6)


def test_a_partial_epoch_keeps_the_positions_its_accuracy_is_over():
    """fit's running accuracy of a masked sequence is over the unmasked steps, more than the
    samples seen: a checkpoint of a stopped epoch keeps that count and reads it back."""
    import dataclasses

    from handnet.training import checkpoint
    from handnet.training.step import EpochSums

    rng = np.random.default_rng(11)
    model = tagger()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = padded_tokens(rng), rng.integers(0, 3, (4, T))
    sums = EpochSums(model, checkpoint.PartialEpoch(8, 4))
    predictions = model.predict(x)
    sums.add((1.0, predictions, [x != 0]), [y])
    hits = ((predictions.argmax(-1) == y) & (x != 0)).sum()
    assert sums.logs(False)["accuracy"] == hits / (x != 0).sum()
    partial = sums.partial_at(1, {"state": 0})
    assert partial.counted == (x != 0).sum() > partial.seen
    again = checkpoint._partial_epoch("checkpoint.json", dataclasses.asdict(partial))
    assert EpochSums.resume(model, again).logs(False) == sums.logs(False)


def test_sequence_labels_are_checked_per_step():
    model = tagger()
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(InvalidInputError, match=r"expected integer labels shaped \(4, 6\)"):
        model.evaluate(padded_tokens(np.random.default_rng(0)), np.zeros(4))
    logs = model.evaluate(padded_tokens(np.random.default_rng(0)), np.zeros((4, T, 1)))
    assert 0 <= logs["accuracy"] <= 1


def test_padded_sequence_model_trains():
    """Label: whether token 1 occurs in a sequence of 2–12 real tokens padded with 0 to 12.
    Through the mask the LSTM sees only the real tokens, whatever the padding length."""
    rng = np.random.default_rng(9)
    n, steps = 512, 12
    lengths = rng.integers(2, steps + 1, n)
    tokens = rng.integers(1, 8, (n, steps))
    tokens[np.arange(steps) >= lengths[:, None]] = 0
    labels = (tokens == 1).any(axis=1).astype(int)
    model = hn.Sequential(
        [
            Input((steps,)),
            Embedding(8, 8, mask_zero=True),
            LSTM(16),
            Dense(2, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(hn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    history = model.fit(tokens, labels, epochs=8, batch_size=32, verbose=0, seed=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert model.evaluate(tokens, labels)["accuracy"] > 0.9


# -- configs and explain --------------------------------------------------------------------
def test_configs_round_trip_and_explain():
    inputs = Input((T,))
    x = Embedding(6, 3, mask_zero=True, embeddings_initializer="glorot_uniform")(inputs.tensor)
    x = Bidirectional(GRU(2, return_sequences=True))(x)
    model = hn.Model(inputs.tensor, LSTM(2)(x), seed=0)
    config = model.get_config()
    twin = hn.Model.from_config(config)
    assert twin.get_config() == config
    (embedding,) = [layer for layer in twin.layers if isinstance(layer, Embedding)]
    assert embedding.mask_zero
    assert (embedding.input_dim, embedding.output_dim) == (6, 3)
    twin.set_weights(model.get_weights())
    tokens = padded_tokens(np.random.default_rng(10))
    np.testing.assert_array_equal(twin.predict(tokens), model.predict(tokens))
    masking = Masking.from_config(Masking(-1.0, name="pad").get_config())
    assert masking.mask_value == -1.0 and masking.name == "pad"
    text = explain(model)
    assert "y = E[x], E (6, 3);  mask = (x != 0)" in text
    seq = hn.Sequential([Input((T, 2)), Masking(-1.0), SimpleRNN(2)], seed=0).build()
    assert "m_t = any(x_t != -1)" in explain(seq)


def test_registered_and_gradchecked_by_the_cli():
    from handnet.cli.gradcheck import LAYER_CHECKS

    assert hn.layers.LAYERS["Embedding"] is Embedding
    assert hn.layers.LAYERS["Masking"] is Masking
    for name in ("Embedding", "Masking"):
        check = LAYER_CHECKS[name]
        x = None if check.inputs is None else check.inputs()
        report = gradcheck(check.make(), x, input_shape=check.input_shape)
        assert report.passed, str(report)


def test_warning_free_without_masks():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = hn.Sequential([Input((2, 2)), Flatten(), Dense(2)], seed=0)
        model.predict(np.zeros((1, 2, 2)))
