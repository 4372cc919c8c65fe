"""SimpleRNN, LSTM and GRU: gradients against finite differences, shapes, the loop written as
the equations read (the oracle for the vectorized step), saving, and errors."""

import numpy as np
import pytest

import handnet as hn
from handnet import initializers
from handnet.errors import HandnetError, InvalidInputError
from handnet.explain import explain
from handnet.layers import GRU, LSTM, Dense, Input, SimpleRNN

RECURRENT = [SimpleRNN, LSTM, GRU]


@pytest.mark.parametrize("timesteps", [1, 4])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("layer_class", RECURRENT, ids=lambda c: c.__name__)
def test_gradients_match_finite_differences(layer_class, return_sequences, timesteps):
    layer = layer_class(3, return_sequences=return_sequences)
    report = hn.gradcheck(layer, input_shape=(timesteps, 2))
    assert report.passed, str(report)


@pytest.mark.parametrize(
    "layer",
    [
        SimpleRNN(3, activation="relu", use_bias=False, recurrent_regularizer="l2"),
        LSTM(2, unit_forget_bias=False, activation="softsign", recurrent_activation="tanh",
             kernel_regularizer="l1", bias_regularizer="l2"),
        LSTM(2, use_bias=False, return_sequences=True),
        GRU(2, use_bias=False, return_sequences=True, recurrent_regularizer="l2"),
        GRU(3, activation="sigmoid", recurrent_activation="tanh", bias_regularizer="l2"),
    ],
    ids=repr,
)
def test_gradients_with_other_options(layer):
    report = hn.gradcheck(layer, input_shape=(3, 2))
    assert report.passed, str(report)


def test_gradient_through_a_stack_of_recurrent_layers():
    model = hn.Sequential(
        [Input((5, 2)), GRU(3, return_sequences=True), SimpleRNN(2, return_sequences=True),
         LSTM(3), Dense(2, activation="softmax")],
        seed=0,
    ).build()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    report = hn.gradcheck(model, x, np.array([0, 1, 1]))
    assert report.passed, str(report)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def lstm_loop(x, kernel, recurrent_kernel, bias):
    """The LSTM equations one sample, one step and one gate at a time: the specification."""
    units = recurrent_kernel.shape[0]
    outputs = np.zeros((len(x), x.shape[1], units))
    for n, sequence in enumerate(x):
        h, c = np.zeros(units), np.zeros(units)
        for t, x_t in enumerate(sequence):
            z = [
                x_t @ kernel[:, k * units : (k + 1) * units]
                + h @ recurrent_kernel[:, k * units : (k + 1) * units]
                + bias[k * units : (k + 1) * units]
                for k in range(4)
            ]
            i, f, g, o = sigmoid(z[0]), sigmoid(z[1]), np.tanh(z[2]), sigmoid(z[3])
            c = f * c + i * g
            h = o * np.tanh(c)
            outputs[n, t] = h
    return outputs


def gru_loop(x, kernel, recurrent_kernel, bias):
    """The GRU equations (reset_after=True) one sample and one step at a time."""
    units = recurrent_kernel.shape[0]
    outputs = np.zeros((len(x), x.shape[1], units))
    for n, sequence in enumerate(x):
        h = np.zeros(units)
        for t, x_t in enumerate(sequence):
            m_z, m_r, m_h = np.split(x_t @ kernel + bias[0], 3)
            n_z, n_r, n_h = np.split(h @ recurrent_kernel + bias[1], 3)
            z, r = sigmoid(m_z + n_z), sigmoid(m_r + n_r)
            candidate = np.tanh(m_h + r * n_h)
            h = z * h + (1 - z) * candidate
            outputs[n, t] = h
    return outputs


def simple_rnn_loop(x, kernel, recurrent_kernel, bias):
    outputs = np.zeros((len(x), x.shape[1], recurrent_kernel.shape[0]))
    for n, sequence in enumerate(x):
        h = np.zeros(recurrent_kernel.shape[0])
        for t, x_t in enumerate(sequence):
            h = np.tanh(x_t @ kernel + h @ recurrent_kernel + bias)
            outputs[n, t] = h
    return outputs


