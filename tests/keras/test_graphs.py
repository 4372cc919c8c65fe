"""Graphs: Keras functional models with branches, merges, several inputs and outputs, shared
layers and nested models import into handnet (NumPy + h5py) node by node within 1e-5 of Keras,
from .keras and legacy .h5 files; handnet graphs export to .keras files Keras loads in safe mode
with the same outputs and every weight bit for bit; one training step on an imported graph is
Keras's step; what handnet lacks is refused in one error naming every such layer."""

import argparse
import io
import json
import subprocess
import sys
import textwrap
import zipfile

import h5py
import numpy as np
import pytest
from keras_models import assert_same_weights_bit_for_bit, keras_weights, randomize_weights

import handnet as hn
from handnet.errors import HandnetError
from handnet.keras_io import from_keras, register_cli
from handnet.keras_io.compare import compare_keras
from handnet.model.graph import MAX_NESTING

keras = pytest.importorskip("keras")
pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
K = keras.layers
L = hn.layers


# -- the Keras graphs --------------------------------------------------------------------------
def residual_cnn():
    """Conv2D + BatchNormalization + an identity shortcut (Add), twice, then global pooling."""
    inputs = keras.Input((8, 8, 3), name="image")
    h = K.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    for block in range(2):
        branch = K.Conv2D(4, 3, padding="same", name=f"conv{block}a")(h)
        branch = K.BatchNormalization(name=f"bn{block}")(branch)
        branch = K.Activation("relu")(branch)
        branch = K.Conv2D(4, 3, padding="same", name=f"conv{block}b")(branch)
        h = K.ReLU()(K.Add(name=f"residual{block}")([h, branch]))
    h = K.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, K.Dense(5, activation="softmax")(h), name="residual")


def inception():
    """Four branches of one input joined along the channels (Concatenate), then a head."""
    inputs = keras.Input((7, 7, 4))
    one = K.Conv2D(3, 1, activation="relu")(inputs)
    three = K.Conv2D(2, 3, padding="same", activation="relu")(K.Conv2D(2, 1)(inputs))
    five = K.Conv2D(2, 5, padding="same")(K.Conv2D(2, 1)(inputs))
    pool = K.Conv2D(2, 1)(K.MaxPooling2D(3, strides=1, padding="same")(inputs))
    joined = K.Concatenate(axis=-1)([one, three, five, pool])
    h = K.AveragePooling2D(2)(K.BatchNormalization()(joined))
    return keras.Model(inputs, K.Dense(4)(K.Flatten()(h)), name="inception")


def siamese():
    """One tower (a layer called twice: shared weights) on two inputs; |a - b| and a·b heads."""
    left, right = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    hidden = K.Dense(8, activation="tanh", name="tower_hidden")
    embed = K.Dense(4, name="tower_out")
    a, b = embed(hidden(left)), embed(hidden(right))
    difference = K.Subtract(name="difference")([a, b])
    similarity = K.Dot(axes=1, normalize=True, name="cosine")([a, b])
    joined = K.Concatenate()([K.Multiply()([difference, difference]), similarity])
    return keras.Model([left, right], K.Dense(1, activation="sigmoid")(joined), name="siamese")


def two_in_two_out():
    """Two inputs of different kinds, two outputs, every elementwise merge on the way."""
    image, features = keras.Input((6, 6, 2), name="image"), keras.Input((5,), name="features")
    h = K.Flatten()(K.MaxPooling2D()(K.Conv2D(3, 3, activation="relu")(image)))  # 12
    g = K.Dense(12, activation="relu")(features)
    merged = K.Average()([h, g, K.Maximum()([h, g]), K.Minimum()([h, g])])
    classes = K.Dense(3, activation="softmax", name="classes")(merged)
    value = K.Dense(1, name="value")(K.Add()([merged, K.Subtract()([h, g])]))
    return keras.Model([image, features], [classes, value], name="two_by_two")


