"""SimpleRNN, LSTM and GRU against Keras 3 on the torch backend: outputs ≤ 1e-5, gradients
≤ 1e-5 relative (torch autograd through Keras's own loop); .keras and .h5 files import with the
same outputs, layer by layer, and export back to Keras with every weight bit for bit; random
sequence models (a hypothesis property, like test_property.py's for images)."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras_models import (
    assert_files_round_trip,
    keras_chain,
    randomize_weights,
)

import handnet as hn
from handnet.errors import HandnetError
from handnet.gradcheck import relative_error
from handnet.keras_io.layer_map import layer_from_keras

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5

# (Keras class, arguments, per-sample input shape (T, D))
CASES = [
    ("SimpleRNN", dict(units=4), (5, 3)),
    ("SimpleRNN", dict(units=3, return_sequences=True, activation="relu"), (4, 2)),
    ("SimpleRNN", dict(units=3, use_bias=False, recurrent_regularizer="l2"), (1, 3)),
    ("LSTM", dict(units=4), (5, 3)),
    ("LSTM", dict(units=4, return_sequences=True), (1, 3)),
    (
        "LSTM",
        dict(units=3, return_sequences=True, unit_forget_bias=False, kernel_regularizer="l1"),
        (6, 2),
    ),
    (
        "LSTM",
        dict(units=3, use_bias=False, activation="relu", recurrent_activation="hard_sigmoid"),
        (4, 3),
    ),
    ("GRU", dict(units=4), (5, 3)),
    ("GRU", dict(units=4, return_sequences=True), (1, 3)),
    ("GRU", dict(units=3, return_sequences=True, bias_regularizer="l2", use_bias=True), (6, 2)),
    ("GRU", dict(units=2, use_bias=False), (4, 3)),
]


def case_id(case):
    kind, args, shape = case
    return f"{kind}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}"


def twins(kind, args, shape, dtype, rng):
    """A built Keras layer with random weights, and the handnet layer made from its config."""
    keras_layer = getattr(keras.layers, kind)(**args, dtype=dtype)
    keras_layer.build((None, *shape))
    weights = [
        (rng.standard_normal(tuple(v.shape)) / np.sqrt(v.shape[0])).astype(dtype)
        for v in keras_layer.weights
    ]
    keras_layer.set_weights(weights)
    layer = layer_from_keras(kind, keras_layer.get_config())
    layer.build(shape)
    for target, value in zip(layer.weights().values(), weights, strict=True):
        target[...] = value
    return keras_layer, layer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_outputs_and_gradients_match_keras_autograd(case, dtype):
    kind, args, shape = case
    rng = np.random.default_rng(0)
    keras_layer, layer = twins(kind, args, shape, dtype, rng)
    x = rng.standard_normal((4, *shape)).astype(dtype)

    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = keras_layer(x_torch)
    upstream = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
    loss = (y_torch * torch.tensor(upstream)).sum() + sum(
        keras_layer.losses, torch.tensor(0.0, dtype=y_torch.dtype)
    )
    loss.backward()

    y = layer.forward(x)
    layer.needs_input_gradient = True
    dx = layer.backward(upstream)
    assert np.abs(y - y_torch.detach().numpy()).max() < TOLERANCE
    assert relative_error(dx, x_torch.grad.numpy()) < TOLERANCE, "∂L/∂x"
    for variable in keras_layer.trainable_weights:
        error = relative_error(layer.grads[variable.name], variable.value.grad.numpy())
        assert error < TOLERANCE, f"∂L/∂{variable.name}: {error:.1e}"
    assert sorted(layer.grads) == sorted(v.name for v in keras_layer.trainable_weights)


def test_keras_defaults_match_handnet_defaults():
    """Same initializers, unit_forget_bias, gate activations and bias layout out of the box."""
    for kind in ("SimpleRNN", "LSTM", "GRU"):
        keras_layer = getattr(keras.layers, kind)(5)
        keras_layer.build((None, 3, 2))
        layer = layer_from_keras(kind, keras_layer.get_config())
        default = getattr(hn.layers, kind)(5, name=keras_layer.name)
        assert layer.get_config() == default.get_config()
        default.build((3, 2), np.random.default_rng(0))
        pairs = zip(keras_layer.weights, default.weights().items(), strict=True)
        for variable, (key, value) in pairs:
            assert variable.name == key and tuple(variable.shape) == value.shape
    lstm = keras.layers.LSTM(3)
    lstm.build((None, 2, 2))
    np.testing.assert_array_equal(np.asarray(lstm.weights[2].value.detach())[3:6], 1.0)


def sequence_model(kind, functional=False):
    """Keras: two recurrent layers, the first returning every step into a Dense (applied per
    step), the second only its last state."""
    layers = [
        getattr(keras.layers, kind)(4, return_sequences=True),
        keras.layers.Dense(3, activation="tanh"),
        getattr(keras.layers, kind)(3),
        keras.layers.Dense(2, activation="softmax"),
    ]
    return keras_chain(keras, layers, (6, 3), functional)


@pytest.mark.parametrize("functional", [False, True])
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_keras_files_import_and_export(kind, functional, tmp_path):
    rng = np.random.default_rng(1)
    original = randomize_weights(sequence_model(kind, functional), rng)
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    for model in assert_files_round_trip(keras, original, x, tmp_path, TOLERANCE):
        assert [type(layer).__name__ for layer in model.layers] == [kind, "Dense", kind, "Dense"]


def test_handnet_lstm_architecture_exports_to_keras(tmp_path):
    model = hn.zoo.architectures.build("lstm", seed=0)
    model.to_keras(tmp_path / "lstm.keras")
    reloaded = keras.models.load_model(tmp_path / "lstm.keras")
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(
        np.asarray(reloaded.predict(x, verbose=0)), model.predict(x), rtol=0, atol=TOLERANCE
    )


@pytest.mark.parametrize(
    "kind, args, message",
    [
        ("LSTM", dict(dropout=0.2), "dropout=0.2"),
        ("GRU", dict(recurrent_dropout=0.1), "recurrent_dropout=0.1"),
        ("GRU", dict(reset_after=False), "reset_after=False"),
        ("SimpleRNN", dict(go_backwards=True), "go_backwards=True"),
        ("LSTM", dict(return_state=True), "return_state=True"),
        ("LSTM", dict(stateful=True), "stateful=True"),
    ],
)
def test_unsupported_options_are_refused_by_name(kind, args, message):
    config = getattr(keras.layers, kind)(3, **args).get_config()
    with pytest.raises(HandnetError, match=message):
        layer_from_keras(kind, config)


@st.composite
def sequence_architectures(draw):
    """(input shape, [(class name, Keras arguments), …]) of a small random sequence model:
    recurrent layers (returning sequences but for the last), Dense between them at times."""
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    specs = []
    count = draw(st.integers(1, 3))
    for index in range(count):
        kind = draw(st.sampled_from(["SimpleRNN", "LSTM", "GRU"]))
        last = index == count - 1
        args = dict(
            units=draw(st.integers(1, 4)),
            return_sequences=draw(st.booleans()) if last else True,
            use_bias=draw(st.booleans()),
        )
        if kind == "SimpleRNN":
            args["activation"] = draw(st.sampled_from(["tanh", "relu", "sigmoid"]))
        if kind == "LSTM":
            args["unit_forget_bias"] = draw(st.booleans())
        specs.append((kind, args))
        if not last and draw(st.booleans()):
            specs.append(("Dense", dict(units=draw(st.integers(1, 4)), activation="tanh")))
    if specs[-1][1].get("return_sequences"):
        specs.append(("Flatten", {}))
    specs.append(("Dense", dict(units=3, activation="softmax")))
    return shape, specs, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence_architectures())
def test_random_sequence_models_import_compare_and_export(architecture):
    shape, specs, seed = architecture
    rng = np.random.default_rng(seed)
    layers = [getattr(keras.layers, kind)(**args) for kind, args in specs]
    original = randomize_weights(keras_chain(keras, layers, shape), rng)
    x = rng.standard_normal((4, *shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:  # hypothesis runs it many times in one test
        assert_files_round_trip(keras, original, x, Path(folder), TOLERANCE)
