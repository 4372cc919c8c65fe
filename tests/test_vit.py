"""The Vision Transformer (handnet.zoo.vit): its graph, a gradient check of its small copy, a
few training steps, its file, and its Keras export in core layers only."""

import numpy as np
import pytest

from handnet import optimizers
from handnet.gradcheck import gradcheck
from handnet.saving import load_model
from handnet.zoo import architectures


def test_patches_tokens_and_blocks():
    model = architectures.build("vit", seed=0)
    kinds = [type(node.layer).__name__ for node in model.nodes]
    assert kinds[:3] == ["Conv2D", "Reshape", "EinsumDense"]
    assert kinds.count("MultiHeadAttention") == 4 and kinds.count("Add") == 8
    patch = model.get_layer("patch_embedding")
    assert patch.kernel_size == patch.strides == (4, 4)  # each patch seen once, no overlap
    assert model.get_layer("tokens").output_shape == (49, 64)
    position = model.get_layer("position_embedding")
    assert position.params["bias"].shape == (49, 64)  # one learned vector per position


def test_the_small_copy_passes_the_gradient_check():
    model = architectures.build("vit", seed=0, small=True)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 1))
    report = gradcheck(model, x=x, y=np.array([0, 1, 2]))
    assert report.passed, report


def test_it_learns_where_a_patch_lies_and_the_file_keeps_the_predictions(tmp_path):
    """Is the top half brighter than the bottom half? Attention alone sees a bag of patches;
    only the position embedding tells the top patches from the bottom ones."""
    rng = np.random.default_rng(0)
    model = architectures.build("vit", seed=0, small=True)
    x = rng.random((48, 8, 8, 1), dtype=np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(int)
    model.compile(optimizers.Adam(1e-2), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=60, batch_size=16, verbose=0, seed=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.85
    model.save(tmp_path / "vit.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "vit.npz").predict(x), model.predict(x))


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")
def test_it_exports_to_keras_core_layers_with_the_same_outputs(keras, tmp_path):
    model = architectures.build("vit", seed=0)
    model.to_keras(tmp_path / "vit.keras")
    twin = keras.saving.load_model(tmp_path / "vit.keras", safe_mode=True)
    assert all(type(layer).__module__.startswith("keras.src.layers") for layer in twin.layers)
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(twin.predict(x, verbose=0), model.predict(x), atol=1e-5)
