"""Normalization: the statistics adapt measures (one array, or batches merged exactly), the
formula by hand, gradient checks in float64, configs and saving, clear errors. Keras is the
oracle in tests/keras/test_catalogue_preprocessing_keras.py."""

import json

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.layers import Normalization


def test_by_hand():
    layer = Normalization(mean=[1.0, 10.0], variance=[4.0, 0.0], dtype="float64")
    x = np.array([[3.0, 10.5], [1.0, 9.0]])
    np.testing.assert_allclose(layer(x), [[1.0, 0.5e7], [0.0, -1e7]])  # std 0 held at 1e-7
    np.testing.assert_allclose(layer.backward(np.ones((2, 2))), [[0.5, 1e7], [0.5, 1e7]])
    inverse = Normalization(mean=[1.0, 10.0], variance=[4.0, 0.0], invert=True, dtype="float64")
    np.testing.assert_allclose(inverse(layer(x)), x)


@pytest.mark.parametrize("axis, shape", [(-1, (3, 4)), (1, (3, 4)), (None, (3,)),
                                          ((1, 3), (2, 3, 2))], ids=str)
def test_adapt_is_the_mean_and_biased_variance_over_the_other_axes(axis, shape):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((30, *shape)) * 3 + 1
    layer = Normalization(axis=axis, dtype="float64").adapt(data)
    keep = () if axis is None else tuple(sorted(a % data.ndim for a in np.atleast_1d(axis)))
    others = tuple(a for a in range(data.ndim) if a not in keep)
    np.testing.assert_allclose(layer.state["mean"], data.mean(axis=others))
    np.testing.assert_allclose(layer.state["variance"], data.var(axis=others))
    assert layer.state["count"] == 0  # Keras 3 never updates it
    y = layer(data)
    np.testing.assert_allclose(y.mean(axis=others), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=others), 1)


def test_adapt_on_batches_merges_exactly():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((37, 3, 2)) * [1, 5] + [0, -3]
    whole = Normalization(dtype="float64").adapt(data)
    batched = Normalization(dtype="float64").adapt(data[i:i + 8] for i in range(0, 37, 8))
    for name in ("mean", "variance"):
        np.testing.assert_allclose(batched.state[name], whole.state[name], rtol=1e-12)


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("adapted", [False, True])
def test_backward_matches_central_differences(adapted, invert):
    if adapted:
        data = np.random.default_rng(2).standard_normal((10, 2, 3)) * 2 + 1
        layer = Normalization(axis=(1, 2), invert=invert).adapt(data)
    else:
        layer = Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0], invert=invert)
    report = hn.gradcheck(layer, input_shape=(2, 3))
    assert report.passed, f"\n{report}"
    assert [row.quantity for row in report.rows] == ["x"]  # nothing trained


def test_dy_untouched_and_nothing_trained():
    layer = Normalization(mean=1.0, variance=4.0)
    layer(np.ones((2, 3), "float32"))
    dy = np.ones((2, 3), "float32")
    layer.backward(dy)
    np.testing.assert_array_equal(dy, 1)
    assert layer.params == {} and layer.grads == {}


def test_config_round_trip_and_saving(tmp_path):
    given = Normalization(axis=[1, 2], mean=[[1.0], [2.0]], variance=[[3.0], [4.0]], invert=True)
    config = json.loads(json.dumps(given.get_config()))
    assert Normalization.from_config(config).get_config() == given.get_config()
    assert config["mean"] == [[1.0], [2.0]] and config["axis"] == [1, 2]

    data = np.random.default_rng(3).standard_normal((16, 4)).astype("float32") * 4 + 2
    adapted = Normalization().adapt(data)  # adapted first: building the model keeps it
    model = hn.Sequential([hn.layers.Input((4,)), adapted, hn.layers.Dense(2)], seed=0)
    model.build()
    np.testing.assert_allclose(adapted.state["mean"], data.mean(axis=0), rtol=1e-6)
    model.save(tmp_path / "model.npz")
    loaded = hn.load_model(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.layers[0].state["mean"], model.layers[0].state["mean"])
    np.testing.assert_array_equal(loaded.predict(data), model.predict(data))


def test_explain():
    headline, formula = Normalization(mean=0.0, variance=1.0).explain()
    assert "given" in headline and formula == "y = (x - mean) / max(sqrt(variance), 1e-7)"
    assert "mean +" in Normalization(invert=True).explain()[1]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Normalization(axis="channels"), "axis must be None, an int or ints"),
        (lambda: Normalization(mean=1.0), "needs both mean and variance"),
        (lambda: Normalization(mean=[1.0, 2.0], variance=[1.0]), "must have one shape"),
        (lambda: Normalization(mean=[[1.0]], variance=[[1.0]]), "has more axes than axis"),
        (lambda: Normalization(mean=0.0, variance=-1.0), "variance must be finite and >= 0"),
        (lambda: Normalization(axis=0).build((3,)), "batch axis 0 cannot keep"),
        (lambda: Normalization(axis=2).build((3,)), "axis \\(2,\\) must name axes 1…1"),
        (lambda: Normalization(mean=[1.0, 2.0], variance=[1.0, 2.0]).build((3,)), "does not fit"),
        (lambda: Normalization(mean=0.0, variance=1.0).adapt(np.ones((2, 3))), "was given mean"),
        (lambda: Normalization().adapt("data"), "takes an array"),
        (lambda: Normalization().adapt([]), "got no batches"),
    ],
)
def test_clear_errors(make, message):
    with pytest.raises(HandnetError, match=message):
        make()


def test_adapt_data_errors():
    layer = Normalization()
    layer.build((3,))
    with pytest.raises(InvalidInputError, match="built for per-sample shape \\(3,\\)"):
        layer.adapt(np.ones((5, 4)))
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        layer.adapt(np.full((5, 3), np.nan))
