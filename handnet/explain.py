"""A model's forward pass, step by step: each layer's formula, its shapes and its weights.

    $ handnet explain --model cnn
    x0  (N, 28, 28, 1)   the input
    1   conv2d (Conv2D) 32 filters 3×3, stride 1, valid, relu      12 weights ... 320
        y[n,i,j,f] = relu(b[f] + Σ_{u,v,c} x[n, i+u, j+v, c] · K[u,v,c,f])
        (N, 28, 28, 1) → (N, 26, 26, 32)
    …

The formulas are written from each layer's configuration, so they show the real strides,
padding and activation.
"""



def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _shape(per_sample):
    return "(N, " + ", ".join(map(str, per_sample)) + ")"


def _activation(config, inner):
    name = config.get("activation", "linear")
    name = name["name"] if isinstance(name, dict) else name
    return inner if name == "linear" else f"{name}({inner})"


def _conv(config):
    (sh, sw), (dh, dw) = _pair(config["strides"]), _pair(config["dilation_rate"])
    row = "i" if sh == 1 else f"{sh}i"
    col = "j" if sw == 1 else f"{sw}j"
    u = "u" if dh == 1 else f"{dh}u"
    v = "v" if dw == 1 else f"{dw}v"
    source = "x" if config["padding"] == "valid" else "pad(x)"
    bias = "b[f] + " if config.get("use_bias", True) else ""
    kh, kw = _pair(config["kernel_size"])
    headline = (
        f"{config['filters']} filters {kh}×{kw}, stride {sh}×{sw}, {config['padding']} padding"
    )
    inner = f"{bias}Σ_(u,v,c) {source}[n, {row}+{u}, {col}+{v}, c] · K[u,v,c,f]"
    return headline, f"y[n,i,j,f] = {_activation(config, inner)}"


def _pool(kind):
    def describe(config):
        (ph, pw), (sh, sw) = _pair(config["pool_size"]), _pair(config["strides"] or config["pool_size"])
        op = "max" if kind == "max" else "mean"
        headline = f"{op} over {ph}×{pw} windows, stride {sh}×{sw}, {config['padding']} padding"
        return headline, f"y[n,i,j,c] = {op}_(u<{ph}, v<{pw}) x[n, {sh}i+u, {sw}j+v, c]"

    return describe


def _recurrent(equations):
    """A recurrent layer's headline and its step equations, with the config's activations."""

    def describe(config):
        f = _name(config.get("activation", "tanh"))
        sigma = _name(config.get("recurrent_activation", "sigmoid"))
        returns = "every h_t" if config.get("return_sequences") else "the last state h_T"
        headline = f"{config['units']} units, returns {returns}"
        return headline, equations.format(f=f, sigma=sigma)

    return describe


def _name(activation):
    return activation["name"] if isinstance(activation, dict) else activation or "linear"


#: Per recurrent layer: how many U-wide blocks one step's product x_t @ W + h_(t-1) @ R makes.
GATE_COUNTS = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


def _unrolled(class_name, config, input_shape):
    """The loop a recurrent layer runs, with the shapes of one step: one product gives every
    gate's pre-activations."""
    steps, features = input_shape
    units = config["units"]
    width = GATE_COUNTS[class_name] * units
    return (
        f"unrolled over {steps} steps (t = 1…{steps}, h_0 = 0): "
        f"x_t (N, {features}) @ W ({features}, {width}) + h_(t-1) (N, {units}) @ R ({units}, {width})"
        f" → pre-activations (N, {width}) → h_t (N, {units})"
    )


#: How Bidirectional joins the two directions' outputs, a and b.
MERGES = {"concat": "[a, b] (side by side)", "sum": "a + b", "mul": "a · b", "ave": "(a + b) / 2"}


def _bidirectional(config):
    """The wrapped layer's headline and step equations, both directions and their merge."""
    inner = config["layer"]
    headline, equations = FORMULAS[inner["class_name"]](inner["config"])
    merge = MERGES[config["merge_mode"]]
    return (
        f"{inner['class_name']} both ways, {headline}",
        f"{equations};  a = that layer over x_1…x_T, b = a copy over x_T…x_1 "
        f"(its outputs put back in time order);  y = {merge}",
    )


