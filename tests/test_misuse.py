"""API misuse gives a clear HandnetError (InvalidInputError for bad data) saying what was expected
and what came, never a raw NumPy or Python error from deep inside. The basic cases (wrong shape,
strings, objects, NaN, labels out of range) are in test_model.py; these are the rest."""

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet import layers
from handnet.layers import Dense, Input


@pytest.fixture
def model():
    return hn.Sequential([Input((4,)), Dense(3, activation="softmax")], seed=0).compile("adam")


X = np.ones((6, 4), np.float32)
Y = np.arange(6) % 3


def test_predict_before_build_builds_from_the_data_or_says_what_is_missing():
    unbuilt = hn.Sequential([Dense(3)], seed=0)
    assert unbuilt.predict(X).shape == (6, 3)  # Keras's behaviour: the first call builds
    with pytest.raises(HandnetError, match="the model has no layers"):
        hn.Sequential([]).predict(X)
    with pytest.raises(HandnetError, match="build or fit the model before saving"):
        hn.Sequential([Dense(3)]).save("never-written.npz")


@pytest.mark.parametrize("verb", ["fit", "predict", "evaluate"])
@pytest.mark.parametrize(
    "bad, message",
    [
        (X.astype(np.complex64), "must hold numbers.*complex64"),
        (X.astype("datetime64[s]"), "must hold numbers.*datetime64"),
        (np.zeros(6, [("a", "f4"), ("b", "f4"), ("c", "f4"), ("d", "f4")]), "must hold numbers"),
        # A dict is taken by input name (the functional API): a wrong name says which it needs.
        ({"x": X}, r"x: expected entries \['input.*'\], got \['x'\]"),
        ("1234", "must hold numbers.*<U4"),
        (np.full((6, 4), 1e300), "NaN or infinite"),  # finite in float64, inf in float32
        (np.full((6, 4), -np.inf, np.float32), "NaN or infinite"),
    ],
    ids=["complex", "datetime", "structured", "dict", "string", "overflows-float32", "minus-inf"],
)
def test_values_that_are_not_finite_real_numbers(model, verb, bad, message):
    call = {
        "fit": lambda: model.fit(bad, Y, verbose=0),
        "predict": lambda: model.predict(bad),
        "evaluate": lambda: model.evaluate(bad, Y),
    }[verb]
    with pytest.raises(InvalidInputError, match=message):
        call()


@pytest.mark.parametrize("verb", ["fit", "evaluate"])
@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 1, 2, 3, 0, 1]), r"labels must be in \[0, 3\).*0 to 3"),
        (np.array([0, 1, 2, 0, 1, 2**40]), r"labels must be in \[0, 3\)"),
        (np.array([0, 1, 2, 0, 1, np.nan]), "whole numbers"),
        (np.array([0, 1, 2, 0, 1, np.inf]), r"labels must be in \[0, 3\)"),
        (np.array([0, 1, 2, 0, 1, 2], np.complex64), "must hold numbers"),
        (np.array([0, 1, 2, 0, 1, 2], np.uint64) + np.uint64(2**63), r"labels must be in \[0, 3\)"),
        (None, "must hold numbers"),
    ],
    ids=["too-large", "huge", "nan", "inf", "complex", "uint64-huge", "none"],
)
def test_labels_out_of_range_or_of_the_wrong_kind(model, verb, labels, message):
    call = model.fit if verb == "fit" else model.evaluate
    kwargs = {"verbose": 0} if verb == "fit" else {}
    with pytest.raises(InvalidInputError, match=message):
        call(X, labels, **kwargs)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "32"])
@pytest.mark.parametrize("verb", ["fit", "predict", "evaluate"])
def test_batch_sizes_that_are_not_positive_integers(model, verb, batch_size):
    call = {
        "fit": lambda: model.fit(X, Y, batch_size=batch_size, verbose=0),
        "predict": lambda: model.predict(X, batch_size=batch_size),
        "evaluate": lambda: model.evaluate(X, Y, batch_size=batch_size),
    }[verb]
    with pytest.raises(
        InvalidInputError, match=f"batch_size must be a positive integer, got {batch_size!r}"
    ):
        call()


@pytest.mark.parametrize("dtype", ["int32", "float16", "complex64", object, [], "nonsense"])
def test_a_layer_dtype_that_is_not_float32_or_float64(dtype):
    with pytest.raises(InvalidInputError, match="dtype must be float32 or float64"):
        Dense(3, dtype=dtype)
    with pytest.raises(InvalidInputError, match="dtype must be float32 or float64"):
        Dense(3).cast(dtype)


def test_float64_still_works_everywhere():
    model = hn.Sequential([Input((4,)), Dense(3, dtype="float64")], seed=0).build()
    assert model.predict(X).dtype == np.float64
    assert Dense(3).cast(np.float64).dtype == np.float64


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: layers.Conv2D(3, 3, strides=(1, v)), "strides"),
        (lambda v: layers.Conv2D(3, 3, dilation_rate=v), "dilation_rate"),
        (lambda v: layers.Conv1D(3, 3, strides=v), "strides"),
        (lambda v: layers.MaxPooling2D(v), "pool_size"),
        (lambda v: layers.MaxPooling1D(2, strides=v), "strides"),
    ],
)
def test_windows_beyond_max_window_are_refused_by_name(make, name):
    """A stride of 2**63 from a forged file (found by the graph fuzzer, seed 1302) used to reach
    NumPy's as_strided at predict; sizes up to ops.padding.MAX_WINDOW still build."""
    from handnet.ops.padding import MAX_WINDOW

    make(MAX_WINDOW)
    for value in (MAX_WINDOW + 1, 2**63):
        with pytest.raises(HandnetError, match=rf"{name} must be a positive int.*at most"):
            make(value)
