"""The buffered LSTM and GRU step loops (handnet.fast.recurrent) against the specification
(handnet.ops.recurrent_spec): random sizes, masks (none, random, whole sequences, leading
steps), with and without the biases (the fast path adds b step by step), float64 and
float32, forward and backward; and the arrays a layer reuses from batch to batch (its
workspace), never shared with a copy.

The fast path takes every product and sum in the specification's order, so the results must
agree to the last bit (which is what keeps tests/golden's twelve steps where they were); the
upstream gradient, a strided view as the layer passes it, is left untouched."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handnet import activations
from handnet.fast import recurrent as fast
from handnet.layers import GRU, LSTM, Bidirectional, SimpleRNN
from handnet.ops import recurrent_spec as spec

SIGMOID, TANH = activations.get("sigmoid"), activations.get("tanh")


def random_skip(rng, kind, timesteps, batch):
    """(T, N, 1) booleans, True = masked step, as Recurrent.skipped_steps gives them."""
    if kind == "none":
        return None
    if kind == "random":
        skip = rng.random((timesteps, batch)) < 0.4
    elif kind == "whole_sequence":
        skip = np.zeros((timesteps, batch), dtype=bool)
        skip[:, 0] = True
    else:  # "leading": left padding, as Keras pads sequences by default
        lengths = rng.integers(0, timesteps + 1, batch)
        skip = np.arange(timesteps)[:, None] < (timesteps - lengths)[None, :]
    return skip[..., None]


def assert_same(fast_arrays, spec_arrays):
    for key in spec_arrays:
        found = fast_arrays[key]
        if key == "gates" and found.ndim == 4:  # fast keeps them gate-major (T, G, N, U)
            found = found.transpose(0, 2, 1, 3).reshape(spec_arrays[key].shape)
        np.testing.assert_array_equal(found, spec_arrays[key], err_msg=key)


cases = dict(
    batch=st.integers(1, 5),
    timesteps=st.integers(1, 6),
    units=st.integers(1, 5),
    mask_kind=st.sampled_from(["none", "random", "whole_sequence", "leading"]),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=60, deadline=None)
@given(**cases, with_bias=st.booleans())
def test_lstm_fast_equals_spec_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, with_bias
):
    rng = np.random.default_rng(seed)
    products = (rng.standard_normal((timesteps, batch, 4 * units)) * 2).astype(dtype)  # x_t W
    bias = rng.standard_normal(4 * units).astype(dtype) if with_bias else None
    z = products + bias if with_bias else products.copy()  # the specification's input: + b
    recurrent_kernel = rng.normal(0, 0.7, (units, 4 * units)).astype(dtype)
    skip = random_skip(rng, mask_kind, timesteps, batch)
    cache_spec = spec.lstm_forward(z, recurrent_kernel, skip, SIGMOID, TANH)
    cache_fast = fast.lstm_forward(
        products.copy(), recurrent_kernel, skip, SIGMOID, TANH, input_bias=bias
    )
    assert_same(cache_fast, cache_spec)

    dy = rng.standard_normal((batch, timesteps, units)).astype(dtype)
    saved = dy.copy()
    from_above = dy.transpose(1, 0, 2)  # as Recurrent.upstream_per_step hands it over
    dz_spec = spec.lstm_backward(from_above, recurrent_kernel, cache_spec, skip, SIGMOID, TANH)
    dz_fast = fast.lstm_backward(from_above, recurrent_kernel, cache_fast, skip, SIGMOID, TANH)
    np.testing.assert_array_equal(dy, saved)
    np.testing.assert_array_equal(dz_fast, dz_spec)
    if skip is not None:  # a masked step gives nothing to its gates
        assert not dz_fast[np.broadcast_to(skip, dz_fast.shape)].any()


@settings(max_examples=60, deadline=None)
@given(**cases, with_bias=st.booleans())
def test_gru_fast_equals_spec_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, with_bias
):
    rng = np.random.default_rng(seed)
    products = (rng.standard_normal((timesteps, batch, 3 * units)) * 2).astype(dtype)  # x_t W
    recurrent_kernel = rng.normal(0, 0.7, (units, 3 * units)).astype(dtype)
    bias, input_bias = (
        rng.standard_normal((2, 3 * units)).astype(dtype) if with_bias else (None, None)
    )
    pre = products + input_bias if with_bias else products.copy()  # m_t = x_t W + b_in
    skip = random_skip(rng, mask_kind, timesteps, batch)
    cache_spec = spec.gru_forward(pre, recurrent_kernel, bias, skip, SIGMOID, TANH)
    cache_fast = fast.gru_forward(
        products.copy(), recurrent_kernel, bias, skip, SIGMOID, TANH, input_bias=input_bias
    )
    assert_same(cache_fast, cache_spec)

    dy = rng.standard_normal((batch, timesteps, units)).astype(dtype)
    saved = dy.copy()
    from_above = dy.transpose(1, 0, 2)
    grads_spec = spec.gru_backward(from_above, recurrent_kernel, cache_spec, skip, SIGMOID, TANH)
    grads_fast = fast.gru_backward(from_above, recurrent_kernel, cache_fast, skip, SIGMOID, TANH)
    np.testing.assert_array_equal(dy, saved)
    for ours, theirs in zip(grads_fast, grads_spec):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_into_gives_the_activation_s_values_without_overflow(dtype):
    z = np.array([-1e4, -100, -88.7, -20, -1, -1e-8, -0.0, 0, 1e-8, 1, 20, 88.7, 100, 1e4])
    z = np.concatenate([z, np.random.default_rng(0).standard_normal(200) * 10]).astype(dtype)
    out, work, positive = np.empty_like(z), np.empty_like(z), np.empty(z.shape, dtype=bool)
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is the right value
        fast.sigmoid_into(z, out, work, positive)
    np.testing.assert_array_equal(out, SIGMOID.forward(z))


def test_other_activations_run_the_specification():
    softsign, hard_sigmoid = activations.get("softsign"), activations.get("hard_sigmoid")
    assert not fast.fused_kernels_apply(hard_sigmoid, softsign)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 2, 8))
    recurrent_kernel = rng.standard_normal((2, 8))
    cache_spec = spec.lstm_forward(z.copy(), recurrent_kernel, None, hard_sigmoid, softsign)
    cache_fast = fast.lstm_forward(z.copy(), recurrent_kernel, None, hard_sigmoid, softsign)
    assert_same(cache_fast, cache_spec)


@pytest.mark.parametrize("layer_class", [LSTM, GRU, SimpleRNN], ids=lambda c: c.__name__)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_a_reused_workspace_gives_what_fresh_arrays_give(layer_class, return_sequences):
    """The layer keeps its arrays from batch to batch: a batch after others (masked, another
    size) computes exactly what a layer that never ran computes."""
    rng = np.random.default_rng(3)
    used = layer_class(3, return_sequences=return_sequences)
    used.build((5, 2), rng)
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    for batch, mask in ((4, rng.random((4, 5)) < 0.7), (6, None), (4, None)):
        earlier = rng.standard_normal((batch, 5, 2)).astype(np.float32)
        y = used.forward(earlier, training=True, mask=mask)
        used.backward(np.ones_like(y))
    fresh = copy.deepcopy(used)
    fresh._workspace = None
    for layer in (used, fresh):
        y = layer.forward(x, training=True)
        dx = layer.backward(np.cos(y))
        layer.results = (y, dx, {key: grad.copy() for key, grad in layer.grads.items()})
    np.testing.assert_array_equal(used.results[0], fresh.results[0])
    np.testing.assert_array_equal(used.results[1], fresh.results[1])
    for key in used.grads:
        np.testing.assert_array_equal(used.results[2][key], fresh.results[2][key])


def test_copies_and_replicas_get_their_own_workspace():
    layer = LSTM(3)
    layer.build((4, 2), np.random.default_rng(0))
    layer.forward(np.zeros((2, 4, 2), dtype=np.float32))
    for twin in (copy.copy(layer), layer.replica(), copy.copy(Bidirectional(layer)).forward_layer):
        assert twin.workspace() is not layer.workspace()


# -- the inference loops (no cache): the specification's states, bit for bit ------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", [7, fast.SMALL_SIGMOID + 8], ids=["small", "large"])
def test_sigmoid_inference_into_gives_the_activation_s_values(dtype, size):
    z = np.array([-1e4, -100, -88.7, -20, -1, -1e-8, -0.0, 0, 1e-8, 1, 20, 88.7, 100, 1e4])
    z = np.concatenate([z, np.random.default_rng(1).standard_normal(size) * 10]).astype(dtype)
    z = z.reshape(1, -1)
    buffers = fast.SigmoidBuffers(z.shape, z.dtype)
    assert buffers.small == (z.size <= fast.SMALL_SIGMOID)
    out = np.empty_like(z)
    with np.errstate(over="raise", invalid="raise"):
        fast.sigmoid_inference_into(z, out, buffers)
    np.testing.assert_array_equal(out, SIGMOID.forward(z))


inference_cases = dict(
    cases,
    batch=st.sampled_from([1, 2, 5, 40]),  # 40 rows of 4U or 2U ≥ 128 columns: σ's large form
    units=st.sampled_from([1, 3, 32]),
    every_state=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(**inference_cases)
def test_lstm_inference_equals_spec_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, every_state
):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((timesteps, batch, 4 * units)) * 2).astype(dtype)  # x_t W + b
    recurrent_kernel = rng.normal(0, 0.7, (units, 4 * units)).astype(dtype)
    skip = random_skip(rng, mask_kind, timesteps, batch)
    saved = z.copy()
    last, states = fast.lstm_inference(z, recurrent_kernel, skip, every_state=every_state)
    np.testing.assert_array_equal(z, saved)  # read only
    expected = spec.lstm_forward(z.copy(), recurrent_kernel, skip, SIGMOID, TANH)["states"]
    np.testing.assert_array_equal(last, expected[-1])
    if every_state:
        np.testing.assert_array_equal(states, expected)
    else:
        assert states is None


@settings(max_examples=60, deadline=None)
@given(**inference_cases, with_bias=st.booleans())
def test_gru_inference_equals_spec_bit_for_bit(
    batch, timesteps, units, mask_kind, dtype, seed, every_state, with_bias
):
    rng = np.random.default_rng(seed)
    pre = (rng.standard_normal((timesteps, batch, 3 * units)) * 2).astype(dtype)  # m_t
    recurrent_kernel = rng.normal(0, 0.7, (units, 3 * units)).astype(dtype)
    bias = rng.standard_normal(3 * units).astype(dtype) if with_bias else None
    skip = random_skip(rng, mask_kind, timesteps, batch)
    saved = pre.copy()
    last, states = fast.gru_inference(pre, recurrent_kernel, bias, skip, every_state=every_state)
    np.testing.assert_array_equal(pre, saved)
    expected = spec.gru_forward(pre.copy(), recurrent_kernel, bias, skip, SIGMOID, TANH)["states"]
    np.testing.assert_array_equal(last, expected[-1])
    if every_state:
        np.testing.assert_array_equal(states, expected)


def layer_of(layer_class, return_sequences, rng, **options):
    layer = layer_class(6, return_sequences=return_sequences, **options)
    layer.build((5, 3), rng)
    if layer.use_bias:  # not the zeros they start at, so that the bias terms count
        layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
    return layer


@pytest.mark.parametrize("layer_class", [LSTM, GRU, SimpleRNN], ids=lambda c: c.__name__)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("batch", [1, 300])  # σ's small and large forms
def test_inference_forward_equals_training_forward(layer_class, return_sequences, masked, batch):
    """What predict computes (no cache) is what training computes, to the last bit; then a
    backward after the inference forward still gives BPTT's gradients (it reruns the training
    forward first)."""
    rng = np.random.default_rng(batch)
    layer = layer_of(layer_class, return_sequences, rng)
    x = rng.standard_normal((batch, 5, 3)).astype(np.float32)
    mask = rng.random((batch, 5)) < 0.7 if masked else None
    predicted = layer.forward(x, training=False, mask=mask)
    assert layer._inference_input is not None  # the inference loop ran
    dy = np.cos(predicted)
    dx_after_inference = layer.backward(dy)
    grads_after_inference = {key: grad.copy() for key, grad in layer.grads.items()}
    trained = layer.forward(x, training=True, mask=mask)
    np.testing.assert_array_equal(predicted, trained)
    np.testing.assert_array_equal(layer.backward(dy), dx_after_inference)
    for key, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, grads_after_inference[key], err_msg=key)


@pytest.mark.parametrize("layer_class", [LSTM, GRU, SimpleRNN], ids=lambda c: c.__name__)
def test_inference_buffers_follow_the_batch_size(layer_class):
    """A layer predicting batches of changing sizes and layouts (its plan made again each
    time) gives what a layer that never ran gives; a copy gets plans of its own."""
    rng = np.random.default_rng(5)
    used = layer_of(layer_class, False, rng)
    for batch, return_sequences in ((3, False), (1, True), (300, False), (3, True)):
        used.return_sequences = return_sequences
        used.forward(rng.standard_normal((batch, 5, 3)).astype(np.float32))
    used.return_sequences = False
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    fresh = copy.deepcopy(used)
    fresh._workspace = None
    np.testing.assert_array_equal(used.forward(x), fresh.forward(x))
    assert copy.copy(used).workspace().plans == {}


def test_simple_rnn_inference_with_an_activation_that_ignores_out():
    rng = np.random.default_rng(2)
    layer = layer_of(SimpleRNN, True, rng, activation="linear")
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x, training=True))


def test_other_activations_predict_through_the_training_loop():
    layer = layer_of(LSTM, False, np.random.default_rng(0), activation="softsign")
    assert not layer.inference_applies()
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x, training=True))
    assert layer._inference_input is None


@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_bidirectional_predicts_what_it_trains_on(merge_mode):
    rng = np.random.default_rng(4)
    layer = Bidirectional(LSTM(4, return_sequences=True), merge_mode=merge_mode)
    layer.build((5, 3), rng)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    mask = rng.random((3, 5)) < 0.7
    predicted = layer.forward(x, mask=mask)
    dx = layer.backward(np.sin(predicted))
    np.testing.assert_array_equal(predicted, layer.forward(x, training=True, mask=mask))
    np.testing.assert_array_equal(dx, layer.backward(np.sin(predicted)))


def test_a_workspace_hands_out_the_front_of_a_larger_array():
    space = fast.Workspace()
    full = space.array("a", (4, 3), np.float32)
    short = space.array("a", (2, 5), np.float32)  # 10 ≤ 12: the same memory, its shape
    assert short.shape == (2, 5) and short.flags.c_contiguous and np.shares_memory(full, short)
    assert space.array("a", (4, 3), np.float32) is full
    assert not np.shares_memory(space.array("a", (4, 3), np.float64), full)
    assert space.array("a", (5, 3), np.float64).shape == (5, 3)  # larger: a new one


def test_a_workspace_keeps_the_latest_plans():
    space = fast.Workspace()
    shapes = [(3, 2, 8), (3, 1, 8), (3, 2, 8), (3, 4, 8)]
    plans = [space.plan(fast.LSTMInference, shape, np.dtype("float32"), False) for shape in shapes]
    assert plans[2] is plans[0]  # the full passes' and the short pass's plans both kept
    assert len(space.plans[fast.LSTMInference]) == fast.Workspace.PLANS_KEPT == 2
