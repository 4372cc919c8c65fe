"""handnet summary and handnet explain: look inside a model file or a named architecture."""

from pathlib import Path

from .. import explain, keras_io
from ..errors import HandnetError
from ..zoo import architectures
from .common import add_json_argument, write_json


def register_summary(subparsers):
    parser = subparsers.add_parser("summary", help="layers, output shapes and parameter counts")
    parser.add_argument(
        "target",
        metavar="MODEL.npz|ARCH",
        help=f"a model file or an architecture ({', '.join(sorted(architectures.ARCHITECTURES))})",
    )
    add_json_argument(parser)
    parser.set_defaults(command=summary_command)


def register_explain(subparsers):
    parser = subparsers.add_parser(
        "explain", help="the forward pass step by step: formulas, shapes, weights"
    )
    parser.add_argument(
        "--model", default="mlp", metavar="MODEL.npz|ARCH", help="a model file or an architecture"
    )
    parser.add_argument(
        "--backward",
        action="store_true",
        help="the backward pass instead: each layer's gradient formulas and their shapes",
    )
    add_json_argument(parser)
    parser.set_defaults(command=explain_command)


def _model_or_architecture(target):
    """A handnet .npz, a Keras .keras/.h5 file, or a named architecture."""
    if Path(target).suffix in (".npz", ".keras", ".h5") or Path(target).is_file():
        return keras_io.load_any(target)
    if target in architectures.ARCHITECTURES:
        return architectures.build(target)
    known = ", ".join(sorted(architectures.ARCHITECTURES))
    raise HandnetError(f"{target!r} is neither a model file nor an architecture ({known})")


def summary_command(args):
    model = _model_or_architecture(args.target)
    model.summary()
    if args.json:
        write_json(
            args.json,
            {
                "name": model.name,
                "input_shape": list(model.input_shape),
                "layers": [
                    {
                        "name": layer.name,
                        "class_name": type(layer).__name__,
                        "output_shape": list(layer.output_shape),
                        "parameters": layer.count_params(),
                    }
                    for layer in model.layers
                ],
                "total_parameters": model.count_params(),
                "trainable_parameters": sum(
                    layer.count_params() for layer in model.layers if layer.trainable
                ),
            },
        )
    return 0


def explain_command(args):
    model = _model_or_architecture(args.model)
    print(explain.explain_backward(model) if args.backward else explain.explain(model))
    if args.json:
        table = explain.layer_table(model, backward=args.backward)
        write_json(args.json, {"name": model.name, "layers": table})
    return 0
