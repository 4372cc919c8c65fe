"""gradcheck on layers with several inputs (the merge layers) and on whole graphs (the residual
``resnet`` architecture): every ∂L/∂x_k and every parameter against central differences.

Each passing check has a broken twin that must fail: a check that cannot fail proves nothing.
"""

import contextlib
import io
import json

import numpy as np
import pytest

import handnet as hn
from handnet import cli, layers
from handnet.zoo import architectures
from handnet.errors import HandnetError
from handnet.gradcheck import DEFAULT_TOLERANCE, gradcheck

MERGE_TYPES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"]


def run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main([str(arg) for arg in argv])
    return status, out.getvalue()


def input_rows(report):
    return [row for row in report.rows if row.layer == "(input)"]


# -- layers with several inputs ----------------------------------------------------------------
@pytest.mark.parametrize("name", MERGE_TYPES)
def test_every_merge_layer_passes_with_one_row_per_input(name):
    check = cli.LAYER_CHECKS[name]
    report = gradcheck(check.make(), input_shape=check.input_shape)
    assert report.passed, f"\n{report}"
    rows = input_rows(report)
    assert [row.quantity for row in rows] == [f"x{k}" for k in range(1, len(check.input_shape) + 1)]
    assert [row.shape for row in rows] == [(3, *shape) for shape in check.input_shape]
    assert all(row.scale > 0 for row in rows)  # every input really gets a gradient


def test_explicit_inputs_are_used_and_left_untouched():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 4)).astype(np.float32) for _ in range(2)]
    saved = [x.copy() for x in xs]
    report = gradcheck(layers.Multiply(), x=xs)
    assert report.passed and [row.shape for row in input_rows(report)] == [(2, 4), (2, 4)]
    for x, before in zip(xs, saved):
        np.testing.assert_array_equal(x, before)


class WrongSubtract(layers.Subtract):
    def backward(self, dy):
        return [dy.copy(), dy.copy()]  # dx₂ should be -dy


class ForgetsTheBroadcast(layers.Add):
    def backward(self, dy):
        # Gives every input dy's full shape: the stretched input's gradient is not summed.
        return [dy.copy() for _ in self.input_shape]


def test_a_wrong_second_input_gradient_fails_on_that_row_only():
    report = gradcheck(WrongSubtract(), input_shape=[(3,), (3,)])
    first, second = input_rows(report)
    assert first.error < DEFAULT_TOLERANCE and second.error > 0.5
    assert not report.passed


def test_gradients_of_the_wrong_shape_are_refused():
    with pytest.raises(HandnetError, match=r"shapes \[\(3, 2, 3\), \(3, 2, 3\)\] for inputs of sh"):
        gradcheck(ForgetsTheBroadcast(), input_shape=[(2, 3), (1, 3)])


def test_one_input_in_a_list_is_still_a_list():
    report = gradcheck(layers.Add(), input_shape=[(2, 3)])
    assert report.passed and [row.quantity for row in input_rows(report)] == ["x1"]


# -- whole graphs ------------------------------------------------------------------------------
def two_input_model():
    a, b = layers.Input((3,), name="a"), layers.Input((3,), name="b")
    h = layers.Dense(4, activation="tanh", name="dense")(a)
    joined = layers.Concatenate(name="join")([h, layers.Multiply(name="product")([a, b])])
    out = layers.Dense(2, activation="softmax", name="out")(joined)
    return hn.Model([a, b], out, seed=0)


def test_a_model_with_two_inputs_checks_each_input_and_the_loss():
    model = two_input_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, 3)) for _ in range(2)]
    report = gradcheck(model, xs, rng.integers(0, 2, size=4))
    assert report.passed, f"\n{report}"
    assert [row.quantity for row in input_rows(report)] == ["a", "b"]  # the inputs' names
    assert {row.layer for row in report.rows} == {"dense", "out", "(input)"}


def test_the_small_resnet_passes_with_its_loss():
    model = architectures.build("resnet", seed=0, small=True)
    assert any(isinstance(layer, layers.Add) for layer in model.layers)
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *model.input_shape))
    report = gradcheck(model, x, rng.integers(0, 3, size=4), training=True)
    assert report.passed, f"\n{report}"
    checked = {row.layer for row in report.rows}
    assert {"stem_conv", "stage2_block1_shortcut", "classifier"} <= checked


def test_a_residual_add_that_drops_the_shortcut_gradient_fails():
    """Add's backward giving the shortcut nothing: the layers before the block (the stem) and
    the input get the wrong gradient, and the check says so."""

    class DropsShortcut(layers.Add):
        def backward(self, dy):
            grads = super().backward(dy)
            return [grads[0], np.zeros_like(grads[1])]

    inputs = layers.Input((4,))
    h = layers.Dense(4, activation="tanh", name="before")(inputs)
    branch = layers.Dense(4, activation="tanh", name="branch")(h)
    out = layers.Dense(2, name="after")(DropsShortcut(name="add")([branch, h]))
    report = gradcheck(hn.Model(inputs, out, seed=0), input_shape=(4,))
    failed = {row.layer for row in report.rows if row.error > DEFAULT_TOLERANCE}
    assert "before" in failed and "(input)" in failed
    assert "branch" not in failed and "after" not in failed


# -- the command -------------------------------------------------------------------------------
def test_gradcheck_command_has_the_merge_layers_and_checks_resnet(tmp_path):
    status, out = run(["gradcheck", "--model", "resnet", "--json", tmp_path / "g.json"])
    assert status == 0, out
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["passed"] and report["unchecked"] == []
    names = {check["name"] for check in report["checks"]}
    assert {f"layer {name}" for name in MERGE_TYPES} <= names
    assert "model resnet (small) + loss" in names
    assert "stage2_block1_shortcut/kernel" in out
