"""Attention in Keras files: a Keras model with MultiHeadAttention (self- and cross-attention,
a key, an attention_mask input, the causal mask, returned scores), Attention,
AdditiveAttention and EinsumDense, saved as .keras and legacy .h5, imports into handnet and
predicts what Keras predicts; handnet's export loads in Keras (safe mode) with the same
predictions and comes back bit for bit; compare-keras passes node by node; Keras's implicit
masks (an Embedding(mask_zero=True)) reach MultiHeadAttention in both; options handnet lacks
are refused by name."""

import numpy as np
import pytest

import handnet as hn
from handnet.errors import HandnetError
from handnet.keras_io import from_keras
from handnet.keras_io.compare import compare_keras

pytestmark = [pytest.mark.keras, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TOLERANCE = 1e-5


def _attention_model(keras, with_attention=True):
    K = keras.layers
    query = keras.Input((5, 8), name="q")
    value = keras.Input((6, 4), name="v")
    mask = keras.Input((5, 6), name="m")
    cross = K.MultiHeadAttention(2, 3, name="cross")(query, value, attention_mask=mask,
                                                      use_causal_mask=True)
    key = keras.Input((6, 3), name="k")
    keyed = K.MultiHeadAttention(2, 3, value_dim=2, output_shape=7, name="keyed")(
        query, value, key=key
    )
    selfish, scores = K.MultiHeadAttention(3, 2, use_bias=False, name="self")(
        cross, cross, return_attention_scores=True
    )
    outputs = [cross, keyed, selfish, scores,
               K.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d", name="ed")(selfish)]
    if with_attention:
        outputs += [K.Attention(use_scale=True, name="att")([query, query]),
                    K.AdditiveAttention(name="add")([query, query, query],
                                                    use_causal_mask=True)]
    return keras.Model([query, value, mask, key], outputs)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    mask = (rng.random((3, 5, 6)) < 0.7).astype("float32")
    mask[:, :, 0] = 1  # with the causal mask, no query row is masked whole
    return [rng.standard_normal((3, 5, 8)).astype("float32"),
            rng.standard_normal((3, 6, 4)).astype("float32"), mask,
            rng.standard_normal((3, 6, 3)).astype("float32")]


def _assert_same(ours, theirs, exact=False):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        b = np.asarray(b)
        assert a.shape == b.shape
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            assert np.abs(a - b).max() <= TOLERANCE * max(1.0, np.abs(b).max())


def _randomize(keras_model, seed=1):
    rng = np.random.default_rng(seed)
    for variable in keras_model.weights:
        variable.assign(rng.standard_normal(tuple(variable.shape)).astype("float32") * 0.5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_attention_model_imports(keras, tmp_path, suffix):
    keras_model = _attention_model(keras)
    _randomize(keras_model)
    path = tmp_path / f"attention{suffix}"
    keras_model.save(path)
    model = from_keras(path)
    assert sorted(type(layer).__name__ for layer in model.layers) == sorted(
        ["MultiHeadAttention"] * 3 + ["EinsumDense", "Attention", "AdditiveAttention"])
    x = _inputs()
    _assert_same(model.predict(x), keras_model.predict(x, verbose=0))
    cross = model.get_layer("cross")
    np.testing.assert_array_equal(
        cross.params["query/kernel"],
        keras.ops.convert_to_numpy(keras_model.get_layer("cross").query_dense.kernel),
    )


def test_handnet_export_loads_in_keras_and_comes_back(keras, tmp_path):
    keras_model = _attention_model(keras)
    _randomize(keras_model, seed=2)
    keras_model.save(tmp_path / "source.keras")
    model = from_keras(tmp_path / "source.keras")
    model.to_keras(tmp_path / "back.keras")
    reloaded = keras.models.load_model(tmp_path / "back.keras", safe_mode=True)
    x = _inputs(3)
    _assert_same(model.predict(x), reloaded.predict(x, verbose=0))
    twin = from_keras(tmp_path / "back.keras")
    for name, array in model.weights().items():
        np.testing.assert_array_equal(twin.weights()[name], array)
    _assert_same(twin.predict(x), model.predict(x), exact=True)


def test_handnet_built_attention_model_exports(keras, tmp_path):
    """A model made in handnet (a shared MultiHeadAttention called twice, a residual Add, a
    LayerNormalization: a transformer block) loads in Keras with the same predictions."""
    tokens = hn.layers.Input((6, 8))
    attention = hn.layers.MultiHeadAttention(2, 4, name="mha")
    h = hn.layers.LayerNormalization()(tokens)
    h = hn.layers.Add()([tokens, attention(h, h)])
    h = hn.layers.Add()([h, attention(h, h)])
    out = hn.layers.Dense(3)(hn.layers.GlobalAveragePooling1D()(h))
    model = hn.model.Model(tokens, out, seed=4)
    model.to_keras(tmp_path / "block.keras")
    reloaded = keras.models.load_model(tmp_path / "block.keras", safe_mode=True)
    x = np.random.default_rng(5).standard_normal((4, 6, 8)).astype("float32")
    _assert_same([model.predict(x)], [reloaded.predict(x, verbose=0)])


def test_compare_keras_node_by_node(keras, tmp_path):
    keras_model = _attention_model(keras)
    _randomize(keras_model, seed=6)
    keras_model.save(tmp_path / "attention.keras")
    report = compare_keras(tmp_path / "attention.keras", _inputs(7))
    assert report.passed, str(report)
    names = {row.name for row in report.rows}
    assert {"cross", "keyed", "self", "ed", "att", "add"} <= names
    # A legacy .h5 without Attention (Keras 3.15 cannot reload its own .h5 Attention: its
    # score_mode comes back as a function).
    keras_model = _attention_model(keras, with_attention=False)
    _randomize(keras_model, seed=8)
    keras_model.save(tmp_path / "attention.h5")
    report = compare_keras(tmp_path / "attention.h5", _inputs(9))
    assert report.passed, str(report)


@pytest.mark.parametrize("kind", ["MultiHeadAttention", "Attention", "AdditiveAttention"])
def test_embedding_masks_reach_attention(keras, tmp_path, kind):
    K = keras.layers
    tokens = keras.Input((5,), dtype="int32")
    h = K.Embedding(7, 4, mask_zero=True, name="embed")(tokens)
    if kind == "MultiHeadAttention":
        h = K.MultiHeadAttention(2, 2, name="mha")(h, h)
    else:
        h = getattr(K, kind)(name="att")([h, h])
    out = K.Dense(3, name="head")(K.Flatten()(h))
    keras_model = keras.Model(tokens, out)
    _randomize(keras_model, seed=10)
    keras_model.save(tmp_path / "masked.keras")
    model = from_keras(tmp_path / "masked.keras")
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 1, 2], [3, 0, 0, 0, 0]], dtype="int32")
    _assert_same([model.predict(ids.astype("float32"))], [keras_model.predict(ids, verbose=0)])


@pytest.mark.parametrize(
    "kind, args, message",
    [
        ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "use_gate": True}, "use_gate"),
        ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "sliding_window": 2},
         "sliding_window"),
        ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "attention_axes": (1, 2)},
         "attention_axes"),
    ],
)
def test_unsupported_options_are_refused(keras, tmp_path, kind, args, message):
    x = keras.Input((3, 4, 4) if "attention_axes" in args else (3, 4))
    y = getattr(keras.layers, kind)(**args)(x, x)
    keras.Model(x, y).save(tmp_path / "refused.keras")
    with pytest.raises(HandnetError, match=message):
        from_keras(tmp_path / "refused.keras")
