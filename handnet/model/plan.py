"""The execution plan of a model: its graph compiled into steps the two passes run in order.

    forward:   for each step in topological order:  values[outputs] = step(values[inputs])
    backward:  for each step in reverse order:      grads[inputs] += step.backward(grads[outputs])

A tensor read by several steps (a residual connection, a shared input) gets the sum of their
gradients: ∂L/∂t = Σ_consumers ∂L/∂t through that consumer (the multivariable chain rule).

The plan is where the engine's choices live, so that the layers stay as their formulas:
- **fusion** (``fuse=True``): a Conv2D(activation="relu") whose only reader is a non-overlapping
  MaxPooling2D runs with it as one step, and so does a run of geometric augmentation layers
  (RandomRotation, RandomTranslation, RandomZoom with constant fill), which then resamples its
  input once (handnet.layers.fused); ``fuse=False`` runs the plain layers, so stepping into
  the forward pass lands in ``Conv2D.forward``;
- **shared layers**: the second and later calls of one layer run on replicas
  (``Layer.replica``) that read the same parameter arrays and keep their own caches; their
  gradients are added into the layer's own at the end of the backward pass;
- **memory**: a value is dropped as soon as no later step reads it, and a gradient as soon as
  it has been passed on;
- **skipping**: steps with nothing trainable before them compute no input gradient;
- **masks** (Keras's, for padded sequences): a boolean (N, T) travels beside a tensor from the
  layer that makes it (Embedding(mask_zero=True), Masking) through the layers that pass it on
  (``supports_masking``) to those that read it (``takes_mask``: the recurrent layers), which
  cache it for their backward pass. Only a plan with a layer that makes masks runs the masked
  forward loop: every other model runs the plain loop, at no cost.
"""

import warnings

import numpy as np

from ..errors import HandnetError
from ..layers import fused
from ..layers.base import Layer
from ..layers.masking import KERAS_PASSES_MASK, KERAS_READS_MASK


class Step:
    """One unit of work: ``layer`` (a layer, a nested model or a fused pair) reading the tensors
    numbered ``inputs`` and writing those numbered ``outputs``."""

    def __init__(self, layer, inputs, outputs, takes_list, nodes):
        self.layer = layer
        self.inputs = inputs
        self.outputs = outputs
        self.takes_list = takes_list
        self.nodes = nodes  # the graph nodes this step runs (two for a fused pair)
        self.input_needed = [False] * len(inputs)  # ∂L/∂input wanted, per input
        self.active = True  # anything to compute in the backward pass
        self.replica_of = None  # the shared layer whose replica this step runs

    def __repr__(self):
        return f"Step({self.layer!r}, {self.inputs} -> {self.outputs})"