def nested():
    """A Sequential inside a functional model, and a functional model inside that one, the
    inner functional called twice (a shared model)."""
    block = keras.Sequential(
        [keras.Input((6,)), K.Dense(5, activation="relu"), K.BatchNormalization(), K.Dense(4)],
        name="block",
    )
    inner_in = keras.Input((4,))
    inner_out = K.Add()([K.Dense(4, activation="tanh")(inner_in), inner_in])
    inner = keras.Model(inner_in, inner_out, name="inner")
    middle_in = keras.Input((6,))
    middle_h = inner(block(middle_in))
    middle = keras.Model(middle_in, inner(middle_h), name="middle")
    inputs = keras.Input((6,))
    outputs = K.Concatenate()([middle(inputs), K.Dense(2)(inputs)])
    return keras.Model(inputs, K.Dense(3, activation="softmax")(outputs), name="outer")


GRAPHS = {
    "residual-cnn": (residual_cnn, [(8, 8, 3)]),
    "inception": (inception, [(7, 7, 4)]),
    "siamese": (siamese, [(6,), (6,)]),
    "two-in-two-out": (two_in_two_out, [(6, 6, 2), (5,)]),
    "nested": (nested, [(6,)]),
}


def make(name, seed=0):
    build, shapes = GRAPHS[name]
    keras.utils.set_random_seed(seed)
    model = randomize_weights(build(), np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    xs = [rng.standard_normal((16, *shape)).astype(np.float32) for shape in shapes]
    return model, xs


def outputs_of(predictions):
    predictions = predictions if isinstance(predictions, list) else [predictions]
    return [np.asarray(p) for p in predictions]


def inputs_of(xs):
    return xs if len(xs) > 1 else xs[0]


def assert_close(ours, theirs, tolerance=TOLERANCE):
    ours, theirs = outputs_of(ours), outputs_of(theirs)
    assert len(ours) == len(theirs)
    for h, k in zip(ours, theirs):
        assert h.shape == k.shape
        worst = float(np.abs(h - k).max())
        assert worst <= tolerance, f"max abs diff {worst:.2e}"


# -- import: Keras -> handnet ---------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graphs_import_node_by_node_within_1e_5_and_export_back(name, suffix, tmp_path):
    original, xs = make(name)
    path = tmp_path / f"{name}{suffix}"
    original.save(path)
    report = compare_keras(path, inputs_of(xs), samples=len(xs[0]), tolerance=TOLERANCE)
    assert report.passed, f"{name}{suffix}\n{report}"
    model = from_keras(path)
    assert type(model) is hn.Model
    assert len(report.rows) == len(model.nodes)  # every call of every layer, shared ones too
    expected = original.predict(inputs_of(xs), verbose=0)
    assert_close(model.predict(inputs_of(xs)), expected)
    # Back to Keras: safe mode opens it, with the same outputs and every weight bit for bit.
    model.to_keras(tmp_path / "back.keras")
    reloaded = keras.models.load_model(tmp_path / "back.keras", safe_mode=True)
    assert_close(reloaded.predict(inputs_of(xs), verbose=0), expected)
    assert_same_weights_bit_for_bit(keras_weights(original), keras_weights(reloaded))


def test_the_report_names_each_call_of_a_shared_layer(tmp_path):
    original, xs = make("siamese")
    original.save(tmp_path / "siamese.keras")
    report = compare_keras(tmp_path / "siamese.keras", xs, samples=4)
    names = [row.name for row in report.rows]
    assert {"tower_hidden[0]", "tower_hidden[1]", "tower_out[0]", "tower_out[1]"} <= set(names)
    assert "difference" in names and report.predictions == 16
    text = str(report)
    assert "node by node" in text and "cosine (Dot)" in text and text.endswith("PASS")


def test_shared_layers_and_models_keep_one_set_of_weights(tmp_path):
    original, _ = make("nested")
    original.save(tmp_path / "nested.keras")
    model = from_keras(tmp_path / "nested.keras")
    middle = model.get_layer("middle")
    inner = middle.get_layer("inner")
    assert len(middle.nodes_of(inner)) == 2  # called twice, one model
    assert model.count_params() == original.count_params()


def test_multiple_outputs_come_back_as_a_list_in_keras_s_order(tmp_path):
    original, xs = make("two-in-two-out")
    original.save(tmp_path / "m.keras")
    model = from_keras(tmp_path / "m.keras")
    assert model.input_names == ["image", "features"]
    assert model.output_names == ["classes", "value"]
    classes, value = model.predict(xs)
    assert classes.shape == (16, 3) and value.shape == (16, 1)


def test_nesting_as_deep_as_the_limit_imports_and_deeper_is_refused(tmp_path):
    def tower(depth):
        model = keras.Sequential([keras.Input((3,)), K.Dense(3, name="d0")], name="level0")
        for level in range(1, depth + 1):
            inputs = keras.Input((3,))
            model = keras.Model(inputs, model(inputs), name=f"level{level}")
        return model

    keras.utils.set_random_seed(0)
    deep = tower(6)
    deep.save(tmp_path / "deep.keras")
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    assert_close(from_keras(tmp_path / "deep.keras").predict(x), deep.predict(x, verbose=0))

    # Past the limit: written by hand (Keras itself recurses through such a file).
    entry = {"class_name": "Sequential",
             "config": {"name": "s", "layers": [{"class_name": "InputLayer",
                        "config": {"name": "i", "batch_shape": [None, 3]}}]}}
    for level in range(MAX_NESTING + 1):
        entry = {
            "class_name": "Functional",
            "config": {
                "name": f"f{level}",
                "layers": [
                    {"class_name": "InputLayer", "name": f"in{level}",
                     "config": {"name": f"in{level}", "batch_shape": [None, 3]},
                     "inbound_nodes": []},
                    {**entry, "name": entry["config"]["name"],
                     "inbound_nodes": [[[f"in{level}", 0, 0, {}]]]},
                ],
                "input_layers": [[f"in{level}", 0, 0]],
                "output_layers": [[entry["config"]["name"], 0, 0]],
            },
        }
    path = tmp_path / "too-deep.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(entry))
        archive.writestr("model.weights.h5", _empty_h5())
    with pytest.raises(HandnetError, match=f"nested deeper than {MAX_NESTING} levels"):
        from_keras(path)


def test_models_inside_a_sequential_import_as_a_sequential(tmp_path):
    keras.utils.set_random_seed(0)
    block = keras.Sequential([keras.Input((5,)), K.Dense(4, activation="relu"),
                              K.BatchNormalization()], name="block")
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, K.Dense(3)(inner_in), name="inner")
    original = randomize_weights(
        keras.Sequential([keras.Input((5,)), block, inner, K.Dense(2)], name="outer"),
        np.random.default_rng(0),
    )
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    for suffix in (".keras", ".h5"):
        original.save(tmp_path / f"s{suffix}")
        model = from_keras(tmp_path / f"s{suffix}")
        assert type(model) is hn.Sequential
        assert [type(layer).__name__ for layer in model.layers] == ["Sequential", "Model", "Dense"]
        assert_close(model.predict(x), original.predict(x, verbose=0))
        model.to_keras(tmp_path / "back.keras")
        reloaded = keras.models.load_model(tmp_path / "back.keras")
        assert_same_weights_bit_for_bit(keras_weights(original), keras_weights(reloaded))


