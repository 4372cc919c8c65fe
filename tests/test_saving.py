"""Model files: bit-exact round trips, resuming training, atomic writes, errors on bad files."""

import json
import zipfile

import numpy as np
import pytest

import handnet as hn
from handnet import saving
from handnet.errors import HandnetError
from handnet.layers import Activation, Dense, Dropout, Flatten, Input, Reshape


def assert_same_arrays(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


def assert_same_optimizer_state(a, b):
    state_a, state_b = a.get_state(), b.get_state()
    assert sorted(state_a) == sorted(state_b)
    assert_same_arrays([state_a[k] for k in sorted(state_a)], [state_b[k] for k in sorted(state_b)])
    assert a.iterations == b.iterations


@pytest.fixture
def trained(blobs, make_mlp):
    x, y = blobs
    model = make_mlp(
        dropout=0.2, optimizer=hn.optimizers.Adam(hn.schedules.ExponentialDecay(0.01, 5, 0.9))
    )
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.2, verbose=0, seed=0)
    return model


def test_round_trip_is_bit_exact(trained, blobs, tmp_path):
    x, _ = blobs
    path = tmp_path / "model.npz"
    trained.save(path)
    loaded = hn.load_model(path)
    assert loaded.get_config() == trained.get_config()
    assert_same_arrays(loaded.get_weights(), trained.get_weights())
    assert_same_optimizer_state(loaded.optimizer, trained.optimizer)
    assert loaded.optimizer.iterations == 2 * 3  # 48 samples in batches of 16, twice
    assert hn.optimizers.serialize(loaded.optimizer) == hn.optimizers.serialize(trained.optimizer)
    assert hn.losses.serialize(loaded.loss) == hn.losses.serialize(trained.loss)
    assert loaded.metrics == trained.metrics
    assert loaded.history.history == trained.history.history and loaded.history.epoch == [0, 1]
    np.testing.assert_array_equal(loaded.predict(x), trained.predict(x))


OPTIMIZERS = {
    "sgd-nesterov": lambda: hn.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: hn.optimizers.RMSprop(0.01),
    "adam-clipnorm": lambda: hn.optimizers.Adam(0.01, clipnorm=0.5),
    "adamw-cosine": lambda: hn.optimizers.AdamW(
        hn.schedules.CosineDecay(0.01, 20, warmup_target=0.02, warmup_steps=3)
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_resuming_after_load_is_bit_identical_to_never_saving(blobs, make_mlp, tmp_path, name):
    x, y = blobs
    original = make_mlp(dropout=0.25, optimizer=OPTIMIZERS[name]())
    original.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=1)
    original.save(tmp_path / "checkpoint.npz")
    original.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=2)
    resumed = hn.load_model(tmp_path / "checkpoint.npz")
    resumed.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=2)
    assert_same_arrays(resumed.get_weights(), original.get_weights())
    assert_same_optimizer_state(resumed.optimizer, original.optimizer)


