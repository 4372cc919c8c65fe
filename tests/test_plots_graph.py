"""graph.png (handnet.plots.graph): the layered layout, and a readable picture of a chain and of
a residual graph."""

import numpy as np
from PIL import Image

import handnet as hn
from handnet import layers, plots
from handnet.zoo import architectures


def read_png(path):
    """The picture as an RGB array; it must be a real PNG with something drawn on it."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels < 128).any() and (pixels > 200).any()  # text and boxes on a light page
    return pixels


def by_name(boxes):
    return {box.name: box for box in boxes.values()}


def test_a_chain_is_one_column_top_to_bottom(tmp_path):
    model = architectures.build("cnn", seed=0)
    boxes, edges = plots.graph_layout(model)
    names = [box.name for box in boxes.values()]
    assert names == [*model.input_names, *(layer.name for layer in model.layers)]
    assert [box.depth for box in boxes.values()] == list(range(len(names)))
    assert {box.column for box in boxes.values()} == {0.0}
    assert len(edges) == len(names) - 1
    first, last = model.layers[0].name, model.layers[-1].name  # names count up per process
    assert by_name(boxes)[last].label == f"{last}\nDense softmax → 10"
    assert by_name(boxes)[first].shapes == [(26, 26, 32)]
    assert by_name(boxes)[first].kind == "Conv2D 3×3 relu"
    assert by_name(boxes)[model.layers[1].name].kind == "MaxPooling2D 2×2 stride 2"
    plots.plot_model_graph(model, tmp_path / "graph.png")
    height, width, _ = read_png(tmp_path / "graph.png").shape
    assert height > 1.5 * width  # eight boxes one under the other


def test_a_residual_block_puts_its_branches_side_by_side(tmp_path):
    model = architectures.build("resnet", seed=0, small=True)
    boxes, edges = plots.graph_layout(model)
    named = by_name(boxes)
    conv, shortcut = named["stage2_block1_conv1"], named["stage2_block1_shortcut"]
    add = named["stage2_block1_add"]
    # depth = longest path from the input: the Add sits under the longer branch
    assert conv.depth == shortcut.depth
    assert (conv.kind, shortcut.kind) == ("Conv2D 3×3 stride 2", "Conv2D 1×1 stride 2")
    assert add.depth == named["stage2_block1_bn2"].depth + 1
    assert abs(conv.column - shortcut.column) >= 1
    assert add.merges and not conv.merges
    # the identity shortcut of the first stage: an edge that skips the block's levels
    keys = {box.name: key for key, box in boxes.items()}
    skip = (keys["stem_pool"], keys["stage1_block1_add"])
    assert skip in edges and named["stage1_block1_add"].depth - named["stem_pool"].depth == 6
    for depth in {box.depth for box in boxes.values()}:  # no two boxes overlap
        columns = sorted(box.column for box in boxes.values() if box.depth == depth)
        assert all(b - a >= 1 for a, b in zip(columns, columns[1:]))
    plots.plot_model_graph(model, tmp_path / "graph.png", title="small resnet")
    pixels = read_png(tmp_path / "graph.png")
    chain = plots.graph_layout(architectures.build("cnn", seed=0))[0]
    plots.plot_model_graph(architectures.build("cnn", seed=0), tmp_path / "chain.png")
    assert pixels.shape[1] > read_png(tmp_path / "chain.png").shape[1]  # two columns, wider
    assert len(chain) < len(boxes)


def test_two_inputs_start_side_by_side_and_a_tensor_read_twice_is_one_edge():
    a, b = layers.Input((3,), name="a"), layers.Input((3,), name="b")
    h = layers.Dense(3, name="dense")(a)
    square = layers.Multiply(name="square")([h, h])
    out = layers.Concatenate(name="join")([square, b])
    boxes, edges = plots.graph_layout(hn.Model([a, b], out))
    named = by_name(boxes)
    assert named["a"].depth == named["b"].depth == 0 and named["a"].column != named["b"].column
    keys = {box.name: key for key, box in boxes.items()}
    assert edges.count((keys["dense"], keys["square"])) == 1
    assert named["join"].depth == 3 and named["join"].shapes == [(6,)]


def test_feature_maps_follow_the_graph():
    """layer_outputs walks the nodes of a graph (feature_maps.png): one output per layer call,
    and an Add's output is the sum of what its two branches made."""
    model = architectures.build("resnet", seed=0, small=True)
    image = np.random.default_rng(0).standard_normal((8, 8, 1))
    outputs = dict((layer.name, output) for layer, output in plots.layer_outputs(model, image))
    assert list(outputs) == [node.layer.name for node in model.nodes]
    np.testing.assert_allclose(
        outputs["stage2_block1_add"],
        outputs["stage2_block1_bn2"] + outputs["stage2_block1_shortcut_bn"],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        outputs["stage1_block1_add"], outputs["stage1_block1_bn2"] + outputs["stem_pool"], rtol=1e-6
    )
