"""Files that are not (quite) Keras models: each gives one clear HandnetError, never a traceback
from inside zipfile or h5py. None of these tests needs Keras: the files are written with
handnet's exporter, zipfile and h5py."""

import io
import json
import zipfile

import h5py
import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError
from handnet.keras_io import from_keras, load_any, reader


def small_model():
    model = hn.Sequential(
        [
            hn.layers.Input((4, 4, 1)),
            hn.layers.Conv2D(2, 3, name="conv"),
            hn.layers.Flatten(name="flat"),
            hn.layers.Dense(3, activation="softmax", name="out"),
        ],
        seed=0,
    )
    return model.build()


@pytest.fixture
def keras_file(tmp_path):
    path = tmp_path / "model.keras"
    small_model().to_keras(path)
    return path


def rewrite(path, target, change):
    """Copy the .keras archive at ``path`` to ``target``, passing each member's (name, bytes)
    through ``change``, which returns the new pair or None to drop the member."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for name in source.namelist():
            changed = change(name, source.read(name))
            if changed is not None:
                out.writestr(*changed)
    return target


def edit_weights(data, edit):
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "a") as h5:
        edit(h5)
    return buffer.getvalue()


def edit_config(data, edit):
    config = json.loads(data)
    edit(config)
    return json.dumps(config).encode()


def test_the_valid_file_loads(keras_file):
    assert [layer.name for layer in from_keras(keras_file).layers] == ["conv", "flat", "out"]


def test_truncated_zip(keras_file, tmp_path):
    data = keras_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 40):
        truncated = tmp_path / f"cut{cut}.keras"
        truncated.write_bytes(data[:cut])
        with pytest.raises(HandnetError, match="zip|not a Keras model"):
            from_keras(truncated)


def test_zip_without_config_json(keras_file, tmp_path):
    target = rewrite(
        keras_file, tmp_path / "x.keras", lambda n, d: None if n == "config.json" else (n, d)
    )
    with pytest.raises(HandnetError, match="no config.json"):
        from_keras(target)


def test_zip_without_weights(keras_file, tmp_path):
    target = rewrite(
        keras_file, tmp_path / "x.keras", lambda n, d: None if n == "model.weights.h5" else (n, d)
    )
    with pytest.raises(HandnetError, match="no model.weights.h5"):
        from_keras(target)


def test_config_json_that_is_not_json(keras_file, tmp_path):
    target = rewrite(
        keras_file,
        tmp_path / "x.keras",
        lambda n, d: (n, b"{not json" if n == "config.json" else d),
    )
    with pytest.raises(HandnetError, match="not valid JSON"):
        from_keras(target)


def test_weights_member_that_is_not_hdf5(keras_file, tmp_path):
    target = rewrite(
        keras_file,
        tmp_path / "x.keras",
        lambda n, d: (n, b"garbage" * 10 if n == "model.weights.h5" else d),
    )
    with pytest.raises(HandnetError, match="not a readable HDF5"):
        from_keras(target)


def test_missing_weight(keras_file, tmp_path):
    def drop_bias(name, data):
        return name, edit_weights(
            data, lambda h5: h5["layers/dense/vars"].__delitem__("1")
        ) if name == "model.weights.h5" else data

    with pytest.raises(
        HandnetError,
        match=(
            r"holds 1 weight array\(s\) for layer 'out' \(Dense\); "
            r"with its options it needs 2: kernel \(8, 3\), bias \(3,\)"
        ),
    ):
        from_keras(rewrite(keras_file, tmp_path / "x.keras", drop_bias))


def test_missing_weights_group(keras_file, tmp_path):
    def drop_layer(name, data):
        return name, edit_weights(
            data, lambda h5: h5["layers"].__delitem__("conv2d")
        ) if name == "model.weights.h5" else data

    with pytest.raises(HandnetError, match=r"no weights for layer 'conv' \(Conv2D\)"):
        from_keras(rewrite(keras_file, tmp_path / "x.keras", drop_layer))


def test_mis_shaped_weight(keras_file, tmp_path):
    def reshape_kernel(h5):
        del h5["layers/conv2d/vars/0"]
        h5["layers/conv2d/vars/0"] = np.zeros((3, 3, 1, 5), np.float32)

    def change(name, data):
        return name, edit_weights(data, reshape_kernel) if name == "model.weights.h5" else data

    with pytest.raises(
        HandnetError,
        match=(
            r"conv/kernel has shape \(3, 3, 1, 5\) in the file, "
            r"the layer \(Conv2D\) needs \(3, 3, 1, 2\)"
        ),
    ):
        from_keras(rewrite(keras_file, tmp_path / "x.keras", change))


def test_weight_of_the_wrong_kind(keras_file, tmp_path):
    def integer_bias(h5):
        del h5["layers/dense/vars/1"]
        h5["layers/dense/vars/1"] = np.zeros(3, np.int32)

    def change(name, data):
        return name, edit_weights(data, integer_bias) if name == "model.weights.h5" else data

    with pytest.raises(HandnetError, match="dtype int32, expected floating point"):
        from_keras(rewrite(keras_file, tmp_path / "x.keras", change))


@pytest.mark.parametrize(
    ("class_name", "message"),
    [
        # A Keras class handnet does not import: its reason (docs/keras.md's table).
        ("Conv3D", r"'flat' is a Conv3D: 3-D volumes \(video, scans\): not the digit world"),
        # Any other class is custom code: the list of what handnet reads.
        ("MyLayer", r"'flat' is a MyLayer, which handnet does not have \(not a Keras layer "
                    r"class: a custom class.*\); handnet reads .*Conv2D.*Dense"),
    ],
)
def test_a_layer_handnet_lacks(keras_file, tmp_path, class_name, message):
    def rename(config):
        config["config"]["layers"][2]["class_name"] = class_name

    target = rewrite(
        keras_file,
        tmp_path / "x.keras",
        lambda n, d: (n, edit_config(d, rename) if n == "config.json" else d),
    )
    with pytest.raises(HandnetError, match=message):
        from_keras(target)


@pytest.mark.parametrize(
    ("layer", "option", "value", "message"),
    [
        (
            1,
            "data_format",
            "channels_first",
            r"'conv' \(Conv2D\): data_format='channels_first' is not supported; "
            r"handnet supports None or 'channels_last'",
        ),
        (1, "padding", "causal", r"padding='causal' is not supported"),
        (
            1,
            "activity_regularizer",
            {"class_name": "L2", "config": {"l2": 0.1}},
            r"activity_regularizer=.* only activity_regularizer=None",
        ),
        (
            1,
            "kernel_constraint",
            {"class_name": "MaxNorm", "config": {}},
            r"kernel_constraint=.* is not supported",
        ),
        (
            1,
            "activation",
            "sparsemax",
            r"activation='sparsemax' is not supported: handnet has no sparsemax",
        ),
        (
            3,
            "kernel_regularizer",
            {"class_name": "OrthogonalRegularizer", "config": {}},
            r"kernel_regularizer=.* None, L1, L2 or L1L2",
        ),
        (3, "lora_rank", 4, r"lora_rank=4 is not supported"),
        (
            3,
            "dtype",
            "mixed_float16",
            r"dtype='mixed_float16' is not supported; handnet supports float32 or float64",
        ),
        (2, "data_format", "channels_middle",
         r"'flat' \(Flatten\): data_format='channels_middle' is not supported"),
        (
            3,
            "some_future_option",
            7,
            r"some_future_option=7 is not supported; handnet supports no such option",
        ),
        (0, "sparse", True, r"'input_layer' \(InputLayer\): sparse=True is not supported"),
    ],
)
def test_unsupported_options_name_the_layer_the_option_and_what_is_supported(
    keras_file, tmp_path, layer, option, value, message
):
    def set_option(config):
        config["config"]["layers"][layer]["config"][option] = value

    target = rewrite(
        keras_file,
        tmp_path / "x.keras",
        lambda n, d: (n, edit_config(d, set_option) if n == "config.json" else d),
    )
    with pytest.raises(HandnetError, match=message):
        from_keras(target)


def test_a_graph_without_its_weights_or_with_a_cycle(tmp_path):
    def tensor(name):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}

    def dense(name, *inputs):
        arguments = [[tensor(i) for i in inputs]] if len(inputs) > 1 else [tensor(inputs[0])]
        return {
            "class_name": "Dense",
            "name": name,
            "config": {"name": name, "units": 2},
            "inbound_nodes": [{"args": arguments, "kwargs": {}}],
        }

    config = {
        "class_name": "Functional",
        "config": {
            "name": "branches",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "x",
                    "config": {"name": "x", "batch_shape": [None, 3]},
                    "inbound_nodes": [],
                },
                dense("a", "x"),
                dense("b", "x"),
                {
                    "class_name": "Add",
                    "name": "sum",
                    "config": {"name": "sum"},
                    "inbound_nodes": [{"args": [[tensor("a"), tensor("b")]], "kwargs": {}}],
                },
            ],
            "input_layers": ["x", 0, 0],
            "output_layers": ["sum", 0, 0],
        },
    }
    path = tmp_path / "branches.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", _empty_h5())
    with pytest.raises(
        HandnetError, match=r"the file has no weights for layer 'a' \(Dense\); expected kernel"
    ):
        from_keras(path)
    config["config"]["layers"][1] = dense("a", "sum")  # a reads what it feeds
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", _empty_h5())
    with pytest.raises(
        HandnetError, match=r"the graph cannot be built: the calls of \['a', 'sum'\] read tensors"
    ):
        from_keras(path)


def _empty_h5():
    buffer = io.BytesIO()
    with h5py.File(buffer, "w"):
        pass
    return buffer.getvalue()


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.keras"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(HandnetError, match="is not a Keras model: expected a .keras file"):
        from_keras(path)
    with pytest.raises(HandnetError, match="is not a model file"):
        load_any(path)


def test_missing_file(tmp_path):
    with pytest.raises(HandnetError, match="no Keras model file"):
        from_keras(tmp_path / "absent.keras")


def test_a_handnet_npz_is_not_a_keras_file_but_load_any_reads_it(tmp_path):
    path = tmp_path / "model.npz"
    small_model().save(path)
    with pytest.raises(HandnetError, match="no config.json"):
        from_keras(path)
    assert [layer.name for layer in load_any(path).layers] == ["conv", "flat", "out"]


def test_a_zip_bomb_member_is_refused_before_it_is_read(keras_file, tmp_path):
    # 17 MiB of spaces compress to ~17 KiB: declared size over the 16 MiB cap.
    padded = tmp_path / "bomb.keras"
    with (
        zipfile.ZipFile(keras_file) as source,
        zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        out.writestr("config.json", source.read("config.json") + b" " * (17 * 2**20))
        out.writestr("model.weights.h5", source.read("model.weights.h5"))
    assert padded.stat().st_size < 2**20
    with pytest.raises(
        HandnetError, match=r"config.json declares 17,8\d\d,\d\d\d bytes, more than the 16,777,216"
    ):
        from_keras(padded)


def test_weights_over_the_size_cap_are_refused_before_reading(keras_file, tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_WEIGHTS_BYTES", 64)
    with pytest.raises(
        HandnetError, match=r"model.weights.h5 declares 1\d,\d\d\d bytes, more than the 64"
    ):
        from_keras(keras_file)
    # In an HDF5 file each dataset's size is checked before it is read (4·3 + 3 floats > 32 bytes).
    monkeypatch.setattr(reader, "MAX_WEIGHTS_BYTES", 32)
    with pytest.raises(HandnetError, match="the weights add up to more than the 32 bytes"):
        from_keras(legacy_h5(tmp_path / "old.h5"))


# -- legacy .h5 ----------------------------------------------------------------------------------
def legacy_h5(path, config=None, weights=True):
    """A Keras-2-style .h5: model_config + model_weights/<layer>/<layer>/<name>:0."""
    config = config or {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, 4],
                        "dtype": "float32",
                        "name": "input_1",
                    },
                },
                {
                    "class_name": "Dense",
                    "config": {
                        "name": "dense",
                        "trainable": True,
                        "dtype": "float32",
                        "units": 3,
                        "activation": "relu",
                        "use_bias": True,
                        "kernel_initializer": {
                            "class_name": "GlorotUniform",
                            "config": {"seed": None},
                        },
                        "activity_regularizer": None,
                        "kernel_constraint": None,
                    },
                },
            ],
        },
    }
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        if weights:
            group = h5.create_group("model_weights")
            group.attrs["layer_names"] = [b"dense"]
            layer = group.create_group("dense")
            layer.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
            layer["dense/kernel:0"] = np.arange(12, dtype=np.float32).reshape(4, 3)
            layer["dense/bias:0"] = np.ones(3, np.float32)
    return path


def test_a_keras_2_legacy_h5_loads(tmp_path):
    model = from_keras(legacy_h5(tmp_path / "old.h5"))
    assert model.input_shape == (4,)
    np.testing.assert_array_equal(model.layers[0].params["kernel"], np.arange(12).reshape(4, 3))
    np.testing.assert_array_equal(model.predict(np.ones((1, 4))), [[19, 23, 27]])


def test_legacy_h5_with_a_missing_weight(tmp_path):
    path = legacy_h5(tmp_path / "old.h5")
    with h5py.File(path, "a") as h5:
        del h5["model_weights/dense/dense/bias:0"]
    with pytest.raises(HandnetError, match=r"weight 'dense/bias:0' of layer 'dense' is missing"):
        from_keras(path)


def test_legacy_h5_with_a_mis_shaped_weight(tmp_path):
    path = legacy_h5(tmp_path / "old.h5")
    with h5py.File(path, "a") as h5:
        del h5["model_weights/dense/dense/kernel:0"]
        h5["model_weights/dense/dense/kernel:0"] = np.zeros((5, 3), np.float32)
    with pytest.raises(
        HandnetError,
        match=r"dense/kernel has shape \(5, 3\) in the file, the layer \(Dense\) needs \(4, 3\)",
    ):
        from_keras(path)


def test_hdf5_that_is_not_a_model(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(HandnetError, match="HDF5 file but not a Keras model: no 'model_config'"):
        from_keras(path)
    without_weights = legacy_h5(tmp_path / "w.h5", weights=False)
    with pytest.raises(HandnetError, match="no 'model_weights' group"):
        from_keras(without_weights)


def test_truncated_hdf5(tmp_path):
    path = legacy_h5(tmp_path / "old.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HandnetError, match="old.h5"):
        from_keras(path)


def test_model_without_input_shape(tmp_path):
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [{"class_name": "Dense", "config": {"name": "dense", "units": 3}}],
        },
    }
    with pytest.raises(HandnetError, match="does not record its input shape"):
        from_keras(legacy_h5(tmp_path / "old.h5", config=config))


def test_a_model_class_handnet_does_not_import(tmp_path):
    config = {"class_name": "MyCustomModel", "config": {}}
    with pytest.raises(
        HandnetError, match="'MyCustomModel'; handnet imports Sequential models and functional"
    ):
        from_keras(legacy_h5(tmp_path / "old.h5", config=config))
