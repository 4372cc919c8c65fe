"""Walking a graph of nodes: topological order, and the checks a graph from a file must pass.

A model's graph is found by walking back from its outputs (``handnet.layers.graph``: each
tensor knows the node that made it, each node the tensors it read). ``topological_order``
returns the nodes so that every node comes after the nodes it reads from; it walks with an
explicit stack, so a deep graph cannot overflow Python's recursion.
"""

import math

from ..errors import HandnetError

#: Graphs read from files are refused beyond these sizes before anything is built.
MAX_NODES = 10_000
MAX_NESTING = 32
#: Values in one sample of any tensor a file's graph declares (2**26: 256 MiB in float32, 20×
#: the largest activation of a 224×224 ImageNet network): a forged ZeroPadding2D or Reshape
#: must not make predicting one sample allocate gigabytes.
MAX_SAMPLE_VALUES = 2**26


def topological_order(outputs, inputs):
    """The nodes between ``inputs`` and ``outputs`` (SymbolicTensors), each after its sources.

    Raises when an output depends on a tensor that is not among ``inputs`` and has no
    producer (an Input that was not given to the model)."""
    given = {id(t) for t in inputs}
    order, done, on_path = [], set(), set()
    for output in outputs:
        if id(output) in given:
            continue
        stack = [(output.node, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                on_path.discard(id(node))
                done.add(id(node))
                order.append(node)
                continue
            if id(node) in on_path:  # cannot happen with symbolic calls; guards hand-made nodes
                raise HandnetError(f"the graph has a cycle through layer {node.layer.name!r}")
            on_path.add(id(node))
            stack.append((node, True))
            if not node.inputs and not any(id(t) in given for t in node.outputs):
                raise HandnetError(
                    f"the outputs depend on {node.layer.name!r}, which is not among the "
                    "model's inputs: pass it in inputs=[...]"
                )
            for tensor in reversed(node.inputs):
                if id(tensor) not in given and id(tensor.node) not in done:
                    stack.append((tensor.node, False))
            if len(order) + len(stack) > MAX_NODES:
                raise HandnetError(f"the graph has more than {MAX_NODES:,} nodes")
    return order


def check_graph_config(config, depth=0):
    """Refuse a functional model config (as ``Model.get_config`` writes it, or converted from a
    Keras file) that is not an object, too large or nested too deep, before any layer is made."""
    if depth > MAX_NESTING:
        raise HandnetError(f"models are nested deeper than {MAX_NESTING} levels")
    if not isinstance(config, dict):
        raise HandnetError(f"a model config must be an object, got {type(config).__name__}")
    layers = config.get("layers")
    if not isinstance(layers, list):
        kind = type(layers).__name__
        raise HandnetError(f"a functional model config needs a list of layers, got {kind}")
    calls = sum(
        len(spec["inbound_nodes"]) if isinstance(spec.get("inbound_nodes"), list) else 1
        for spec in layers
        if isinstance(spec, dict)
    )
    if len(layers) > MAX_NODES or calls > MAX_NODES:
        count = max(len(layers), calls)
        raise HandnetError(f"the graph has more than {MAX_NODES:,} nodes ({count:,})")


def check_sample_size(layer, tensors, inputs=()):
    """Refuse a node of a file's graph whose outputs hold more than MAX_SAMPLE_VALUES values per
    sample (the weights are capped by the file's size; activations only by this), or whose
    convolution pads its input past that: with padding="same" a dilated kernel of extent
    e = (k - 1)·d + 1 pads each spatial axis of size n to n + e - 1, and a forged dilation_rate
    (6·10⁹) once asked for 460 GiB on an 8×8 image."""
    kernel, dilation = getattr(layer, "kernel_size", None), getattr(layer, "dilation_rate", None)
    if kernel is not None and dilation is not None and len(inputs) == 1:
        kernel = kernel if isinstance(kernel, (list, tuple)) else (kernel,)
        dilation = dilation if isinstance(dilation, (list, tuple)) else (dilation,)
        shape = inputs[0].per_sample_shape
        spatial = shape[: len(kernel)]
        padded = math.prod(n + (k - 1) * d for n, k, d in zip(spatial, kernel, dilation))
        values = padded * math.prod(shape[len(kernel) :])
        if values > MAX_SAMPLE_VALUES:
            raise HandnetError(
                f"layer {layer.name!r}: kernel {tuple(kernel)} dilated by {tuple(dilation)} pads "
                f"inputs of shape {inputs[0].shape} to {values:,} values per sample, more than "
                f"the {MAX_SAMPLE_VALUES:,} a model file may declare"
            )
    for tensor in tensors:
        values = math.prod(tensor.per_sample_shape)
        if values > MAX_SAMPLE_VALUES:
            raise HandnetError(
                f"layer {layer.name!r} makes per-sample tensors of shape {tensor.shape} "
                f"({values:,} values), more than the {MAX_SAMPLE_VALUES:,} a model file may declare"
            )


def check_name_and_seed(name, seed):
    """A config's model name (a string or null) and seed (an integer >= 0 or null)."""
    if name is not None and not isinstance(name, str):
        raise HandnetError(f"a model's name must be a string, got {name!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise HandnetError(f"model {name!r}: seed must be an integer >= 0 or null, got {seed!r}")
