"""Fuzz functional-model configs: graphs rewired, cut, looped, nested, inflated, misshapen and
mistyped, handed to Model.from_config and (inside a saved .npz) to load_model.

The property, per case: within CASE_SECONDS, under the memory guard and without unbounded
recursion (a RecursionError fails the case like any other exception), the graph either loads
and then predicts outputs of its declared shapes, or raises a HandnetError (naming the file,
for load_model). Model.from_config runs under an allocation budget sized to what the seeds'
weights need at most (BUDGET_BYTES): a mutation that declares more must be refused by the
graph checks or by the budget, never allocate it.

CI runs ~1,300 cases in well under a minute; HANDNET_FUZZ_EXAMPLES=N runs N per test.
"""

import copy
import io
import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from handnet import initializers, layers
from handnet.errors import HandnetError
from handnet.model import Model, Sequential
from handnet.model import graph as graph_limits
from handnet.saving import load_model

from .harness import (
    check_model_loads,
    check_predicts,
    fuzz_settings,
    memory_guard,
    seed_file,
    time_limit,
    write_case,
    zip_of,
)
from .json_fuzz import fuzzed_json

#: Weight bytes a mutated seed may draw: far above the seeds' (a few KiB), far below harm.
BUDGET_BYTES = 64 * 2**20


def two_in_two_out():
    """Two inputs, a shared Dense, a residual Add, a Concatenate and two heads."""
    a, b = layers.Input((6,), name="a"), layers.Input((6,), name="b")
    shared = layers.Dense(6, activation="tanh", name="shared")
    h = layers.Add(name="add")([shared(a), shared(b), a])
    joined = layers.Concatenate(name="cat")([h, layers.Dense(3, name="side")(b)])
    heads = {
        "reg": layers.Dense(2, name="reg")(joined),
        "cls": layers.Dense(3, activation="softmax", name="cls")(joined),
    }
    return Model({"a": a, "b": b}, heads, name="two", seed=0)


def nested():
    """A model called twice inside another, beside a Sequential."""
    x = layers.Input((4,), name="ix")
    inner = Model(x, layers.Dense(4, activation="relu", name="idense")(x), name="inner", seed=1)
    chain = Sequential([layers.Dense(4, name="sdense"), layers.ReLU(name="srelu")], name="chain")
    y = layers.Input((4,), name="x")
    h = layers.Subtract(name="sub")([inner(inner(y)), chain(y)])
    return Model(y, layers.Dense(2, name="out")(h), name="outer", seed=2)


def cnn():
    x = layers.Input((8, 8, 1), name="img")
    h = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(x)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Add(name="res")([h, layers.Conv2D(3, 1, name="proj")(x)])
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Flatten(name="flat")(layers.ZeroPadding2D(1, name="pad")(h))
    return Model(x, layers.Dense(4, activation="softmax", name="out")(h), name="cnn", seed=3)


SEEDS = [make().get_config() for make in (two_in_two_out, nested, cnn)]


def trained_graph():
    model = two_in_two_out().compile("adam", ["mse", "sparse_categorical_crossentropy"])
    rng = np.random.default_rng(0)
    x = {name: rng.standard_normal((4, 6)).astype("f4") for name in ("a", "b")}
    y = {"reg": rng.standard_normal((4, 2)).astype("f4"), "cls": np.arange(4) % 3}
    model.fit(x, y, verbose=0)
    return model


FILE_SEED, FILE_MEMBERS = seed_file("graph_seed.npz", trained_graph().save)
FILE_CONFIG = json.loads(np.load(io.BytesIO(FILE_MEMBERS["config.json.npy"])).tobytes())


# -- mutations of a graph config ---------------------------------------------------------------
def references(config):
    """Every [layer, call, output] list in the config (mutable in place), nested models' too."""
    found = []
    for spec in config.get("layers", []):
        for call in spec.get("inbound_nodes") or []:
            found.extend(call["args"])
        inner = spec.get("config")
        if spec.get("class_name") in ("Functional", "Model"):
            found.extend(references(inner))
    found.extend(config.get("input_layers") or [])
    found.extend(config.get("output_layers") or [])
    return found


def named(config):
    return [spec["name"] for spec in config["layers"]]


