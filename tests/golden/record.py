"""Record what each named architecture does in 12 training steps on MNIST: golden.json.

    python tests/golden/record.py            # writes tests/golden/golden.json
    python tests/golden/record.py --check    # prints the largest differences from it

For mlp, cnn, lenet, lstm and best: build from seed 0, compile with the recipe's optimizer
(its schedule spread over the 12 steps) and loss, fit one epoch of 12 batches of the first
12 × batch training images (shuffled and dropped out from fit's seed 0, augmented when the
recipe says so), then record

    weight_norms      the L2 norm of every weight array, keyed "layer/weight" (below)
    weight_norms_by_position   the same norms in get_weights() order
    batch_losses      the loss of each of the 12 steps; history: fit's epoch logs
    probabilities     predict() on the first 200 test images, as full float reprs

tests/test_golden.py runs ``run_architecture`` again and compares. Only entry points a
redesign keeps are used: architectures.build / get / prepare_images / make_optimizer,
compile, fit (seed, threads, augment, callbacks), predict, get_weights, model.layers.

Layer keys are Keras's names as a fresh model would number them (conv2d, conv2d_1, …,
counted within the model): handnet's own names count across the process, so they depend on
what was built before. All runs use one BLAS thread and fit(threads=1), so the numbers do not
depend on the number of cores (measured: with NumPy's default two BLAS threads here, lenet
moves by 1e-5 and best by 0.016 in a probability). They do depend on the BLAS kernel (see
``blas_kernel`` and tests/test_golden.py).
"""

import collections
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_limits

if __name__ == "__main__":  # run as a script: this checkout's handnet, not an installed one
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import handnet as hn  # noqa: E402
from handnet import augment, losses  # noqa: E402
from handnet.preprocess import prepare_images  # noqa: E402
from handnet.zoo import architectures, recipes  # noqa: E402

GOLDEN_PATH = Path(__file__).with_name("golden.json")
NAMES = ("mlp", "cnn", "lenet", "lstm", "best")
STEPS = 12
#: The recipes' batch size (128 for all five); the five runs take about 8 s on one core.
BATCH_SIZE = 128
TEST_IMAGES = 200
SEED = 0


def blas_kernel():
    """{"internal_api", "version", "architecture"} of NumPy's BLAS: OpenBLAS picks a kernel
    for the CPU (SkylakeX on AVX-512, Haswell on AVX2, or OPENBLAS_CORETYPE's), and kernels
    add in different orders, so the last bits of a product depend on it."""
    for library in ThreadpoolController().select(user_api="blas").lib_controllers:
        info = library.info()
        return {key: info.get(key) for key in ("internal_api", "version", "architecture")}
    return {"internal_api": None, "version": None, "architecture": None}


def keras_names(model):
    """Each layer's name as Keras numbers a fresh model's: the class in snake_case, then _1,
    _2, … for the second, third of that class."""
    counts = collections.Counter()
    names = []
    for layer in model.layers:
        base = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", type(layer).__name__).lower()
        names.append(base if counts[base] == 0 else f"{base}_{counts[base]}")
        counts[base] += 1
    return names


def named_weights(model):
    """[("layer/weight", array)] in get_weights() order: each layer's weights() dict (params,
    then state). The one place that reads layer internals; test_golden checks that it agrees
    with get_weights()."""
    return [
        (f"{name}/{key}", array)
        for name, layer in zip(keras_names(model), model.layers)
        for key, array in layer.weights().items()
    ]


