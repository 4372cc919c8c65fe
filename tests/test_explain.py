"""handnet.explain: every layer writes its own formula (Layer.explain), and the explanation
walks the model's graph, saying where each step's inputs come from."""

import pytest

import handnet as hn
from handnet import explain, layers
from handnet.layers import Layer
from handnet.zoo import architectures


@pytest.mark.parametrize("name", sorted(layers.LAYERS))
def test_every_layer_type_writes_its_own_formula(name):
    cls = layers.LAYERS[name]
    assert cls.explain is not Layer.explain, f"{name} has no explain(): add one beside its math"


def test_a_chain_reads_step_after_step_without_saying_where_from():
    text = explain.explain(architectures.build("mlp", seed=0))
    assert "input:" not in text and "inputs:" not in text
    assert "(Dense) 256 units" in text
    assert "y = relu(x @ W + b)" in text and "(N, 784) → (N, 256)" in text


def test_the_loop_of_a_recurrent_layer_is_unrolled_with_its_shapes():
    text = explain.explain(architectures.build("lstm", seed=0))
    assert "unrolled over 28 steps" in text
    assert "x_t (N, 28) @ W (28, 512)" in text  # 4 gates of 128 units


@pytest.fixture
def graph():
    pixels, extra = layers.Input((8,), name="pixels"), layers.Input((8,), name="extra")
    shared = layers.Dense(8, activation="relu", name="shared")
    h, g = shared(pixels.tensor), shared(extra.tensor)
    total = layers.Add(name="add")([h, pixels.tensor])
    joined = layers.Concatenate(name="join")([total, g])
    y = layers.Dense(3, activation="softmax", name="out")(joined)
    return hn.Model([pixels, extra], y, name="residual")


def test_a_graph_says_where_each_input_comes_from(graph):
    lines = explain.explain(graph).splitlines()
    assert lines[1:3] == ["x0  (N, 8)  input 'pixels'", "x1  (N, 8)  input 'extra'"]
    add = lines.index("2   add (Add) sum of 2 inputs")
    assert lines[add + 1 : add + 4] == [
        "    y = x₁ + x₂",
        "    inputs: x₁ = 1 (shared), x₂ = x0 (pixels)",
        "    (N, 8) + (N, 8) → (N, 8)    no weights",
    ]
    assert "    inputs: x₁ = 2 (add), x₂ = 3 (shared)" in lines
    assert "    input: x1 (extra)" in lines
    # The last Dense reads the step before it: no "input:" line after it.
    out = lines.index("5   out (Dense) 3 units")
    assert lines[out + 2] == "    (N, 16) → (N, 3)    51 weights (kernel (16, 3), bias (3,))"


def test_a_shared_layer_counts_its_weights_once(graph):
    text = explain.explain(graph)
    assert "(N, 8) → (N, 8)    the weights of step 1 (shared)" in text
    assert graph.count_params() == 72 + 51 and "output (N, 3): 123 weights in all" in text


def test_the_table_lists_every_step_with_its_sources(graph):
    table = explain.layer_table(graph)
    assert [row["name"] for row in table] == ["shared", "add", "shared", "join", "out"]
    assert table[1]["inputs"] == ["shared", "pixels"] and table[1]["formula"] == "y = x₁ + x₂"
    assert table[3]["output_shape"] == [16]
