"""The functional API end to end: graphs of layers (shared layers, several inputs and outputs,
residual Add, Concatenate, nested models) checked against finite differences, trained with
lists and dicts, saved and loaded, and misused.

Gradient checks run in float64 on the whole model (handnet.gradcheck); a correct backward pass
scores ~1e-9 there, so the default tolerance of 1e-7 catches a missing term (a shared layer's
second call, one reader of a residual branch) by orders of magnitude.
"""

import numpy as np
import pytest

import handnet as hn
from handnet import layers
from handnet.errors import HandnetError, InvalidInputError
from handnet.model import Model, Sequential

RNG = np.random.default_rng(0)


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_gradcheck(model, x, y=None, **kwargs):
    report = hn.gradcheck(model, x, y, **kwargs)
    assert report.passed, str(report)
    return report


# -- graphs ---------------------------------------------------------------------------------
def shared_dense_model():
    """One Dense called on two inputs; both calls feed an Add."""
    a, b = layers.Input((4,), name="a"), layers.Input((4,), name="b")
    shared = layers.Dense(3, activation="tanh", name="shared")
    summed = layers.Add(name="sum")([shared(a), shared(b)])
    return Model([a, b], layers.Dense(2, name="out")(summed), seed=1)


def two_output_model():
    """Two inputs, a residual Add, a Concatenate, and two heads (regression, classes)."""
    a, b = layers.Input((5,), name="a"), layers.Input((3,), name="b")
    h = layers.Dense(5, activation="tanh", name="h")(a)
    h = layers.Add(name="residual")([a, layers.Dense(5, name="branch")(h)])
    joined = layers.Concatenate(name="joined")([h, b])
    regression = layers.Dense(2, name="regression")(joined)
    classes = layers.Dense(4, activation="softmax", name="classes")(joined)
    return Model({"a": a, "b": b}, {"regression": regression, "classes": classes}, seed=2)


def inner_model():
    x = layers.Input((4,), name="inner_x")
    h = layers.Dense(4, activation="tanh", name="inner_dense")(x)
    return Model(x, layers.Add(name="inner_add")([x, h]), name="inner", seed=3)


def nested_model(calls=2):
    """A model used as a layer, called ``calls`` times in a row (one set of weights)."""
    inner = inner_model()
    x = layers.Input((4,), name="x")
    h = x
    for _ in range(calls):
        h = inner(h)
    return Model(x, layers.Dense(3, name="head")(h), name="outer", seed=4)


def test_a_shared_layer_gets_the_sum_of_its_calls_gradients():
    model = shared_dense_model()
    x = [normal(3, 4, seed=1), normal(3, 4, seed=2)]
    assert_gradcheck(model, x)
    shared = model.get_layer("shared")
    assert len(model.nodes_of(shared)) == 2 and len(model.layers) == 3
    # Term by term: the same graph with two unshared copies of the weights; the shared
    # layer's gradient is the sum of the copies' (∂L/∂θ = Σ_calls ∂L/∂θ|call).
    a, b = layers.Input((4,), name="a"), layers.Input((4,), name="b")
    first = layers.Dense(3, activation="tanh", name="first")
    second = layers.Dense(3, activation="tanh", name="second")
    out = layers.Dense(2, name="out")
    unshared = Model([a, b], out(layers.Add()([first(a), second(b)])))
    unshared.set_weights(model.get_weights()[:2] * 2 + model.get_weights()[2:])
    dy = normal(3, 2, seed=3).astype("f4")
    for graph in (model, unshared):
        graph.forward([v.astype("f4") for v in x], training=True)
        graph.backward(dy)
    for key in ("kernel", "bias"):
        total = first.grads[key] + second.grads[key]
        np.testing.assert_allclose(shared.grads[key], total, rtol=1e-6, atol=1e-7)



@pytest.mark.parametrize("wrapper", ["Dense", "TimeDistributed", "nested model"])
def test_a_shared_layer_s_penalty_counts_once_in_its_gradient(wrapper):
    """The penalty of a layer called twice enters the loss once (Keras's layer.losses), so its
    gradient too: the replica that runs the second call once added 2λW again (found by
    tests/keras/test_property_catalogue.py: Keras's step and handnet's differed by lr·2λW)."""
    x = layers.Input((2, 3), name="x")
    dense = layers.Dense(3, activation="tanh", kernel_regularizer=hn.regularizers.L2(0.1),
                         bias_regularizer=hn.regularizers.L1(0.05), bias_initializer="ones",
                         name="penalized")
    if wrapper == "TimeDistributed":
        dense = layers.TimeDistributed(dense)
    elif wrapper == "nested model":
        inner = layers.Input((2, 3), name="inner_x")
        dense = Model(inner, dense(inner), name="inner")
    model = Model(x, layers.Flatten()(dense(dense(x))), seed=5).compile("sgd", loss="mse")
    assert_gradcheck(model, normal(3, 2, 3), normal(3, 6, seed=1))


