"""Losses of outputs that carry a mask, and evaluate's regularization, against Keras 3 (torch).

A sequence output after an Embedding(mask_zero=True) carries the padding mask to the loss:
Keras's L = Σ m·ℓ / Σ m per batch (keras.src.losses.loss.apply_mask), so padded steps add
nothing and get no gradient, and its accuracy is Σ m·correct / Σ m. Checked: the loss, every
weight's gradient (torch autograd through Keras's loss), the weights after SGD steps, and
evaluate's loss and accuracy over batches that each normalize by their own unmasked count.

Keras's evaluate also adds the regularization losses of each test batch's pass — the kernel
regularizers' and ActivityRegularization's on the inference activity — weighted by the batch's
samples (the loss tracker); so do handnet's evaluate and fit's validation loss.
"""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

T = 6
TOLERANCE = 1e-5


def padded_tokens(rng, n=5, vocabulary=7):
    """(n, T) indices in [1, vocabulary), 0 = padding: tails, a gap, a padded start, a row of
    padding alone (it adds nothing to its batch's loss)."""
    x = rng.integers(1, vocabulary, size=(n, T))
    x[0, 4:] = 0
    x[1, 1:] = 0
    x[2, 2] = 0
    x[3, 0] = 0
    x[4, :] = 0
    return x


def tagger(library, head="softmax"):
    """Embedding(mask_zero=True) -> LSTM(return_sequences) -> a per-step head:
    "softmax": Dense(3, softmax) (handnet's fused softmax + cross-entropy backward),
    "logits": TimeDistributed(Dense(3)) for a from-logits loss, "mse": Dense(2, tanh)."""
    layers = library.layers
    inputs = layers.Input((T,)) if library is hn else keras.Input((T,))
    x = layers.Embedding(7, 3, mask_zero=True)(inputs.tensor if library is hn else inputs)
    x = layers.LSTM(4, return_sequences=True)(x)
    if head == "softmax":
        y = layers.Dense(3, activation="softmax")(x)
    elif head == "logits":
        y = layers.TimeDistributed(layers.Dense(3))(x)
    else:
        y = layers.Dense(2, activation="tanh")(x)
    return (hn.Model if library is hn else keras.Model)(
        inputs.tensor if library is hn else inputs, y
    )


LOSSES = {
    "softmax": ("sparse_categorical_crossentropy", lambda: "sparse_categorical_crossentropy"),
    "logits": (
        hn.losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ),
    "mse": ("mse", lambda: "mse"),
}


def targets(head, rng, n=5):
    if head == "mse":
        return rng.uniform(-1, 1, (n, T, 2)).astype(np.float32)
    return rng.integers(0, 3, (n, T))


def pair(head, learning_rate=0.1, make=tagger, dtype="float32"):
    """The Keras model and handnet's with the same weights, both compiled with SGD."""
    keras.utils.set_random_seed(0)
    keras_model = make(keras, head)
    model = make(hn, head).cast(dtype)
    ours = [layer for layer in model.layers if layer.params]
    theirs = [layer for layer in keras_model.layers if layer.weights]
    assert len(ours) == len(theirs)
    for layer, keras_layer in zip(ours, theirs):
        for key, value in zip(layer.params, keras_layer.get_weights()):
            assert layer.params[key].shape == value.shape, (layer.name, key)
            layer.params[key][...] = value
    ours_loss, keras_loss = LOSSES[head]
    metrics = [] if head == "mse" else ["accuracy"]
    keras_model.compile(keras.optimizers.SGD(learning_rate), keras_loss(), metrics=metrics)
    model.compile(hn.optimizers.SGD(learning_rate), ours_loss, metrics=metrics)
    return keras_model, model


def keras_loss_and_gradients(keras_model, x, y):
    out = keras_model(torch.tensor(x), training=True)
    loss = keras_model.compute_loss(x=None, y=torch.tensor(y), y_pred=out)
    keras_model.zero_grad()
    loss.backward()
    grads = [v.value.grad.numpy().copy() for v in keras_model.trainable_weights]
    return float(loss.detach()), grads


@pytest.mark.parametrize("head", ["softmax", "logits", "mse"])
def test_masked_sequence_loss_and_gradients_match_keras(head):
    """Measured: every gradient within 6e-7 relative but the head's bias, a sum of O(1) terms
    of both signs over the unmasked steps that comes to ~1e-3: there float32 keeps ~1e-8
    absolute (1.2e-5 relative)."""
    rng = np.random.default_rng(0)
    keras_model, model = pair(head)
    x, y = padded_tokens(rng), targets(head, rng)
    keras_loss, keras_grads = keras_loss_and_gradients(keras_model, x, y)
    loss, _, _ = model.compute_gradients(x, y)
    assert abs(loss - keras_loss) < TOLERANCE * max(1, abs(keras_loss))
    ours = [grad for layer in model.layers for grad in layer.grads.values()]
    assert len(ours) == len(keras_grads)
    for grad, expected in zip(ours, keras_grads):
        error = relative_error(grad, expected)
        assert error < 1e-6 or np.abs(grad - expected).max() < 1e-7, error
    # Padding reaches nothing: row 0 of the embeddings (the padding index) gets no gradient.
    assert np.all(model.layers[0].grads["embeddings"][0] == 0)