class Plan:
    """The steps of ``model``'s graph (``model.nodes``, topological) and the tensors' numbers.

    ``input_gradient``: whether the backward pass must return ∂L/∂inputs (a gradient check or
    a nested model) or may stop at the last trainable step."""

    def __init__(self, model, fuse=True, input_gradient=False):
        # No reference back to the model: the model caches its plans, and a cycle would keep a
        # discarded replica's buffers alive until the garbage collector runs (measured: each
        # predict on fresh data-parallel replicas then paid for new pages, 2–5× slower).
        self.fuse = fuse
        self.input_gradient = input_gradient
        number = {}
        for tensor in model.input_tensors:
            number[id(tensor)] = len(number)
        for node in model.nodes:
            for tensor in node.outputs:
                number[id(tensor)] = len(number)
        self.size = len(number)
        self.inputs = [number[id(t)] for t in model.input_tensors]
        self.outputs = [number[id(t)] for t in model.output_tensors]
        readers = {}
        for node in model.nodes:
            for tensor in node.inputs:
                readers.setdefault(number[id(tensor)], []).append(node)
        self.steps = self._steps(model, number, readers)
        self._mark_gradients()
        # Step index after which each value is read no more (model outputs stay to the end).
        self.last_read = {}
        for index, step in enumerate(self.steps):
            for key in step.inputs:
                self.last_read[key] = index
        for key in self.outputs:
            self.last_read[key] = len(self.steps)
        # What the forward pass runs, worked out once (a batch-1 predict is mostly this loop):
        # (layer, its input keys, its output keys, whether it takes a list, keys to free after).
        self._schedule = [
            (
                step.layer,
                step.inputs,
                step.outputs,
                step.takes_list,
                [key for key in dict.fromkeys(step.inputs) if self.last_read.get(key) == index],
            )
            for index, step in enumerate(self.steps)
        ]
        self._flags = [(step.layer, any(step.input_needed)) for step in self.steps]
        # A chain (each step reads the one before, one tensor in and out) needs no table of
        # values: its forward pass is x ← layer.forward(x), step after step.
        previous = self.inputs
        self._chain = len(self.inputs) == len(self.outputs) == 1
        for step in self.steps:
            self._chain = self._chain and not step.takes_list and step.inputs == previous
            self._chain = self._chain and len(step.outputs) == 1
            previous = step.outputs
        self._chain = self._chain and previous == self.outputs
        self._layers = [step.layer for step in self.steps]
        self.masked = any(getattr(step.layer, "makes_mask", False) for step in self.steps)
        self.output_masks = [None] * len(self.outputs)  # the last forward pass's

    def _steps(self, model, number, readers):
        steps, calls, fused_away = [], {}, set()
        outputs = set(self.outputs)
        for node in model.nodes:
            if id(node) in fused_away:
                continue
            layer = node.layer
            calls[id(layer)] = calls.get(id(layer), 0) + 1
            replica_of = None
            if calls[id(layer)] > 1:  # a shared layer's second call: a replica of its own
                layer, replica_of = layer.replica(share_state=True), layer
                _without_penalty_gradient(layer)
            out = [number[id(t)] for t in node.outputs]
            pool = self._fusable_pool(model, node, out, readers, outputs)
            if pool is not None:
                fused_away.add(id(pool))
                steps.append(
                    Step(
                        fused.ConvMaxPool(layer, pool.layer),
                        [number[id(t)] for t in node.inputs],
                        [number[id(t)] for t in pool.outputs],
                        False,
                        [node, pool],
                    )
                )
                continue
            chain = self._warp_chain(model, node, number, readers, outputs)
            if len(chain) > 1:
                fused_away.update(id(n) for n in chain[1:])
                steps.append(
                    Step(
                        fused.WarpChain([n.layer for n in chain]),
                        [number[id(t)] for t in node.inputs],
                        [number[id(t)] for t in chain[-1].outputs],
                        False,
                        chain,
                    )
                )
                continue
            step = Step(layer, [number[id(t)] for t in node.inputs], out, node.takes_list, [node])
            step.replica_of = replica_of
            steps.append(step)
        return steps

    def _sole_reader(self, model, node, out, readers, model_outputs):
        """The node that alone reads ``node``'s one output (``out``: its number), when both may
        run as one step: that output is no model output, the reader has one input, and neither
        layer is shared. None otherwise, or when the plan does not fuse."""
        if not self.fuse or len(out) != 1 or out[0] in model_outputs:
            return None
        consumers = readers.get(out[0], [])
        if len(consumers) != 1 or len(consumers[0].inputs) != 1:
            return None
        reader = consumers[0]
        if any(len(model.nodes_of(n.layer)) > 1 for n in (node, reader)):
            return None
        return reader

    def _fusable_pool(self, model, node, out, readers, model_outputs):
        """The MaxPooling2D node that can run fused with ``node``, or None."""
        pool = self._sole_reader(model, node, out, readers, model_outputs)
        if pool is None or not fused.fusable(node.layer, pool.layer):
            return None
        return pool

    def _warp_chain(self, model, node, number, readers, model_outputs):
        """[node] and the warp nodes after it that run with it as one WarpChain."""
        chain = [node]
        while True:
            last = chain[-1]
            out = [number[id(t)] for t in last.outputs]
            reader = self._sole_reader(model, last, out, readers, model_outputs)
            if reader is None or not fused.warps_fusable(last.layer, reader.layer):
                return chain
            chain.append(reader)

    def _mark_gradients(self):
        """Which steps need ∂L/∂input: those with a trainable step (or a model input whose
        gradient is wanted) somewhere before them."""
        wanted = {key: self.input_gradient for key in self.inputs}
        for step in self.steps:
            step.input_needed = [wanted.get(key, False) for key in step.inputs]
            trains = bool(step.layer.trainable and step.layer.params)
            for key in step.outputs:
                wanted[key] = any(step.input_needed) or trains
            step.active = any(step.input_needed) or trains

    def _set_input_gradient_flags(self):
        """Tell each step's layer whether to compute ∂L/∂input. A layer has one flag, and two
        plans of one model (with and without the input gradient) or two models sharing a layer
        want it set differently: each pass sets it again, so the last plan built does not win."""
        for layer, flag in self._flags:
            layer.needs_input_gradient = flag

    # -- the two passes -------------------------------------------------------------------
    def forward(self, inputs, training=False):
        """The model's outputs (a list, one per output) for ``inputs`` (a list, one per input)."""
        for layer, flag in self._flags:  # _set_input_gradient_flags, inlined: the hot path
            layer.needs_input_gradient = flag
        if self.masked:
            return self._forward_masked(inputs, training)
        if self._chain:
            x = inputs[0]
            for layer in self._layers:
                x = layer.forward(x, training=training)
            return [x]
        values = dict(zip(self.inputs, inputs))
        for layer, keys, outputs, takes_list, done in self._schedule:
            if takes_list:
                result = layer.forward([values[k] for k in keys], training=training)
            else:
                result = layer.forward(values[keys[0]], training=training)
            if len(outputs) == 1:
                values[outputs[0]] = result
            else:
                values.update(zip(outputs, result))
            for key in done:  # freed as soon as no later step reads it
                del values[key]
        return [values[key] for key in self.outputs]

    def _forward_masked(self, inputs, training):
        """``forward`` with a mask beside each tensor that has one (``masks[key]``)."""
        values, masks = dict(zip(self.inputs, inputs)), {}
        for index, step in enumerate(self.steps):
            if step.takes_list:
                x = [values[k] for k in step.inputs]
                mask = [masks.get(k) for k in step.inputs]
                mask = None if all(m is None for m in mask) else mask
            else:
                x, mask = values[step.inputs[0]], masks.get(step.inputs[0])
            result, out_masks = call_with_mask(step.layer, x, mask, training, len(step.outputs))
            results = result if len(step.outputs) > 1 else [result]
            for key, value, out_mask in zip(step.outputs, results, out_masks):
                values[key] = value
                if out_mask is not None:
                    masks[key] = out_mask
            for key in dict.fromkeys(step.inputs):
                if self.last_read.get(key) == index:
                    del values[key]
                    masks.pop(key, None)
        self.output_masks = [masks.get(key) for key in self.outputs]
        return [values[key] for key in self.outputs]

    def backward(self, output_gradients, pre_activation=()):
        """∂L/∂inputs (a list; None where not wanted) from ``output_gradients`` (one per output,
        None for an output that gets none). An output numbered in ``pre_activation`` carries
        ∂L/∂z before its layer's final activation (the fused softmax + cross-entropy)."""
        self._set_input_gradient_flags()
        grads = {}
        for key, gradient in zip(self.outputs, output_gradients):
            if gradient is not None:
                _accumulate(grads, key, gradient)
        starts_before_activation = {self.outputs[i] for i in pre_activation}
        for step in reversed(self.steps):
            incoming = [grads.pop(key, None) for key in step.outputs]
            if not step.active or all(g is None for g in incoming):
                _zero_gradients(step.layer)
                continue
            if len(step.outputs) > 1:
                result = step.layer.backward(_filled(incoming, step.layer.output_shape))
            elif step.outputs[0] in starts_before_activation:
                result = step.layer.backward_pre_activation(incoming[0])
            else:
                result = step.layer.backward(incoming[0])
            results = result if step.takes_list else [result]
            for key, needed, gradient in zip(step.inputs, step.input_needed, results):
                if needed and gradient is not None:
                    _accumulate(grads, key, gradient)
        self._gather_shared_gradients()
        return [grads.get(key) for key in self.inputs]

    def _gather_shared_gradients(self):
        """A shared layer's gradient is the sum over its calls: ∂L/∂θ = Σ_calls ∂L/∂θ|call."""
        for step in self.steps:
            if step.replica_of is not None:
                for key, gradient in step.layer.grads.items():
                    step.replica_of.grads[key] += gradient