def test_graphs_import_in_a_child_process_and_without_keras(tmp_path, monkeypatch):
    """The default (isolated) reader hands nested weights back intact; and reading and writing
    graphs needs neither Keras nor torch."""
    original, xs = make("nested")
    original.save(tmp_path / "nested.keras")
    make("siamese")[0].save(tmp_path / "siamese.h5")
    monkeypatch.delenv("HANDNET_KERAS_IN_PROCESS")
    isolated = from_keras(tmp_path / "nested.keras")
    assert_close(isolated.predict(xs[0]), original.predict(xs[0], verbose=0))
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["keras"] = sys.modules["torch"] = sys.modules["tensorflow"] = None
        import numpy as np, handnet
        folder = {str(tmp_path)!r}
        nested = handnet.from_keras(folder + "/nested.keras")
        siamese = handnet.from_keras(folder + "/siamese.h5")
        siamese.predict([np.zeros((1, 6)), np.zeros((1, 6))])
        nested.to_keras(folder + "/again.keras")
        print("ok", len(nested.nodes), len(siamese.nodes))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "ok"
    again = keras.models.load_model(tmp_path / "again.keras")
    assert_close(again.predict(xs[0], verbose=0), original.predict(xs[0], verbose=0))


def test_compare_keras_command_refuses_a_model_with_several_inputs(tmp_path):
    make("siamese")[0].save(tmp_path / "siamese.keras")
    with pytest.raises(HandnetError, match=r"feeds one batch of images, and the model has 2"):
        run_cli("compare-keras", tmp_path / "siamese.keras")