FORMULAS = {
    "Dense": lambda c: (
        f"{c['units']} units",
        f"y = {_activation(c, 'x @ W + b' if c.get('use_bias', True) else 'x @ W')}",
    ),
    "Conv2D": _conv,
    "MaxPooling2D": _pool("max"),
    "AveragePooling2D": _pool("mean"),
    "GlobalAveragePooling2D": lambda c: ("mean over all positions", "y[n,c] = mean_(i,j) x[n,i,j,c]"),
    "GlobalMaxPooling2D": lambda c: ("max over all positions", "y[n,c] = max_(i,j) x[n,i,j,c]"),
    "Flatten": lambda c: ("one row per image", "y = x.reshape(N, -1)"),
    "Reshape": lambda c: (f"to {tuple(c['target_shape'])}", "y = x.reshape(N, *target_shape)"),
    "Dropout": lambda c: (
        f"rate {c['rate']}",
        f"training: y = x · m / {1 - c['rate']:g}, m ~ Bernoulli({1 - c['rate']:g});  inference: y = x",
    ),
    "Activation": lambda c: (str(c["activation"]), f"y = {_activation(c, 'x')}"),
    "ReLU": lambda c: ("", "y = max(x, 0)"),
    "LeakyReLU": lambda c: ("", f"y = x if x > 0 else {c.get('negative_slope')}·x"),
    "Softmax": lambda c: ("over the last axis", "y_k = e^(x_k - max x) / Σ_j e^(x_j - max x)"),
    "ZeroPadding2D": lambda c: (f"padding {c['padding']}", "y = x with zero rows/columns around it"),
    "Rescaling": lambda c: ("", f"y = x · {c['scale']} + {c['offset']}"),
    "SimpleRNN": _recurrent("h_t = {f}(x_t @ W + h_(t-1) @ R + b)"),
    "LSTM": _recurrent(
        "[i f g o] = [{sigma} {sigma} {f} {sigma}](x_t @ W + h_(t-1) @ R + b);  "
        "c_t = f·c_(t-1) + i·g;  h_t = o·{f}(c_t)",
    ),
    "GRU": _recurrent(
        "[z r] = {sigma}(x_t @ W_zr + b_zr + h_(t-1) @ R_zr + b'_zr);  "
        "ĥ = {f}(x_t @ W_h + b_h + r·(h_(t-1) @ R_h + b'_h));  h_t = z·h_(t-1) + (1 - z)·ĥ",
    ),
    "BatchNormalization": lambda c: (
        f"epsilon {c['epsilon']}",
        "y = γ · (x - μ) / sqrt(σ² + ε) + β   (μ, σ²: batch statistics in training, moving averages at inference)",
    ),
    "Bidirectional": _bidirectional,
}


def explain(model):
    """The text of the forward pass of a built Sequential, one block per layer."""
    lines = [f'Forward pass of "{model.name}"', f"x0  {_shape(model.input_shape)}  the input"]
    shape = model.input_shape
    for index, layer in enumerate(model.layers, start=1):
        config = layer.get_config()
        describe = FORMULAS.get(type(layer).__name__)
        headline, formula = describe(config) if describe else ("", "(no formula on file)")
        weights = ", ".join(f"{key} {tuple(value.shape)}" for key, value in layer.weights().items())
        count = f"{layer.count_params():,} weights ({weights})" if weights else "no weights"
        lines += [
            f"{index:<3} {layer.name} ({type(layer).__name__}) {headline}".rstrip(),
            f"    {formula}",
        ]
        if type(layer).__name__ in GATE_COUNTS:
            lines.append(f"    {_unrolled(type(layer).__name__, config, shape)}")
        lines.append(f"    {_shape(shape)} → {_shape(layer.output_shape)}    {count}")
        shape = layer.output_shape
    total = model.count_params()
    lines.append(f"output {_shape(shape)}: {total:,} weights in all")
    if len(shape) == 1:
        lines.append(f"prediction: argmax over the {shape[0]} outputs of each row")
    return "\n".join(lines)


def layer_table(model):
    """The same facts as data, for --json."""
    return [
        {
            "name": layer.name,
            "class_name": type(layer).__name__,
            "formula": (FORMULAS.get(type(layer).__name__) or (lambda c: ("", "")))(layer.get_config())[1],
            "output_shape": list(layer.output_shape),
            "parameters": layer.count_params(),
        }
        for layer in model.layers
    ]


__all__ = ["explain", "layer_table"]