def relu_chain(start, count, prefix):
    return [
        {"class_name": "ReLU", "name": f"{prefix}{k}", "config": {"name": f"{prefix}{k}"},
         "inbound_nodes": [{"args": [[f"{prefix}{k - 1}" if k else start, 0, 0]]}]}
        for k in range(count)
    ]


def wrapped(config, depth, kind):
    """``config`` nested ``depth`` levels deep, each level a Functional model around it (or a
    Sequential holding it, then one Functional around the whole)."""
    shape = _first_input_shape(config)
    class_name = "Functional"
    for level in range(depth):
        entry = {"class_name": class_name, "name": config.get("name"), "config": config}
        if kind == "Sequential":
            config = {"name": f"wrap{level}", "input_shape": shape, "layers": [entry]}
            class_name = "Sequential"
        else:
            config = functional_around(entry, shape, f"wrap{level}")
    if class_name == "Sequential":
        config = functional_around(
            {"class_name": class_name, "name": config["name"], "config": config}, shape, "top"
        )
    return config


def functional_around(entry, shape, name):
    """A Functional model of one Input feeding ``entry`` (a layer or model entry)."""
    source = f"{name}_in"
    entry = {**entry, "inbound_nodes": [{"args": [[source, 0, 0]]}]}
    return {
        "name": name,
        "layers": [{"class_name": "Input", "name": source, "config": {"shape": shape}}, entry],
        "input_layers": [[source, 0, 0]],
        "output_layers": [[entry["name"], 0, 0]],
    }


def _first_input_shape(config):
    for spec in config.get("layers", []):
        if spec.get("class_name") == "Input":
            return list(spec["config"].get("shape", [1]))
    return [1]


SHAPE_EDITS = {
    "Dense": ("units", [0, 1, 5, 7, 10**5, 10**9, 2**40, -3]),
    "Conv2D": ("kernel_size", [1, 2, 9, 50, [3, 100], 0]),
    "ZeroPadding2D": ("padding", [0, 3, 10**3, 10**6, [1, 2], [[0, 1], [2, 10**4]]]),
    "MaxPooling2D": ("pool_size", [1, 3, 8, 9, 100]),
    "Concatenate": ("axis", [-1, 1, 2, 0, -2, 5]),
    "Reshape": ("target_shape", [[-1], [3, -1], [2**40], [-1, -1], [0]]),
    "Input": ("shape", [[6], [7], [1], [4], [8, 8, 1], [8, 8, 3], [2**20, 2**20], [10**4] * 3]),
}


