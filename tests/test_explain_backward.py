"""handnet explain --backward: every layer writes the formulas of its own backward pass
(Layer.explain_backward) with the shapes of dx and of each weight's gradient, and those shapes
are the shapes its backward really returns."""

import json

import numpy as np
import pytest

from handnet import activations, explain, layers
from handnet.cli import LAYER_CHECKS, LayerCheck
from handnet.layers import Layer
from handnet.model import Model
from handnet.zoo import architectures
from tests.cli_run import run

BATCH = 3


@pytest.mark.parametrize("name", sorted(layers.LAYERS))
def test_every_layer_type_writes_its_own_backward_formulas(name):
    cls = layers.LAYERS[name]
    assert cls.explain_backward is not Layer.explain_backward, (
        f"{name} has no explain_backward(): add one beside its backward"
    )


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_every_activation_writes_its_derivative(name):
    activation = activations.get(name)
    assert activation.gradient != activations.Activation.gradient, name
    assert activation.gradient.startswith(("dz = ", "dz_k = ")), activation.gradient


def _run(check, rng):
    """A built layer, after one forward and one backward pass on a batch of BATCH: (layer,
    the list of input gradients)."""
    layer = check.make()
    shapes = check.input_shape
    several = isinstance(shapes, list)
    if check.inputs is not None:
        x = check.inputs()
    elif several:
        x = [rng.standard_normal((BATCH, *shape)) for shape in shapes]
    else:
        x = rng.standard_normal((BATCH, *shapes))
    layer.build(shapes, rng=np.random.default_rng(0))
    layer.cast("float64")
    y = layer.forward(x, training=check.training)
    outputs = y if isinstance(y, list) else [y]
    dys = [rng.standard_normal(out.shape) for out in outputs]
    dx = layer.backward(dys if isinstance(y, list) else dys[0])
    return layer, x, (dx if isinstance(dx, (list, tuple)) else [dx])


def _batch_shape(step, n):
    return tuple(n if d == "N" else d for d in step.shape)


def _check_shapes(name, check):
    rng = np.random.default_rng(1)
    layer, x, dxs = _run(check, rng)
    steps = layer.explain_backward(check.input_shape)
    named = {step.of: step for step in steps if step.of is not None}
    for step in steps:
        assert step.formula and "no backward formula" not in step.formula
    # Every trained weight's gradient is explained, with the shape backward filled in.
    assert {key for key in named if key in layer.grads} == set(layer.grads), named
    for key, grad in layer.grads.items():
        assert named[key].shape == grad.shape, (key, named[key].shape, grad.shape)
        assert np.any(grad != 0), f"backward left {key}'s gradient at 0"
    # Every input's gradient is explained, in the order backward returns them, shaped alike.
    inputs = [key for key in named if key not in layer.grads]
    if isinstance(layer, layers.Embedding):  # integer indices: no gradient flows into them
        assert inputs == [] and dxs == [None]
        return
    assert len(inputs) == len(dxs), (inputs, len(dxs))
    for key, dx in zip(inputs, dxs):
        assert dx is not None, key
        assert _batch_shape(named[key], BATCH) == dx.shape, (key, named[key].shape, dx.shape)


# Settings the gradient-check table leaves out, each changing what the formulas say.
VARIANTS = {
    "Dense on sequences": LayerCheck(lambda: layers.Dense(3), (4, 2)),
    "Conv2D valid, grouped": LayerCheck(lambda: layers.Conv2D(4, 2, groups=2), (4, 4, 2)),
    "Conv2D dilated, relu": LayerCheck(
        lambda: layers.Conv2D(2, 2, dilation_rate=2, activation="relu"), (5, 5, 1)
    ),
    "BatchNormalization at inference": LayerCheck(
        lambda: layers.BatchNormalization(center=False), (4,)
    ),
    "LayerNormalization rms": LayerCheck(lambda: layers.LayerNormalization(rms_scaling=True), (5,)),
    "GRU, last state": LayerCheck(lambda: layers.GRU(2), (3, 2)),
    "Bidirectional concat": LayerCheck(
        lambda: layers.Bidirectional(layers.GRU(2, return_sequences=True)), (3, 2)
    ),
    "Dot plain": LayerCheck(lambda: layers.Dot(axes=(2, 1)), [(2, 3), (3,)]),
    "Concatenate last": LayerCheck(lambda: layers.Concatenate(), [(2, 3), (2, 1)]),
    "MultiHeadAttention with a key and biases": LayerCheck(
        lambda: layers.MultiHeadAttention(2, 3, output_shape=5), [(3, 4), (5, 2), (5, 6)]
    ),
    "Attention dot, scaled": LayerCheck(
        lambda: layers.Attention(use_scale=True), [(3, 4), (5, 2), (5, 4)]
    ),
    "AdditiveAttention unscaled": LayerCheck(
        lambda: layers.AdditiveAttention(use_scale=False), [(3, 4), (5, 4)]
    ),
    "UpSampling2D nearest": LayerCheck(lambda: layers.UpSampling2D(2), (2, 3, 1)),
    "GlobalMaxPooling2D keepdims": LayerCheck(
        lambda: layers.GlobalMaxPooling2D(keepdims=True), (3, 3, 2)
    ),
    "TimeDistributed Conv1D": LayerCheck(
        lambda: layers.TimeDistributed(layers.Conv1D(2, 2, activation="relu")), (3, 4, 2)
    ),
}


