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

``explain_backward`` (``handnet explain --backward``) walks the same steps from the last to the
first: each layer writes the formulas of its own backward pass (``Layer.explain_backward``),
dx and each weight's gradient from dy = ∂L/∂y, with their shapes:

    $ handnet explain --model cnn --backward
    …
    1   conv2d (Conv2D) 32 filters 3×3, stride 1×1, valid padding
        dz = dy · [z > 0]   (relu)                                      (N, 26, 26, 32)
        dK[u,v,c,f] = Σ_(n,i,j) x[n, i+u, j+v, c] · dz[n,i,j,f]         (3, 3, 1, 32)
        db[f] = Σ_(n,i,j) dz[n,i,j,f]                                   (32,)
        dx[n, i+u, j+v, c] += Σ_f K[u,v,c,f] · dz[n,i,j,f]   (…)        (N, 28, 28, 1)
        (training skips dx here: no layer before this step trains)

A step whose output several steps read says whose gradients sum into its dy; a step of several
inputs says where each of its dx₁, dx₂, … goes.
"""

from .layers.base import BackwardStep
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


def _backward_steps(layer, in_shapes):
    """The layer's BackwardSteps for its per-sample input shapes (one shape, or a list)."""
    if isinstance(layer, Model):  # a model used as a layer: its own steps, explained apart
        return [BackwardStep("x", f"dx = {layer.name}.backward(dy)", ())]
    return layer.explain_backward(in_shapes[0] if len(in_shapes) == 1 else in_shapes)


def _shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _readers(model):
    """For each tensor (by id), the steps that read it: (index, the name of the gradient that
    step sends back, "dx", or "dx₁", "dx₂", … for a step of several inputs)."""
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    readers = {}
    for index, node in enumerate(model.nodes, start=1):
        for k, tensor in enumerate(node.inputs, start=1):
            name = "dx" if len(node.inputs) == 1 else "dx" + str(k).translate(subscripts)
            readers.setdefault(id(tensor), []).append((index, name))
    return readers


def _trained_before(model):
    """For each tensor (by id), whether a trainable layer runs before it: only then does the
    training step compute its gradient (handnet.model.plan skips the rest)."""
    trained = {id(tensor): False for tensor in model.input_tensors}
    for node in model.nodes:
        trains = node.layer.trainable and bool(node.layer.params)
        upstream = any(trained.get(id(tensor), False) for tensor in node.inputs)
        for tensor in node.outputs:
            trained[id(tensor)] = trains or upstream
    return trained


def explain_backward(model):
    """The text of the backward pass of a built model: its steps from the last to the first,
    each with the formulas of dx and of its weights' gradients, and their shapes."""
    lines = [
        f'Backward pass of "{model.name}", from the last step to the first (dy = ∂L/∂y of a '
        "step's output, dz = ∂L/∂z before its activation)",
    ]
    for name, tensor in zip(model.output_names, model.output_tensors):
        shape = _shape_text(_batch_shape(tensor))
        lines.append(f"dy {shape}  ∂L/∂y of output {name!r}, from the loss")
    last = model.nodes[-1].layer if model.nodes else None
    if getattr(getattr(last, "activation", None), "name", None) == "softmax":
        lines.append(
            "    with cross-entropy the softmax's Jacobian is skipped: dz = (p - t)/N, "
            "p the softmax, t the one-hot targets"
        )
    readers, trained = _readers(model), _trained_before(model)
    outputs = {id(tensor) for tensor in model.output_tensors}
    blocks = []
    for index, node, source in _steps(model):
        layer = node.layer
        headline, _ = _formula(layer)
        block = [f"{index:<3} {layer.name} ({type(layer).__name__}) {headline}".rstrip()]
        for tensor in node.outputs:
            read_by = readers.get(id(tensor), [])
            sources = [f"{dx} of {k} ({model.nodes[k - 1].layer.name})" for k, dx in read_by]
            if id(tensor) in outputs:
                sources.insert(0, "the loss")
            plain = read_by == [(index + 1, "dx")] or (read_by == [] and len(outputs) == 1)
            if sources and not plain:
                block.append(f"    dy = {' + '.join(sources)}")
        if source is not None:
            block.append(f"    dx goes to: {source}")
        in_shapes = [tensor.per_sample_shape for tensor in node.inputs]
        steps = _backward_steps(layer, in_shapes)
        width = max((len(step.formula) for step in steps), default=0)
        block += [
            f"    {step.formula:<{width}}    {_shape_text(step.shape)}".rstrip()
            if step.shape
            else f"    {step.formula}"
            for step in steps
        ]
        if not any(trained.get(id(tensor), False) for tensor in node.inputs):
            block.append("    (training skips dx here: no layer before this step trains)")
        blocks.append(block)
    for block in reversed(blocks):
        lines += block
    return "\n".join(lines)


def _batch_shape(tensor):
    return ("N", *tensor.per_sample_shape)


def layer_table(model, backward=False):
    """The same facts as data, for --json: one row per step (``backward``: with the formulas
    and shapes of its backward pass)."""
    rows = _rows(model)
    if backward:
        for row, (_, node, _) in zip(rows, _steps(model)):
            in_shapes = [tensor.per_sample_shape for tensor in node.inputs]
            row["backward"] = [
                {"of": step.of, "formula": step.formula, "shape": list(step.shape)}
                for step in _backward_steps(node.layer, in_shapes)
            ]
    return rows


def _rows(model):
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


__all__ = ["explain", "explain_backward", "layer_table"]