def test_several_inputs_and_outputs_with_per_output_losses_and_weights():
    model = two_output_model()
    model.compile("sgd", {"regression": "mse", "classes": "sparse_categorical_crossentropy"},
                  loss_weights={"regression": 0.3, "classes": 2.0})
    x = {"a": normal(4, 5, seed=1), "b": normal(4, 3, seed=2)}
    y = {"regression": normal(4, 2, seed=3), "classes": np.array([0, 3, 1, 2])}
    report = assert_gradcheck(model, x, y)
    assert {row.quantity for row in report.rows if row.layer == "(input)"} == {"a", "b"}
    # Without y: Σ_k Σ f_k(x)·g_k over both outputs, through the softmax's own backward.
    assert_gradcheck(model, x)


def test_the_weighted_loss_is_the_sum_of_the_outputs_losses():
    model = two_output_model()
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"], loss_weights=[0.3, 2.0])
    x = [normal(4, 5, seed=1).astype("f4"), normal(4, 3, seed=2).astype("f4")]
    y = [normal(4, 2, seed=3).astype("f4"), np.array([0, 3, 1, 2])]
    loss, predictions, _ = model.compute_gradients(x, y, training=False)
    mse = hn.losses.get("mse")(y[0], predictions[0])
    cross_entropy = hn.losses.get("sparse_categorical_crossentropy")(y[1], predictions[1])
    assert loss == pytest.approx(0.3 * mse + 2.0 * cross_entropy, rel=1e-6)
    logs = model.evaluate(x, y)
    assert logs["loss"] == pytest.approx(0.3 * mse + 2.0 * cross_entropy, rel=1e-6)
    assert logs["regression_loss"] == pytest.approx(mse, rel=1e-6)
    assert logs["classes_loss"] == pytest.approx(cross_entropy, rel=1e-6)


def test_residual_add_and_concatenate_in_one_graph():
    x = layers.Input((6,), name="x")
    h = layers.Dense(6, activation="tanh", name="d1")(x)
    h = layers.Add(name="res")([h, layers.Dense(6, activation="tanh", name="d2")(h)])
    h = layers.Concatenate(name="cat")([h, x, layers.Dense(2, name="d3")(x)])
    model = Model(x, layers.Dense(3, name="out")(h), seed=5)
    assert_gradcheck(model, normal(3, 6))


def test_one_tensor_read_twice_by_one_layer():
    """Multiply()([h, h]) = h²: the two inputs' gradients add up to 2h·dy (once the freeing of
    h after its last reader deleted it twice and the forward pass raised KeyError)."""
    x = layers.Input((3,), name="x")
    h = layers.Dense(3, activation="tanh", name="h")(x)
    model = Model(x, layers.Dense(2, name="o")(layers.Multiply(name="square")([h, h])), seed=6)
    assert_gradcheck(model, normal(4, 3))
    doubled = Model(x, layers.Add(name="twice")([x, x]))
    np.testing.assert_array_equal(doubled.predict(np.ones((2, 3), "f4")), np.full((2, 3), 2.0))


def test_a_nested_model_called_twice_is_one_layer_with_summed_gradients():
    model = nested_model(calls=2)
    assert [layer.name for layer in model.layers] == ["inner", "head"]
    assert len(model.nodes_of(model.get_layer("inner"))) == 2
    assert_gradcheck(model, normal(3, 4))
    assert_gradcheck(nested_model(calls=1), normal(3, 4))