def test_masked_steps_are_left_out_of_the_loss():
    """Whatever the targets say at a padded step, loss and gradients stay the same."""
    rng = np.random.default_rng(1)
    _, model = pair("softmax")
    x, y = padded_tokens(rng), targets("softmax", rng)
    loss, _, _ = model.compute_gradients(x, y)
    grads = [g.copy() for layer in model.layers for g in layer.grads.values()]
    other = np.where(x == 0, (y + 1) % 3, y)
    assert model.compute_gradients(x, other)[0] == loss
    for grad, again in zip(grads, (g for layer in model.layers for g in layer.grads.values())):
        assert np.array_equal(grad, again)
    # A batch of padding alone: loss 0 and no gradient, as Keras's divide_no_nan.
    loss, _, _ = model.compute_gradients(x[4:], y[4:])
    assert loss == 0.0
    assert all(np.all(g == 0) for layer in model.layers for g in layer.grads.values())


@pytest.mark.parametrize("head", ["softmax", "mse"])
def test_masked_training_steps_and_fit_match_keras(head):
    """Three SGD steps on the same batches give the same weights and per-batch losses, and
    fit's epoch loss (the batches' losses weighted by their samples) is Keras's."""
    rng = np.random.default_rng(2)
    keras_model, model = pair(head, learning_rate=0.5)
    x = np.concatenate([padded_tokens(rng) for _ in range(3)])
    y = np.concatenate([targets(head, rng) for _ in range(3)])
    for batch in range(3):
        rows = slice(5 * batch, 5 * batch + 5)
        keras_loss = keras_model.train_on_batch(x[rows], y[rows], return_dict=True)["loss"]
        loss, _ = model.train_on_batch(x[rows], y[rows])
        assert abs(loss - keras_loss) < TOLERANCE
    weights = [w for layer in model.layers for w in layer.params.values()]
    for weight, expected in zip(weights, keras_model.get_weights()):
        assert relative_error(weight, expected) < 1e-4
    keras_history = keras_model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, threads=1)
    assert abs(history.history["loss"][0] - keras_history.history["loss"][0]) < 1e-4
    if head == "softmax":  # over the epoch's unmasked steps: Σ m·correct / Σ m
        assert history.history["accuracy"] == pytest.approx(keras_history.history["accuracy"])
        assert 0 < history.history["accuracy"][0] < 1


@pytest.mark.parametrize("batch_size", [2, 3, None])
def test_masked_evaluate_matches_keras(batch_size):
    """Each batch's loss is its own masked mean, so the batch size matters (None: Keras's 32);
    the accuracy counts the unmasked steps over all batches."""
    rng = np.random.default_rng(3)
    keras_model, model = pair("softmax")
    x = np.concatenate([padded_tokens(rng), padded_tokens(rng)])
    y = targets("softmax", rng, 10)
    expected = keras_model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    logs = model.evaluate(x, y, batch_size=batch_size)
    assert abs(logs["loss"] - expected["loss"]) < TOLERANCE
    assert abs(logs["accuracy"] - expected["accuracy"]) < 1e-6
    mask = x != 0
    predicted = model.predict(x).argmax(-1)
    assert logs["accuracy"] == ((predicted == y) & mask).sum() / mask.sum()


def test_masked_validation_loss_in_fit_matches_keras():
    rng = np.random.default_rng(4)
    keras_model, model = pair("softmax")
    x, y = padded_tokens(rng, 10), targets("softmax", rng, 10)
    x_val, y_val = padded_tokens(rng), targets("softmax", rng)
    settings = dict(batch_size=3, epochs=2, shuffle=False, verbose=0)
    expected = keras_model.fit(x, y, validation_data=(x_val, y_val), **settings).history
    history = model.fit(x, y, validation_data=(x_val, y_val), threads=1, **settings).history
    for key in ("loss", "val_loss", "val_accuracy"):
        assert np.allclose(history[key], expected[key], atol=1e-4), key


