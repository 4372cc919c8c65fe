"""handnet serve: a local web page to draw a digit on and watch the network read it."""

import argparse
from pathlib import Path

from ..errors import HandnetError
from ..serve import ModelRegistry, make_server
from ..serve.models import model_files
from . import train

#: Where ``handnet train`` and ``make demo`` put their runs, and where serve looks by default.
RUNS = Path("runs")
DEFAULT_CNN_RUN = RUNS / "demo"


def register(subparsers):
    serve = subparsers.add_parser(
        "serve",
        help="a local web page: draw a digit, watch the network read it",
        description="Start a web server on this computer with a page where you draw a digit "
        "and see the prediction, the 28×28 input the network sees and its feature maps.",
    )
    serve.add_argument(
        "model",
        nargs="?",
        type=Path,
        metavar="MODEL_OR_FOLDER",
        help="a model file (.npz, .keras, .h5) or a folder of them, offered side by side "
        f"(default: {RUNS}/, where a cnn is trained first if it holds none)",
    )
    serve.add_argument("--port", type=_port, default=8000, help="default: 8000")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, reachable from this computer only)",
    )
    serve.set_defaults(command=serve_command)


def _port(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {text}")
    return port


def serve_command(args):
    registry = ModelRegistry.from_path(args.model) if args.model else _default_registry()
    try:
        server = make_server(registry, args.host, args.port)
    except OSError as error:
        raise HandnetError(
            f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
            "choose another --port"
        ) from None
    host, port = server.server_address[:2]
    models = ", ".join(registry.models)
    print(f"Serving {len(registry.models)} model(s): {models} (default: {registry.default_id})")
    print(f"Open http://{host}:{port}/ in a browser (Ctrl+C stops the server)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        server.server_close()
    return 0


def _default_registry():
    """The models in runs/, after training the default cnn there if no CNN is among them."""
    registry = ModelRegistry.from_path(RUNS) if model_files(RUNS) else None
    if registry is None or not registry.has_convolutional_model():
        print(
            f"No trained CNN in {RUNS}/: training the default cnn first, into {DEFAULT_CNN_RUN}/ "
            "(what `make demo` does; a few minutes)."
        )
        parser = argparse.ArgumentParser(prog="handnet")
        train.register(parser.add_subparsers())
        train.train_command(
            parser.parse_args(["train", "--model", "cnn", "--out", str(DEFAULT_CNN_RUN)])
        )
        registry = ModelRegistry.from_path(RUNS)
    return registry
