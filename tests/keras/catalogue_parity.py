"""The parity check shared by the catalogue's Keras tests (test_catalogue_*_keras.py).

For one layer: the Keras layer (torch backend) and handnet's, built from the same arguments,
must have the same weights by name and shape, the same freshly initialized values (Keras's
default initializers here are all deterministic: zeros and ones), and, with random weights
copied across, the same y and the same ∂L/∂x and ∂L/∂(each trainable weight) of L = Σ y · g
for a random g, within 1e-5 relative (the gradcheck measure: worst entry / largest entry).
"""

import numpy as np

import handnet as hn
from handnet.gradcheck import relative_error

TOLERANCE = 1e-5


def random_weight(name, shape, rng, dtype):
    """gamma and variances away from 1 and positive; everything else standard normal."""
    if name in ("gamma", "variance"):
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check_parity(keras, torch, kind, args, shape, dtype="float32", seed=0, x=None, layer=None,
                 keras_args=None):
    """Run the comparison (see the module docstring); returns (handnet layer, Keras layer)."""
    rng = np.random.default_rng(seed)
    keras_layer = getattr(keras.layers, kind)(**(keras_args or args), dtype=dtype)
    keras_layer.build((None, *shape))
    layer = layer or getattr(hn.layers, kind)(**args, dtype=dtype)
    layer.build(shape)

    ours = layer.weights()
    theirs = {v.name: v for v in keras_layer.weights}
    assert list(ours) == list(theirs), f"weight names {list(ours)} vs Keras {list(theirs)}"
    for name, variable in theirs.items():
        value = np.asarray(variable.value.detach())
        assert ours[name].shape == value.shape, name
        np.testing.assert_array_equal(ours[name], value, err_msg=f"initial {name}")
    assert sorted(layer.params) == sorted(v.name for v in keras_layer.trainable_weights)
    for name, variable in theirs.items():
        value = random_weight(name, ours[name].shape, rng, variable.dtype)
        variable.assign(value)
        ours[name][...] = value

    if x is None:
        x = rng.standard_normal((4, *shape)).astype(dtype)
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = keras_layer(x_torch)
    upstream = rng.standard_normal(tuple(y_torch.shape)).astype(dtype)
    (y_torch * torch.tensor(upstream)).sum().backward()

    y = layer(x.copy())
    layer.needs_input_gradient = True
    dy = upstream.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, upstream)  # the upstream gradient is left untouched
    assert y.shape == tuple(y_torch.shape) and y.dtype == dtype
    error = relative_error(y, y_torch.detach().numpy())
    assert error < TOLERANCE, f"y: {error:.1e}"
    assert dx.shape == x.shape and dx.dtype == dtype
    error = relative_error(dx, x_torch.grad.numpy())
    assert error < TOLERANCE, f"∂L/∂x: {error:.1e}"
    for variable in keras_layer.trainable_weights:
        error = relative_error(layer.grads[variable.name], variable.value.grad.numpy())
        assert error < TOLERANCE, f"∂L/∂{variable.name}: {error:.1e}"
    return layer, keras_layer


def config_round_trip(keras, kind, args, keys):
    """handnet's layer from Keras's own config (its argument names), restricted to ``keys``."""
    config = getattr(keras.layers, kind)(**args).get_config()
    return getattr(hn.layers, kind).from_config({k: config[k] for k in keys})
