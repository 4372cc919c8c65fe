"""Graphs read from files are checked before anything runs (Model.from_config, load_model):
each broken graph gets a HandnetError that names the node at fault, and the limits of
handnet.model.graph (nodes, nesting, per-sample sizes) hold for chains and graphs alike."""

import copy
import io
import json
import time
import zipfile

import numpy as np
import pytest

import handnet as hn
from handnet import layers
from handnet.errors import HandnetError
from handnet.model import Model, Sequential
from handnet.model import graph as graph_limits


def small_graph():
    x = layers.Input((4,), name="x")
    h = layers.Dense(3, name="h")(x)
    g = layers.Dense(3, name="g")(h)
    out = layers.Dense(2, name="out")(layers.Add(name="add")([h, g]))
    return Model(x, out, seed=0)


CONFIG = small_graph().get_config()


def edited(edit):
    config = copy.deepcopy(CONFIG)
    edit(config)
    return config


def entry(config, name):
    return next(spec for spec in config["layers"] if spec["name"] == name)


def reads(name, *refs):
    """An edit: layer ``name``'s first call reads ``refs``."""
    return lambda config: entry(config, name)["inbound_nodes"][0].__setitem__("args", list(refs))


def refused(config, match):
    with pytest.raises(HandnetError, match=match):
        Model.from_config(config)


def test_the_unedited_config_loads():
    model = Model.from_config(copy.deepcopy(CONFIG))
    assert [layer.name for layer in model.layers] == ["h", "g", "add", "out"]


@pytest.mark.parametrize(
    "edit, match",
    [
        (reads("h", ["g", 0, 0]), r"cycle: 'h' -> 'g' -> 'h'|cycle: 'g' -> 'h' -> 'g'"),
        (reads("h", ["h", 0, 0]), r"cycle: 'h' -> 'h' \(each reads the next's output\)"),
        (reads("h", ["add", 0, 0]), r"cycle: .*'add'.*'h'|cycle: .*'h'.*'add'"),
    ],
    ids=["two-layers", "self", "through-a-merge"],
)
def test_a_cycle_is_named(edit, match):
    refused(edited(edit), match)


@pytest.mark.parametrize(
    "edit, match",
    [
        (reads("g", ["nowhere", 0, 0]), "layer 'g' reads from 'nowhere', which is not in the"),
        (reads("g", ["h", 1, 0]), "layer 'g' reads call 1 of 'h', which is called 1 time"),
        (reads("g", ["x", 1, 0]), "layer 'g' reads call 1 of 'x', which is called 1 time"),
        (reads("g", ["h", 0, 2]), "layer 'g' reads output 2 of 'h', which has 1"),
        (lambda c: c["layers"].remove(entry(c, "h")), "layer 'g' reads from 'h', which is not"),
        (lambda c: c.__setitem__("input_layers", [["y", 0, 0]]), "input_layers reads from 'y'"),
        (lambda c: c.__setitem__("output_layers", [["g", 4, 0]]), "reads call 4 of 'g'"),
        (lambda c: c.__setitem__("input_layers", [["h", 0, 0]]), "must be Input tensors.*'h'"),
        (lambda c: c.__setitem__("output_layers", []), "needs output_layers"),
    ],
    ids=["missing-layer", "missing-call", "missing-input-call", "missing-output", "dropped-layer",
         "missing-input", "missing-output-call", "input-not-an-input", "no-outputs"],
)
def test_a_reference_to_a_tensor_nothing_makes_is_named(edit, match):
    refused(edited(edit), match)


