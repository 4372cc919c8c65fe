"""EinsumDense, MultiHeadAttention, Attention and AdditiveAttention: gradient checks in float64
with random upstream gradients (every weight, every input, masks, causal, dropout, returned
scores), graph nodes (self- and cross-attention, shared layers, configs, Keras masks from an
Embedding), training, saving and explain, and clear errors for bad arguments and shapes.
Against PyTorch: tests/layers/test_attention_torch.py."""

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError, InvalidInputError
from handnet.gradcheck import gradcheck
from handnet.layers import (
    AdditiveAttention,
    Attention,
    EinsumDense,
    Input,
    MultiHeadAttention,
)



def assert_passed(report):
    """Every row within tolerance, but key/bias: its gradient is exactly 0 (b_k adds q_i · b_k
    to every score of row i, and the softmax ignores a constant added to a row), so both the
    analytic and the numeric values are round-off, and their ratio means nothing. For it the
    check is that both are ~0."""
    for row in report.rows:
        if row.quantity == "key/bias":
            assert row.scale < 1e-8, str(report)
        else:
            assert row.error < report.tolerance, str(report)


# -- EinsumDense -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, shape",
    [
        ("ab,bc->ac", (4,), "c", (3,)),
        ("abc,cde->abde", (None, 2, 3), "de", (5, 4)),  # MultiHeadAttention's query projection
        ("abcd,cde->abe", (None, 6), "e", (5, 2, 3)),  # its output projection
        ("...b,bc->...c", (4,), "c", (2, 3, 5)),  # left ellipsis
        ("ab...,bc->ac...", (4,), "c", (5, 3)),  # right ellipsis, bias broadcast over "..."
        ("abc,cd->ad", (4,), None, (3, 2)),  # b summed over x alone: its gradient broadcasts
        ("abc,bd->abd", (None, 4), "bd", (3, 2)),  # a bias over two axes
        ("abc,c->abc", (3, 2), "bc", (3, 2)),  # vit's position embedding (the "scale" route)
    ],
)
def test_einsum_dense_gradcheck(equation, output_shape, bias_axes, shape):
    layer = EinsumDense(equation, output_shape, bias_axes=bias_axes, activation="tanh")
    report = gradcheck(layer, input_shape=shape, seed=3)
    assert report.passed, str(report)


