"""The ``resnet`` architecture (handnet.resnet): its graph, its seeds, its file, a few steps."""

import numpy as np
import pytest

from handnet import layers, optimizers
from handnet.zoo import architectures
from handnet.errors import HandnetError
from handnet.model import Model
from handnet.saving import load_model


def of_type(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_the_graph_has_residual_blocks_and_strided_shortcuts():
    model = architectures.build("resnet", seed=0)
    assert isinstance(model, Model) and model.name == "resnet"
    assert model.input_shape == (28, 28, 1) and model.output_shape == (10,)
    assert len(of_type(model, layers.Add)) == 6  # three stages of two blocks
    shortcuts = [layer for layer in of_type(model, layers.Conv2D) if "shortcut" in layer.name]
    assert [(s.kernel_size, s.strides, s.filters) for s in shortcuts] == [
        ((1, 1), (2, 2), 32),
        ((1, 1), (2, 2), 64),
    ]
    # each Add reads the block's last BN and either the block's input or the 1×1 shortcut
    for add in of_type(model, layers.Add):
        (node,) = model.nodes_of(add)
        left, right = (tensor.node.layer.name for tensor in node.inputs)
        block = add.name.removesuffix("_add")
        assert left == f"{block}_bn2"
        assert right.endswith(("_out", "stem_pool", "_shortcut_bn"))
    assert model.get_layer("stage3_block2_out").output_shape == (4, 4, 64)
    assert 150_000 < model.count_params() < 200_000


def test_a_seed_fixes_the_weights():
    first, again = (architectures.build("resnet", seed=3).get_weights() for _ in range(2))
    other = architectures.build("resnet", seed=4).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_it_is_a_graph_not_a_list_of_layers():
    architecture = architectures.get("resnet")
    with pytest.raises(HandnetError, match="resnet is a graph"):
        architecture.make_layers()
    small = architectures.build("resnet", seed=0, small=True)
    assert small.input_shape == architecture.small_input_shape and small.output_shape == (3,)
    assert {type(layer) for layer in small.layers} == {
        type(layer) for layer in architectures.build("resnet").layers
    }


def test_a_few_steps_lower_the_loss_and_the_file_keeps_the_predictions(tmp_path):
    rng = np.random.default_rng(0)
    model = architectures.build("resnet", seed=0, small=True)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    x = rng.standard_normal((32, 8, 8, 1)).astype(np.float32)
    # the class: which third of the image is brightest
    y = np.stack([x[:, :3].sum((1, 2, 3)), x[:, 3:5].sum((1, 2, 3)), x[:, 5:].sum((1, 2, 3))])
    y = y.argmax(axis=0)
    # training-mode losses: the BN moving averages lag far behind after a few steps
    losses = [float(model.train_on_batch(x, y)[0]) for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    model.save(tmp_path / "resnet.npz")
    loaded = load_model(tmp_path / "resnet.npz")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