def test_an_input_the_model_does_not_list_is_named():
    """A second Input read by a layer but missing from input_layers: the outputs depend on it."""
    def edit(config):
        config["layers"].insert(0, {"class_name": "Input", "name": "extra",
                                    "config": {"shape": [3], "name": "extra"}, "inbound_nodes": []})
        entry(config, "add")["inbound_nodes"][0]["args"].append(["extra", 0, 0])

    refused(edited(edit), r"depend on 'extra', which is not among the model's inputs")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: entry(c, "g")["config"].__setitem__("units", 4),
         r"Add 'add': inputs of per-sample shapes \(3,\) and \(4,\) do not broadcast"),
        (lambda c: entry(c, "h")["inbound_nodes"].append({"args": [["add", 0, 0]]}),
         r"layer 'h' is already called for inputs of shape \(None, 4\), called on \(None, 3\)"),
        (lambda c: entry(c, "g")["inbound_nodes"][0].__setitem__("list", True),
         r"layer 'g' \(Dense\) takes one tensor, called on a list of 1"),
        (lambda c: entry(c, "add")["inbound_nodes"][0].__setitem__("list", False),
         r"Add 'add' is built from a list of per-sample shapes"),
        (lambda c: c["layers"].__setitem__(2, {"class_name": "Conv2D", "name": "g", "config": {
            "filters": 2, "kernel_size": 3, "name": "g"},
            "inbound_nodes": [{"args": [["h", 0, 0]]}]}),
         r"layer 'g' \(Conv2D\) cannot take inputs of shape \(None, 3\)"),
        (lambda c: c["layers"].__setitem__(2, {"class_name": "LSTM", "name": "g", "config": {
            "units": 3, "name": "g"}, "inbound_nodes": [{"args": [["h", 0, 0]]}]}),
         r"layer 'g' \(LSTM\) reads sequences"),
        (lambda c: entry(c, "x")["config"].__setitem__("shape", [0]),
         r"Input 'x': every dimension must be >= 1"),
        (lambda c: entry(c, "x")["config"].__setitem__("shape", [None, 3]),
         r"Input 'x': shape \(None, 3\) has unknown sizes; handnet needs every size but the "
         r"batch fixed"),
        (lambda c: entry(c, "x")["config"].__setitem__("shape", [2.5]),
         r"Input 'x': sizes must be integers, got \(2.5,\)"),
        (lambda c: entry(c, "x")["config"].__setitem__("shape", "abc"),
         r"Input 'x': shape must be a tuple of sizes such as \(28, 28, 1\), got 'abc'"),
    ],
    ids=["add-3-and-4", "second-call-other-shape", "dense-on-a-list", "add-on-one", "conv-on-rows",
         "lstm-on-rows", "empty-input", "open-size", "float-size", "text-shape"],
)
def test_shapes_that_do_not_fit_are_named(edit, match):
    refused(edited(edit), match)


def test_dense_on_a_4d_tensor_is_valid():
    config = edited(lambda c: entry(c, "x")["config"].__setitem__("shape", [2, 3, 5, 4]))
    model = Model.from_config(config)
    assert model.output_shape == (2, 3, 5, 2)
    assert model.predict(np.ones((1, 2, 3, 5, 4), "f4")).shape == (1, 2, 3, 5, 2)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.__setitem__("layers", {}), "needs a list of layers, got dict"),
        (lambda c: entry(c, "g").__setitem__("inbound_nodes", 5), "'g': inbound_nodes must be"),
        (lambda c: entry(c, "g").__setitem__("inbound_nodes", [7]), r"'g': a call must be \{"),
        (reads("g", "h"), r"'g': a tensor reference must be \[layer, call, output\], got 'h'"),
        (reads("g", ["h", True, 0]), r"a tensor reference must be \[layer, call, output\]"),
        (reads("g", ["h", -1, 0]), r"a tensor reference must be"),
        (lambda c: entry(c, "g").__setitem__("config", [1]), "'g': its config must be an object"),
        (lambda c: entry(c, "g")["config"].__setitem__("units", "x"),
         r"layer 'g' \(Dense\): malformed config \(ValueError"),
        (lambda c: entry(c, "g").__setitem__("class_name", "Lambda"), "'g': unknown layer type"),
        (lambda c: entry(c, "g").__setitem__("name", "h"), "two layers are named 'h'"),
        (lambda c: entry(c, "g").__setitem__("name", 3), "needs a name .*got 3"),
        (lambda c: entry(c, "g").__setitem__("name", "other"), "'other' holds a layer named 'g'"),
        (lambda c: entry(c, "x").__setitem__("inbound_nodes", [{"args": [["h", 0, 0]]}]),
         "Input 'x' reads nothing"),
        (lambda c: c.__setitem__("seed", "s"), "seed must be an integer >= 0 or null, got 's'"),
        (lambda c: c.__setitem__("name", [1]), r"name must be a string, got \[1\]"),
        (lambda c: c.__setitem__("trainable", "no"), "trainable must be true or false"),
        (lambda c: c.__setitem__("input_names", ["a", "b"]), "input_names must be 1 distinct"),
        (lambda c: c.__setitem__("output_names", 5), "output_names must be 1 distinct strings"),
        (lambda c: entry(c, "g")["inbound_nodes"][0].__setitem__("list", "yes"),
         "'list' must be true or false"),
    ],
)
def test_wrong_types_are_named(edit, match):
    refused(edited(edit), match)