def test_gradients_do_not_depend_on_which_plan_was_built_first():
    """Two plans of one model (with and without ∂L/∂x) share the layers' flags; each pass sets
    them again (once the plan built last decided, and the input gradient came back None)."""
    model = shared_dense_model()
    model.compile("sgd", "mse")
    x = [normal(3, 4, seed=1).astype("f4"), normal(3, 4, seed=2).astype("f4")]
    model.forward(x)
    dx_first = model.backward(np.ones((3, 2), "f4"), input_gradient=True)
    model.compute_gradients(x, np.zeros((3, 2), "f4"))  # builds the plan without ∂L/∂x
    model.forward(x)
    dx_again = model.backward(np.ones((3, 2), "f4"), input_gradient=True)
    assert dx_again[0] is not None and dx_again[1] is not None
    for first, again in zip(dx_first, dx_again):
        np.testing.assert_array_equal(first, again)


# -- fit, evaluate and predict with lists and dicts -------------------------------------------
def two_output_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, 5)).astype("f4")
    b = rng.standard_normal((n, 3)).astype("f4")
    regression = np.stack([a[:, 0] + b[:, 0], a[:, 1] - b[:, 1]], axis=1).astype("f4")
    classes = (a[:, 2] > 0).astype(int) + 2 * (b[:, 2] > 0)
    return [a, b], [regression, classes]


@pytest.mark.parametrize("structure", ["list", "dict"])
def test_fit_evaluate_predict_with_several_inputs_and_outputs(structure):
    (a, b), (regression, classes) = two_output_data()
    model = two_output_model()
    if structure == "list":
        x, y = [a, b], [regression, classes]
        loss = ["mse", "sparse_categorical_crossentropy"]
        metrics = [[], ["accuracy"]]
    else:
        x, y = {"b": b, "a": a}, {"classes": classes, "regression": regression}
        loss = {"regression": "mse", "classes": "sparse_categorical_crossentropy"}
        metrics = {"classes": ["accuracy"]}
    model.compile("adam", loss, metrics=metrics, loss_weights=[0.5, 1.0])
    before = model.evaluate(x, y)
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0, seed=0)
    logs = history.history
    assert {"loss", "regression_loss", "classes_loss", "classes_accuracy"} <= set(logs)
    assert "regression_accuracy" not in logs and "accuracy" not in logs
    after = model.evaluate(x, y)
    assert after["loss"] < before["loss"]
    assert set(after) == {"loss", "regression_loss", "classes_loss", "classes_accuracy"}
    assert after["loss"] == pytest.approx(
        0.5 * after["regression_loss"] + after["classes_loss"], rel=1e-6
    )
    predictions = model.predict(x, batch_size=10)
    assert isinstance(predictions, dict) and list(predictions) == ["regression", "classes"]
    assert predictions["regression"].shape == (64, 2) and predictions["classes"].shape == (64, 4)
    same = model.predict([a, b])  # a list in the inputs' order gives the same values
    np.testing.assert_array_equal(same["classes"], predictions["classes"])
    mse = np.mean((predictions["regression"] - regression) ** 2)
    assert after["regression_loss"] == pytest.approx(mse, rel=1e-5)
    accuracy = np.mean(predictions["classes"].argmax(1) == classes)
    assert after["classes_accuracy"] == pytest.approx(accuracy)


def test_fit_logs_the_weighted_total_of_the_outputs_losses():
    """One batch an epoch: each epoch's log is that step's loss, before its update."""
    (a, b), (regression, classes) = two_output_data(16)
    model = two_output_model()
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"], loss_weights=[0.5, 3.0])
    history = model.fit([a, b], [regression, classes], epochs=3, batch_size=16, verbose=0)
    logs = history.history
    for epoch in range(3):
        total = 0.5 * logs["regression_loss"][epoch] + 3.0 * logs["classes_loss"][epoch]
        assert logs["loss"][epoch] == pytest.approx(total, rel=1e-5)


def test_outputs_given_as_a_list_predict_a_list():
    a, b = layers.Input((2,), name="a"), layers.Input((2,), name="b")
    model = Model([a, b], [layers.Dense(1, name="p")(a), layers.Dense(3, name="q")(b)], seed=0)
    out = model.predict([np.ones((5, 2)), np.zeros((5, 2))])
    assert isinstance(out, list) and [o.shape for o in out] == [(5, 1), (5, 3)]
    assert model.predict({"a": np.ones((5, 2)), "b": np.zeros((5, 2))})[1].shape == (5, 3)


