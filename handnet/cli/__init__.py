"""The ``handnet`` command: train, evaluate, predict, summary, gradcheck.

    handnet train --model mlp                       # train, test, plot: writes runs/mlp-mnist/
    handnet evaluate runs/mlp-mnist/model.npz       # test-set loss and accuracy
    handnet predict runs/mlp-mnist/model.npz 7.png  # the digit in a picture
    handnet plot runs/mlp-mnist/history.json        # redraw the learning curves
    handnet summary mlp                             # layers, output shapes, parameter counts
    handnet gradcheck                               # every backward pass against finite differences
    handnet serve                                   # a web page: draw a digit, see inside the net

Errors that handnet raises on purpose (a missing file, a bad setting) end the command with
``handnet: error: <message>`` and exit status 2; a traceback means a bug.

Each module here adds one family of commands to the parser with ``register(subparsers)``; the
Keras commands come from handnet.keras_io.
"""

import argparse
import os
import sys

from .. import __version__, keras_io
from ..errors import HandnetError
from . import evaluate, experiment, gradcheck, inspect, plot, serve, train

# The names that handnet.cli has always offered (gradcheck's output points to LAYER_CHECKS here).
from .gradcheck import LAYER_CHECKS, LayerCheck
from .train import RUN_FILES

__all__ = ["LAYER_CHECKS", "RUN_FILES", "LayerCheck", "build_parser", "main"]


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error that argparse has already printed
        return stop.code if isinstance(stop.code, int) else 0
    try:
        return args.command(args)
    except HandnetError as error:
        return _fail(error)
    except BrokenPipeError:
        # `handnet ... | head` closed our stdout: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as error:  # an output folder that cannot be written, a full disk
        return _fail(error)
    except KeyboardInterrupt:
        print("handnet: interrupted", file=sys.stderr)
        return 130


def _fail(error):
    print(f"handnet: error: {error}", file=sys.stderr)
    return 2


def build_parser():
    parser = argparse.ArgumentParser(
        prog="handnet",
        description="Neural networks written by hand in NumPy, trained on handwritten digits.",
    )
    parser.add_argument("--version", action="version", version=f"handnet {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    # --help lists the commands in the order they are added.
    train.register(commands)
    experiment.register(commands)
    evaluate.register(commands)
    plot.register(commands)
    inspect.register_summary(commands)
    gradcheck.register(commands)
    inspect.register_explain(commands)
    keras_io.register_cli(commands)
    serve.register(commands)
    return parser
