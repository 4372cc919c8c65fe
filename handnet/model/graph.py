"""Walking a graph of nodes: topological order, and the checks a graph from a file must pass.

A model's graph is found by walking back from its outputs (``handnet.layers.graph``: each
tensor knows the node that made it, each node the tensors it read). ``topological_order``
returns the nodes so that every node comes after the nodes it reads from; it walks with an
explicit stack, so a deep graph cannot overflow Python's recursion.
"""

from ..errors import HandnetError

#: Graphs read from files are refused beyond these sizes before anything is built.
MAX_NODES = 10_000
MAX_NESTING = 32


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
    Keras file) that is too large or nested too deep, before any layer is made."""
    if depth > MAX_NESTING:
        raise HandnetError(f"models are nested deeper than {MAX_NESTING} levels")
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise HandnetError(f"a functional model config needs a list of layers, got {type(layers).__name__}")
    calls = sum(len(spec.get("inbound_nodes") or [None]) for spec in layers if isinstance(spec, dict))
    if len(layers) > MAX_NODES or calls > MAX_NODES:
        raise HandnetError(f"the graph has more than {MAX_NODES:,} nodes ({max(len(layers), calls):,})")
