"""A model file of format version 1, written by the handnet of that time, still loads: the same
layers, the same predictions (1e-6), and its compile settings and Adam state, so that one more
training step goes exactly as it went in the process that saved it.

The fixture (tests/fixtures/sequential_v1.npz, .json) was written once by
tests/fixtures/make_sequential_v1.py; do not regenerate it to make this test pass.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import handnet as hn

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_PATH = FIXTURES / "sequential_v1.npz"
TOLERANCE = 1e-6
LAYERS = [
    "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Dropout", "Flatten", "Dense",
    "Dense",
]


@pytest.fixture(scope="module")
def expected():
    return json.loads((FIXTURES / "sequential_v1.json").read_text())


def images(pixels):
    """As make_sequential_v1.images: pixels (N, 100) -> float32 (N, 10, 10, 1), exactly."""
    return (np.asarray(pixels, dtype=np.float32) / 256).reshape(-1, 10, 10, 1)


@pytest.fixture(autouse=True)
def one_blas_thread():
    # The expected values were computed on one BLAS thread; more may add in another order.
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_the_v1_file_loads_with_its_layers_and_predictions(expected):
    model = hn.load_model(MODEL_PATH)
    assert [type(layer).__name__ for layer in model.layers] == LAYERS
    assert tuple(model.input_shape) == (10, 10, 1)
    predictions = model.predict(images(expected["pixels_predict"]))
    np.testing.assert_allclose(predictions, expected["predictions"], rtol=0, atol=TOLERANCE)


def test_the_v1_file_keeps_compile_settings_history_and_optimizer_state(expected):
    model = hn.load_model(MODEL_PATH)
    assert hn.optimizers.serialize(model.optimizer) == expected["optimizer"]
    assert hn.losses.serialize(model.loss) == expected["loss"]
    assert list(model.metrics) == expected["metrics"]
    assert int(model.optimizer.iterations) == expected["iterations_saved"]
    for key, values in expected["history_saved"].items():
        np.testing.assert_allclose(model.history.history[key], values, rtol=0, atol=TOLERANCE)


def test_one_more_step_after_loading_goes_as_it_went_before_saving(expected):
    x_train, y_train = images(expected["pixels_train"]), np.array(expected["y_train"])
    x_predict = images(expected["pixels_predict"])
    after = expected["after_one_more_step"]
    model = hn.load_model(MODEL_PATH)
    history = model.fit(x_train, y_train, seed=after["fit_seed"], **expected["fit"])
    np.testing.assert_allclose(history.history["loss"], after["loss"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        model.predict(x_predict), after["predictions"], rtol=0, atol=TOLERANCE
    )
    assert int(model.optimizer.iterations) == expected["iterations_saved"] + 1

    # The same step from a fresh Adam (no moments, step 1 of the schedule) lands elsewhere:
    # the comparison above does see whether the saved state was restored.
    fresh = hn.load_model(MODEL_PATH, compile=False)
    fresh.compile(
        hn.optimizers.get(expected["optimizer"]),
        hn.losses.get(expected["loss"]),
        expected["metrics"],
    )
    fresh.fit(x_train, y_train, seed=after["fit_seed"], **expected["fit"])
    gap = np.abs(fresh.predict(x_predict) - np.array(after["predictions"])).max()
    assert gap > 100 * TOLERANCE