def test_einsum_dense_is_dense_for_ab_bc_ac():
    x = np.random.default_rng(0).standard_normal((4, 3))
    einsum = EinsumDense("ab,bc->ac", 5, bias_axes="c")
    dense = hn.layers.Dense(5)
    einsum.build((3,), rng=np.random.default_rng(1))
    dense.build((3,), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(einsum.params["kernel"], dense.params["kernel"])
    np.testing.assert_allclose(einsum(x), dense(x), rtol=1e-6)


@pytest.mark.parametrize(
    "args, shape, message",
    [
        (("ab,bc", 4), (3,), "must be 'input,kernel->output'"),
        (("abc,cd->abd", 4), (5, 3), "needs 2"),
        (("ab,bc->ac", 4, None, "z"), (3,), "bias axis 'z'"),
        (("ab,bc->acd", (4, 2)), (3,), "output axis 'd' is in neither"),
        (("abc,cd->abd", (None, 4)), (3,), "names 3 input axes"),
        (("ab,bce->ac", (4,)), (3,), "kernel axis 'e'"),
        (("abc,cd->abd", (7, 4)), (5, 3), "axis 'b' is 5 in the input and 7"),
    ],
)
def test_einsum_dense_errors(args, shape, message):
    with pytest.raises(HandnetError, match=message):
        EinsumDense(*args).build(shape)


def test_einsum_dense_config_round_trip():
    layer = EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", activation="relu")
    twin = EinsumDense.from_config(layer.get_config())
    assert twin.get_config() == layer.get_config()
    layer.build((5, 4))
    headline, formula = layer.explain()
    assert "einsum('abc,cde->abde', x, W) + b[de]" in formula and "(4, 2, 3)" in formula


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, shape, route",
    [
        ("abc,c->abc", (5, 4), "bc", (5, 4), "scale"),  # vit's position embedding
        ("abc,bc->abc", (5, 4), None, (5, 4), "scale"),
        ("ab,bc->ac", (4,), "c", (3,), "matmul"),
        ("abc,cd->abd", (None, 4), "d", (5, 3), "matmul"),
        ("abc,cde->abde", (None, 2, 3), "de", (5, 4), "matmul"),
        ("abcd,cde->abe", (None, 6), "e", (5, 2, 3), "matmul"),
        ("...b,bc->...c", (4,), "c", (2, 3, 5), "matmul"),
        ("ab...,bc->ac...", (4,), "c", (5, 3), None),
        ("abc,cd->ad", (4,), None, (3, 2), None),
        ("abc,bd->abd", (None, 4), "bd", (3, 2), None),
        ("abc,dc->abd", (None, 4), "d", (3, 2), None),  # the kernel transposed
    ],
)
def test_einsum_dense_routes_agree_with_einsum(equation, output_shape, bias_axes, shape, route):
    """The shortcut ``forward`` takes (or einsum itself) against np.einsum of the equation:
    "scale" exactly (one product per entry); "matmul" within the bound of a float32 sum of C
    products, C·2⁻²³·Σ|x||W| per entry, measured against the float64 product, and einsum's
    float32 result within the same bound."""
    rng = np.random.default_rng(7)
    layer = EinsumDense(equation, output_shape, bias_axes=bias_axes)
    layer.build(shape, rng=rng)
    assert (layer._route or (None,))[0] == route
    x = rng.standard_normal((6, *shape)).astype(np.float32)
    kernel = layer.params["kernel"]
    explicit = layer._analysis
    y = layer.forward(x)
    bias = layer.params.get("bias", np.float32(0))
    if route == "scale":
        np.testing.assert_array_equal(y, np.einsum(explicit, x, kernel) + bias)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        x_spec, rest = explicit.split(",")
        w_spec, y_spec = rest.split("->")
        expected_dx = np.einsum(f"{y_spec},{w_spec}->{x_spec}", dy, kernel, optimize=True)
        np.testing.assert_array_equal(layer.backward(dy), expected_dx)
        return
    exact = np.einsum(explicit, x.astype(np.float64), kernel.astype(np.float64)) + bias
    magnitude = np.einsum(explicit, np.abs(x).astype(np.float64), np.abs(kernel)) + np.abs(bias)
    x_spec, y_spec = explicit.split(",")[0], explicit.split("->")[1]
    terms = np.prod([n for c, n in zip(x_spec, x.shape) if c not in y_spec])  # C
    bound = (terms + 1) * 2.0**-23 * magnitude  # + 1: the bias's rounding
    assert np.all(np.abs(y - exact) <= bound)
    reference = np.einsum(explicit, x, kernel, optimize=True) + bias
    assert np.all(np.abs(reference - exact) <= bound)


def test_einsum_dense_matmul_route_is_used_and_checked(monkeypatch):
    """The matmul route runs no einsum at all (it is a route, not a wrapper), and a wrong
    input still gets the layer's error."""
    layer = EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de")
    layer.build((5, 4))

    def no_einsum(*args, **kwargs):
        raise AssertionError("einsum called")

    monkeypatch.setattr(np, "einsum", no_einsum)
    assert layer.forward(np.ones((2, 5, 4), np.float32)).shape == (2, 5, 2, 3)
    with pytest.raises(InvalidInputError, match="expected input shape"):
        layer.forward(np.ones((2, 4, 5), np.float32))