def _empty_h5():
    buffer = io.BytesIO()
    with h5py.File(buffer, "w"):
        pass
    return buffer.getvalue()


# -- refusals ---------------------------------------------------------------------------------
def test_one_error_names_every_unsupported_layer(tmp_path):
    inputs = keras.Input((6, 6, 2), name="pixels")
    h = K.Conv2D(2, 3, name="good_conv")(inputs)
    code = K.Lambda(lambda t: t * 2, name="doubler")(h)
    wide = K.Conv2D(2, 1, data_format="channels_first", name="odd_conv")(code)
    flat = K.Flatten()(K.AutoContrast(name="contrast")(wide))
    norm = K.RMSNormalization(name="layer_norm")(flat)
    model = keras.Model(inputs, K.Dense(2, name="head")(norm))
    model.save(tmp_path / "mixed.keras")
    for path in (tmp_path / "mixed.keras",):
        with pytest.raises(HandnetError) as caught:
            from_keras(path)
        message = str(caught.value)
        assert "4 layers cannot be imported" in message, message
        assert "'doubler' is a Lambda: it holds Python code, and handnet never runs code" in message
        assert "'odd_conv' (Conv2D): data_format='channels_first' is not supported" in message
        assert "'contrast' is an AutoContrast: an image preprocessing step" in message
        assert "'layer_norm' is a RMSNormalization: root-mean-square normalization" in message
        assert "good_conv" not in message and "'head'" not in message
        assert message.count("handnet reads") == 1  # the list of supported classes, once


def test_unsupported_layers_inside_nested_models_are_named_too(tmp_path):
    block = keras.Sequential([keras.Input((4,)), K.RMSNormalization(name="inner_norm")],
                             name="block")
    inputs = keras.Input((4,))
    outputs = K.Add()([block(inputs), K.SpectralNormalization(K.Dense(4), name="noise")(inputs)])
    keras.Model(inputs, outputs).save(tmp_path / "m.h5")
    with pytest.raises(HandnetError, match=r"2 layers cannot be imported") as caught:
        from_keras(tmp_path / "m.h5")
    assert "'inner_norm' is a RMSNormalization" in str(caught.value)
    assert "'noise' is a SpectralNormalization: a wrapper" in str(caught.value)


def test_a_call_with_extra_arguments_is_refused(tmp_path):
    inputs = keras.Input((4,))
    outputs = K.Dropout(0.5)(K.Dense(3)(inputs), training=True)
    keras.Model(inputs, outputs).save(tmp_path / "m.keras")
    with pytest.raises(HandnetError, match=r"called with arguments \{'training': True\}"):
        from_keras(tmp_path / "m.keras")