def call_with_mask(layer, x, mask, training=False, outputs=1):
    """(layer's output for x, [the mask of each output]) given x's mask (None: none).

    A layer that ``takes_mask`` gets it in ``forward``; one that ``supports_masking`` runs as
    usual and passes it on (``compute_mask``), as do those Keras passes it through
    (masking.KERAS_PASSES_MASK); one that Keras would make read it and handnet cannot
    (masking.KERAS_READS_MASK) refuses it; any other drops it with Keras's warning."""
    kind = type(layer.conv if isinstance(layer, fused.ConvMaxPool) else layer)
    if mask is None:
        result = layer.forward(x, training=training)
    elif getattr(layer, "takes_mask", False):
        result = layer.forward(x, training=training, mask=mask)
    elif getattr(layer, "supports_masking", False):
        result = layer.forward(x, training=training)
    elif _named(kind, KERAS_PASSES_MASK):
        return layer.forward(x, training=training), [mask] * outputs
    else:
        if _named(kind, KERAS_READS_MASK):
            raise HandnetError(
                f"layer {getattr(layer, 'name', layer)!r} ({kind.__name__}) receives a mask "
                "(from an Embedding(mask_zero=True) or a Masking layer before it), which Keras "
                "would make it use; handnet does not support masks there yet"
            )
        warnings.warn(
            f"layer {getattr(layer, 'name', layer)!r} (of type {kind.__name__}) was passed an "
            "input with a mask attached to it; it does not support masking and drops the mask "
            "(as Keras does): the layers after it see none",
            stacklevel=2,
        )
        result, mask = layer.forward(x, training=training), None
    if mask is None and not getattr(layer, "makes_mask", False):
        return result, [None] * outputs
    out = layer.compute_mask(x, mask)
    if outputs == 1:
        return result, [out]
    return result, list(out) if isinstance(out, (list, tuple)) else [out] * outputs