@pytest.mark.parametrize("name", sorted(layers.LAYERS))
def test_the_explained_gradient_shapes_are_those_backward_returns(name):
    _check_shapes(name, LAYER_CHECKS[name])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_shapes_hold_for_other_settings_too(name):
    _check_shapes(name, VARIANTS[name])


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm", "vit"])
def test_every_step_of_a_trained_model_explains_the_gradients_it_fills(name):
    """On a small copy of the model, one training step's gradients: each step's explained
    weight gradients are the ones its layer holds, shaped alike, and its dx has its input's
    shape."""
    model = architectures.build(name, seed=0, small=True)
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, *model.input_shape))
    y = rng.integers(0, model.output_shape[-1], size=BATCH)
    model.compute_gradients(x, y, input_gradient=True)
    for node in model.nodes:
        layer = node.layer
        shapes = [tensor.per_sample_shape for tensor in node.inputs]
        steps = layer.explain_backward(shapes[0] if len(shapes) == 1 else shapes)
        weights = {step.of: step.shape for step in steps if step.of in layer.grads}
        assert weights == {key: grad.shape for key, grad in layer.grads.items()}, layer.name
        inputs = [step for step in steps if step.of is not None and step.of not in layer.grads]
        assert [_batch_shape(step, BATCH) for step in inputs] == [
            (BATCH, *shape) for shape in shapes
        ], layer.name


def test_a_graph_says_where_each_gradient_goes_and_what_sums_into_a_step():
    pixels = layers.Input((8,), name="pixels")
    shared = layers.Dense(8, activation="relu", name="shared")
    h = shared(pixels.tensor)
    total = layers.Add(name="add")([h, pixels.tensor])
    out = layers.Dense(3, name="out")(layers.Concatenate(name="join")([total, h]))
    lines = explain.explain_backward(Model(pixels, out, name="residual")).splitlines()
    # The steps run from the last to the first.
    order = [line.split()[1] for line in lines if line[:1].isdigit()]
    assert order == ["out", "join", "add", "shared"]
    shared_at = lines.index("1   shared (Dense) 8 units")
    assert lines[shared_at + 1] == "    dy = dx₁ of 2 (add) + dx₂ of 3 (join)"
    add_at = lines.index("2   add (Add) sum of 2 inputs")
    assert lines[add_at + 1] == "    dy = dx₁ of 3 (join)"
    assert lines[add_at + 2] == "    dx goes to: x₁ = 1 (shared), x₂ = x0 (pixels)"
    join = "\n".join(lines[lines.index("3   join (Concatenate) 2 inputs joined along axis -1"):])
    assert "    dx₁ = dy[:, 0:8]   (its slice)     (N, 8)" in join
    assert "    dx₂ = dy[:, 8:16]   (its slice)    (N, 8)" in join


CLI_LINES = {
    "mlp": ["dW = xᵀ @ dz   (a sum over the batch)    (784, 256)", "dz = dy · [z > 0]   (relu)"],
    "cnn": [
        "dK[u,v,c,f] = Σ_(n,i,j) x[n, i+u, j+v, c] · dz[n,i,j,f]",
        "(3, 3, 1, 32)",
        "dx[n, 2i+u, 2j+v, c] += dy[n,i,j,c] at (u,v) = the window's first argmax",
        "dx = dy.reshape(N, 5, 5, 64)",
    ],
    "lstm": ["dR = Σ_t h_(t-1)ᵀ @ dz_t", "(128, 512)", "dx_t = dz_t @ Wᵀ", "(N, 28, 28)"],
    "vit": ["dS = P ⊙ (dP - Σ_keys dP ⊙ P), 0 where masked", "(N, 4, 49, 49)", "d query = dQ"],
}


@pytest.mark.parametrize("name", sorted(CLI_LINES))
def test_the_cli_prints_the_backward_pass(name, tmp_path):
    status, out, err = run(
        ["explain", "--model", name, "--backward", "--json", tmp_path / "backward.json"]
    )
    assert status == 0, err
    assert out.startswith(f'Backward pass of "{name}"')
    assert "no backward formula" not in out
    for fragment in CLI_LINES[name]:
        assert fragment in out, fragment
    table = json.loads((tmp_path / "backward.json").read_text())["layers"]
    model = architectures.build(name, seed=0)
    assert len(table) == len(model.nodes)
    for row, node in zip(table, model.nodes):
        shapes = {step["of"]: tuple(step["shape"]) for step in row["backward"] if step["of"]}
        for key, weight in node.layer.params.items():
            assert shapes[key] == weight.shape, (row["name"], key)


def test_without_the_flag_explain_prints_the_forward_pass():
    status, out, _ = run(["explain", "--model", "mlp"])
    assert status == 0 and out.startswith('Forward pass of "mlp"') and "dW" not in out


def test_the_cli_explains_the_backward_pass_of_a_model_file(tmp_path):
    model = architectures.build("cnn", seed=0, small=True)
    model.save(tmp_path / "small.npz")
    status, out, err = run(["explain", "--model", tmp_path / "small.npz", "--backward"])
    assert status == 0, err
    kernel = model.layers[0].params["kernel"].shape
    assert "dK[u,v,c,f] = Σ_(n,i,j) x[n, i+u, j+v, c] · dz[n,i,j,f]" in out
    assert str(kernel) in out
