"""Model: a graph of layers from inputs to outputs, Keras's functional API.

    inputs = Input((28, 28, 1))
    h = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = Add()([h, Conv2D(16, 3, padding="same")(h)])          # a residual connection
    outputs = Dense(10, activation="softmax")(Flatten()(h))
    model = Model(inputs, outputs, seed=0)

One training step on a batch (x, y), for outputs k with losses L_k and weights w_k:

    forward:   run the nodes in topological order (handnet.model.plan)
    loss:      L = Σ_k w_k · L_k(y_k, ŷ_k) + Σ regularization penalties
               (an output carrying a mask, padded steps: L_k is the mean over its unmasked
               positions, and the masked ones get no gradient; handnet.losses)
    backward:  g_k = w_k · ∂L_k/∂ŷ_k, then the nodes in reverse order; a tensor read by several
               nodes gets the sum of their gradients; each layer fills its ``grads``
    update:    the optimizer changes every trainable parameter in place

When an output ends in a softmax and its loss is a cross-entropy on probabilities, the
backward pass starts from the fused gradient ∂L/∂z = w·(p - y)/N at the softmax's input.

The model knows its graph, the two passes, predict and evaluate, and its configuration. The
training loop lives in handnet.training (``fit`` hands over to it), model files in
handnet.saving and Keras files in handnet.keras_io.
"""

import numpy as np

from .. import losses, optimizers, validation
from ..activations import Softmax
from ..errors import HandnetError, InvalidInputError
from .. import layers as layers_module
from ..layers import Layer
from ..layers.base import assign_weights, unique_name
from ..layers.core import Input
from ..layers.graph import as_symbolic, is_symbolic
from ..layers.graph import call as call_symbolic
from . import engine
from .graph import (
    MAX_NESTING,
    check_graph_config,
    check_name_and_seed,
    check_sample_size,
    topological_order,
)
from .plan import Plan, call_with_mask

#: Samples per forward pass of predict and evaluate: whole, and per thread when split.
INFERENCE_BATCH = 256
INFERENCE_PART = 64
#: evaluate's batch for a masked output (Keras's default): its loss is a mean per batch.
MASKED_EVALUATE_BATCH = 32


