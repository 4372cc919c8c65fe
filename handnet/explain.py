"""A model's forward pass, step by step: each layer's formula, its shapes and its weights.

    $ handnet explain --model cnn
    x0  (N, 28, 28, 1)  the input
    1   conv2d (Conv2D) 32 filters 3×3, stride 1×1, valid padding
        y[n,i,j,f] = relu(b[f] + Σ_(u,v,c) x[n, i+u, j+v, c] · K[u,v,c,f])
        (N, 28, 28, 1) → (N, 26, 26, 32)    320 weights (kernel (3, 3, 1, 32), bias (32,))
    …

The steps are the model's nodes in the order it runs them (``model.nodes``); each layer writes
its own formula from its own settings (``Layer.explain``), so the text shows the real strides,
padding and activation. A step that does not read the step just before it says where its
inputs come from: a merge's x₁, x₂, … by step, an input by its name.
"""

from .model import Model


def _shape(per_sample):
    return "(N, " + ", ".join(map(str, per_sample)) + ")"


def _formula(layer):
    if isinstance(layer, Model):  # a model used as a layer: one step here, explained apart
        return f"a model of {len(layer.layers)} layers", f"y = {layer.name}(x)"
    return layer.explain()


def _sources(node, labels):
    """Where a node's inputs come from: "x₁ = 3 (conv2d_1), x₂ = x0 (input)"."""
    named = [labels[id(tensor)] for tensor in node.inputs]
    if len(named) == 1:
        return named[0]
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    return ", ".join(f"x{str(k).translate(subscripts)} = {name}" for k, name in enumerate(named, 1))


def _steps(model):
    """(index, node, formula, source text or None, input shapes, labels) for every node."""
    labels = {}
    for k, tensor in enumerate(model.input_tensors):
        labels[id(tensor)] = f"x{k} ({tensor.name})"
    previous = model.input_tensors[0] if len(model.input_tensors) == 1 else None
    for index, node in enumerate(model.nodes, start=1):
        reads_previous = len(node.inputs) == 1 and node.inputs[0] is previous
        source = None if reads_previous else _sources(node, labels)
        yield index, node, source
        for k, tensor in enumerate(node.outputs):
            suffix = f":{k}" if len(node.outputs) > 1 else ""
            labels[id(tensor)] = f"{index}{suffix} ({node.layer.name})"
        previous = node.outputs[0] if len(node.outputs) == 1 else None


def explain(model):
    """The text of the forward pass of a built model (a Sequential, or any graph), one block
    per step."""
    lines = [f'Forward pass of "{model.name}"']
    for k, tensor in enumerate(model.input_tensors):
        what = "the input" if len(model.input_tensors) == 1 else f"input {tensor.name!r}"
        lines.append(f"x{k}  {_shape(tensor.per_sample_shape)}  {what}")
    first_step = {}
    for index, node, source in _steps(model):
        layer = node.layer
        headline, formula = _formula(layer)
        lines += [
            f"{index:<3} {layer.name} ({type(layer).__name__}) {headline}".rstrip(),
            f"    {formula}",
        ]
        if source is not None:
            lines.append(f"    input{'s' if len(node.inputs) > 1 else ''}: {source}")
        in_shapes = [tensor.per_sample_shape for tensor in node.inputs]
        if len(in_shapes) == 1:
            lines += [f"    {line}" for line in layer.explain_details(in_shapes[0])]
        elif hasattr(layer, "accept_call"):  # attention: the shapes of each step, by role
            lines += [f"    {line}" for line in layer.explain_details(in_shapes)]
        if id(layer) in first_step:
            count = f"the weights of step {first_step[id(layer)]} (shared)"
        else:
            first_step[id(layer)] = index
            weights = ", ".join(f"{key} {tuple(w.shape)}" for key, w in layer.weights().items())
            count = f"{layer.count_params():,} weights ({weights})" if weights else "no weights"
        arrow = " + ".join(map(_shape, in_shapes))
        out = ", ".join(_shape(tensor.per_sample_shape) for tensor in node.outputs)
        lines.append(f"    {arrow} → {out}    {count}")
    total = model.count_params()
    outputs = model.output_tensors
    if len(outputs) == 1:
        shape = outputs[0].per_sample_shape
        lines.append(f"output {_shape(shape)}: {total:,} weights in all")
        if len(shape) == 1:
            lines.append(f"prediction: argmax over the {shape[0]} outputs of each row")
    else:
        for name, tensor in zip(model.output_names, outputs):
            lines.append(f"output {name!r} {_shape(tensor.per_sample_shape)}")
        lines.append(f"{total:,} weights in all")
    return "\n".join(lines)


def layer_table(model):
    """The same facts as data, for --json: one row per step."""
    return [
        {
            "name": node.layer.name,
            "class_name": type(node.layer).__name__,
            "formula": _formula(node.layer)[1],
            "inputs": [tensor.name for tensor in node.inputs],
            "output_shape": list(node.outputs[0].per_sample_shape)
            if len(node.outputs) == 1
            else [list(tensor.per_sample_shape) for tensor in node.outputs],
            "parameters": node.layer.count_params(),
        }
        for _, node, _ in _steps(model)
    ]


__all__ = ["explain", "layer_table"]
