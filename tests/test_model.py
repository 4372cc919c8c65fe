"""Sequential: the Keras verbs, reproducibility, the 1/N of the batch mean, input errors, MNIST."""

import numpy as np
import pytest

import handnet as hn
from handnet import losses, validation
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import Dense, Dropout, Input


def weights_equal(a, b):
    return len(a) == len(b) and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )


# -- compile / fit / evaluate / predict ------------------------------------------------------------
def test_fit_evaluate_predict_shapes_and_learning(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0, seed=0)
    assert history is model.history and history.epoch == list(range(15))
    probabilities = model.predict(x)
    assert probabilities.shape == (60, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    results = model.evaluate(x, y)
    assert set(results) == {"loss", "accuracy"}
    assert results["accuracy"] > 0.9 and history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x[:0]).shape == (0, 3)


def test_predict_in_batches_equals_one_pass(blobs, make_mlp):
    x, _ = blobs
    model = make_mlp()
    np.testing.assert_array_equal(model.predict(x, batch_size=7), model.predict(x, batch_size=1000))


def test_evaluate_adds_the_regularization_penalty(blobs):
    x, y = blobs
    model = hn.Sequential(
        [Input((4,)), Dense(3, activation="softmax", kernel_regularizer=hn.regularizers.L2(0.5))],
        seed=0,
    ).compile("sgd")
    model.build()
    kernel = model.layers[0].params["kernel"]
    expected = model.loss(y, model.predict(x)) + 0.5 * float((kernel.astype(np.float64) ** 2).sum())
    assert model.evaluate(x, y, batch_size=7)["loss"] == pytest.approx(expected, rel=1e-6)


def test_history_keys_and_logged_learning_rate(blobs, make_mlp):
    x, y = blobs
    schedule = hn.schedules.StepDecay(0.01, step_size=4, gamma=0.5)
    model = make_mlp(optimizer=hn.optimizers.SGD(schedule))
    history = model.fit(x, y, epochs=3, batch_size=30, validation_split=0.2, verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(history.history)
    assert all(len(v) == 3 for v in history.history.values())
    # 48 training samples in batches of 30: 2 steps an epoch. Logged: the rate of the next step.
    assert (
        history.history["learning_rate"]
        == [schedule(2), schedule(4), schedule(6)]
        == [0.01, 0.005, 0.005]
    )


def test_fit_is_reproducible_bit_for_bit_with_a_seed(blobs, make_mlp):
    x, y = blobs

    def run(fit_seed):
        model = make_mlp(seed=3, dropout=0.3)
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=fit_seed)
        return model.get_weights()

    first = run(5)
    assert weights_equal(first, run(5))
    assert not weights_equal(first, run(6))  # the seed does drive shuffling and dropout


def test_validation_split_holds_out_the_last_fraction(blobs, make_mlp):
    x, y = blobs
    split = make_mlp()
    history = split.fit(x, y, epochs=1, batch_size=10, validation_split=0.25, verbose=0, seed=1)
    explicit = make_mlp()
    explicit.fit(
        x[:45], y[:45], epochs=1, batch_size=10, validation_data=(x[45:], y[45:]), verbose=0, seed=1
    )
    assert weights_equal(split.get_weights(), explicit.get_weights())
    assert history.history["val_loss"][0] == pytest.approx(
        split.evaluate(x[45:], y[45:])["loss"], rel=1e-12
    )


@pytest.mark.parametrize("split", [0.99, 0.95])
def test_validation_split_that_leaves_a_side_empty_is_refused_up_front(blobs, make_mlp, split):
    x, y = blobs
    with pytest.raises(HandnetError, match="validation_split"):
        make_mlp().fit(x[:10], y[:10], validation_split=split, verbose=0)


def test_fit_on_no_samples_is_a_clear_error(make_mlp):
    with pytest.raises(InvalidInputError):
        make_mlp().fit(np.zeros((0, 4), np.float32), np.zeros(0, int), verbose=0)


def test_two_layers_with_one_name_are_refused():
    # Names key the saved weights and the optimizer's slots: two layers called "a" would share
    # Adam's moments and overwrite each other's kernel in the file.
    with pytest.raises(HandnetError, match="'a'"):
        hn.Sequential([Input((3,)), Dense(3, name="a"), Dense(3, name="a")])


def test_diverging_training_stops_with_a_clear_error():
    model = hn.Sequential([Input((2,)), Dense(1)], seed=0).compile(
        hn.optimizers.SGD(1e30), loss="mse"
    )
    with np.errstate(all="ignore"), pytest.raises(HandnetError, match="lower learning rate"):
        model.fit(np.ones((4, 2)) * 1e3, np.ones((4, 1)), epochs=5, batch_size=1, verbose=0)


