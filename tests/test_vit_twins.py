"""The benchmark's twins of the vit (benchmarks/twins.py): a PyTorch ViT of nn.Conv2d,
nn.MultiheadAttention and nn.LayerNorm, and the Keras export, computing what handnet's vit
computes, forward and through one training step, with the same parameters."""

import sys
from pathlib import Path

import numpy as np
import pytest

from handnet import optimizers
from handnet.errors import HandnetError
from handnet.zoo import architectures
from handnet.zoo.vit import vit_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import twins  # noqa: E402


def images(count, side=28, seed=0):
    return np.random.default_rng(seed).random((count, side, side, 1), dtype=np.float32)


def torch_twin_of(model, torch):
    net = twins.torch_twin(model)
    twins.copy_weights_to_torch(model, net)
    return net


@pytest.mark.torch
@pytest.mark.parametrize("small", [False, True], ids=["vit", "small_vit"])
def test_the_pytorch_twin_has_the_same_parameters_and_outputs(torch, small):
    model = architectures.build("vit", seed=0, small=small)
    net = torch_twin_of(model, torch)
    assert sum(p.numel() for p in net.parameters()) == model.count_params()
    assert isinstance(net.blocks[0].attention, torch.nn.MultiheadAttention)
    x = images(8, side=model.input_shape[0])
    net.eval()
    with torch.no_grad():
        logits = net(twins.torch_input(x))
    # handnet's last layer is the softmax; compare log-probabilities, which keep the logits'
    # differences (up to a constant per row) where probabilities near 0 would hide them.
    expected = np.log(model.predict(x))
    np.testing.assert_allclose(logits.log_softmax(-1).numpy(), expected, atol=1e-4)


@pytest.mark.torch
def test_one_training_step_gives_the_same_loss_and_weights(torch):
    """Plain SGD: the loss before and after one step, and the stepped weights, say that both
    nets computed the same gradients. Dropout 0, so that both see the same function."""
    model = vit_model(dropout=0.0, seed=0)
    net = torch_twin_of(model, torch)
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=[])
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = images(16, seed=1), np.arange(16) % 10
    xt, yt = twins.torch_input(x), torch.from_numpy(y)
    net.train()
    for step in range(2):
        loss, _ = model.train_on_batch(x, y)
        sgd.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(net(xt), yt)
        torch_loss.backward()
        sgd.step()
        assert loss == pytest.approx(torch_loss.item(), abs=1e-4), step
    kernel = model.get_layer("patch_embedding").params["kernel"]
    np.testing.assert_allclose(
        net.patch_embedding.weight.detach().numpy(), kernel.transpose(3, 2, 0, 1), atol=1e-5
    )
    query = model.get_layer("block1_attention").params["query/kernel"]
    np.testing.assert_allclose(
        net.blocks[0].attention.in_proj_weight.detach().numpy()[:64], query.reshape(64, 64).T,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        net.position.detach().numpy(),
        model.get_layer("position_embedding").params["bias"], atol=1e-5,
    )


@pytest.mark.torch
def test_a_graph_that_is_no_vit_has_no_pytorch_twin(torch):
    with pytest.raises(HandnetError, match="no PyTorch twin for 'resnet'"):
        twins.torch_twin(architectures.build("resnet", seed=0))


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")
def test_the_keras_twin_is_the_export_and_takes_weights_by_name(keras):
    model = architectures.build("vit", seed=0)
    twin = twins.keras_twin(model)
    assert twin.count_params() == model.count_params()
    x = images(8)
    np.testing.assert_allclose(twin.predict(x, verbose=0), model.predict(x), atol=1e-5)
    other = architectures.build("vit", seed=1)
    twins.copy_weights_to_keras(other, twin)
    np.testing.assert_allclose(twin.predict(x, verbose=0), other.predict(x), atol=1e-5)