@pytest.mark.parametrize(
    "layer_class, loop", [(SimpleRNN, simple_rnn_loop), (LSTM, lstm_loop), (GRU, gru_loop)]
)
def test_vectorized_steps_equal_the_loop_over_samples_and_gates(layer_class, loop):
    rng = np.random.default_rng(1)
    layer = layer_class(4, return_sequences=True, dtype="float64")
    layer.build((6, 3), rng)
    for value in layer.params.values():
        value[...] = rng.normal(0, 0.7, value.shape)
    x = rng.standard_normal((5, 6, 3))
    expected = loop(x, *layer.params.values())
    np.testing.assert_allclose(layer.forward(x), expected, rtol=0, atol=1e-12)
    last = layer_class(4, dtype="float64")
    last.build((6, 3))
    for key, value in layer.params.items():
        last.params[key][...] = value
    np.testing.assert_allclose(last.forward(x), expected[:, -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("layer_class", RECURRENT, ids=lambda c: c.__name__)
def test_shapes_weights_and_float32(layer_class):
    gates = {SimpleRNN: 1, LSTM: 4, GRU: 3}[layer_class]
    layer = layer_class(5, return_sequences=True)
    layer.build((7, 3), np.random.default_rng(0))
    assert layer.output_shape == (7, 5)
    assert layer.params["kernel"].shape == (3, gates * 5)
    assert layer.params["recurrent_kernel"].shape == (5, gates * 5)
    assert layer.params["bias"].shape == ((2, 15) if layer_class is GRU else (gates * 5,))
    y = layer.forward(np.ones((2, 7, 3), dtype=np.float32))
    assert y.shape == (2, 7, 5) and y.dtype == np.float32
    dx = layer.backward(np.ones((2, 7, 5), dtype=np.float32))
    assert dx.shape == (2, 7, 3) and dx.dtype == np.float32
    assert layer_class(5).compute_output_shape((7, 3)) == (5,)


def test_backward_leaves_the_upstream_gradient_alone():
    for layer_class in RECURRENT:
        for return_sequences in (False, True):
            layer = layer_class(3, return_sequences=return_sequences)
            layer.build((4, 2), np.random.default_rng(0))
            y = layer.forward(np.random.default_rng(1).standard_normal((2, 4, 2)))
            dy = np.random.default_rng(2).standard_normal(y.shape)
            saved = dy.copy()
            layer.backward(dy)
            np.testing.assert_array_equal(dy, saved)


def test_lstm_unit_forget_bias_starts_the_forget_gate_open():
    layer = LSTM(3)
    layer.build((2, 4), np.random.default_rng(0))
    np.testing.assert_array_equal(layer.params["bias"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    closed = LSTM(3, unit_forget_bias=False)
    closed.build((2, 4), np.random.default_rng(0))
    assert not closed.params["bias"].any()


def test_recurrent_kernel_starts_orthogonal():
    layer = LSTM(6)
    layer.build((3, 2), np.random.default_rng(0))
    recurrent = layer.params["recurrent_kernel"].astype(np.float64)  # (6, 24): orthonormal rows
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(6), atol=1e-6)
    assert recurrent.flags.c_contiguous
    square = initializers.get("orthogonal")((5, 5), np.random.default_rng(0), "float64")
    np.testing.assert_allclose(square.T @ square, np.eye(5), atol=1e-12)


def test_save_and_load_round_trip(tmp_path):
    model = hn.Sequential(
        [
            Input((6, 4)),
            SimpleRNN(3, return_sequences=True, activation="relu"),
            GRU(4, return_sequences=True, recurrent_regularizer="l2"),
            LSTM(5, unit_forget_bias=False),
            Dense(2, activation="softmax"),
        ],
        seed=3,
    ).build()
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6, 4)).astype(np.float32)
    model.fit(x, rng.integers(0, 2, 8), epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = hn.load_model(tmp_path / "model.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_errors_say_what_was_expected():
    with pytest.raises(InvalidInputError, match=r"sequences \(None, timesteps, features\)"):
        LSTM(3).build((28 * 28,))
    layer = GRU(3)
    layer.build((5, 2))
    with pytest.raises(InvalidInputError, match=r"expected input shape \(None, 5, 2\)"):
        layer.forward(np.zeros((1, 4, 2)))
    with pytest.raises(HandnetError, match="reset_after=True only"):
        GRU(3, reset_after=False)


def test_lstm_learns_to_remember_the_first_step():
    """The label is the sign of the first input of a 12-step sequence: only a state carried
    across every step can get it right."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 12, 1)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(int)
    model = hn.Sequential([Input((12, 1)), LSTM(8), Dense(2, activation="softmax")], seed=0)
    model.compile(hn.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=15, batch_size=32, verbose=0, seed=0)
    assert model.evaluate(x, y)["accuracy"] > 0.95


def test_lstm_architecture_reads_rows_as_time_steps():
    model = hn.zoo.architectures.build("lstm", seed=0)
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    x = hn.preprocess.prepare_images(images, model.input_shape)
    assert x.shape == (3, 28, 28) and x.dtype == np.float32 and x.max() <= 1
    np.testing.assert_allclose(x[:, 5], images[:, 5] / 255, rtol=1e-6)  # row 5 is step 5
    assert model.predict(x).shape == (3, 10)
    text = explain(model)
    assert "unrolled over 28 steps" in text and "x_t (N, 28) @ W (28, 512)" in text
    assert "(N, 28, 28) → (N, 128)" in text

    small = hn.zoo.architectures.build("lstm", seed=0, small=True)
    small.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    report = hn.gradcheck(small, rng.standard_normal((4, *small.input_shape)), [0, 1, 2, 1])
    assert report.passed, str(report)
