"""EinsumDense, MultiHeadAttention, Attention and AdditiveAttention against Keras 3 (torch
backend): with random weights copied across by name, y, the returned scores and ∂L/∂(every
input) and ∂L/∂(every weight) of L = Σ y · g (+ Σ scores · g' when the scores are returned)
for random g, within 1e-5 relative (the gradcheck measure: worst entry / largest entry).
Masks: an attention_mask with fully masked rows, the causal mask, and Keras masks of query
and value. Keras's own configs rebuild handnet's layers."""

import numpy as np
import pytest

import handnet as hn
from handnet.gradcheck import relative_error

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]

TOLERANCE = 1e-5
WORST = {}  # the worst difference of each quantity over the cases (printed with -s)


def _close(name, ours, theirs):
    if name.endswith("key/bias"):
        # Exactly 0 in exact arithmetic (b_k adds a constant to each row of scores, which the
        # softmax ignores): both sides hold float32 round-off, whose ratio means nothing.
        worst = max(np.abs(ours).max(), np.abs(theirs).max())
        WORST[name + " (absolute)"] = max(WORST.get(name + " (absolute)", 0.0), worst)
        assert worst < 1e-4, f"{name}: {worst:.1e}"
        return
    error = relative_error(np.asarray(ours), np.asarray(theirs))
    WORST[name] = max(WORST.get(name, 0.0), error)
    assert error < TOLERANCE, f"{name}: {error:.1e}"


def _copy_weights(layer, keras_layer, rng):
    """Random weights into both; handnet's names are Keras's variable paths past the layer."""
    ours = layer.params
    theirs = {v.path.split("/", 1)[1]: v for v in keras_layer.weights}
    assert list(ours) == list(theirs), f"{list(ours)} vs Keras {list(theirs)}"
    for name, variable in theirs.items():
        assert tuple(variable.shape) == ours[name].shape, name
        value = rng.standard_normal(ours[name].shape).astype("float32")
        variable.assign(value)
        ours[name][...] = value
    return theirs


def _run_both(torch, layer, keras_layer, call_ours, call_keras, arrays, rng, returns_scores):
    tensors = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = call_keras(*tensors)
    outputs = list(out) if returns_scores else [out]
    upstream = [rng.standard_normal(tuple(o.shape)).astype("float32") for o in outputs]
    sum(((o * torch.tensor(g)).sum() for o, g in zip(outputs, upstream))).backward()
    ours = call_ours(*[a.copy() for a in arrays])
    ours = list(ours) if returns_scores else [ours]
    layer.needs_input_gradient = True
    grads = layer.backward(upstream if returns_scores else upstream[0])
    for index, (mine, theirs) in enumerate(zip(ours, outputs)):
        _close("scores" if index else "y", mine, theirs.detach().numpy())
    return tensors, grads


MHA_CASES = [
    ({"num_heads": 2, "key_dim": 3}, {}, False, False),
    ({"num_heads": 2, "key_dim": 3}, {"use_causal_mask": True}, False, False),
    ({"num_heads": 3, "key_dim": 2, "value_dim": 4, "output_shape": 7}, {}, True, False),
    ({"num_heads": 2, "key_dim": 3, "use_bias": False}, {"return_attention_scores": True},
     True, False),
    ({"num_heads": 2, "key_dim": 3}, {"return_attention_scores": True, "use_causal_mask": True},
     False, True),
    ({"num_heads": 1, "key_dim": 4}, {}, False, True),
    ({"num_heads": 2, "key_dim": 3}, {"use_causal_mask": True}, True, True),
]


@pytest.mark.parametrize("args, options, use_key, use_mask", MHA_CASES)
def test_mha_keras_parity(keras, torch, args, options, use_key, use_mask):
    rng = np.random.default_rng(len(str(args)) + len(options))
    tq, tk, dq, dv, dk = 4, 5, 6, 3, 2
    keras_layer = keras.layers.MultiHeadAttention(**args)
    layer = hn.layers.MultiHeadAttention(**args)
    query = rng.standard_normal((2, tq, dq)).astype("float32")
    value = rng.standard_normal((2, tk, dv)).astype("float32")
    key = rng.standard_normal((2, tk, dk)).astype("float32") if use_key else None
    mask = None
    if use_mask:
        mask = rng.random((2, tq, tk)) < 0.6
        mask[1, :, 0] = True
        if options.get("return_attention_scores"):
            mask[0, 1] = False  # a fully masked row (test_fully_masked_row_in_keras_two_paths)
        else:
            mask[:, :, 0] = True  # key 0, which the causal mask allows too: no row masked whole
    keras_layer.build((None, tq, dq), (None, tk, dv), None if key is None else (None, tk, dk))
    layer.build([(tq, dq), (tk, dv)] + ([(tk, dk)] if use_key else []))
    theirs = _copy_weights(layer, keras_layer, rng)
    returns = options.get("return_attention_scores", False)
    arrays = [query, value] + ([key] if use_key else []) + ([mask] if use_mask else [])

    def split(items):
        items = list(items)
        named = {"query": items.pop(0), "value": items.pop(0)}
        named["key"] = items.pop(0) if use_key else None
        named["attention_mask"] = items.pop(0) if use_mask else None
        return named

    def call_keras(*tensors):
        n = split(tensors)
        return keras_layer(n["query"], n["value"], key=n["key"],
                           attention_mask=n["attention_mask"], **options)

    def call_ours(*items):
        n = split(items)
        return layer(n["query"], n["value"], key=n["key"], attention_mask=n["attention_mask"],
                     **options)

    tensors, grads = _run_both(torch, layer, keras_layer, call_ours, call_keras, arrays, rng,
                               returns)
    for name, grad, tensor in zip(("query", "value", "key"), grads, tensors):
        _close(f"d{name}", grad, tensor.grad.numpy())
    for name, variable in theirs.items():
        _close(f"d {name}", layer.grads[name], variable.value.grad.numpy())


