"""Embedding, Masking and masked recurrent layers against Keras 3 on the torch backend: the
outputs ≤ 1e-5 and the weights' gradients ≤ 1e-5 relative (torch autograd through Keras's own
masked loop), for padded sequences with masked tails and a masked step in the middle."""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
T = 6


def padded_tokens(rng, vocabulary=7):
    """(4, T) indices in [1, vocabulary), with 0 = padding: tails of 2 and 5, a gap in the
    middle, a sequence that starts padded, and one with no padding."""
    x = rng.integers(1, vocabulary, size=(4, T))
    x[0, 4:] = 0
    x[1, 1:] = 0
    x[2, 2] = 0
    x[3, 0] = 0
    return x


def padded_features(rng, features=3):
    x = rng.standard_normal((4, T, features))
    x[0, 4:] = 0
    x[1, 3] = 0
    x[2, :2] = 0
    return x


def embedding_lstm(library, return_sequences=False, bidirectional=False):
    layers = library.layers
    inputs = layers.Input((T,)) if library is hn else keras.Input((T,))
    recurrent = layers.LSTM(4, return_sequences=return_sequences)
    if bidirectional:
        recurrent = layers.Bidirectional(recurrent)
    x = layers.Embedding(7, 3, mask_zero=True)(inputs.tensor if library is hn else inputs)
    y = recurrent(x)
    if return_sequences:
        y = layers.LSTM(2)(y)
    y = layers.Dense(2)(y)
    return (hn.Model if library is hn else keras.Model)(
        inputs.tensor if library is hn else inputs, y
    )


def masking_gru(library):
    layers = library.layers
    inputs = layers.Input((T, 3)) if library is hn else keras.Input((T, 3))
    x = layers.Masking(0.0)(inputs.tensor if library is hn else inputs)
    x = layers.GRU(4, return_sequences=True)(x)
    x = layers.Dropout(0.5)(x)  # passes the mask on
    x = layers.Dense(5, activation="tanh")(x)  # passes it on, time-distributed
    y = layers.SimpleRNN(3)(x)
    return (hn.Model if library is hn else keras.Model)(
        inputs.tensor if library is hn else inputs, y
    )


def copy_weights(keras_model, model):
    """Keras's weights into handnet's, layer by layer (the same names and layouts)."""
    ours = [layer for layer in model.layers if layer.params]
    theirs = [layer for layer in keras_model.layers if layer.weights]
    assert len(ours) == len(theirs)
    for layer, keras_layer in zip(ours, theirs):
        for key, value in zip(layer.params, keras_layer.get_weights()):
            assert layer.params[key].shape == value.shape, (layer.name, key)
            layer.params[key][...] = value


def keras_gradients(keras_model, x, upstream):
    out = keras_model(torch.tensor(x))
    (out * torch.tensor(upstream)).sum().backward()
    grads = {}
    for layer in keras_model.layers:
        for variable in layer.trainable_weights:
            grads[f"{layer.name}/{variable.path}"] = variable.value.grad.numpy()
    return out.detach().numpy(), grads


def compare(make, x, rng):
    keras.utils.set_random_seed(0)
    keras_model = make(keras)
    model = make(hn)
    model.build()
    copy_weights(keras_model, model)
    y = model.forward(x.astype(np.float32))
    upstream = rng.standard_normal(y.shape).astype(np.float32)
    keras_y, keras_grads = keras_gradients(keras_model, x.astype(np.float32), upstream)
    assert np.abs(y - keras_y).max() < TOLERANCE
    model.backward(upstream)
    ours = [layer for layer in model.layers if layer.params]
    theirs = [layer for layer in keras_model.layers if layer.weights]
    for layer, keras_layer in zip(ours, theirs):
        for key, variable in zip(layer.grads, keras_layer.trainable_weights):
            expected = variable.value.grad.numpy()
            error = relative_error(layer.grads[key], expected)
            assert error < TOLERANCE, f"{layer.name}/{key}: {error:.2e}"
    return model, keras_grads


def test_embedding_mask_zero_lstm_matches_keras():
    rng = np.random.default_rng(0)
    model, _ = compare(embedding_lstm, padded_tokens(rng), rng)
    # The padded row E[0] is looked up but reaches nothing: the masked steps carry the state.
    (embedding,) = [layer for layer in model.layers if isinstance(layer, hn.layers.Embedding)]
    assert np.all(embedding.grads["embeddings"][0] == 0)


def test_embedding_bidirectional_lstm_stack_matches_keras():
    rng = np.random.default_rng(1)
    compare(
        lambda lib: embedding_lstm(lib, return_sequences=True, bidirectional=True),
        padded_tokens(rng),
        rng,
    )


def test_masking_gru_dense_matches_keras():
    rng = np.random.default_rng(2)
    compare(masking_gru, padded_features(rng), rng)


def test_mask_through_layers_keras_passes_it_on():
    """LayerNormalization, ReLU and GaussianNoise (the identity in inference) carry the mask
    in Keras without reading it: the GRU after them still skips the padding."""
    rng = np.random.default_rng(5)

    def make(library):
        layers = library.layers
        inputs = layers.Input((T,)) if library is hn else keras.Input((T,))
        x = layers.Embedding(7, 4, mask_zero=True)(inputs.tensor if library is hn else inputs)
        x = layers.GaussianNoise(0.1)(x)
        x = layers.LayerNormalization()(x)
        x = layers.ReLU()(x)
        y = layers.GRU(3)(x)
        return (hn.Model if library is hn else keras.Model)(
            inputs.tensor if library is hn else inputs, y
        )

    compare(make, padded_tokens(rng), rng)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_recurrent_outputs_match_keras(kind, return_sequences):
    """With return_sequences, Keras's output at a masked step is the previous output (0 before
    the first real step): the carried state."""
    rng = np.random.default_rng(3)

    def make(library):
        layers = library.layers
        inputs = layers.Input((T, 3)) if library is hn else keras.Input((T, 3))
        x = layers.Masking(0.0)(inputs.tensor if library is hn else inputs)
        y = getattr(layers, kind)(3, return_sequences=return_sequences)(x)
        return (hn.Model if library is hn else keras.Model)(
            inputs.tensor if library is hn else inputs, y
        )

    compare(make, padded_features(rng), rng)


@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_masked_bidirectional_sequences_match_keras(merge_mode):
    """Keras zeroes both directions' outputs at the masked steps (zero_output_for_mask)."""
    rng = np.random.default_rng(4)

    def make(library):
        layers = library.layers
        inputs = layers.Input((T, 3)) if library is hn else keras.Input((T, 3))
        x = layers.Masking(0.0)(inputs.tensor if library is hn else inputs)
        y = layers.Bidirectional(
            layers.GRU(3, return_sequences=True), merge_mode=merge_mode
        )(x)
        return (hn.Model if library is hn else keras.Model)(
            inputs.tensor if library is hn else inputs, y
        )

    x = padded_features(rng)
    model, _ = compare(make, x, rng)
    assert np.all(model.predict(x)[0, 4:] == 0)
