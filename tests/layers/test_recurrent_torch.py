"""SimpleRNN, LSTM and GRU against PyTorch's nn.RNN, nn.LSTM and nn.GRU, after converting the
weights (the layout table is in docs/recurrent.md):

    PyTorch keeps W (G·U, D) and R (G·U, U) transposed, and two biases b_ih, b_hh (G·U,).
    LSTM: both use the gate order i, f, g(=c), o; Keras's one bias is b_ih + b_hh.
    GRU:  PyTorch's order is r, z, n; Keras's is z, r, h; Keras's bias (2, 3U) is [b_ih; b_hh]
          (PyTorch's GRU is Keras's reset_after=True: r multiplies W_hn h + b_hn).
"""

import numpy as np
import pytest

from handnet.gradcheck import relative_error
from handnet.layers import GRU, LSTM, SimpleRNN

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

UNITS, FEATURES, STEPS, BATCH = 5, 3, 7, 4


def torch_to_keras_order(kind, blocks):
    """PyTorch's gate blocks (along axis 0) in Keras's order."""
    if kind != "GRU":
        return blocks
    r, z, n = np.split(blocks, 3)
    return np.concatenate([z, r, n])


def converted_weights(kind, get):
    """handnet's {kernel, recurrent_kernel, bias} from a one-layer PyTorch RNN's arrays
    {weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0}."""
    kernel = torch_to_keras_order(kind, get["weight_ih_l0"]).T
    recurrent_kernel = torch_to_keras_order(kind, get["weight_hh_l0"]).T
    bias_ih = torch_to_keras_order(kind, get["bias_ih_l0"])
    bias_hh = torch_to_keras_order(kind, get["bias_hh_l0"])
    bias = np.stack([bias_ih, bias_hh]) if kind == "GRU" else bias_ih + bias_hh
    return {"kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias}


TWINS = {
    "SimpleRNN": (SimpleRNN, lambda: torch.nn.RNN(FEATURES, UNITS, batch_first=True)),
    "LSTM": (LSTM, lambda: torch.nn.LSTM(FEATURES, UNITS, batch_first=True)),
    "GRU": (GRU, lambda: torch.nn.GRU(FEATURES, UNITS, batch_first=True)),
}


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("kind", sorted(TWINS))
def test_values_and_gradients_match_pytorch(kind, return_sequences):
    layer_class, make_net = TWINS[kind]
    torch.manual_seed(0)
    net = make_net().double()
    layer = layer_class(UNITS, return_sequences=return_sequences, dtype="float64")
    layer.build((STEPS, FEATURES))
    values = {name: value.detach().numpy() for name, value in net.named_parameters()}
    for key, value in converted_weights(kind, values).items():
        layer.params[key][...] = value

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    x_torch = torch.tensor(x, requires_grad=True)
    sequence = net(x_torch)[0]  # (N, T, U): every h_t
    y_torch = sequence if return_sequences else sequence[:, -1]
    upstream = rng.standard_normal(tuple(y_torch.shape))
    (y_torch * torch.tensor(upstream)).sum().backward()

    y = layer.forward(x)
    layer.needs_input_gradient = True
    dx = layer.backward(upstream)
    np.testing.assert_allclose(y, y_torch.detach().numpy(), rtol=0, atol=1e-12)
    assert relative_error(dx, x_torch.grad.numpy()) < 1e-10
    # PyTorch's two biases get the same gradient (LSTM, SimpleRNN) or [b_ih; b_hh]'s (GRU).
    grads = {name: value.grad.numpy() for name, value in net.named_parameters()}
    expected = converted_weights(kind, grads)
    for key in ("kernel", "recurrent_kernel"):
        assert relative_error(layer.grads[key], expected[key]) < 1e-10, key
    bias_scale = 1 if kind == "GRU" else 2  # expected["bias"] is b_ih's gradient + b_hh's
    assert relative_error(bias_scale * layer.grads["bias"], expected["bias"]) < 1e-10
