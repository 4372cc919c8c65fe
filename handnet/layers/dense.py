"""Dense: the fully connected layer."""

import numpy as np

from .. import activations, initializers, regularizers
from .base import BackwardStep, Layer, activation_formula, activation_gradient, batch
from .base import weight_gradient


class Dense(Layer):
    """y = f(x @ W + b)

    Shapes:  x (N, D),  W = kernel (D, U),  b = bias (U,),  z = x @ W + b (N, U),  y = f(z) (N, U).
    Inputs of higher rank (N, ..., D) are handled as a stack of rows, as Keras does.

    Backward, given dy = ∂L/∂y (N, U):
        dz = dy · f'(z)           (the activation's own backward)
        dW = xᵀ @ dz              (D, U)   — summed over the batch
        db = Σ_n dz[n]            (U,)
        dx = dz @ Wᵀ              (N, D)
    The batch mean 1/N is already inside dy (the loss divides once), so none appears here.
    """

    supports_masking = True  # a padded-sequence mask passes through, as in Keras

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        fan_in = input_shape[-1]
        init_kernel = initializers.get(self.kernel_initializer)
        self.add_param("kernel", init_kernel((fan_in, self.units), rng, self.dtype))
        if self.use_bias:
            init_bias = initializers.get(self.bias_initializer)
            self.add_param("bias", init_bias((self.units,), rng, self.dtype))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        self._x = x.reshape(-1, x.shape[-1])
        z = self._x @ self.params["kernel"]
        if self.use_bias:
            z += self.params["bias"]
        if self.activation.uses_input:
            self._z, self._y = z, self.activation.forward(z)
        else:
            self._z, self._y = None, self.activation.forward(z, out=z)
        return self._y.reshape(*x.shape[:-1], self.units)

    def backward(self, dy):
        dy = dy.reshape(-1, self.units)
        return self.backward_pre_activation(self.activation.backward(dy, self._z, self._y))

    def backward_pre_activation(self, dz):
        """Backward from dz = ∂L/∂z, skipping the activation (used for softmax + cross-entropy)."""
        dz = dz.reshape(-1, self.units)
        kernel = self.params["kernel"]
        np.matmul(self._x.T, dz, out=self.grads["kernel"])
        if self.use_bias:
            np.sum(dz, axis=0, out=self.grads["bias"])
        self.add_regularization_gradients()
        if not self.needs_input_gradient:
            return None
        return (dz @ kernel.T).reshape(self._x_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    def explain(self):
        product = "x @ W + b" if self.use_bias else "x @ W"
        activation = self.get_config()["activation"]
        return f"{self.units} units", f"y = {activation_formula(activation, product)}"

    def explain_backward(self, input_shape):
        steps, dz = activation_gradient(self.activation, self.compute_output_shape(input_shape))
        if len(input_shape) == 1:
            dkernel, dbias = f"dW = xᵀ @ {dz}   (a sum over the batch)", f"db = Σ_n {dz}[n]"
        else:  # every position t of the middle axes is one more row
            dkernel = f"dW[d,u] = Σ_(n,t) x[n,t,d] · {dz}[n,t,u]"
            dbias = f"db[u] = Σ_(n,t) {dz}[n,t,u]"
        steps.append(weight_gradient(self, "kernel", dkernel, "W"))
        if self.use_bias:
            steps.append(weight_gradient(self, "bias", dbias, "b"))
        steps.append(BackwardStep("x", f"dx = {dz} @ Wᵀ", batch(input_shape)))
        return steps
