"""handnet explain --backward: every layer writes the formulas of its own backward pass
(Layer.explain_backward) with the shapes of dx and of each weight's gradient, and those shapes
are the shapes its backward really returns."""

import numpy as np
import pytest

from handnet import explain, layers
from handnet.cli import LAYER_CHECKS
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


@pytest.mark.parametrize("name", sorted(layers.LAYERS))
def test_the_explained_gradient_shapes_are_those_backward_returns(name):
    rng = np.random.default_rng(1)
    check = LAYER_CHECKS[name]
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
    if name == "Embedding":  # integer indices: no gradient flows into them
        assert inputs == [] and dxs == [None]
        return
    assert len(inputs) == len(dxs), (inputs, len(dxs))
    for key, dx in zip(inputs, dxs):
        assert dx is not None, key
        assert _batch_shape(named[key], BATCH) == dx.shape, (key, named[key].shape, dx.shape)
