"""Bidirectional against Keras 3 on the torch backend: outputs ≤ 1e-5 and gradients (inputs and
both directions' weights) ≤ 1e-5 relative, through torch autograd over Keras's own loop;
.keras and legacy .h5 files import with Keras's predictions and export back to files Keras
opens with every weight bit for bit; what handnet cannot represent is refused by name."""

import numpy as np
import pytest
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
SHAPE = (5, 3)  # (T, D)


def twins(kind, merge_mode, return_sequences, dtype, rng):
    """A built Keras Bidirectional with random weights, and the handnet one made from its config."""
    wrapped = getattr(keras.layers, kind)(4, return_sequences=return_sequences, dtype=dtype)
    keras_layer = keras.layers.Bidirectional(wrapped, merge_mode=merge_mode, dtype=dtype)
    keras_layer.build((None, *SHAPE))
    weights = [
        (rng.standard_normal(tuple(v.shape)) / np.sqrt(v.shape[0])).astype(dtype)
        for v in keras_layer.weights
    ]
    keras_layer.set_weights(weights)
    layer = layer_from_keras("Bidirectional", keras_layer.get_config())
    layer.build(SHAPE)
    for target, value in zip(layer.weights().values(), weights, strict=True):
        target[...] = value
    return keras_layer, layer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_outputs_and_gradients_match_keras_autograd(kind, merge_mode, return_sequences, dtype):
    rng = np.random.default_rng(0)
    keras_layer, layer = twins(kind, merge_mode, return_sequences, dtype, rng)
    x = rng.standard_normal((4, *SHAPE)).astype(dtype)

    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = keras_layer(x_torch)
    upstream = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
    (y_torch * torch.tensor(upstream)).sum().backward()

    y = layer.forward(x)
    layer.needs_input_gradient = True
    dx = layer.backward(upstream)
    assert y.dtype == dtype
    assert np.abs(y - y_torch.detach().numpy()).max() < TOLERANCE
    assert relative_error(dx, x_torch.grad.numpy()) < TOLERANCE, "∂L/∂x"
    assert len(layer.grads) == len(keras_layer.trainable_weights) == 6
    for (key, grad), variable in zip(
        layer.grads.items(), keras_layer.trainable_weights, strict=True
    ):
        direction = "forward" if key.startswith("forward_layer/") else "backward"
        assert variable.path.split("/")[-3].startswith(
            f"{direction}_"
        )  # …/forward_lstm/lstm_cell/kernel
        assert key.rsplit("/", 1)[1] == variable.name
        error = relative_error(grad, variable.value.grad.numpy())
        assert error < TOLERANCE, f"∂L/∂{key}: {error:.1e}"


def keras_model(functional=False):
    layers = [
        keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)),
        keras.layers.Bidirectional(
            keras.layers.SimpleRNN(3, return_sequences=True), merge_mode="mul"
        ),
        keras.layers.Bidirectional(keras.layers.GRU(3), merge_mode="ave"),
        keras.layers.Dense(2, activation="softmax"),
    ]
    return keras_chain(keras, layers, (6, 3), functional)


@pytest.mark.parametrize("functional", [False, True])
def test_keras_files_import_and_export(functional, tmp_path):
    rng = np.random.default_rng(1)
    original = randomize_weights(keras_model(functional), rng)
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    for model in assert_files_round_trip(keras, original, x, tmp_path, TOLERANCE):
        assert [type(layer).__name__ for layer in model.layers] == ["Bidirectional"] * 3 + ["Dense"]
        assert [layer.merge_mode for layer in model.layers[:3]] == ["concat", "mul", "ave"]


def test_a_handnet_model_exports_to_keras(tmp_path):
    """Built in handnet, with a backward_layer of its own (other units, GRU under an LSTM)."""
    model = hn.Sequential(
        [
            hn.layers.Input((6, 3)),
            hn.layers.Bidirectional(
                hn.layers.LSTM(4, return_sequences=True),
                backward_layer=hn.layers.GRU(2, return_sequences=True, name="backward_gru"),
            ),
            hn.layers.Bidirectional(hn.layers.GRU(3), merge_mode="sum"),
            hn.layers.Dense(2, activation="softmax"),
        ],
        seed=0,
    ).build()
    model.to_keras(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.layers[0].backward_layer.go_backwards
    assert not reloaded.layers[0].forward_layer.go_backwards
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(reloaded.predict(x, verbose=0)), model.predict(x), rtol=0, atol=TOLERANCE
    )
    again = hn.from_keras(tmp_path / "model.keras")
    assert [layer.get_config() for layer in again.layers] == [
        layer.get_config() for layer in model.layers
    ]


def bidirectional_config(**changes):
    config = keras.layers.Bidirectional(keras.layers.LSTM(3)).get_config()
    return {**config, **changes}


def test_merge_mode_none_is_refused_by_name():
    with pytest.raises(
        HandnetError, match="merge_mode=None is not supported; handnet supports 'concat'"
    ):
        layer_from_keras("Bidirectional", bidirectional_config(merge_mode=None))


def test_a_wrapped_layer_that_is_not_recurrent_is_refused():
    dense = keras.layers.Dense(3)
    spec = {"class_name": "Dense", "config": dense.get_config()}
    with pytest.raises(
        HandnetError, match=r"must be a recurrent layer \(SimpleRNN, LSTM or GRU\), got Dense"
    ):
        layer_from_keras("Bidirectional", bidirectional_config(layer=spec, backward_layer=None))


def test_options_of_the_wrapped_layers_are_still_checked():
    config = bidirectional_config()
    config["backward_layer"]["config"]["go_backwards"] = False
    with pytest.raises(HandnetError, match="go_backwards=True there"):
        layer_from_keras("Bidirectional", config)
    config = bidirectional_config()
    config["layer"]["config"]["dropout"] = 0.5
    with pytest.raises(HandnetError, match="dropout=0.5"):
        layer_from_keras("Bidirectional", config)