def unmasked_sequence(library, head="softmax"):
    layers = library.layers
    inputs = layers.Input((T, 3)) if library is hn else keras.Input((T, 3))
    x = layers.LSTM(4, return_sequences=True)(inputs.tensor if library is hn else inputs)
    y = layers.Dense(3, activation="softmax")(x)
    return (hn.Model if library is hn else keras.Model)(
        inputs.tensor if library is hn else inputs, y
    )


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_unmasked_sequence_crossentropy_is_the_mean_over_every_step_as_keras(loss):
    """Without a mask a sequence's cross-entropy is the mean over all N·T positions (Keras's
    sum_over_batch_size), not a sum over steps per sample; so are its gradients and accuracy."""
    rng = np.random.default_rng(8)
    keras_model, model = pair("softmax", make=unmasked_sequence)
    keras_model.compile("sgd", loss, metrics=["accuracy"])
    model.compile("sgd", loss)
    x = rng.standard_normal((5, T, 3)).astype(np.float32)
    y = rng.integers(0, 3, (5, T))
    if loss == "categorical_crossentropy":
        y = np.eye(3, dtype=np.float32)[y]
    keras_loss, keras_grads = keras_loss_and_gradients(keras_model, x, y)
    value, _, _ = model.compute_gradients(x, y)
    assert abs(value - keras_loss) < TOLERANCE
    ours = [grad for layer in model.layers for grad in layer.grads.values()]
    for grad, expected in zip(ours, keras_grads):
        error = relative_error(grad, expected)
        assert error < 1e-6 or np.abs(grad - expected).max() < 1e-7, error
    expected = keras_model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    logs = model.evaluate(x, y, batch_size=2)
    assert abs(logs["loss"] - expected["loss"]) < TOLERANCE
    assert abs(logs["accuracy"] - expected["accuracy"]) < 1e-6


# -- evaluate with regularization ------------------------------------------------------------
def regularized(library, l1=0.01, l2=0.02):
    """Dense with a kernel regularizer, then ActivityRegularization on a tanh layer's output."""
    layers = library.layers
    inputs = layers.Input((4,)) if library is hn else keras.Input((4,))
    x = layers.Dense(5, activation="tanh", kernel_regularizer=library.regularizers.L2(0.03))(
        inputs.tensor if library is hn else inputs
    )
    x = layers.ActivityRegularization(l1=l1, l2=l2)(x)
    y = layers.Dense(3, activation="softmax")(x)
    return (hn.Model if library is hn else keras.Model)(
        inputs.tensor if library is hn else inputs, y
    )


def regularized_pair():
    keras.utils.set_random_seed(0)
    keras_model = regularized(keras)
    model = regularized(hn)
    model.set_weights(keras_model.get_weights())
    keras_model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return keras_model, model


@pytest.mark.parametrize("batch_size", [4, 7, None])
def test_evaluate_adds_activity_and_kernel_penalties_as_keras(batch_size):
    rng = np.random.default_rng(5)
    keras_model, model = regularized_pair()
    x, y = rng.standard_normal((10, 4)).astype(np.float32), rng.integers(0, 3, 10)
    expected = keras_model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    logs = model.evaluate(x, y, batch_size=batch_size)
    assert abs(logs["loss"] - expected["loss"]) < TOLERANCE
    # The activity penalty is really in it: without it the loss is lower by Σ (l1|a| + l2 a²)/N.
    activity = np.tanh(x @ model.layers[0].params["kernel"] + model.layers[0].params["bias"])
    penalty = (0.01 * np.abs(activity).sum() + 0.02 * (activity**2).sum()) / len(x)
    plain = hn.losses.get("sparse_categorical_crossentropy")(y, model.predict(x))
    kernel = 0.03 * (model.layers[0].params["kernel"] ** 2).sum()
    assert abs(logs["loss"] - (plain + kernel + penalty)) < TOLERANCE
    assert penalty > 100 * TOLERANCE


def test_evaluate_split_across_threads_adds_the_whole_batch_penalty():
    """A batch split across threads: the parts' activity penalties weighted by their sizes
    give the whole batch's (handnet.training.parallel.BatchSplitter.evaluate_pass)."""
    from handnet.training import parallel

    rng = np.random.default_rng(6)
    _, model = regularized_pair()
    x, y = rng.standard_normal((70, 4)).astype(np.float32), rng.integers(0, 3, 70)
    whole = model.evaluate(x, y, batch_size=70)
    with parallel.BatchSplitter(model, threads=3, rng=np.random.default_rng(0)) as split:
        outputs, masks, penalty = split.evaluate_pass([x])
    assert masks == [None]
    assert abs(penalty - model.evaluate_pass([x])[2]) < 1e-7
    assert np.allclose(outputs[0], model.predict(x), atol=1e-6)
    assert whole["loss"] > hn.losses.get("sparse_categorical_crossentropy")(y, model.predict(x))


def test_validation_loss_in_fit_includes_the_penalties_as_keras():
    rng = np.random.default_rng(7)
    keras_model, model = regularized_pair()
    x, y = rng.standard_normal((12, 4)).astype(np.float32), rng.integers(0, 3, 12)
    x_val, y_val = rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)
    settings = dict(batch_size=4, epochs=2, shuffle=False, verbose=0)
    expected = keras_model.fit(x, y, validation_data=(x_val, y_val), **settings).history
    history = model.fit(x, y, validation_data=(x_val, y_val), threads=1, **settings).history
    for key in ("loss", "val_loss"):
        assert np.allclose(history[key], expected[key], atol=1e-5), (key, history, expected)