class Model(Layer):
    """A graph of layers; ``Model(inputs, outputs)`` with one tensor, a list, or a dict by name
    for each. A Model is a layer too: called on tensors it becomes one node of a larger model."""

    def __init__(self, inputs=None, outputs=None, name=None, seed=None, trainable=True):
        self.name = name or unique_name(self._default_name())
        self.trainable = trainable
        self.seed = seed
        self.built = False
        self.needs_input_gradient = True
        self.input_shape = self.output_shape = None
        self.optimizer = self.loss = None
        self.losses, self.loss_weights, self.metrics = [], [], []
        self.fuse = True
        self.stop_training = False
        self.history = None
        self.fit_state = None  # while fit runs: its generators and history (handnet.training)
        self._plans = {}
        self.nodes, self.layers = [], []
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise HandnetError("Model(inputs, outputs) needs both")
            self._set_graph(inputs, outputs)
            self._build_layers()

    @staticmethod
    def _default_name():
        return "functional"

    # -- the graph ------------------------------------------------------------------------
    def _set_graph(self, inputs, outputs):
        self.input_names, self.input_tensors = _named_tensors(inputs, "inputs", by_layer=True)
        self.output_names, self.output_tensors = _named_tensors(outputs, "outputs")
        self._inputs_as = _structure(inputs)
        self._outputs_as = _structure(outputs)
        self.nodes = topological_order(self.output_tensors, self.input_tensors)
        layers, seen, names = [], set(), {}
        for node in self.nodes:
            layer = node.layer
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if layer.name in names or layer.name in self.input_names:
                raise HandnetError(
                    f"two layers are named {layer.name!r}; names key the saved weights and the "
                    "optimizer's state, so each must be unique"
                )
            names[layer.name] = layer
            layers.append(layer)
        self.layers = layers
        self._nodes_of = {}
        for node in self.nodes:
            self._nodes_of.setdefault(id(node.layer), []).append(node)
        shapes = [t.per_sample_shape for t in self.input_tensors]
        self.input_shape = shapes[0] if len(shapes) == 1 else shapes
        shapes = [t.per_sample_shape for t in self.output_tensors]
        self.output_shape = shapes[0] if len(shapes) == 1 else shapes
        self.returns_list = len(self.output_tensors) > 1
        self._plans = {}

    def nodes_of(self, layer):
        """The calls of ``layer`` in this model's graph, in order (one, or several if shared)."""
        return self._nodes_of.get(id(layer), [])

    def _build_layers(self):
        """Draw the weights of every layer not built yet, in topological order, from
        ``np.random.default_rng(seed)``: one child generator per layer, so a seed fixes the
        network (a chain draws exactly as Sequential always has)."""
        rngs = np.random.default_rng(self.seed).spawn(len(self.layers))
        for layer, rng in zip(self.layers, rngs):
            if not layer.built:
                node = self.nodes_of(layer)[0]
                shapes = [t.per_sample_shape for t in node.inputs]
                shape = shapes if node.takes_list else shapes[0]
                try:
                    layer.build(shape, rng=rng)
                except HandnetError:
                    raise
                except (TypeError, ValueError, IndexError, KeyError, OverflowError) as error:
                    raise HandnetError(
                        f"layer {layer.name!r} ({type(layer).__name__}) cannot be built for "
                        f"inputs of shape {shape} ({type(error).__name__}: {error})"
                    ) from None
        self.built = True

    def build(self, input_shape=None, rng=None):
        """A model's weights are drawn when it is made: building checks the shape only."""
        if input_shape is not None and _plain(input_shape) != _plain(self.input_shape):
            raise HandnetError(
                f"the model is built for inputs of shape {self.input_shape}, got {input_shape}"
            )
        return self

    def compute_output_shape(self, input_shape):
        self.build(input_shape)
        return self.output_shape

    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    def plan(self, input_gradient=False):
        """The execution plan of the graph (handnet.model.plan), compiled once per setting."""
        if not self.built:
            self.build()
        key = (self.fuse, bool(input_gradient))
        if key not in self._plans:
            self._plans[key] = Plan(self, fuse=self.fuse, input_gradient=input_gradient)
        return self._plans[key]

    # -- a model as a layer: its parameters are its layers' -------------------------------
    @property
    def params(self):
        return {f"{layer.name}/{k}": v for layer in self.layers for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{layer.name}/{k}": v for layer in self.layers for k, v in layer.grads.items()}

    @property
    def state(self):
        return {f"{layer.name}/{k}": v for layer in self.layers for k, v in layer.state.items()}

    def weights(self):
        return {f"{layer.name}/{k}": v for layer in self.layers for k, v in layer.weights().items()}

    def replica(self, rng=None, share_state=False):
        """A copy whose layers are replicas (same parameter arrays, own caches and gradients),
        wired into the same graph: for a data-parallel part, or a model called twice."""
        twins = {
            id(layer): layer.replica(
                None if rng is None else np.random.default_rng(rng.integers(2**63)), share_state
            )
            for layer in self.layers
        }
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.layers = [twins[id(layer)] for layer in self.layers]
        twin.nodes = [_renode(node, twins) for node in self.nodes]
        twin._nodes_of = {}
        for node in twin.nodes:
            twin._nodes_of.setdefault(id(node.layer), []).append(node)
        twin._plans = {}
        return twin

    def flat_layers(self):
        """Every layer inside, nested models opened up, each once."""
        for layer in self.layers:
            if isinstance(layer, Model):
                yield from layer.flat_layers()
            else:
                yield layer

    def cast(self, dtype):
        """Run every layer in ``dtype`` (float64 for gradient checks)."""
        for layer in self.layers:
            layer.cast(dtype)
        self._plans = {}
        return self

    # -- the two passes -------------------------------------------------------------------
    def __call__(self, x, training=False):
        """On symbolic tensors, a node of a larger model; on arrays, the outputs now."""
        if is_symbolic(x):
            return call_symbolic(self, x)
        return self.forward(x, training=training)

    def forward(self, x, training=False):
        """Outputs for x: one array per input (a list when several) -> one per output."""
        plan = self._plans.get((self.fuse, self.needs_input_gradient))
        if plan is None:  # compiled once; a Sequential not yet built learns its shape from x
            self.build_from(x)
            plan = self.plan(self.needs_input_gradient)
        outputs = plan.forward(self.as_inputs(x), training)
        return outputs if self.returns_list else outputs[0]

    def build_from(self, x):
        """Build for data x if not built yet (a graph is built when made: nothing to do)."""

    @property
    def makes_mask(self):
        """Whether a mask made inside (an Embedding(mask_zero=True), a Masking) may come out."""
        return any(getattr(layer, "makes_mask", False) for layer in self.layers)

    def compute_mask(self, x, mask):
        """The masks of the outputs of the last forward pass (a list with several outputs)."""
        masks = self.plan(self.needs_input_gradient).output_masks
        return masks if self.returns_list else masks[0]

    def backward(self, dy, input_gradient=None):
        """∂L/∂inputs from dy = ∂L/∂outputs (a list when several outputs; None for an output
        with no gradient). Fills every layer's grads; returns None where no gradient is wanted."""
        wanted = self.needs_input_gradient if input_gradient is None else input_gradient
        grads = dy if self.returns_list else [dy]
        dx = self.plan(wanted).backward(grads)
        return dx if len(self.input_tensors) > 1 else dx[0]

    def trace(self, x, masks=None):
        """(node, output) for every node in topological order, in inference mode, each layer run
        on its own (no fusion): what each layer made of x. For comparing and for pictures.
        ``masks``: a dict to fill with {id(tensor): its mask} as the masks are made (the Keras
        importer reads it to check a file's mask calls)."""
        values = {id(t): v for t, v in zip(self.input_tensors, self.as_inputs(x))}
        masks = {} if masks is None else masks  # beside the tensors that have one (model.plan)
        for node in self.nodes:
            args = [values[id(t)] for t in node.inputs]
            mask = [masks.get(id(t)) for t in node.inputs]
            mask = None if all(m is None for m in mask) else mask if node.takes_list else mask[0]
            result, out_masks = call_with_mask(
                node.layer, args if node.takes_list else args[0], mask, False, len(node.outputs)
            )
            results = result if len(node.outputs) > 1 else [result]
            for tensor, value, out_mask in zip(node.outputs, results, out_masks):
                values[id(tensor)] = value
                if out_mask is not None:
                    masks[id(tensor)] = out_mask
            yield node, result

    def as_inputs(self, x):
        """x as a list of arrays in the order of the model's inputs."""
        return _as_list(x, self.input_names, "x")

    def _softmax_outputs(self):
        """Indices of the outputs whose backward pass can start at the softmax's input."""
        indices = []
        # This model's own node of each output (a replica's nodes run its replica layers).
        producer = {id(t): node for node in self.nodes for t in node.outputs}
        for index, (tensor, loss) in enumerate(zip(self.output_tensors, self.losses)):
            node = producer.get(id(tensor))
            layer = node.layer if node is not None else None
            read_inside = any(tensor is t for node in self.nodes for t in node.inputs)
            if (
                layer is not None
                and loss.fuses_with_softmax
                and isinstance(getattr(layer, "activation", None), Softmax)
                and hasattr(layer, "backward_pre_activation")
                and len(node.outputs) == 1
                and not read_inside
                and len(self.nodes_of(layer)) == 1
            ):
                indices.append(index)
        return indices

    def compute_gradients(self, x, y, training=True, input_gradient=False):
        """Forward, loss, and backward: fills every layer's grads.

        Returns (loss, predictions, ∂L/∂x or None); the loss includes regularization penalties.
        Predictions and ∂L/∂x are lists when the model has several outputs or inputs."""
        plan = self.plan(input_gradient)
        predictions = plan.forward(self.as_inputs(x), training=training)
        targets = _as_list(y, self.output_names, "y")
        fused = set(self._softmax_outputs())
        total, gradients = self.regularization_penalty(), []
        for index, (loss, weight, target, prediction, mask) in enumerate(
            zip(self.losses, self.loss_weights, targets, predictions, plan.output_masks)
        ):
            if mask is not None:  # padded steps: Keras's masked mean (handnet.losses)
                weights = mask_weights(self, index, prediction, mask)
                total = total + weight * loss.weighted(target, prediction, weights)
                gradient = loss.weighted_gradient(target, prediction, weights, index in fused)
            else:
                total = total + weight * loss(target, prediction)
                if index in fused:
                    gradient = loss.logits_gradient(target, prediction)
                else:
                    gradient = loss.gradient(target, prediction)
            gradients.append(gradient if weight == 1 else gradient * gradient.dtype.type(weight))
        dx = plan.backward(gradients, pre_activation=fused)
        out = predictions if self.returns_list else predictions[0]
        return float(total), out, (dx if len(dx) > 1 else dx[0])

    def train_on_batch(self, x, y):
        """One gradient step on (x, y); returns (loss, predictions)."""
        self.require_compiled()
        loss, predictions, _ = self.compute_gradients(x, y)
        self.optimizer.apply(self.trainable_variables())
        return loss, predictions

    def trainable_variables(self):
        """(key, parameter, gradient) for every trainable parameter; key = "layer/param"."""
        return [
            (f"{layer.name}/{key}", layer.params[key], layer.grads[key])
            for layer in self.layers
            if layer.trainable
            for key in layer.params
        ]

    def regularization_penalty(self):
        return sum(layer.regularization_penalty() for layer in self.layers)

    def add_regularization_gradients(self):
        for layer in self.layers:
            layer.add_regularization_gradients()

    # -- compile and the Keras verbs ------------------------------------------------------
    def compile(
        self,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        loss_weights=None,
        fuse=True,
    ):
        """The optimizer, a loss per output (one for all, a list, or a dict by output name),
        ``loss_weights`` (list or dict; default 1 each) and metrics ("accuracy"; a list for
        all outputs, or per output as a list of lists or a dict). ``fuse=False`` runs every
        layer on its own (see handnet.model.plan)."""
        self.optimizer = optimizers.get(optimizer)
        count = len(self.output_names)
        self.losses = [losses.get(item) for item in _per_output(loss, self.output_names, "loss")]
        weights = (
            [1.0] * count
            if loss_weights is None
            else _per_output(loss_weights, self.output_names, "loss_weights", broadcast=False)
        )
        self.loss_weights = [float(w) for w in weights]
        self.loss = self.losses[0] if count == 1 else self.losses
        per_output = _per_output(metrics or [], self.output_names, "metrics", nested=True)
        if count > 1 and not isinstance(metrics, dict) and not _nested(metrics):
            # One list for all: accuracy only where it means something (class labels).
            per_output = [
                [m for m in names if loss_.sparse_labels or isinstance(loss_, losses.Crossentropy)]
                for names, loss_ in zip(per_output, self.losses)
            ]
        for names in per_output:
            unknown = [m for m in names if m not in ("accuracy", "acc")]
            if unknown:
                raise HandnetError(f"unknown metrics {unknown}; handnet computes 'accuracy'")
        self.output_metrics = [list(names) for names in per_output]
        self.metrics = self.output_metrics[0] if count == 1 else self.output_metrics
        self.fuse = bool(fuse)
        self._plans = {}
        return self

    def require_compiled(self):
        """Raise unless compile has given the model an optimizer and a loss."""
        if self.optimizer is None or not self.losses:
            raise HandnetError("compile the model first: model.compile(optimizer=..., loss=...)")

    def prepare_x(self, x, what="x"):
        """x checked against the inputs' shapes and cast to the model's dtype: a list of arrays
        with one sample count."""
        arrays = _as_list(x, self.input_names, what)
        dtype = self.dtype
        if len(arrays) == 1:  # the common case, kept short: predict on one image runs this
            return [validation.check_features(arrays[0], self.input_shape, dtype, what)]
        checked = [
            validation.check_features(a, t.per_sample_shape, dtype, f"{what}[{n!r}]")
            for a, t, n in zip(arrays, self.input_tensors, self.input_names)
        ]
        counts = {len(a) for a in checked}
        if len(counts) > 1:
            raise InvalidInputError(
                f"every input of {what} needs the same number of samples, got {sorted(counts)}"
            )
        return checked

    def prepare_y(self, y, num_samples, what="y"):
        arrays = _as_list(y, self.output_names, what)
        return [
            validation.check_targets(
                a,
                num_samples,
                t.per_sample_shape,
                loss.sparse_labels,
                what if len(arrays) == 1 else f"{what}[{n!r}]",
            )
            for a, t, loss, n in zip(arrays, self.output_tensors, self.losses, self.output_names)
        ]

    def fit(self, x, y, **kwargs):
        """Train on (x, y); see handnet.training.fit for every argument. Returns a History."""
        return engine.run("fit", self, x, y, **kwargs)

    def inference_runner(self, n, batch_size):
        """(runner, batch size) for forward passes over n samples. By default 256 samples a pass,
        or 64 per thread when passes are split across threads: a part's im2col columns then
        stay in the cache (measured: the cnns predict 10–30 % more images/s than with parts of
        128); 256 per thread for a model with a recurrent layer (RECURRENT_PART in
        handnet.training.parallel, with its figures); four of those a thread when the parts
        run in processes (PARTS_A_MESSAGE there); up to 1,024 a pass for a model too small
        to split with small activations, such as the mlp (WIDE_PASS there)."""
        return engine.run("inference_runner", self, n, batch_size, default=_serial_runner)

    def predict(self, x, batch_size=None):
        """Outputs for x (N, *input_shape) -> (N, *output_shape), in inference mode (a list, or
        a dict when the outputs were given as one, for several outputs).

        batch_size: samples per forward pass (default: see ``inference_runner``)."""
        xs = self.prepare_x(x)
        n = len(xs[0])
        split, batch_size = self.inference_runner(n, batch_size)
        with split:
            parts = [
                split.forward([a[i : i + batch_size] for a in xs]) for i in range(0, n, batch_size)
            ]
        if len(parts) == 1 and not self.returns_list and self._outputs_as != "dict":
            return np.concatenate(parts)  # one pass, one output: a batch-1 predict ends here
        outputs = []
        for index, tensor in enumerate(self.output_tensors):
            chunks = [part[index] if self.returns_list else part for part in parts]
            if chunks:
                outputs.append(np.concatenate(chunks))
            else:
                outputs.append(np.zeros((0, *tensor.per_sample_shape), dtype=self.dtype))
        return self._as_output_structure(outputs)

    def _as_output_structure(self, outputs):
        if self._outputs_as == "dict":
            return dict(zip(self.output_names, outputs))
        return outputs if self.returns_list else outputs[0]

    def evaluate(self, x, y, batch_size=None):
        """{"loss": mean loss (with regularization), "accuracy": fraction correct} on (x, y);
        with several outputs also "<output>_loss" and "<output>_accuracy" for each.

        As Keras's: the loss is Σ_b n_b·(L_b + P_b) / N over the batches b of n_b samples, P_b
        the regularization penalties of that batch's pass (the weights', and those of
        ActivityRegularization on its inference activity). The loss of an output carrying a
        mask is each batch's masked mean, so it depends on the batch size there (Keras's
        default 32 when None); its accuracy counts the unmasked positions, Σ m·correct / Σ m.
        A sequence output's accuracy is over all its N·T positions."""
        self.require_compiled()
        xs = self.prepare_x(x)
        n = len(xs[0])
        ys = self.prepare_y(y, n)
        if n == 0:
            raise HandnetError("evaluate needs at least one sample")
        if batch_size is None and any(self.masked_outputs(xs)):
            batch_size = MASKED_EVALUATE_BATCH
        sums = [0.0] * len(ys)
        correct, counted = [0] * len(ys), [0] * len(ys)
        penalties = []
        split, batch_size = self.inference_runner(n, batch_size)
        with split:
            for i in range(0, n, batch_size):
                predictions, masks, penalty = split.evaluate_pass(
                    [a[i : i + batch_size] for a in xs]
                )
                penalties.append((penalty, len(predictions[0])))
                outputs = zip(self.losses, ys, predictions, masks)
                for k, (loss, target, p, mask) in enumerate(outputs):
                    target = target[i : i + batch_size]
                    sums[k] += self.output_loss(k, target, p, mask) * len(p)
                    correct[k] += count_correct(p, target, mask)
                    counted[k] += count_positions(p, mask)
        if all(penalty == penalties[0][0] for penalty, _ in penalties):
            penalty = penalties[0][0]  # the weights' alone, the same each batch: kept exact
        else:
            penalty = sum(penalty * size for penalty, size in penalties) / n
        return self.logs_from_sums(sums, correct, n, penalty, counted)

    def output_loss(self, index, target, prediction, mask=None):
        """L_k of output ``index`` (without its loss weight): the loss's mean, or with a mask
        the mean over the unmasked positions, Σ m·ℓ / Σ m."""
        loss = self.losses[index]
        if mask is None:
            return loss(target, prediction)
        return loss.weighted(target, prediction, mask_weights(self, index, prediction, mask))

    def evaluate_pass(self, x):
        """(outputs, their masks, regularization penalty) of one inference pass on x (lists by
        output; a mask is None where the output carries none): what evaluate's loss needs."""
        outputs = self.forward(x)
        masks = list(self.plan(self.needs_input_gradient).output_masks)
        return (outputs if self.returns_list else [outputs]), masks, self.regularization_penalty()

    def masked_outputs(self, x):
        """Whether each output carries a mask (padded steps), for inputs like x (a list of
        arrays). It depends on the graph, not the data: one sample's pass tells."""
        plan = self.plan(self.needs_input_gradient)
        if not plan.masked:
            return [False] * len(self.output_tensors)
        self.forward([a[:1] for a in x])
        return [mask is not None for mask in plan.output_masks]

    def logs_from_sums(self, loss_sums, correct, count, penalty=0.0, counted=None):
        """{"loss", "accuracy"} (or per output) from summed per-sample losses and correct counts;
        ``counted``: the positions each accuracy is over (default: ``count`` samples)."""
        counted = [count] * len(loss_sums) if counted is None else counted
        means = [s / count for s in loss_sums]
        logs = {"loss": sum(w * m for w, m in zip(self.loss_weights, means)) + penalty}
        if len(means) == 1:
            if self.output_metrics[0]:
                logs["accuracy"] = correct[0] / counted[0] if counted[0] else 0.0
            return logs
        for name, mean, hits, total, metrics in zip(
            self.output_names, means, correct, counted, self.output_metrics
        ):
            logs[f"{name}_loss"] = mean
            if metrics:
                logs[f"{name}_accuracy"] = hits / total if total else 0.0
        return logs

    # -- weights, description, saving -----------------------------------------------------
    def get_weights(self):
        """Copies of every weight in Keras's order: each layer's params, then its state."""
        return [weight for layer in self.layers for weight in layer.get_weights()]

    def set_weights(self, weights):
        """Write ``weights`` (get_weights' order) into every layer; the count and every shape
        are checked before anything is written."""
        assign_weights(
            [(f"layer {layer.name!r} {key}", target)
             for layer in self.layers for key, target in layer.weights().items()],  # fmt: skip
            weights,
        )

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print):
        """A Keras-style table: layer (type), output shape, parameter count, connected to."""
        print_fn(summary_text(self))

    def get_layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise HandnetError(
            f"no layer named {name!r}; the model has {[layer.name for layer in self.layers]}"
        )

    def get_config(self):
        """The graph as JSON: each layer with the calls that feed it, as Keras writes it.

        {"name", "seed", "layers": [{"class_name", "name", "config", "inbound_nodes":
        [{"args": [[layer, call, output], …], "list": bool}, …]}], "input_layers":
        [[name, 0, 0], …], "output_layers": [[layer, call, output], …]}"""

        def ref(tensor):
            node = tensor.node
            calls = self.nodes_of(node.layer)
            call = next((i for i, n in enumerate(calls) if n is node), 0)
            return [node.layer.name, call, tensor.index]

        entries = [
            {
                "class_name": "Input",
                "name": t.node.layer.name,
                "config": t.node.layer.get_config(),
                "inbound_nodes": [],
            }
            for t in self.input_tensors
        ]
        for layer in self.layers:
            entries.append(
                {
                    **layers_module.serialize(layer),
                    "name": layer.name,
                    "inbound_nodes": [
                        {
                            "args": [ref(t) for t in node.inputs],
                            "list": node.takes_list,
                            **({"options": node.options} if node.options else {}),
                        }
                        for node in self.nodes_of(layer)
                    ],
                }
            )
        return {
            "name": self.name,
            "seed": self.seed,
            "trainable": self.trainable,
            "layers": entries,
            "input_layers": [ref(t) for t in self.input_tensors],
            "input_names": self.input_names if self._inputs_as == "dict" else None,
            "output_layers": [ref(t) for t in self.output_tensors],
            "output_names": self.output_names if self._outputs_as == "dict" else None,
        }

    @classmethod
    def from_config(cls, config, depth=0):
        """Rebuild a graph from ``get_config``'s JSON (or a Keras file's, converted), checking
        it first: every reference names a layer, call and output that exist, nothing depends on
        itself, and the sizes stay within handnet.model.graph's limits."""
        return graph_from_config(config, depth)

    def save(self, path):
        """Save architecture, weights, compile settings and optimizer state to one .npz file."""
        engine.run("save", self, path)

    def to_keras(self, path):
        """Write a Keras 3 .keras file that ``keras.models.load_model`` opens (handnet.keras_io)."""
        engine.run("to_keras", self, path)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, layers={len(self.layers)})"


