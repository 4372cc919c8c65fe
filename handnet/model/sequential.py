"""Sequential: a Model whose graph is a chain, a₀ = x, a_{i+1} = layer_i(a_i).

The layers are listed, not called: the chain is recorded when the input shape is known (an
``Input`` first, ``build(shape)``, or the first batch), and from then on it runs as any graph.
"""

import numpy as np

from .. import validation
from ..errors import HandnetError
from .. import layers as layers_module
from ..layers.base import unique_name
from ..layers.core import Input
from .functional import MODEL_CLASSES, Model, deserialize_any
from .graph import MAX_NESTING, MAX_NODES, check_name_and_seed, check_sample_size


class Sequential(Model):
    #: Set by from_config: the chain comes from a file, so its shapes are held to the file limits.
    _from_file = False

    def __init__(self, layers=None, name=None, seed=None, trainable=True):
        super().__init__(name=name, seed=seed, trainable=trainable)
        self.layers = []
        self._declared_input = None
        # One input and one output, named once the chain is built (for compile before that).
        self.input_names, self.output_names = ["input"], ["output"]
        self._inputs_as = self._outputs_as = "one"
        for layer in layers or []:
            self.add(layer)

    @staticmethod
    def _default_name():
        return "sequential"

    def add(self, layer):
        if isinstance(layer, Input):
            if self.layers:
                raise HandnetError("Input must come first in a Sequential model")
            self._declared_input = layer
            self.input_shape = layer.shape
            return
        if self.built:
            raise HandnetError("add layers before the model is built (before fit/predict/build)")
        if not isinstance(layer, layers_module.Layer):
            raise HandnetError(f"Sequential takes layers, got {type(layer).__name__}")
        if any(existing.name == layer.name for existing in self.layers):
            raise HandnetError(
                f"two layers are named {layer.name!r}; names key the saved weights and the "
                "optimizer's state, so each must be unique"
            )
        self.layers.append(layer)

    @property
    def output_shape(self):
        if self.nodes:
            return self.output_tensors[0].per_sample_shape
        return self.layers[-1].output_shape if self.layers else None

    @output_shape.setter
    def output_shape(self, value):  # set by Model's graph; derived here
        pass

    def build(self, input_shape=None, rng=None):
        """Create every layer's parameters for per-sample ``input_shape`` (e.g. (784,)).

        Weights are drawn from ``np.random.default_rng(seed)``, one child generator per layer,
        so the same seed gives the same network. A built model is left as it is (its trained
        weights are not drawn again), as in Keras; another input shape is refused.
        """
        if input_shape is not None:
            input_shape = tuple(int(d) for d in input_shape if d is not None)
        if self.built:
            if input_shape is not None and input_shape != self.input_shape:
                raise HandnetError(
                    f"the model is built for inputs of shape {self.input_shape}, got "
                    f"{tuple(input_shape)}: build a new model for other inputs"
                )
            return self
        shape = input_shape if input_shape is not None else self.input_shape
        if shape is None:
            raise HandnetError(
                "the model does not know its input shape: start it with Input(shape)"
            )
        if not self.layers:
            raise HandnetError("the model has no layers")
        source = self._declared_input
        if source is None or source.shape != tuple(shape):
            source = Input(shape, name=unique_name("input_layer"))
        tensor = source.tensor
        for layer in self.layers:
            tensor = layer(tensor)
        layers = self.layers
        self._set_graph(source.tensor, tensor)
        self.layers = layers
        self._build_layers()  # under load_model, the file's size caps the weights
        if self._from_file:  # and this the activations, before the first forward pass
            for node in self.nodes:
                check_sample_size(node.layer, node.outputs, node.inputs)
        return self

    def prepare_x(self, x, what="x"):
        if not self.built:
            if self.input_shape is not None:
                self.build()
            elif isinstance(x, np.ndarray) and x.ndim >= 2:
                self.build(x.shape[1:])
            else:  # checked (and refused clearly) before its shape is used
                x = validation.check_features(x, None, "float64", what)
                self.build(x.shape[1:])
        return super().prepare_x(x, what)

    def build_from(self, x):
        if not self.built:
            self.build(np.shape(x[0] if isinstance(x, list) else x)[1:])

    def summary(self, print_fn=print):
        if not self.built and self.input_shape is not None:
            self.build()
        super().summary(print_fn)

    def get_config(self):
        return {
            "name": self.name,
            "seed": self.seed,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [layers_module.serialize(layer) for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config, depth=0):
        """A Sequential from ``get_config``'s JSON (perhaps an untrusted file's): the sizes and
        nesting within handnet.model.graph's limits, each layer's shapes checked when built."""
        if depth > MAX_NESTING:
            raise HandnetError(f"models are nested deeper than {MAX_NESTING} levels")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise HandnetError("a Sequential config must be an object with a list of layers")
        if len(config["layers"]) > MAX_NODES:
            count = len(config["layers"])
            raise HandnetError(f"the graph has more than {MAX_NODES:,} nodes ({count:,})")
        specs = config["layers"]
        for index, spec in enumerate(specs):
            if not isinstance(spec, dict):
                raise HandnetError(
                    f"malformed model description: layer {index} of the Sequential is a "
                    f"{type(spec).__name__}, not an object"
                )
        name, seed = config.get("name"), config.get("seed")
        check_name_and_seed(name, seed)
        model = cls([deserialize_any(spec, depth) for spec in specs], name=name, seed=seed)
        shape = config.get("input_shape")
        if shape is not None:
            valid = isinstance(shape, list) and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape
            )
            if not valid:
                raise HandnetError(f"model {name!r}: input_shape must be sizes >= 1, got {shape!r}")
            model.input_shape = tuple(shape)
        model._from_file = True  # its nodes' shapes are checked against the file limits
        return model

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}])"


MODEL_CLASSES["Sequential"] = Sequential