def test_every_core_layer_and_float64_round_trip(tmp_path):
    model = hn.Sequential(
        [
            Input((2, 3)),
            Flatten(dtype="float64"),
            Dense(
                4,
                activation=hn.activations.LeakyReLU(0.05),
                kernel_regularizer=hn.regularizers.L1L2(0.01, 0.02),
                bias_initializer="ones",
                dtype="float64",
            ),
            Dropout(0.5, seed=3, dtype="float64"),
            Dense(6, use_bias=False, dtype="float64"),
            Reshape((3, 2), dtype="float64"),
            Activation("softmax", dtype="float64"),
        ],
        seed=4,
    )
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    model.compile(hn.optimizers.SGD(0.1), "categorical_crossentropy")
    model.fit(x, np.full((5, 3, 2), 0.5), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = hn.load_model(tmp_path / "m.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    assert_same_arrays(loaded.get_weights(), model.get_weights())
    assert loaded.predict(x).dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_uncompiled_model_and_compile_false(make_mlp, blobs, tmp_path):
    x, _ = blobs
    bare = hn.Sequential([Input((4,)), Dense(3)], seed=0)
    bare.build()
    bare.save(tmp_path / "bare.npz")
    loaded = hn.load_model(tmp_path / "bare.npz")
    assert loaded.optimizer is None and loaded.history is None
    np.testing.assert_array_equal(loaded.predict(x), bare.predict(x))
    compiled = make_mlp()
    compiled.build()
    compiled.save(tmp_path / "compiled.npz")
    assert hn.load_model(tmp_path / "compiled.npz", compile=False).optimizer is None


def test_saving_an_unbuilt_model_is_an_error(make_mlp, tmp_path):
    with pytest.raises(HandnetError, match="build or fit the model before saving"):
        make_mlp().save(tmp_path / "m.npz")


def test_the_file_is_plain_arrays_readable_without_pickle(trained, tmp_path):
    path = tmp_path / "model.npz"
    trained.save(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    assert all(array.dtype != object for array in arrays.values())
    config = json.loads(arrays["config.json"].tobytes().decode())
    assert config["format"] == "handnet-model" and config["version"] == 2
    kernel_keys = [k for k in arrays if k.startswith("weights/") and k.endswith("/kernel")]
    assert len(kernel_keys) == 2 and "optimizer/iterations" in arrays


# -- atomic writes ---------------------------------------------------------------------------------
def failing_savez(file, **arrays):
    file.write(b"PK\x03\x04 half an archive")
    raise OSError("disk full")


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(
    trained, tmp_path, monkeypatch
):
    path = tmp_path / "model.npz"
    trained.save(path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    monkeypatch.undo()
    assert_same_arrays(hn.load_model(path).get_weights(), trained.get_weights())


def test_a_failed_first_save_leaves_nothing(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError):
        trained.save(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


# -- bad files -------------------------------------------------------------------------------------
def write_archive(path, config=None, **arrays):
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        arrays["config.json"] = np.frombuffer(text.encode(), dtype=np.uint8)
    saving.write_npz_atomic(path, arrays)
    return path


def saved_config(trained, tmp_path):
    trained.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("config.json").tobytes().decode()), arrays


def test_missing_file(tmp_path):
    with pytest.raises(HandnetError, match="no model file at"):
        hn.load_model(tmp_path / "absent.npz")


@pytest.mark.parametrize(
    "content",
    [b"this is a text file\n", b"", b"PK\x03\x04 truncated zip", b"\x80\x04\x95 pickle-like bytes"],
    ids=["text", "empty", "truncated-zip", "pickle"],
)
def test_a_file_that_is_not_an_npz(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(HandnetError, match="is not a readable handnet model"):
        hn.load_model(path)


def test_a_single_npy_array(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(HandnetError, match="not a handnet model"):
        hn.load_model(path)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_a_keras_file_is_named_with_the_function_that_reads_it(tmp_path, kind):
    """A .keras archive (a zip of config.json, metadata.json, …) or an HDF5 file (legacy .h5)
    given to load_model: the error says to read it with from_keras or convert it."""
    path = tmp_path / f"model.{kind}"
    if kind == "keras":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", "{}")
            archive.writestr("config.json", "{}")
    else:
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(HandnetError, match=r"is a Keras model file, not a handnet model \(.npz\): "
                       r"read it with handnet.from_keras\(.*\), or convert it once"):
        hn.load_model(path)


def test_an_npz_with_a_pickled_object_array_is_refused_unread(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, **{"config.json": np.array([{"format": "handnet-model"}], dtype=object)})
    with pytest.raises(HandnetError, match="not a readable handnet model"):
        hn.load_model(path)


def test_an_npz_without_config(tmp_path):
    path = write_archive(tmp_path / "m.npz", **{"weights/dense/kernel": np.zeros((2, 2))})
    with pytest.raises(HandnetError, match="no config.json entry"):
        hn.load_model(path)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"format": "keras", "version": 1}, r"not a handnet model file \(format 'keras'\)"),
        ([1, 2, 3], "not a handnet model file"),
        ("{not json", "config.json is not valid JSON"),
        (
            {"format": "handnet-model", "version": 99},
            r"model format version 99, this handnet reads \(1, 2\)",
        ),
        ({"format": "handnet-model", "version": 1}, "malformed model description"),
        (
            {
                "format": "handnet-model",
                "version": 1,
                "model": {"input_shape": [4], "layers": [{"class_name": "Conv9D"}]},
            },
            "unknown layer type 'Conv9D'",
        ),
        (
            {
                "format": "handnet-model",
                "version": 1,
                "model": {"input_shape": [4], "layers": ["Dense"]},
            },
            "malformed model description",
        ),
    ],
    ids=[
        "other-format",
        "not-an-object",
        "not-json",
        "future-version",
        "no-model",
        "unknown-layer",
        "layer-not-a-dict",
    ],
)
def test_a_config_that_is_not_a_handnet_model(tmp_path, config, message):
    with pytest.raises(HandnetError, match=message):
        hn.load_model(write_archive(tmp_path / "m.npz", config))


def test_missing_or_misshapen_weights_are_named(trained, tmp_path):
    config, arrays = saved_config(trained, tmp_path)
    kernel = next(k for k in arrays if k.endswith("/kernel"))
    missing = {k: v for k, v in arrays.items() if k != kernel}
    with pytest.raises(HandnetError, match=f"weight {kernel[len('weights/') :]} is missing"):
        hn.load_model(write_archive(tmp_path / "missing.npz", config, **missing))
    misshapen = {**arrays, kernel: arrays[kernel].T}
    with pytest.raises(HandnetError, match=r"has shape \(8, 4\), the layer expects \(4, 8\)"):
        hn.load_model(write_archive(tmp_path / "misshapen.npz", config, **misshapen))