def test_fully_masked_row_in_keras_two_paths(keras, torch):
    """Keras 3.15 computes a query row whose every key is masked in two ways: its explicit
    path (return_attention_scores=True, or dropout) zeroes the weights after the softmax, its
    torch sdpa path (the default) leaves them uniform. handnet gives what Keras's path for the
    same call gives, forward. Backward, the row's output does not depend on its scores (all
    are replaced), so handnet gives them no gradient; Keras's sdpa path adds its mask (-big)
    to the scores, and autograd sends the uniform row's softmax gradient through: there, and
    only there, ∂L/∂query differs (the explicit path agrees with handnet)."""
    rng = np.random.default_rng(12)
    keras_layer = keras.layers.MultiHeadAttention(2, 3)
    layer = hn.layers.MultiHeadAttention(2, 3)
    keras_layer.build((None, 4, 6), (None, 5, 3))
    layer.build([(4, 6), (5, 3)])
    _copy_weights(layer, keras_layer, rng)
    q = rng.standard_normal((1, 4, 6)).astype("float32")
    v = rng.standard_normal((1, 5, 3)).astype("float32")
    mask = np.ones((1, 4, 5), dtype=bool)
    mask[0, 1] = False
    tensors = [torch.tensor(a) for a in (q, v, mask)]
    explicit, scores = keras_layer(*tensors[:2], attention_mask=tensors[2],
                                   return_attention_scores=True)
    fast_path = keras_layer(*tensors[:2], attention_mask=tensors[2])
    ours = layer(q, v, attention_mask=mask)
    assert np.all(scores.detach().numpy()[0, :, 1] == 0)
    ours_explicit, our_scores = layer(q, v, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(ours_explicit, explicit.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours, fast_path.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert np.all(our_scores[0, :, 1] == 0)
    upstream = rng.standard_normal(ours.shape).astype("float32")
    gradients = {}
    for name, explicit_path in (("explicit", True), ("fused", False)):
        query = torch.tensor(q, requires_grad=True)
        out = keras_layer(query, tensors[1], attention_mask=tensors[2],
                          return_attention_scores=explicit_path)
        out = out[0] if explicit_path else out
        (out * torch.tensor(upstream)).sum().backward()
        gradients[name] = query.grad.numpy()
    layer(q, v, attention_mask=mask)
    layer.needs_input_gradient = True
    d_query, _ = layer.backward(upstream)
    assert relative_error(d_query, gradients["explicit"]) < TOLERANCE
    assert relative_error(d_query, gradients["fused"]) > 1e-3
    np.testing.assert_allclose(np.delete(d_query, 1, axis=1),  # query row 1 alone differs
                               np.delete(gradients["fused"], 1, axis=1), rtol=1e-4, atol=1e-5)
    # the two paths differ on the masked row only
    assert not np.allclose(ours[0, 1], ours_explicit[0, 1], atol=1e-3)
    np.testing.assert_allclose(np.delete(ours, 1, axis=1), np.delete(ours_explicit, 1, axis=1),
                               rtol=1e-5, atol=1e-6)


ATTENTION_CASES = [
    ("Attention", {}),
    ("Attention", {"use_scale": True}),
    ("Attention", {"score_mode": "concat"}),
    ("Attention", {"score_mode": "concat", "use_scale": True}),
    ("AdditiveAttention", {}),
    ("AdditiveAttention", {"use_scale": False}),
]


@pytest.mark.parametrize("kind, args", ATTENTION_CASES)
@pytest.mark.parametrize("variant", ["plain", "key", "causal", "masks", "scores"])
def test_attention_keras_parity(keras, torch, kind, args, variant):
    rng = np.random.default_rng(len(kind) + len(args) + len(variant))
    keras_layer = getattr(keras.layers, kind)(**args)
    layer = getattr(hn.layers, kind)(**args)
    query = rng.standard_normal((2, 3, 4)).astype("float32")
    value = rng.standard_normal((2, 5, 4)).astype("float32")
    arrays = [query, value]
    if variant == "key":
        arrays.append(rng.standard_normal((2, 5, 4)).astype("float32"))
    shapes = [a.shape[1:] for a in arrays]
    keras_layer.build([(None, *s) for s in shapes])
    layer.build(shapes, rng=rng)
    theirs = _copy_weights(layer, keras_layer, rng)
    options = {"use_causal_mask": variant == "causal",
               "return_attention_scores": variant == "scores"}
    masks = None
    if variant == "masks":
        masks = [np.array([[1, 0, 1], [1, 1, 1]], dtype=bool),
                 np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=bool)]

    def call_keras(*tensors):
        mask = None if masks is None else [torch.tensor(m) for m in masks]
        return keras_layer(list(tensors), mask=mask, **options)

    def call_ours(*items):
        return layer(list(items), mask=masks, **options)

    tensors, grads = _run_both(torch, layer, keras_layer, call_ours, call_keras, arrays, rng,
                               options["return_attention_scores"])
    for name, grad, tensor in zip(("query", "value", "key"), grads, tensors):
        _close(f"d{name}", grad, tensor.grad.numpy())
    for name, variable in theirs.items():
        _close(f"d {name}", layer.grads[name], variable.value.grad.numpy())


EINSUM_CASES = [
    ("ab,bc->ac", (4,), "c", (3,)),
    ("abc,cde->abde", (None, 2, 3), "de", (5, 4)),
    ("abcd,cde->abe", (None, 6), "e", (5, 2, 3)),
    ("...b,bc->...c", (4,), "c", (2, 3, 5)),
    ("ab...,bc->ac...", (4,), "c", (5, 3)),
    ("abc,cd->ad", (4,), None, (3, 2)),
]


@pytest.mark.parametrize("equation, output_shape, bias_axes, shape", EINSUM_CASES)
def test_einsum_dense_keras_parity(keras, torch, equation, output_shape, bias_axes, shape):
    rng = np.random.default_rng(len(equation))
    args = {"equation": equation, "output_shape": output_shape, "bias_axes": bias_axes,
            "activation": "relu"}
    keras_layer = keras.layers.EinsumDense(**args)
    keras_layer.build((None, *shape))
    layer = hn.layers.EinsumDense(**args)
    layer.build(shape)
    theirs = {v.name: v for v in keras_layer.weights}
    assert list(layer.params) == list(theirs)
    for name, variable in theirs.items():
        value = rng.standard_normal(layer.params[name].shape).astype("float32")
        variable.assign(value)
        layer.params[name][...] = value
    x = rng.standard_normal((3, *shape)).astype("float32")
    tensor = torch.tensor(x, requires_grad=True)
    y_keras = keras_layer(tensor)
    upstream = rng.standard_normal(tuple(y_keras.shape)).astype("float32")
    (y_keras * torch.tensor(upstream)).sum().backward()
    y = layer(x)
    layer.needs_input_gradient = True
    dx = layer.backward(upstream)
    # (Keras's compute_output_shape keeps the Nones of output_shape, and lists the axes of a
    # left '...' of three or more in reverse; the tensor it computes has the shape handnet's.)
    assert y.shape == tuple(y_keras.shape)
    _close("einsum y", y, y_keras.detach().numpy())
    _close("einsum dx", dx, tensor.grad.numpy())
    for name, variable in theirs.items():
        _close(f"einsum d {name}", layer.grads[name], variable.value.grad.numpy())


@pytest.mark.parametrize(
    "kind, args",
    [
        ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "value_dim": 4, "dropout": 0.1,
                                "output_shape": 5, "use_bias": False, "seed": 3}),
        ("Attention", {"use_scale": True, "score_mode": "concat", "dropout": 0.2}),
        ("AdditiveAttention", {"use_scale": False}),
        ("EinsumDense", {"equation": "abc,cd->abd", "output_shape": (None, 4),
                         "bias_axes": "d"}),
    ],
)
def test_keras_config_rebuilds_handnet_layer(keras, kind, args):
    config = getattr(keras.layers, kind)(**args).get_config()
    ours = getattr(hn.layers, kind)(**args).get_config()
    for key, value in ours.items():
        if key in ("name", "dtype", "trainable"):
            continue
        theirs = config[key]
        if isinstance(theirs, tuple):
            theirs = list(theirs)
        if isinstance(theirs, dict):  # an initializer's object form
            theirs = theirs["class_name"]
            value = {"glorot_uniform": "GlorotUniform", "zeros": "Zeros"}.get(value, value)
        assert value == theirs, key


def test_print_worst_differences():
    """Run last (with -s): the worst relative difference of each quantity over the cases."""
    for name, error in sorted(WORST.items()):
        print(f"{name:32s} {error:.2e}")