class _Serial:
    """One pass after another on this thread (handnet.training's runner splits across cores)."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def forward(self, x):
        return self.model.forward(x)

    def evaluate_pass(self, x):
        return self.model.evaluate_pass(x)


def mask_weights(model, index, prediction, mask):
    """losses.mask_weights for output ``index``, its mask checked against the prediction's
    positions (a mask (N, T) weighs a sequence (N, T, K), one loss per step)."""
    if mask.shape != prediction.shape[:-1]:
        raise HandnetError(
            f"output {model.output_names[index]!r} of shape {prediction.shape} carries a mask of "
            f"shape {mask.shape}; a masked loss needs one mask entry per position "
            f"{prediction.shape[:-1]}"
        )
    return losses.mask_weights(mask, prediction.dtype)


def _serial_runner(model, n, batch_size):
    batch = INFERENCE_BATCH if batch_size is None else validation.check_batch_size(batch_size, None)
    return _Serial(model), batch


def graph_from_config(config, depth=0):
    """A Model from ``get_config``'s JSON, which may come from an untrusted file.

    Checked before any weight is drawn, each failure naming the layer: the fields' types, the
    sizes (handnet.model.graph's limits), every reference [layer, call, output] pointing at a
    call that exists, no cycle, and every call's shapes fitting its layer. The calls are made
    in dependency order (Kahn's algorithm: a call runs once every call it reads has run), so
    a graph of n calls in any order costs O(n + references), never n passes over n calls."""
    check_graph_config(config, depth)
    specs = {}
    for spec in config["layers"]:
        name, calls = _checked_entry(spec, specs)
        specs[name] = (spec, calls)
    # Each call's sources: (layer, call) pairs, checked to exist before anything is made.
    sources = {}
    for name, (spec, calls) in specs.items():
        for index, call in enumerate(calls):
            refs = [_reference(ref, name) for ref in call["args"]]
            for source, source_call, _ in refs:
                _check_call_exists(specs, source, source_call, f"layer {name!r}")
            sources[name, index] = refs
    made = {}
    for name, (spec, _) in specs.items():
        made[name] = _layer_from_spec(spec, name, depth)
    outputs_of = {}  # (layer, call) -> its output tensors
    for name, (spec, _) in specs.items():
        if spec.get("class_name") == "Input":
            outputs_of[name, 0] = [made[name].tensor]
    waiting, readers, ready = {}, {}, []
    for key, refs in sources.items():
        needed = {(source, call) for source, call, _ in refs} - set(outputs_of)
        waiting[key] = len(needed)
        for dependency in needed:
            readers.setdefault(dependency, []).append(key)
        if not needed:
            ready.append(key)
    while ready:
        name, index = key = ready.pop()
        call = specs[name][1][index]
        tensors = []
        for source, source_call, output in sources[key]:
            produced = outputs_of[source, source_call]
            if output >= len(produced):
                raise HandnetError(
                    f"layer {name!r} reads output {output} of {source!r}, which has {len(produced)}"
                )
            tensors.append(produced[output])
        result = _call_from_config(
            made[name], tensors, bool(call.get("list")), call.get("options")
        )
        outputs_of[key] = result if isinstance(result, list) else [result]
        for reader in readers.pop(key, []):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    stuck = [key for key in sources if key not in outputs_of]
    if stuck:
        raise HandnetError(_cycle_message(stuck, sources, outputs_of))
    ends = {}
    for what in ("input", "output"):
        refs = _refs(config, f"{what}_layers")
        tensors = [_lookup(specs, outputs_of, ref, f"{what}_layers") for ref in refs]
        ends[what] = _named(tensors, config.get(f"{what}_names"), f"{what}_names")
    inputs, outputs = ends["input"], ends["output"]
    name, seed, trainable = config.get("name"), config.get("seed"), config.get("trainable", True)
    check_name_and_seed(name, seed)
    if not isinstance(trainable, bool):
        raise HandnetError(f"model {name!r}: trainable must be true or false, got {trainable!r}")
    return Model(inputs, outputs, name=name, seed=seed, trainable=trainable)


def _checked_entry(spec, specs):
    """(name, calls) of one entry of a config's "layers", its fields' types checked."""
    if not isinstance(spec, dict):
        raise HandnetError(f"a layer entry must be an object, got {type(spec).__name__}")
    config = spec.get("config", {})
    name = spec.get("name") or (config.get("name") if isinstance(config, dict) else None)
    if not isinstance(name, str) or not name:
        raise HandnetError(f"every layer entry needs a name (a string), got {name!r}")
    if name in specs:
        raise HandnetError(f"two layers are named {name!r}; each name must be unique")
    if not isinstance(config, dict):
        kind = type(config).__name__
        raise HandnetError(f"layer {name!r}: its config must be an object, got {kind}")
    if config.get("name", name) != name:
        raise HandnetError(f"the entry {name!r} holds a layer named {config['name']!r}")
    calls = spec.get("inbound_nodes") or []
    if not isinstance(calls, list):
        kind = type(calls).__name__
        raise HandnetError(f"layer {name!r}: inbound_nodes must be a list, got {kind}")
    if spec.get("class_name") == "Input" and calls:
        raise HandnetError(f"Input {name!r} reads nothing, but its entry lists {len(calls)} calls")
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("args"), list) or not call["args"]:
            raise HandnetError(
                f"layer {name!r}: a call must be {{'args': [[layer, call, output], …]}}, "
                f"got {_short(call)}"
            )
        if not isinstance(call.get("options", {}), dict):
            raise HandnetError(
                f"layer {name!r}: a call's 'options' must be an object, got "
                f"{_short(call['options'])}"
            )
        if not isinstance(call.get("list", False), bool):
            raise HandnetError(
                f"layer {name!r}: a call's 'list' must be true or false, got {call['list']!r}"
            )
    return name, calls


def _check_call_exists(specs, source, call, reader):
    if source not in specs:
        raise HandnetError(f"{reader} reads from {source!r}, which is not in the model")
    spec, calls = specs[source]
    count = 1 if spec.get("class_name") == "Input" else len(calls)
    if call >= count:
        raise HandnetError(
            f"{reader} reads call {call} of {source!r}, which is called {count} time"
            f"{'' if count == 1 else 's'}"
        )


def _layer_from_spec(spec, name, depth):
    """The layer (or nested model) an entry describes; a malformed config names the layer."""
    # The entry's name is the layer's (references and saved weights use it).
    spec = {**spec, "config": {**spec.get("config", {}), "name": name}}
    try:
        if spec.get("class_name") == "Input":
            return Input(**spec["config"])
        return deserialize_any(spec, depth)
    except HandnetError as error:
        message = str(error)
        if spec.get("class_name") in MODEL_CLASSES:  # a path down the nested models
            inner = message[len("in ") :] if message.startswith("in '") else None
            where = f"in {name!r} > {inner}" if inner else f"in {name!r}: {message}"
            raise HandnetError(where) from None
        if repr(name) in message:
            raise
        raise HandnetError(f"layer {name!r}: {message}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as error:
        kind = spec.get("class_name")
        raise HandnetError(
            f"layer {name!r} ({kind}): malformed config ({type(error).__name__}: {error})"
        ) from None


def _call_from_config(layer, tensors, takes_list, options=None):
    """``layer`` called on the tensors a config names: a node, its shapes checked."""
    result = call_symbolic(layer, tensors if takes_list else tensors[0], options)
    check_sample_size(layer, result if isinstance(result, list) else [result], tensors)
    return result


def _cycle_message(stuck, sources, outputs_of):
    """Why the calls in ``stuck`` never ran: the cycle found by following what they wait for."""
    waiting_on = {
        key: [(s, c) for s, c, _ in sources[key] if (s, c) not in outputs_of] for key in stuck
    }
    path, seen, key = [], {}, stuck[0]
    while key not in seen:
        seen[key] = len(path)
        path.append(key)
        key = waiting_on[key][0]
    cycle = [name for name, _ in path[seen[key] :]]
    through = " -> ".join(repr(name) for name in [*cycle, cycle[0]])
    return f"the graph has a cycle: {through} (each reads the next's output)"


def _refs(config, what):
    refs = config.get(what)
    if not isinstance(refs, list) or not refs:
        raise HandnetError(
            f"a functional model config needs {what}: a list of [layer, call, output]"
        )
    return refs


def _named(tensors, names, what):
    """The tensors as a dict by ``names`` (a config's input_names / output_names), or as they
    are (one tensor alone) when the config has no names."""
    if names is None:
        return tensors if len(tensors) > 1 else tensors[0]
    valid = isinstance(names, list) and all(isinstance(n, str) for n in names)
    if not valid or len(names) != len(tensors) or len(set(names)) != len(names):
        raise HandnetError(f"{what} must be {len(tensors)} distinct strings, got {_short(names)}")
    return dict(zip(names, tensors))


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def deserialize_any(spec, depth=0):
    """A layer, or a nested model, from {"class_name", "config"}; a model nested deeper than
    handnet.model.graph.MAX_NESTING is refused before it is read."""
    class_name = spec.get("class_name")
    if class_name in MODEL_CLASSES:
        if depth + 1 > MAX_NESTING:
            raise HandnetError(f"models are nested deeper than {MAX_NESTING} levels")
        config = spec.get("config", {})
        if not isinstance(config, dict):
            kind = type(config).__name__
            raise HandnetError(f"a {class_name} config must be an object, got {kind}")
        return MODEL_CLASSES[class_name].from_config(config, depth + 1)
    return layers_module.deserialize(spec)


def _reference(ref, name):
    valid = (
        isinstance(ref, (list, tuple))
        and len(ref) >= 3
        and isinstance(ref[0], str)
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ref[1:3])
    )
    if not valid:
        raise HandnetError(
            f"layer {name!r}: a tensor reference must be [layer, call, output], got {_short(ref)}"
        )
    return ref[0], ref[1], ref[2]


def _lookup(specs, outputs_of, ref, what):
    source, call, output = _reference(ref, what)
    _check_call_exists(specs, source, call, what)
    produced = outputs_of[source, call]
    if output >= len(produced):
        raise HandnetError(f"{what} names output {output} of {source!r}, which has {len(produced)}")
    return produced[output]


def _renode(node, twins):
    """The same node on the replica of its layer (tensors are kept: they only name values)."""
    twin = type(node).__new__(type(node))
    twin.__dict__.update(node.__dict__)
    twin.layer = twins.get(id(node.layer), node.layer)
    return twin


def _named_tensors(value, what, by_layer=False):
    """(names, tensors) from one tensor, a list or a dict; Inputs are named by their layer."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        items = [(None, v) for v in values]
    names, tensors = [], []
    for key, item in items:
        tensor = as_symbolic(item)
        if tensor is None:
            raise HandnetError(
                f"Model {what} must be symbolic tensors (from Input), got {type(item).__name__}"
            )
        if by_layer and not isinstance(tensor.node.layer, Input):
            raise HandnetError(
                f"Model inputs must be Input tensors, got the output of {tensor.node.layer.name!r}"
            )
        names.append(str(key) if key is not None else tensor.name)
        tensors.append(tensor)
    if not tensors:
        raise HandnetError(f"Model needs at least one tensor in {what}")
    if len(set(names)) != len(names):
        raise HandnetError(f"Model {what} have repeated names {names}")
    return names, tensors


def _structure(value):
    return (
        "dict" if isinstance(value, dict) else "list" if isinstance(value, (list, tuple)) else "one"
    )


def _as_list(data, names, what):
    """Data for each named input (or output) in order, from one array, a list or a dict."""
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        extra = sorted(set(data) - set(names))
        if missing or extra:
            raise InvalidInputError(f"{what}: expected entries {names}, got {sorted(data)}")
        return [data[n] for n in names]
    if isinstance(data, (list, tuple)) and len(names) > 1:
        if len(data) != len(names):
            raise InvalidInputError(
                f"{what}: the model has {len(names)} ({names}), got {len(data)} arrays"
            )
        return list(data)
    if len(names) > 1:
        raise InvalidInputError(
            f"{what}: the model has {len(names)} ({names}); pass a list or a dict"
        )
    if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], np.ndarray):
        return list(data)  # [x] for a model with one input, as Keras takes it
    return [data]


def _per_output(value, names, what, broadcast=True, nested=False):
    """One setting per output, from a single value (for every output), a list or a dict."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise HandnetError(f"{what}: no outputs named {unknown}; the outputs are {names}")
        return [value.get(n, [] if nested else None) for n in names]
    if nested:
        items = list(value)
        if items and all(isinstance(i, (list, tuple)) for i in items):
            if len(items) != len(names):
                raise HandnetError(f"{what}: {len(items)} lists for {len(names)} outputs {names}")
            return items
        return [items] * len(names)
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise HandnetError(f"{what}: {len(value)} entries for {len(names)} outputs {names}")
        return list(value)
    if not broadcast and len(names) > 1:
        raise HandnetError(f"{what}: give one per output {names}, as a list or a dict")
    return [value] * len(names)


def _nested(metrics):
    items = list(metrics or [])
    return bool(items) and all(isinstance(item, (list, tuple)) for item in items)


def _plain(shape):
    if shape is None:
        return None
    if shape and isinstance(shape[0], (list, tuple)):
        return [tuple(int(d) for d in s if d is not None) for s in shape]
    return tuple(int(d) for d in shape if d is not None)


def count_correct(predictions, y, mask=None):
    """How many rows' largest output is the label (or the target's largest entry); for a
    sequence, how many positions, only the unmasked ones (m true) with a mask."""
    predicted = predictions.argmax(axis=-1)
    truth = y if y.ndim == predicted.ndim else y.argmax(axis=-1)
    hits = predicted == truth
    return int((hits & mask).sum() if mask is not None else hits.sum())


def count_positions(predictions, mask=None):
    """The positions an accuracy is over: N rows, N·T for a sequence, Σ m with a mask."""
    if mask is not None:
        return int(np.count_nonzero(mask))
    return predictions.size // predictions.shape[-1] if predictions.ndim > 1 else len(predictions)


def summary_text(model):
    """Keras's table: layer (type), output shape, parameters, and the layers each reads from."""
    rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
    for tensor in model.input_tensors:
        layer = tensor.node.layer
        rows.append((f"{layer.name} (InputLayer)", _shape_text(tensor.per_sample_shape), "0", "-"))
    for layer in model.layers:
        for call, node in enumerate(model.nodes_of(layer)):
            shapes = [_shape_text(t.per_sample_shape) for t in node.outputs]
            sources = ", ".join(
                f"{t.node.layer.name}[{_call_index(model, t)}][{t.index}]" for t in node.inputs
            )
            params = f"{layer.count_params():,}" if call == 0 else "0 (shared)"
            rows.append(
                (f"{layer.name} ({type(layer).__name__})", ", ".join(shapes), params, sources)
            )
    chain = _is_chain(model)
    if chain:
        rows = [row[:3] for row in rows if not row[0].endswith("(InputLayer)")]
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(len(rows[0]))]

    def line(row):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2])]
        if len(row) > 3:
            cells.append("   " + row[3])
        return "".join(cells).rstrip()

    rule = "=" * (sum(widths) + (0 if chain else 3))
    trainable = _trainable_count(model)
    total = model.count_params()
    return "\n".join(
        [
            f'Model: "{model.name}"',
            line(rows[0]),
            rule,
            *(line(row) for row in rows[1:]),
            rule,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
    )


def _call_index(model, tensor):
    layer = tensor.node.layer
    calls = model.nodes_of(layer)
    return next((i for i, node in enumerate(calls) if node is tensor.node), 0)


def _shape_text(shape):
    if shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(_shape_text(s) for s in shape)
    return "(None, " + ", ".join(map(str, shape or ("?",))) + ")"


def _is_chain(model):
    """Whether the graph is one chain from one input (then the table is Sequential's)."""
    return (
        len(model.input_tensors) == 1
        and len(model.output_tensors) == 1
        and all(len(n.inputs) == 1 and not n.takes_list for n in model.nodes)
        and all(len(model.nodes_of(layer)) == 1 for layer in model.layers)
        and all(
            node.inputs[0] is (model.nodes[i - 1].outputs[0] if i else model.input_tensors[0])
            for i, node in enumerate(model.nodes)
        )
    )


#: Model classes a config may nest, by the class_name get_config writes (Sequential adds itself).
MODEL_CLASSES = {"Functional": Model, "Model": Model}


def _trainable_count(layer):
    """Weights that gradient steps move, as Keras counts them: the ``params`` of trainable
    layers (a frozen model freezes all it holds); ``state`` (BatchNormalization's moving
    statistics, an adapted Normalization's mean and variance) is non-trainable."""
    if not layer.trainable:
        return 0
    if isinstance(layer, Model):
        return sum(_trainable_count(inner) for inner in layer.layers)
    return int(sum(w.size for w in layer.params.values()))