# -- the batch mean: 1/N applied exactly once ------------------------------------------------------
def float64_model(last_activation, loss, regularizer=None):
    model = hn.Sequential(
        [
            Input((4,)),
            Dense(6, activation="tanh", kernel_regularizer=regularizer, dtype="float64"),
            Dense(3, activation=last_activation, dtype="float64"),
        ],
        seed=0,
    )
    return model.compile("sgd", loss=loss)


@pytest.mark.parametrize(
    "last_activation, loss, targets",
    [
        ("softmax", "sparse_categorical_crossentropy", "labels"),
        (None, losses.SparseCategoricalCrossentropy(from_logits=True), "labels"),
        ("softmax", losses.CategoricalCrossentropy(label_smoothing=0.1), "one-hot"),
        ("sigmoid", "categorical_crossentropy", "one-hot"),
        (None, "mse", "real"),
    ],
    ids=["fused", "from-logits", "categorical-smoothed", "sigmoid-crossentropy", "mse"],
)
@pytest.mark.parametrize("regularizer", [None, hn.regularizers.L2(0.1)], ids=["plain", "L2"])
def test_batch_gradient_is_the_mean_of_per_sample_gradients(
    last_activation, loss, targets, regularizer
):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    labels = np.array([0, 2, 1, 1, 2])
    y = {"labels": labels, "one-hot": np.eye(3)[labels], "real": rng.standard_normal((5, 3))}[
        targets
    ]
    model = float64_model(last_activation, loss, regularizer)
    model.build()

    def gradients(xs, ys):
        loss_value, _, _ = model.compute_gradients(xs, ys, training=False)
        return loss_value, [layer.grads[k].copy() for layer in model.layers for k in layer.params]

    batch_loss, batch = gradients(x, y)
    singles = [gradients(x[i : i + 1], y[i : i + 1]) for i in range(5)]
    assert batch_loss == pytest.approx(np.mean([value for value, _ in singles]), rel=1e-12)
    for index, grad in enumerate(batch):
        np.testing.assert_allclose(
            grad, np.mean([g[index] for _, g in singles], axis=0), rtol=1e-10, atol=1e-14
        )


# -- weights, summary ------------------------------------------------------------------------------
def test_set_weights_round_trip_and_errors(make_mlp):
    model = make_mlp()
    model.build()
    weights = [w + 1 for w in model.get_weights()]
    model.set_weights(weights)
    assert weights_equal(model.get_weights(), weights)
    with pytest.raises(HandnetError, match="expected 4 arrays, got 3"):
        model.set_weights(weights[:3])
    with pytest.raises(HandnetError, match=r"expects shape \(4, 8\), got \(8, 4\)"):
        model.set_weights([weights[0].T, *weights[1:]])
    with pytest.raises(HandnetError, match=rf"layer '{model.layers[-1].name}' bias expects shape"):
        model.set_weights([w - 1 for w in weights[:3]] + [np.zeros(2)])
    assert weights_equal(model.get_weights(), weights)  # a wrong list changes nothing


def test_a_layer_gets_and_sets_its_own_weights(make_mlp):
    """Layer.get_weights / set_weights, as Keras's: copies in Keras's order; checked first."""
    model = make_mlp()
    model.build()
    dense = model.layers[0]
    kernel, bias = dense.get_weights()
    assert kernel.shape == dense.params["kernel"].shape and bias.shape == dense.params["bias"].shape
    kernel[...] = 7  # a copy: the layer keeps its own
    assert not np.any(dense.params["kernel"] == 7)
    dense.set_weights([kernel, bias + 1])
    np.testing.assert_array_equal(dense.params["kernel"], kernel)
    np.testing.assert_array_equal(dense.params["bias"], bias + 1)
    assert dense.params["kernel"].dtype == np.float32
    with pytest.raises(HandnetError, match="set_weights: expected 2 arrays, got 1"):
        dense.set_weights([kernel])
    with pytest.raises(HandnetError, match=rf"layer '{dense.name}' bias expects shape \(8,\), got"):
        dense.set_weights([kernel * 0, np.zeros(3)])
    np.testing.assert_array_equal(dense.params["kernel"], kernel)  # nothing written