# -- MultiHeadAttention --------------------------------------------------------------------
def _mha_model(heads=2, key_dim=3, dq=4, dv=5, tq=3, tk=4, **options):
    """A graph around one MultiHeadAttention: the inputs its options ask for."""
    use_key = options.pop("key", False)
    use_mask = options.pop("attention_mask", False)
    layer_args = options.pop("layer", {})
    query = Input((tq, dq), name="query")
    value = Input((tk, dv), name="value")
    inputs = [query, value]
    key = mask = None
    if use_key:
        key = Input((tk, 6), name="key")
        inputs.append(key)
    if use_mask:
        mask = Input((tq, tk), name="mask")
        inputs.append(mask)
    layer = MultiHeadAttention(heads, key_dim, name="mha", **layer_args)
    out = layer(query, value, key=key, attention_mask=mask, **options)
    return hn.model.Model(inputs, out, seed=1), layer


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"key": True},
        {"use_causal_mask": True},
        {"return_attention_scores": True},
        {"key": True, "use_causal_mask": True, "return_attention_scores": True},
        {"layer": {"value_dim": 2, "output_shape": 7, "use_bias": False}},
        {"layer": {"value_dim": 1}},
    ],
)
def test_mha_gradcheck(options):
    model, _ = _mha_model(**options)
    rng = np.random.default_rng(4)
    x = [rng.standard_normal((2, *shape)) for shape in [t.per_sample_shape
                                                        for t in model.input_tensors]]
    assert_passed(gradcheck(model, x=x))


def test_mha_gradcheck_with_attention_mask_and_dropout():
    """The mask input is integer (no gradient row); dropout is re-seeded per evaluation. Some
    rows are fully masked: their weights are 0 and nothing flows into their scores."""
    model, _ = _mha_model(attention_mask=True, use_causal_mask=True, layer={"dropout": 0.3})
    rng = np.random.default_rng(5)
    mask = (rng.random((2, 3, 4)) < 0.7).astype(np.int64)
    mask[0, 1] = 0
    x = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5)), mask]
    assert_passed(gradcheck(model, x=x, training=True))


def test_mha_self_attention_one_tensor_twice():
    """mha(x, x): the one tensor gets the sum of the query, key and value gradients."""
    x_in = Input((4, 6))
    out = MultiHeadAttention(3, 2)(x_in, x_in)
    model = hn.model.Model(x_in, out, seed=2)
    assert_passed(gradcheck(model, input_shape=(4, 6)))


def test_mha_forward_of_two_inputs_is_the_call():
    """forward([query, value]) (the engine's call, taken without split_inputs when there is
    no key, no attention_mask and no Keras mask) is mha(query, value) bit for bit, cross- and
    self-attention, and with Keras masks it takes the general path (the masks count)."""
    rng = np.random.default_rng(5)
    layer = MultiHeadAttention(2, 3, name="cross")
    query = rng.standard_normal((2, 3, 4)).astype(np.float32)
    value = rng.standard_normal((2, 5, 4)).astype(np.float32)
    expected = layer(query, value)
    np.testing.assert_array_equal(layer.forward([query, value]), expected)
    itself = MultiHeadAttention(2, 3, name="self")
    built_by_the_call = itself(query, query)
    np.testing.assert_array_equal(itself.forward([query, query]), built_by_the_call)
    value_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    masked = layer.forward([query, value], mask=[None, value_mask])
    np.testing.assert_array_equal(masked[1], expected[1])  # every key allowed: the same
    assert not np.allclose(masked[0], expected[0])  # two keys masked: different
    with pytest.raises(InvalidInputError, match="expected value of shape"):
        layer.forward([query, value[:, :4]])


def test_mha_masked_score_gets_no_gradient():
    """A key masked for every query changes nothing: its value and key rows get 0 gradient,
    and moving them leaves the output as it is."""
    layer = MultiHeadAttention(2, 3)
    rng = np.random.default_rng(6)
    q, v = rng.standard_normal((1, 3, 4)), rng.standard_normal((1, 5, 4))
    mask = np.ones((1, 3, 5), dtype=bool)
    mask[..., 2] = False
    y = layer(q, v, attention_mask=mask)
    layer.needs_input_gradient = True
    dq, dv = layer.backward(rng.standard_normal(y.shape))
    assert np.all(dv[:, 2] == 0)
    moved = v.copy()
    moved[:, 2] += 10
    np.testing.assert_allclose(layer(q, moved, attention_mask=mask), y, rtol=1e-6)