def test_a_config_that_is_not_an_object_is_refused():
    refused([CONFIG], "a model config must be an object, got list")
    with pytest.raises(HandnetError, match="must be an object with a list of layers"):
        Sequential.from_config({"layers": 3})


# -- limits ---------------------------------------------------------------------------------------
def chain_config(length, reverse=False, name="chain"):
    """Input → ReLU × length, as get_config writes it (optionally listed backwards)."""
    entries = [{"class_name": "ReLU", "name": f"r{k}", "config": {"name": f"r{k}"},
                "inbound_nodes": [{"args": [[f"r{k - 1}" if k else "a", 0, 0]], "list": False}]}
               for k in range(length)]
    if reverse:
        entries.reverse()
    first = {"class_name": "Input", "name": "a", "config": {"shape": [2], "name": "a"},
             "inbound_nodes": []}
    return {"name": name, "layers": [first, *entries], "input_layers": [["a", 0, 0]],
            "output_layers": [[f"r{length - 1}", 0, 0]]}


def test_more_than_max_nodes_is_refused_before_any_layer_is_made(monkeypatch):
    made = []
    monkeypatch.setattr(hn.layers.ReLU, "from_config", classmethod(lambda cls, c: made.append(c)))
    refused(chain_config(graph_limits.MAX_NODES + 1), r"more than 10,000 nodes \(10,002\)")
    assert made == []
    # Calls count too: one layer called 10,001 times.
    config = chain_config(1)
    entry(config, "r0")["inbound_nodes"] *= graph_limits.MAX_NODES + 1
    refused(config, "more than 10,000 nodes")
    with pytest.raises(HandnetError, match="more than 10,000 nodes"):
        Sequential.from_config({"layers": [{"class_name": "ReLU"}] * 10_001})


def test_a_long_graph_listed_backwards_is_built_in_linear_time():
    """Calls are made as their inputs become ready (once: n passes over n calls took 113 s for
    9,000 nodes listed backwards)."""
    started = time.perf_counter()
    model = Model.from_config(chain_config(5_000, reverse=True))
    assert len(model.nodes) == 5_000
    assert time.perf_counter() - started < 10
    np.testing.assert_array_equal(model.predict(np.array([[-1.0, 2.0]], "f4")), [[0.0, 2.0]])


def nested_functional(depth):
    """A Model nested ``depth`` levels deep in get_config's format, a Dense at the bottom."""
    inner = {**small_graph().get_config(), "name": "bottom"}
    for level in range(depth):
        inner = {
            "name": f"level{level}",
            "layers": [
                {"class_name": "Input", "name": f"in{level}", "config": {"shape": [4]},
                 "inbound_nodes": []},
                {"class_name": "Functional", "name": inner["name"], "config": inner,
                 "inbound_nodes": [{"args": [[f"in{level}", 0, 0]]}]},
            ],
            "input_layers": [[f"in{level}", 0, 0]],
            "output_layers": [[inner["name"], 0, 0]],
        }
    return inner


def test_nesting_up_to_the_limit_loads_and_deeper_is_refused():
    model = Model.from_config(nested_functional(graph_limits.MAX_NESTING))
    assert model.predict(np.ones((1, 4), "f4")).shape == (1, 2)
    path = r"in 'level31' > 'level30' > .* > 'bottom': models are nested deeper than 32 levels"
    with pytest.raises(HandnetError, match=path):
        Model.from_config(nested_functional(graph_limits.MAX_NESTING + 1))