def test_frozen_layers_keep_their_weights_and_the_rest_still_trains(blobs):
    x, y = blobs
    model = hn.Sequential(
        [Input((4,)), Dense(5, activation="tanh", trainable=False), Dense(3, activation="softmax")],
        seed=0,
    ).compile(hn.optimizers.SGD(0.1))
    model.build()
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    after = model.get_weights()
    unchanged = [np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert unchanged == [True, True, False, False]  # frozen kernel and bias; trained ones
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 18" in lines[0] and "Non-trainable params: 25" in lines[0]


def test_summary_of_the_784_256_128_10_mlp():
    model = hn.Sequential(
        [
            Input((784,)),
            Dense(256, activation="relu"),
            Dense(128, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    rows = [line for line in text.splitlines() if "(Dense)" in line]
    # 784·256 + 256 = 200,960;  256·128 + 128 = 32,896;  128·10 + 10 = 1,290.
    for row, shape, count in zip(
        rows,
        ["(None, 256)", "(None, 128)", "(None, 10)"],
        ["200,960", "32,896", "1,290"],
        strict=True,
    ):
        assert shape in row and row.rstrip().endswith(count)
    assert len(rows) == 3
    assert "Total params: 235,146" in text and "Trainable params: 235,146" in text
    assert "Non-trainable params: 0" in text and model.count_params() == 235146


# -- wrong inputs: ValueError (InvalidInputError) naming what was expected and what came -----------
@pytest.fixture
def mnist_shaped():
    model = hn.Sequential([Input((784,)), Dense(10, activation="softmax")], seed=0).compile("adam")
    x = np.zeros((32, 784), np.float32)
    y = np.arange(32) % 10
    return model, x, y


def verbs(model, y):
    return {
        "fit": lambda x: model.fit(x, y[: len(x)], verbose=0),
        "predict": lambda x: model.predict(x),
        "evaluate": lambda x: model.evaluate(x, y[: len(x)]),
    }


@pytest.mark.parametrize("verb", ["fit", "predict", "evaluate"])
def test_wrong_shape(mnist_shaped, verb):
    model, _, y = mnist_shaped
    with pytest.raises(ValueError) as error:
        verbs(model, y)[verb](np.zeros((32, 28, 28), np.float32))
    assert isinstance(error.value, InvalidInputError)
    assert "(None, 784)" in str(error.value) and "(32, 28, 28)" in str(error.value)


@pytest.mark.parametrize("verb", ["fit", "predict", "evaluate"])
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((32, 784), "0.5"), "must hold numbers.*got dtype <U3"),
        (np.full((32, 784), None, dtype=object), "must hold numbers.*got dtype object"),
        ([[0.0] * 784, [0.0] * 783], "could not convert"),
        (np.zeros(784), r"batch shaped \(N, ...\), got shape \(784,\)"),
        (np.full((32, 784), np.nan), "NaN or infinite"),
        (np.full((32, 784), np.inf), "NaN or infinite"),
    ],
    ids=["strings", "objects", "ragged", "one-sample-without-batch-axis", "nan", "inf"],
)
def test_wrong_values_in_x(mnist_shaped, verb, bad, message):
    model, _, y = mnist_shaped
    with pytest.raises(InvalidInputError, match=message):
        verbs(model, y)[verb](bad)


@pytest.mark.parametrize("verb", ["fit", "evaluate"])
@pytest.mark.parametrize(
    "labels, message",
    [
        (np.arange(32) % 11, r"labels must be in \[0, 10\).*got values from 0 to 10"),
        (np.arange(32) % 10 - 1, r"labels must be in \[0, 10\).*got values from -1 to 8"),
        (np.arange(31) % 10, "same number of samples: x has 32, y has shape \\(31,\\)"),
        (np.full(32, 1.5), "whole numbers"),
        (np.full(32, "3"), "must hold numbers"),
        (np.eye(10)[np.arange(32) % 10], "categorical_crossentropy"),
    ],
    ids=[
        "too-large",
        "negative",
        "count-mismatch",
        "fractional",
        "strings",
        "one-hot-for-sparse-loss",
    ],
)
def test_wrong_labels(mnist_shaped, verb, labels, message):
    model, x, _ = mnist_shaped
    call = model.fit if verb == "fit" else model.evaluate
    kwargs = {"verbose": 0} if verb == "fit" else {}
    with pytest.raises(InvalidInputError, match=message):
        call(x, labels, **kwargs)


def test_integer_labels_for_a_one_hot_loss_say_which_loss_takes_them():
    model = hn.Sequential([Input((3,)), Dense(4, activation="softmax")], seed=0)
    model.compile("sgd", loss="categorical_crossentropy")
    with pytest.raises(
        InvalidInputError,
        match=r"y: expected shape \(None, 4\), got \(5,\) \(integer labels go with "
        r"loss='sparse_categorical_crossentropy'\)",
    ):
        model.fit(np.ones((5, 3)), np.arange(5) % 4, verbose=0)
    regression = hn.Sequential([Input((3,)), Dense(1)], seed=0).compile("sgd", loss="mse")
    with pytest.raises(InvalidInputError, match=r"expected shape \(None, 1\), got \(5, 2\)$"):
        regression.fit(np.ones((5, 3)), np.ones((5, 2), dtype=np.int64), verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_targets_of_a_regression_are_refused_up_front(bad):
    model = hn.Sequential([Input((3,)), Dense(2)], seed=0).compile("sgd", loss="mse")
    y = np.zeros((4, 2))
    y[2, 1] = bad
    with pytest.raises(InvalidInputError, match="y contains NaN or infinite values"):
        model.fit(np.ones((4, 3)), y, verbose=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", [100, validation.FINITE_BY_EXTREMES + 5])
def test_all_finite_finds_any_nan_or_infinity_and_never_refuses_huge_finite_values(size, dtype):
    """Small arrays by their sum (its overflow checked again elementwise), large ones by their
    minimum and maximum (validation.FINITE_BY_EXTREMES): the same answers."""
    x = np.random.default_rng(0).normal(size=size).astype(dtype)
    assert validation.all_finite(x)
    huge = np.full(size, np.finfo(dtype).max, dtype)  # its sum overflows to inf
    with np.errstate(over="ignore"):
        assert validation.all_finite(huge)
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, size // 2, size - 1):
            y = x.copy()
            y[where] = bad
            assert not validation.all_finite(y), (bad, where)


def test_wrong_validation_data_is_named(mnist_shaped):
    model, x, y = mnist_shaped
    with pytest.raises(
        InvalidInputError, match=r"validation x: expected shape \(None, 784\), got \(4, 28, 28\)"
    ):
        model.fit(x, y, validation_data=(np.zeros((4, 28, 28)), y[:4]), verbose=0)


def test_predict_works_before_compile_but_fit_and_evaluate_do_not(blobs):
    x, y = blobs
    model = hn.Sequential([Dense(5, activation="relu"), Dense(3, activation="softmax")], seed=0)
    assert model.predict(x).shape == (60, 3)  # builds from the data: no Input needed
    assert model.input_shape == (4,)
    for call in (lambda: model.fit(x, y, verbose=0), lambda: model.evaluate(x, y)):
        with pytest.raises(HandnetError, match=r"compile the model first"):
            call()


def test_layers_cannot_be_added_after_build(make_mlp):
    model = make_mlp()
    model.build()
    with pytest.raises(HandnetError, match="before the model is built"):
        model.add(Dense(2))


def test_building_a_built_model_keeps_its_weights_and_refuses_another_shape(make_mlp):
    model = make_mlp().build()
    kernel = model.layers[0].params["kernel"]
    kernel += 1  # as training would change it
    before = kernel.copy()
    model.build()
    model.build(model.input_shape)
    assert model.layers[0].params["kernel"] is kernel
    np.testing.assert_array_equal(kernel, before)
    with pytest.raises(HandnetError, match=r"built for inputs of shape .* build a new model"):
        model.build((5,))


def test_float64_model_trains_in_float64(blobs):
    x, y = blobs
    model = hn.Sequential(
        [
            Input((4,)),
            Dense(5, activation="relu", dtype="float64"),
            Dropout(0.1, dtype="float64"),
            Dense(3, activation="softmax", dtype="float64"),
        ],
        seed=0,
    )
    model.compile(hn.optimizers.Adam(0.01))
    model.fit(x, y, epochs=2, verbose=0, seed=0)
    assert model.predict(x).dtype == np.float64
    assert all(w.dtype == np.float64 for w in model.get_weights())


# -- real MNIST ------------------------------------------------------------------------------------
@pytest.mark.mnist
@pytest.mark.slow
def test_mnist_mlp_two_epochs_on_10k_images():
    """784-128-10 MLP, Adam(3e-3), batch 32, 2 epochs on the first 10,000 training images.

    Measured with seed 0: 0.9413 test accuracy; seeds 0-4 gave 0.933-0.941 (Adam(1e-3) reaches only
    0.925-0.931 in 2 epochs, hence the larger rate). The 0.93 bar sits 1.1 points below seed 0.
    """
    (x_train, y_train), (x_test, y_test) = hn.datasets.mnist.load_data(verbose=False)
    x_train = x_train[:10000].reshape(-1, 784).astype(np.float32) / 255
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255
    model = hn.Sequential(
        [Input((784,)), Dense(128, activation="relu"), Dense(10, activation="softmax")], seed=0
    ).compile(hn.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train[:10000], epochs=2, batch_size=32, verbose=0, seed=0)
    accuracy = model.evaluate(x_test, y_test)["accuracy"]
    assert accuracy > 0.93, f"test accuracy {accuracy:.4f}"