def test_mha_graph_config_round_trip_and_shared_layer():
    query, value = Input((3, 4)), Input((5, 4))
    layer = MultiHeadAttention(2, 3, name="shared")
    a = layer(query, value, use_causal_mask=True)
    b = layer(a, value, use_causal_mask=True)  # the same layer, the same options
    model = hn.model.Model([query, value], b, seed=3)
    rng = np.random.default_rng(9)
    x = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))]
    twin = hn.model.Model.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(twin.predict(x), model.predict(x), rtol=1e-6)
    assert_passed(gradcheck(model, x=x))
    with pytest.raises(HandnetError, match="already called with"):
        layer(a, value)  # another signature for the same layer


def test_mha_reads_embedding_masks():
    """An Embedding(mask_zero=True) before: the padded keys get no weight, the output carries
    the query's mask on, and an all-real batch gives what no mask gives."""
    tokens = Input((4,))
    h = hn.layers.Embedding(6, 4, mask_zero=True)(tokens)
    out = MultiHeadAttention(2, 2, name="mha")(h, h, return_attention_scores=True)
    model = hn.model.Model(tokens, out, seed=4)
    ids = np.array([[1, 2, 0, 0], [3, 4, 5, 1]], dtype=np.float32)
    y, scores = model.predict(ids)
    assert np.all(scores[0][:, :2, 2:] < 1e-6)  # no weight on the padding of sample 0
    # A padded query's row is masked whole: all weights 0 with the scores returned (Keras 3's
    # explicit path; its fused path, without scores, leaves the row uniform).
    assert np.all(scores[0][:, 2:] == 0)
    assert np.all(scores[1] > 0)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"num_heads": 0, "key_dim": 2}, "num_heads must be a positive integer"),
        ({"num_heads": 2, "key_dim": 2.5}, "key_dim must be a positive integer"),
        ({"num_heads": 2, "key_dim": 2, "value_dim": -1}, "value_dim"),
        ({"num_heads": 2, "key_dim": 2, "dropout": 1.0}, "dropout must be in"),
        ({"num_heads": 2, "key_dim": 2, "output_shape": (2, 3)}, "output_shape"),
        ({"num_heads": 2, "key_dim": 2, "attention_axes": (1, 2)}, "attention_axes"),
    ],
)
def test_mha_argument_errors(args, message):
    with pytest.raises(HandnetError, match=message):
        MultiHeadAttention(**args)


def test_mha_shape_errors():
    layer = MultiHeadAttention(2, 2)
    with pytest.raises(HandnetError, match=r"query must be \(T, features\)"):
        layer(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))
    layer = MultiHeadAttention(2, 2)
    with pytest.raises(HandnetError, match="key and value need the same length"):
        layer(np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), key=np.zeros((2, 6, 4)))
    layer(np.zeros((2, 3, 4)), np.zeros((2, 5, 4)))
    with pytest.raises(InvalidInputError, match="attention_mask must be"):
        layer(np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), attention_mask=np.ones((2, 5, 3)))
    with pytest.raises(InvalidInputError, match="expected value of shape"):
        layer(np.zeros((2, 3, 4)), np.zeros((2, 5, 3)))
    with pytest.raises(HandnetError, match="got no value"):
        layer(np.zeros((2, 3, 4)))