def _named(kind, names):
    """Whether class ``kind`` or a class it derives from is called one of ``names``."""
    return any(cls.__name__ in names for cls in kind.__mro__)


#: Where a layer keeps the layers inside it: TimeDistributed, Bidirectional, a nested Model.
INNER_LAYERS = ("layer", "forward_layer", "backward_layer", "layers")


def _without_penalty_gradient(replica):
    """A shared layer's penalty enters the loss once, so its gradient comes from the layer's
    own call: the replica of a later call, and the layers inside it (a TimeDistributed's, a
    Bidirectional's, a nested model's: replicas too), add none."""
    replica.penalty_gradient = False
    for name in INNER_LAYERS:
        value = getattr(replica, name, None)
        for inner in value if isinstance(value, list) else (value,):
            if isinstance(inner, Layer):
                _without_penalty_gradient(inner)


def _accumulate(grads, key, gradient):
    # A new array, never an in-place sum: ``gradient`` may be a layer's upstream array.
    grads[key] = gradient if key not in grads else grads[key] + gradient


def _filled(incoming, shapes):
    """Zeros for the outputs of a several-output step that got no gradient."""
    reference = next(g for g in incoming if g is not None)
    return [
        g if g is not None else np.zeros((len(reference), *shape), dtype=reference.dtype)
        for g, shape in zip(incoming, shapes)
    ]


def _zero_gradients(layer):
    """A trainable step no gradient reached: its parameters' gradients are 0, not last step's."""
    for gradient in layer.grads.values():
        gradient[...] = 0