@pytest.mark.parametrize(
    "x, message",
    [
        ({"a": np.ones((2, 5))}, r"expected entries \['a', 'b'\], got \['a'\]"),
        ([np.ones((2, 5))], r"the model has 2 \(\['a', 'b'\]\), got 1 arrays"),
        (np.ones((2, 5)), "pass a list or a dict"),
        ([np.ones((2, 5)), np.ones((3, 3))], "the same number of samples"),
        ([np.ones((2, 5)), np.ones((2, 4))], r"x\['b'\]"),
    ],
)
def test_wrong_inputs_to_a_several_input_model_are_named(x, message):
    model = two_output_model()
    with pytest.raises(InvalidInputError, match=message):
        model.predict(x)


# -- a nested model ---------------------------------------------------------------------------
def test_a_nested_model_trains_and_saves(tmp_path):
    model = nested_model(calls=2)
    model.compile("adam", "mse")
    x = normal(32, 4).astype("f4")
    y = np.stack([x[:, 0] * x[:, 1], x[:, 2], -x[:, 3]], axis=1).astype("f4")
    inner = model.get_layer("inner")
    before = [w.copy() for w in inner.get_weights()]
    first = model.evaluate(x, y)["loss"]
    model.fit(x, y, epochs=20, batch_size=8, verbose=0, seed=0)
    assert model.evaluate(x, y)["loss"] < first
    after = inner.get_weights()
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))
    model.save(tmp_path / "nested.npz")
    loaded = hn.load_model(tmp_path / "nested.npz")
    assert isinstance(loaded.get_layer("inner"), Model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for mine, theirs in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


# -- serialization ----------------------------------------------------------------------------
def chain_model():
    return Sequential(
        [layers.Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu"), layers.Flatten(),
         layers.Dense(4, activation="softmax")],
        seed=0,
    )


def data_for(model, n=16, seed=0):
    if isinstance(model, Sequential):
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, 6, 6, 1)).astype("f4"), rng.integers(0, 4, n)
    if model.name == "outer":
        return normal(n, 4, seed=seed).astype("f4"), normal(n, 3, seed=seed + 1).astype("f4")
    (a, b), (regression, classes) = two_output_data(n, seed)
    return {"a": a, "b": b}, {"regression": regression, "classes": classes}


def compiled(model):
    if isinstance(model, Sequential):
        return model.compile("adam", "sparse_categorical_crossentropy")
    if model.name == "outer":
        return model.compile("adam", "mse")
    return model.compile("adam", ["mse", "sparse_categorical_crossentropy"], loss_weights=[2, 1])


def assert_same_outputs(first, second):
    if isinstance(first, dict):
        assert list(first) == list(second)
        first, second = list(first.values()), list(second.values())
    for a, b in zip(first if isinstance(first, list) else [first],
                    second if isinstance(second, list) else [second]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [chain_model, two_output_model, nested_model])
def test_get_config_from_config_rebuilds_the_same_graph(make):
    model = make()
    config = model.get_config()
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config
    rebuilt.set_weights(model.get_weights())
    x = data_for(model)[0]
    assert_same_outputs(model.predict(x), rebuilt.predict(x))


@pytest.mark.parametrize("make", [chain_model, two_output_model, nested_model])
def test_save_load_restores_predictions_optimizer_and_the_next_step(make, tmp_path):
    model = compiled(make())
    x, y = data_for(model)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = hn.load_model(tmp_path / "m.npz")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    assert loaded.loss_weights == model.loss_weights
    state, loaded_state = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert state.keys() == loaded_state.keys() and "iterations" in state
    for key in state:
        np.testing.assert_array_equal(state[key], loaded_state[key])
    assert_same_outputs(model.predict(x), loaded.predict(x))
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for mine, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


# -- errors -----------------------------------------------------------------------------------
def test_a_layer_called_on_a_wrong_shape_is_refused_when_called():
    dense = layers.Dense(3, name="d")
    dense(layers.Input((4,)))
    already = r"'d' is already called for inputs of shape \(None, 4\), called on \(None, 5\)"
    with pytest.raises(HandnetError, match=already):
        dense(layers.Input((5,)))
    built = layers.Dense(3, name="built")
    built.build((4,))
    with pytest.raises(HandnetError, match=r"'built' is built for inputs of shape \(None, 4\)"):
        built(layers.Input((2, 4)))
    with pytest.raises(HandnetError, match=r"'conv' \(Conv2D\) cannot take inputs of shape"):
        layers.Conv2D(2, 3, name="conv")(layers.Input((4,)))
    with pytest.raises(HandnetError, match=r"'one' \(Dense\) takes one tensor, called on a list"):
        layers.Dense(2, name="one")([layers.Input((2,)), layers.Input((2,))])
    with pytest.raises(HandnetError, match=r"per-sample shapes \(3,\) and \(4,\) do not broadcast"):
        layers.Add()([layers.Input((3,)), layers.Input((4,))])
    with pytest.raises(InvalidInputError, match=r"'lstm' \(LSTM\) reads sequences"):
        Model(x := layers.Input((4,)), layers.LSTM(2, name="lstm")(x))