def test_mha_explain_and_config():
    layer = MultiHeadAttention(4, 8, dropout=0.1, output_shape=16, seed=3, name="m")
    twin = MultiHeadAttention.from_config(layer.get_config())
    assert twin.get_config() == layer.get_config()
    layer.build([(49, 16), (49, 16)])
    headline, formula = layer.explain()
    assert "4 heads" in headline and "softmax(Q_h K_hᵀ / √8" in formula
    details = "\n".join(layer.explain_details((49, 16)))
    assert "(4, 49, 49)" in details and "(49, 16)" in details


# -- Attention, AdditiveAttention -------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, args",
    [
        (Attention, {}),
        (Attention, {"use_scale": True}),
        (Attention, {"score_mode": "concat"}),
        (Attention, {"score_mode": "concat", "use_scale": True}),
        (AdditiveAttention, {}),
        (AdditiveAttention, {"use_scale": False}),
    ],
)
@pytest.mark.parametrize("options", [{}, {"use_causal_mask": True},
                                     {"return_attention_scores": True}, {"key": True}])
def test_attention_gradcheck(kind, args, options):
    query, value = Input((3, 4)), Input((5, 4))
    inputs = [query, value]
    if options.pop("key", False):
        inputs.append(Input((5, 4)))
    layer = kind(**args, name="att")
    out = layer(inputs, **options)
    model = hn.model.Model(inputs, out, seed=5)
    report = gradcheck(model, input_shape=[t.per_sample_shape for t in model.input_tensors])
    assert report.passed, str(report)


def test_attention_dropout_gradcheck_and_eager_masks():
    layer = Attention(dropout=0.4, seed=1)
    report = gradcheck(layer, input_shape=[(3, 4), (5, 4)], training=True)
    assert report.passed, str(report)
    rng = np.random.default_rng(10)
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    value_mask = np.array([[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]], dtype=bool)
    query_mask = np.array([[1, 0, 1], [1, 1, 1]], dtype=bool)
    y, p = Attention()([q, v], mask=[query_mask, value_mask], return_attention_scores=True)
    assert np.all(p[0][:, 2:4] < 1e-30) and np.all(y[0, 1] == 0)


def test_attention_errors():
    with pytest.raises(HandnetError, match="score_mode must be one of"):
        Attention(score_mode="general")
    with pytest.raises(HandnetError, match=r"called on a list \[query, value\]"):
        Attention()(np.zeros((2, 3, 4)))
    with pytest.raises(HandnetError, match="same feature size"):
        Attention()([np.zeros((2, 3, 4)), np.zeros((2, 5, 3))])
    twin = AdditiveAttention.from_config(AdditiveAttention(use_scale=False).get_config())
    assert twin.use_scale is False and "score_mode" not in twin.get_config()


def test_attention_model_trains_saves_and_explains(tmp_path):
    """A small transformer-like graph (causal self-attention with dropout, a residual Add,
    EinsumDense, a second MultiHeadAttention returning its scores, Attention and
    AdditiveAttention) fits (the loss falls), saves and loads to the same predictions, and
    explains every step with the attention's shapes."""
    from handnet.explain import explain
    from handnet.saving import load_model

    rng = np.random.default_rng(12)
    x = rng.standard_normal((64, 6, 8)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype(int)
    tokens = Input((6, 8))
    h = MultiHeadAttention(2, 4, dropout=0.1, name="mha")(tokens, tokens, use_causal_mask=True)
    h = hn.layers.LayerNormalization()(hn.layers.Add()([tokens, h]))
    h = EinsumDense("abc,cd->abd", (None, 4), bias_axes="d", activation="relu")(h)
    h, _ = MultiHeadAttention(1, 4, name="second")(h, h, return_attention_scores=True)
    h = AdditiveAttention()([Attention(use_scale=True)([h, h]), h])
    out = hn.layers.Dense(2, activation="softmax")(hn.layers.Flatten()(h))
    model = hn.model.Model(tokens, out, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "model.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "model.npz").predict(x), model.predict(x))
    text = explain(model)
    assert "S = Q Kᵀ / √4: (2, 6, 6)" in text and "mha (MultiHeadAttention) 2 heads" in text