# -- export: handnet -> Keras -> handnet --------------------------------------------------------
def handnet_graph(seed=0):
    """A handnet graph with two inputs, two outputs, a shared layer, a nested Sequential, a
    nested functional model used twice, and merges."""
    block = hn.Sequential([L.Input((5,)), L.Dense(4, activation="relu"), L.BatchNormalization()],
                          name="block")
    inner_in = L.Input((4,))
    inner = hn.Model(inner_in, L.Add()([L.Dense(4, activation="tanh")(inner_in), inner_in]),
                     name="inner")
    a, b = L.Input((5,), name="a"), L.Input((6, 6, 1), name="b")
    shared = L.Dense(5, activation="relu", name="shared")
    h1 = shared(a)
    h2 = shared(L.Dense(5)(L.Flatten()(L.Conv2D(2, 3)(b))))
    x = inner(inner(block(L.Maximum()([h1, h2]))))
    out1 = L.Dense(3, activation="softmax", name="out1")(L.Concatenate()([x, h1]))
    out2 = L.Dot(axes=1)([x, L.Dense(4)(h2)])
    model = hn.Model([a, b], [out1, out2], seed=seed, name="exported")
    rng = np.random.default_rng(seed)
    for layer in model.flat_layers():
        for key, value in layer.weights().items():
            value[...] = (rng.uniform(0.5, 1.5, value.shape) if "variance" in key
                          else rng.normal(0, 0.5, value.shape))
    return model


def test_a_handnet_graph_exports_to_keras_and_comes_back(tmp_path):
    model = handnet_graph()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((8, 5)).astype(np.float32),
          rng.standard_normal((8, 6, 6, 1)).astype(np.float32)]
    model.to_keras(tmp_path / "graph.keras")
    reloaded = keras.models.load_model(tmp_path / "graph.keras", safe_mode=True)
    expected = model.predict(xs)
    assert_close(reloaded.predict(xs, verbose=0), expected)
    # Keras's own save of what it loaded has the very same weight groups.
    reloaded.save(tmp_path / "keras-again.keras")
    assert _h5_tree(tmp_path / "graph.keras") == _h5_tree(tmp_path / "keras-again.keras")
    back = from_keras(tmp_path / "graph.keras")
    assert [layer.name for layer in back.layers] == [layer.name for layer in model.layers]
    for ours, again in zip(model.get_weights(), back.get_weights()):
        assert ours.tobytes() == again.tobytes()
    assert_close(back.predict(xs), expected, tolerance=0.0)
    report = compare_keras(tmp_path / "graph.keras", xs, samples=8)
    assert report.passed, str(report)


def _h5_tree(path):
    with zipfile.ZipFile(path) as archive:
        entries = {}
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
            h5.visititems(lambda name, item: entries.__setitem__(
                name, (getattr(item, "shape", None), dict(item.attrs).get("name"))))
    return entries