@st.composite
def mutated_graph(draw, original):
    """``original`` after 1 to 4 structural edits (see the module doc)."""
    config = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 4))):
        refs = references(config)
        names = named(config)
        edit = draw(st.sampled_from(
            ["swap", "redirect", "drop", "cycle", "duplicate", "rename", "list", "shape", "shape",
             "nest", "many", "calls", "reorder"]
        ))
        if edit == "swap" and len(refs) > 1:
            i, j = draw(st.integers(0, len(refs) - 1)), draw(st.integers(0, len(refs) - 1))
            refs[i][:], refs[j][:] = list(refs[j]), list(refs[i])
        elif edit == "redirect" and refs:
            ref = refs[draw(st.integers(0, len(refs) - 1))]
            ref[0] = draw(st.sampled_from([*names, "nowhere"]))
            ref[1] = draw(st.sampled_from([0, 0, 1, 2, 10**20]))
            ref[2] = draw(st.sampled_from([0, 0, 1, 5]))
        elif edit == "drop" and config["layers"]:
            del config["layers"][draw(st.integers(0, len(config["layers"]) - 1))]
        elif edit == "cycle" and len(names) > 2:
            # An early layer reads a later one (or itself).
            early = draw(st.integers(1, len(names) - 1))
            later = draw(st.integers(early, len(names) - 1))
            spec = config["layers"][early]
            if spec.get("inbound_nodes"):
                spec["inbound_nodes"][0]["args"][0] = [names[later], 0, 0]
        elif edit == "duplicate" and config["layers"]:
            spec = copy.deepcopy(config["layers"][draw(st.integers(0, len(config["layers"]) - 1))])
            config["layers"].insert(draw(st.integers(0, len(config["layers"]))), spec)
        elif edit == "rename" and config["layers"]:
            spec = config["layers"][draw(st.integers(0, len(config["layers"]) - 1))]
            spec["name"] = draw(st.sampled_from([*names, "", "fresh"]))
        elif edit == "list" and config["layers"]:
            spec = config["layers"][draw(st.integers(0, len(config["layers"]) - 1))]
            for call in spec.get("inbound_nodes") or []:
                call["list"] = not call.get("list", False)
        elif edit == "shape":
            editable = [s for s in config["layers"] if s.get("class_name") in SHAPE_EDITS]
            if editable:
                spec = draw(st.sampled_from(editable))
                key, values = SHAPE_EDITS[spec["class_name"]]
                spec.setdefault("config", {})[key] = copy.deepcopy(draw(st.sampled_from(values)))
        elif edit == "nest":
            limit = graph_limits.MAX_NESTING
            depth = draw(st.sampled_from([1, 2, 5, limit - 1, limit + 1, 40]))
            config = wrapped(config, depth, draw(st.sampled_from(["Functional", "Sequential"])))
        elif edit == "many" and names and len(config["layers"]) < 2 * graph_limits.MAX_NODES:
            # A ReLU chain off the first input: just under or over the node limit, or small.
            limit = graph_limits.MAX_NODES
            count = draw(st.sampled_from([50, 500, limit - 5, limit + 1]))
            start = names[0]
            config["layers"].extend(relu_chain(start, count, "many"))
            if draw(st.booleans()):
                config["layers"].reverse()
            if count < 1000 and draw(st.booleans()):
                config["output_layers"] = [[f"many{count - 1}", 0, 0]]
        elif edit == "calls" and config["layers"]:
            spec = config["layers"][draw(st.integers(0, len(config["layers"]) - 1))]
            calls = spec.get("inbound_nodes") or []
            times = draw(st.sampled_from([2, 3, graph_limits.MAX_NODES + 1]))
            # Capped: a second such edit must not make 10**8 calls (the strategy runs outside
            # the memory guard; an uncapped run once grew to 24 GB and was killed).
            if calls and len(calls) * times <= 2 * graph_limits.MAX_NODES + 2:
                spec["inbound_nodes"] = calls * times
        elif edit == "reorder":
            config["layers"] = draw(st.permutations(config["layers"]))
    return config


def loads_or_refuses(config):
    """Model.from_config(config) loads and predicts, or raises a HandnetError; returns which."""
    try:
        with memory_guard(), time_limit(), initializers.allocation_budget(BUDGET_BYTES):
            model = Model.from_config(config)
    except HandnetError as error:
        assert str(error), "an error without a message"
        return "refused"
    with memory_guard(), time_limit():
        check_predicts(model)
    return "loaded"


@fuzz_settings(300)
@given(st.sampled_from(SEEDS).flatmap(mutated_graph))
def test_mutated_graphs(config):
    loads_or_refuses(config)


@fuzz_settings(300)
@given(st.sampled_from(SEEDS).flatmap(mutated_graph))
def test_mutated_graphs_as_json(config):
    """The same graphs after a trip through JSON text, as a file holds them."""
    loads_or_refuses(json.loads(json.dumps(config)))


@fuzz_settings(250)
@given(st.sampled_from(SEEDS).flatmap(lambda seed: fuzzed_json(seed, max_edits=3)))
def test_wrong_types_in_graph_configs(config):
    loads_or_refuses(config)


def file_with(config):
    members = dict(FILE_MEMBERS)
    raw = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, raw)
    members["config.json.npy"] = buffer.getvalue()
    return write_case(zip_of(members), "graph.npz")


@fuzz_settings(250)
@given(mutated_graph(FILE_CONFIG["model"]["config"]))
def test_mutated_graphs_in_saved_files(graph):
    """load_model on the seed file with its graph mutated: weights and optimizer state must
    still match what the graph declares, or the file is refused naming itself."""
    config = copy.deepcopy(FILE_CONFIG)
    config["model"]["config"] = graph
    check_model_loads(load_model, file_with(config))


@fuzz_settings(200)
@given(fuzzed_json(FILE_CONFIG, max_edits=3))
def test_fuzzed_saved_graph_configs(config):
    check_model_loads(load_model, file_with(config))


def test_the_seeds_load_and_predict():
    for seed in SEEDS:
        assert loads_or_refuses(copy.deepcopy(seed)) == "loaded"
    model = check_model_loads(load_model, file_with(FILE_CONFIG))
    assert model is not None and model.get_config() == FILE_CONFIG["model"]["config"]