def test_deeply_nested_sequentials_are_refused_without_recursing_without_bound():
    spec = {"class_name": "Dense", "config": {"units": 2}}
    for _ in range(2_000):
        spec = {"class_name": "Sequential", "config": {"layers": [spec]}}
    with pytest.raises(HandnetError, match="nested deeper than 32 levels"):
        Sequential.from_config({"layers": [spec], "input_shape": [2]})
    config = chain_config(1)
    config["layers"][1] = {**spec, "name": "deep", "inbound_nodes": [{"args": [["a", 0, 0]]}]}
    config["output_layers"] = [["deep", 0, 0]]
    refused(config, r"in 'deep': models are nested deeper than 32 levels")


@pytest.mark.parametrize(
    "layer",
    [
        {"class_name": "ZeroPadding2D", "config": {"padding": 10**5}},
        {"class_name": "Reshape", "config": {"target_shape": [-1]}},
    ],
)
def test_per_sample_tensors_beyond_the_limit_are_refused(layer):
    """No weights, so the file's size does not bound them: the per-sample limit does."""
    shape = [4, 4, 1] if layer["class_name"] == "ZeroPadding2D" else [2**13, 2**13, 2]
    config = {
        "name": "wide",
        "layers": [
            {"class_name": "Input", "name": "a", "config": {"shape": shape}, "inbound_nodes": []},
            {**layer, "name": "big", "inbound_nodes": [{"args": [["a", 0, 0]]}]},
        ],
        "input_layers": [["a", 0, 0]],
        "output_layers": [["big", 0, 0]],
    }
    refused(config, r"layer 'big' makes per-sample tensors of shape .* more than the 67,108,864")
    chain = {"layers": [layer], "input_shape": shape}
    with pytest.raises(HandnetError, match="makes per-sample tensors"):
        Sequential.from_config(chain).build()


# -- through load_model -------------------------------------------------------------------------
def rewritten(path, edit):
    """The model file at ``path`` with its config.json changed by ``edit``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(np.load(io.BytesIO(members["config.json.npy"])).tobytes())
    edit(config["model"]["config"])
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(config).encode(), np.uint8))
    members["config.json.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (reads("h", ["g", 0, 0]), "cycle"),
        (reads("g", ["gone", 0, 0]), "layer 'g' reads from 'gone'"),
        (lambda c: entry(c, "g")["config"].__setitem__("units", 4), "Add 'add'"),
        (lambda c: entry(c, "g")["config"].__setitem__("units", 10**9),
         "takes the model past the weight bytes|makes per-sample tensors"),
    ],
)
def test_load_model_names_the_file_and_the_node(tmp_path, edit, match):
    model = small_graph().compile("adam")
    model.save(tmp_path / "graph.npz")
    path = rewritten(tmp_path / "graph.npz", edit)
    with pytest.raises(HandnetError, match=f"graph.npz: .*({match})"):
        hn.load_model(path)


def test_a_forged_dilation_that_would_pad_past_the_limit_is_refused():
    """padding="same" pads by the dilated kernel's extent: 6·10⁹ on an 8×8 image is 460 GiB
    (refused as beyond ops.padding.MAX_WINDOW); 2²⁶, within it, still pads past the values a
    sample may hold (refused as padding)."""
    config = {
        "name": "dilated",
        "layers": [
            {"class_name": "Input", "name": "a", "config": {"shape": [8, 8, 1]}},
            {"class_name": "Conv2D", "name": "conv", "inbound_nodes": [{"args": [["a", 0, 0]]}],
             "config": {"filters": 2, "kernel_size": 3, "padding": "same",
                        "dilation_rate": [6_177_113_023, 1]}},
        ],
        "input_layers": [["a", 0, 0]],
        "output_layers": [["conv", 0, 0]],
    }
    refused(config, r"layer 'conv': dilation_rate must be a positive int .*at most 67,108,864")
    config["layers"][1]["config"]["dilation_rate"] = [2**26, 1]  # within MAX_WINDOW
    refused(config, r"layer 'conv': kernel \(3, 3\) dilated by \(67108864, 1\) pads inputs")
    config["layers"][1]["config"]["dilation_rate"] = [2, 2]  # a real dilation still loads
    assert Model.from_config(config).predict(np.ones((1, 8, 8, 1), "f4")).shape == (1, 8, 8, 2)