class BatchLosses(hn.callbacks.Callback):
    """Keeps the loss of every training step (fit's History keeps one value an epoch)."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def load_subsets():
    """(x_train, y_train, x_test): the first STEPS × BATCH_SIZE training images and the first
    TEST_IMAGES test images, uint8 (N, 28, 28)."""
    (x_train, y_train), (x_test, _) = hn.datasets.mnist.load_data(verbose=False)
    count = STEPS * BATCH_SIZE
    return x_train[:count], y_train[:count], x_test[:TEST_IMAGES]


def run_architecture(name, data, batch_size=BATCH_SIZE):
    """Train architecture ``name`` for STEPS steps and return what golden.json records for it.

    data: load_subsets()'s (x_train, y_train, x_test)."""
    x_train, y_train, x_test = data
    recipe = architectures.get(name).training
    count = STEPS * batch_size
    with threadpool_limits(limits=1, user_api="blas"):
        model = architectures.build(name, seed=SEED)
        optimizer = recipes.make_optimizer(
            recipe.optimizer,
            recipe.learning_rate,
            recipe.schedule,
            total_steps=STEPS,
            warmup_steps=recipe.warmup_steps,
        )
        loss = losses.SparseCategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        model.compile(optimizer, loss=loss, metrics=["accuracy"])
        augmenter = None
        if recipe.augment is not None:
            flat = len(model.input_shape) == 1
            augmenter = augment.RandomAffine(
                **recipe.augment, image_shape=x_train.shape[1:] if flat else None
            )
        batch_losses = BatchLosses()
        history = model.fit(
            prepare_images(x_train[:count], model.input_shape),
            y_train[:count],
            epochs=1,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            seed=SEED,
            threads=1,
            augment=augmenter,
            callbacks=[batch_losses],
        )
        probabilities = model.predict(prepare_images(x_test, model.input_shape))
    named = named_weights(model)
    return {
        "batch_size": batch_size,
        "train_images": count,
        "optimizer": recipe.optimizer,
        "learning_rate": recipe.learning_rate,
        "schedule": recipe.schedule,
        "augment": recipe.augment,
        "weight_norms": {key: _norm(array) for key, array in named},
        "weight_norms_by_position": [_norm(array) for array in model.get_weights()],
        "weight_shapes": [list(array.shape) for array in model.get_weights()],
        "batch_losses": batch_losses.losses,
        "history": {
            key: [float(value) for value in values]
            for key, values in history.history.items()
            if key != "seconds"
        },
        "probabilities": np.asarray(probabilities, dtype=np.float64).tolist(),
    }


def _norm(array):
    """‖w‖₂ over every entry, summed in float64 so that the norm adds no rounding of its own."""
    return float(np.sqrt(np.sum(np.square(np.asarray(array, dtype=np.float64)))))


def record(names=NAMES, path=GOLDEN_PATH):
    data = load_subsets()
    golden = {
        "about": "12 training steps of each named architecture; see tests/golden/record.py",
        "steps": STEPS,
        "seed": SEED,
        "test_images": TEST_IMAGES,
        "blas_kernel": blas_kernel(),
        "numpy": np.__version__,
        "architectures": {},
    }
    for name in names:
        started = time.perf_counter()
        golden["architectures"][name] = run_architecture(name, data)
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    path.write_text(to_json(golden) + "\n")
    return golden


def to_json(value, indent=""):
    """JSON with one key a line but each list of numbers (a probability row) on one line."""
    inner = indent + " "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {to_json(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        items = [inner + to_json(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value)  # floats as repr: the shortest text that reads back the same


def differences(expected, actual):
    """The largest difference in each recorded quantity between two run_architecture results:
    relative for the weight norms, absolute for losses and probabilities. Keys or shapes that
    disagree raise AssertionError, since no tolerance makes them agree."""
    assert list(actual["weight_norms"]) == list(expected["weight_norms"]), "weight names differ"
    assert actual["weight_shapes"] == expected["weight_shapes"], "weight shapes differ"
    assert list(actual["history"]) == list(expected["history"]), "history keys differ"

    def relative(a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)))

    def absolute(a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        assert a.shape == b.shape, f"shapes differ: {a.shape} against {b.shape}"
        return float(np.max(np.abs(a - b))) if a.size else 0.0

    return {
        "weight_norms": relative(
            list(actual["weight_norms"].values()), list(expected["weight_norms"].values())
        ),
        "weight_norms_by_position": relative(
            actual["weight_norms_by_position"], expected["weight_norms_by_position"]
        ),
        "batch_losses": absolute(actual["batch_losses"], expected["batch_losses"]),
        **{
            f"history/{key}": absolute(values, expected["history"][key])
            for key, values in actual["history"].items()
        },
        "probabilities": absolute(actual["probabilities"], expected["probabilities"]),
    }


def check(names=NAMES, path=GOLDEN_PATH):
    """Print the largest differences between a fresh run and golden.json (nothing written)."""
    golden = json.loads(path.read_text())
    print(f"recorded with {golden['blas_kernel']}, now {blas_kernel()}")
    data = load_subsets()
    for name in names:
        found = differences(golden["architectures"][name], run_architecture(name, data))
        print(name, " ".join(f"{key}={value:.3g}" for key, value in found.items()))


if __name__ == "__main__":
    check() if sys.argv[1:] == ["--check"] else record()