def test_model_construction_errors_are_clear():
    x = layers.Input((4,), name="x")
    h = layers.Dense(3, name="h")(x)
    with pytest.raises(HandnetError, match="must be Input tensors, got the output of 'h'"):
        Model(h, layers.Dense(1)(h))
    other = layers.Input((4,), name="other")
    with pytest.raises(HandnetError, match="depend on 'other', which is not among the model's"):
        Model(x, layers.Add()([h, layers.Dense(3)(other)]))
    with pytest.raises(HandnetError, match="two layers are named 'twin'"):
        Model(x, layers.Dense(1, name="twin")(layers.Dense(3, name="twin")(x)))
    with pytest.raises(HandnetError, match=r"inputs have repeated names \['x', 'x'\]"):
        Model([x, layers.Input((4,), name="x")], h)
    with pytest.raises(HandnetError, match="must be symbolic tensors"):
        Model(np.zeros((1, 4)), h)
    with pytest.raises(HandnetError, match="needs both"):
        Model(x)


def test_dense_on_a_higher_rank_tensor_works_on_the_last_axis():
    x = layers.Input((2, 3, 5))
    model = Model(x, layers.Dense(4, name="d4")(x), seed=0)
    assert model.output_shape == (2, 3, 4)
    assert_gradcheck(model, normal(2, 2, 3, 5))