def test_inputs_and_outputs_by_name_export_import_compare_and_check(tmp_path, capsys):
    a, b = L.Input((3,), name="a"), L.Input((3,), name="b")
    h = L.Add()([L.Dense(4)(a), L.Dense(4)(b)])
    model = hn.Model({"a": a, "b": b}, {"sum": L.Dense(2)(h), "square": L.Multiply()([h, h])},
                     seed=0)
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((5, 3)).astype(np.float32),
         "b": rng.standard_normal((5, 3)).astype(np.float32)}
    model.to_keras(tmp_path / "named.keras")
    reloaded = keras.models.load_model(tmp_path / "named.keras")
    ours, theirs = model.predict(x), reloaded.predict(x, verbose=0)
    for name in ("sum", "square"):
        np.testing.assert_allclose(ours[name], np.asarray(theirs[name]), atol=TOLERANCE, rtol=0)
    back = from_keras(tmp_path / "named.keras")
    assert back.input_names == ["a", "b"] and back.output_names == ["sum", "square"]
    assert compare_keras(tmp_path / "named.keras", x, samples=5).passed
    assert run_cli("import-keras", tmp_path / "named.keras", tmp_path / "named.npz") == 0
    assert run_cli("check", tmp_path / "named.npz") == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS")


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_keras_graphs_survive_keras_handnet_keras_handnet(name, tmp_path):
    original, xs = make(name, seed=3)
    original.save(tmp_path / "first.keras")
    first = from_keras(tmp_path / "first.keras")
    first.to_keras(tmp_path / "second.keras")
    second = from_keras(tmp_path / "second.keras")
    for a, b in zip(first.get_weights(), second.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert_close(second.predict(inputs_of(xs)), original.predict(inputs_of(xs), verbose=0))


# -- one training step ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["residual-cnn", "two-in-two-out"])
def test_one_training_step_on_an_imported_graph_is_keras_s(name, tmp_path):
    """SGD with momentum, BatchNormalization in training mode, and for two outputs the sum of
    a cross-entropy and a mean squared error: the loss and every updated weight (moving
    statistics included) agree within 1e-5."""
    original, xs = make(name, seed=5)
    original.save(tmp_path / "initial.keras")
    model = from_keras(tmp_path / "initial.keras")
    rng = np.random.default_rng(6)
    labels = rng.integers(0, original.outputs[0].shape[-1], 16)
    if name == "two-in-two-out":
        losses = ["sparse_categorical_crossentropy", "mse"]
        y = [labels, rng.standard_normal((16, 1)).astype(np.float32)]
    else:
        losses, y = "sparse_categorical_crossentropy", labels
    original.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=losses)
    model.compile(optimizer=hn.optimizers.SGD(0.1, momentum=0.9), loss=losses, metrics=[])
    keras_loss = original.train_on_batch(inputs_of(xs), y)
    keras_loss = float(np.asarray(keras_loss if np.ndim(keras_loss) == 0 else keras_loss[0]))
    loss, _ = model.train_on_batch(inputs_of(xs), y)
    assert float(loss) == pytest.approx(keras_loss, abs=TOLERANCE)
    before = from_keras(tmp_path / "initial.keras").get_weights()
    final = original.get_weights()
    ours = model.get_weights()
    assert [w.shape for w in ours] == [w.shape for w in final]
    worst = max(float(np.abs(a - np.asarray(b)).max()) for a, b in zip(ours, final))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(ours, before))
    assert worst < TOLERANCE, f"worst weight difference {worst:.1e}"
    assert moved > 100 * TOLERANCE


# -- handnet check ----------------------------------------------------------------------------
def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="handnet")
    register_cli(parser.add_subparsers(required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.command(args)


def test_check_passes_on_an_imported_model_and_fails_on_a_tampered_one(tmp_path, capsys):
    original, _ = make("two-in-two-out")
    original.save(tmp_path / "m.keras")
    assert run_cli("import-keras", tmp_path / "m.keras", tmp_path / "m.npz") == 0
    assert "stored Keras's outputs on 4 random inputs" in capsys.readouterr().out
    assert run_cli("check", tmp_path / "m.npz") == 0
    out = capsys.readouterr().out
    assert "classes" in out and "value" in out and out.rstrip().endswith("PASS")
    assert "tolerance 1e-04, for float32 outputs" in out
    hn.load_model(tmp_path / "m.npz").predict([np.zeros((1, 6, 6, 2)), np.zeros((1, 5))])

    # Tampered: one weight nudged by 1e-2 in a copy of the archive.
    with zipfile.ZipFile(tmp_path / "m.npz") as source, \
            zipfile.ZipFile(tmp_path / "bad.npz", "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "weights/value/bias.npy":
                array = np.load(io.BytesIO(data))
                buffer = io.BytesIO()
                np.save(buffer, array + np.float32(1e-2))
                data = buffer.getvalue()
            target.writestr(info, data)
    assert run_cli("check", tmp_path / "bad.npz") == 1
    out = capsys.readouterr().out
    assert "over tolerance" in out and out.rstrip().endswith("FAIL")


def test_check_says_when_there_is_nothing_to_check(tmp_path, capsys):
    original, _ = make("siamese")
    original.save(tmp_path / "m.keras")
    assert run_cli("import-keras", "--no-check", tmp_path / "m.keras", tmp_path / "m.npz") == 0
    with pytest.raises(HandnetError, match="holds no reference outputs, so there is nothing"):
        run_cli("check", tmp_path / "m.npz")