LAYER_EXAMPLES = [
    (lambda: layers.Dense(3), (None, 5)),
    (lambda: layers.Activation("relu"), (None, 5)),
    (lambda: layers.ReLU(), (None, 5)),
    (lambda: layers.LeakyReLU(), (None, 5)),
    (lambda: layers.Softmax(), (None, 5)),
    (lambda: layers.Dropout(0.5), (None, 5)),
    (lambda: layers.BatchNormalization(), (None, 5)),
    (lambda: layers.Rescaling(2.0), (None, 5)),
    (lambda: layers.Flatten(), (None, 2, 3)),
    (lambda: layers.Reshape((3, 2)), (None, 6)),
    (lambda: layers.Conv2D(2, 3), (None, 6, 6, 1)),
    (lambda: layers.MaxPooling2D(), (None, 6, 6, 1)),
    (lambda: layers.AveragePooling2D(), (None, 6, 6, 1)),
    (lambda: layers.GlobalAveragePooling2D(), (None, 6, 6, 1)),
    (lambda: layers.GlobalMaxPooling2D(), (None, 6, 6, 1)),
    (lambda: layers.ZeroPadding2D(1), (None, 6, 6, 1)),
    (lambda: layers.SimpleRNN(3), (None, 4, 2)),
    (lambda: layers.LSTM(3), (None, 4, 2)),
    (lambda: layers.GRU(3), (None, 4, 2)),
    (lambda: layers.Bidirectional(layers.LSTM(3)), (None, 4, 2)),
    (lambda: layers.Add(), [(None, 5), (None, 5)]),
    (lambda: layers.Subtract(), [(None, 5), (None, 5)]),
    (lambda: layers.Multiply(), [(None, 5), (None, 5)]),
    (lambda: layers.Average(), [(None, 5), (None, 5)]),
    (lambda: layers.Maximum(), [(None, 5), (None, 5)]),
    (lambda: layers.Minimum(), [(None, 5), (None, 5)]),
    (lambda: layers.Concatenate(), [(None, 5), (None, 2)]),
    (lambda: layers.Dot(1), [(None, 5), (None, 5)]),
    (lambda: layers.Input((5,)), (None, 5)),
    (lambda: layers.ELU(), (None, 5)),
    (lambda: layers.PReLU(), (None, 5)),
    (lambda: layers.Identity(), (None, 5)),
    (lambda: layers.LayerNormalization(), (None, 5)),
    (lambda: layers.GroupNormalization(groups=2), (None, 4)),
    (lambda: layers.UnitNormalization(), (None, 5)),
    (lambda: layers.Normalization(), (None, 5)),
    (lambda: layers.Permute((2, 1)), (None, 3, 4)),
    (lambda: layers.RepeatVector(3), (None, 5)),
    (lambda: layers.Cropping1D(1), (None, 6, 2)),
    (lambda: layers.Cropping2D(1), (None, 6, 6, 1)),
    (lambda: layers.ZeroPadding1D(1), (None, 6, 2)),
    (lambda: layers.UpSampling1D(2), (None, 6, 2)),
    (lambda: layers.UpSampling2D(2), (None, 6, 6, 1)),
    (lambda: layers.Resizing(4, 9), (None, 6, 6, 1)),
    (lambda: layers.CenterCrop(4, 3), (None, 6, 6, 1)),
    (lambda: layers.Conv1D(2, 3), (None, 6, 2)),
    (lambda: layers.Conv2DTranspose(2, 3), (None, 6, 6, 1)),
    (lambda: layers.DepthwiseConv1D(3), (None, 6, 2)),
    (lambda: layers.DepthwiseConv2D(3), (None, 6, 6, 2)),
    (lambda: layers.SeparableConv1D(2, 3), (None, 6, 2)),
    (lambda: layers.SeparableConv2D(2, 3), (None, 6, 6, 2)),
    (lambda: layers.MaxPooling1D(), (None, 6, 2)),
    (lambda: layers.AveragePooling1D(), (None, 6, 2)),
    (lambda: layers.GlobalMaxPooling1D(), (None, 6, 2)),
    (lambda: layers.GlobalAveragePooling1D(), (None, 6, 2)),
    (lambda: layers.ActivityRegularization(l1=0.01), (None, 5)),
    (lambda: layers.AlphaDropout(0.2), (None, 5)),
    (lambda: layers.GaussianDropout(0.2), (None, 5)),
    (lambda: layers.GaussianNoise(0.1), (None, 5)),
    (lambda: layers.SpatialDropout1D(0.2), (None, 6, 2)),
    (lambda: layers.SpatialDropout2D(0.2), (None, 6, 6, 2)),
    (lambda: layers.RandomBrightness(0.1), (None, 8, 8, 1)),
    (lambda: layers.RandomContrast(0.1), (None, 8, 8, 1)),
    (lambda: layers.RandomCrop(6, 6), (None, 8, 8, 1)),
    (lambda: layers.RandomFlip(), (None, 8, 8, 1)),
    (lambda: layers.RandomRotation(0.1), (None, 8, 8, 1)),
    (lambda: layers.RandomTranslation(0.1, 0.1), (None, 8, 8, 1)),
    (lambda: layers.RandomZoom(0.1), (None, 8, 8, 1)),
    (lambda: layers.TimeDistributed(layers.Dense(3)), (None, 4, 5)),
    (lambda: layers.Embedding(5, 3, mask_zero=True), (None, 4)),
    (lambda: layers.Masking(), (None, 4, 2)),
    (lambda: layers.EinsumDense("abc,cd->abd", (None, 3)), (None, 4, 2)),
    (lambda: layers.MultiHeadAttention(2, 3), [(None, 4, 5), (None, 6, 5)]),
    (lambda: layers.Attention(), [(None, 4, 5), (None, 6, 5)]),
    (lambda: layers.AdditiveAttention(), [(None, 4, 5), (None, 6, 5)]),
]


def test_every_layer_type_is_in_the_examples():
    assert {type(make()).__name__ for make, _ in LAYER_EXAMPLES} == set(layers.LAYERS)


@pytest.mark.parametrize(
    "make, full_shape", LAYER_EXAMPLES, ids=[type(make()).__name__ for make, _ in LAYER_EXAMPLES]
)
def test_build_takes_keras_full_shape(make, full_shape):
    with_batch, without = make(), make()
    with_batch.build(full_shape, rng=np.random.default_rng(0))
    per_sample = [s[1:] for s in full_shape] if isinstance(full_shape, list) else full_shape[1:]
    without.build(per_sample, rng=np.random.default_rng(0))
    assert with_batch.input_shape == without.input_shape
    assert with_batch.output_shape == without.output_shape
    assert with_batch.params.keys() == without.params.keys()
    for key, value in without.params.items():
        np.testing.assert_array_equal(with_batch.params[key], value)
    assert with_batch.output_shape is not None
