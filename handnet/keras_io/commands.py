"""The Keras commands of the ``handnet`` CLI: import-keras, export-keras, compare-keras, check.

``register_cli(subparsers)`` adds them to the CLI's argparse subparsers; each handler takes the
parsed arguments and returns the exit status (HandnetErrors are reported by the CLI itself).

    handnet import-keras model.keras model.npz
    handnet export-keras model.npz model.keras
    handnet compare-keras model.keras --dataset mnist --samples 1000 --json report.json
    handnet check model.npz        # the reference outputs import-keras stored, NumPy alone
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..datasets import DATASETS
from ..errors import HandnetError
from ..layers import Rescaling
from ..preprocess import prepare_images
from ..saving import save_model
from . import check
from .compare import DEFAULT_TOLERANCE, KerasUnavailableError, compare_keras
from .importer import from_keras, load_any
from .writer import to_keras

#: Exit status of compare-keras when a layer is over the tolerance (2 is every other error).
OVER_TOLERANCE = 1


def register_cli(subparsers):
    """Add import-keras, export-keras, compare-keras and check to an argparse subparsers object."""
    command = subparsers.add_parser(
        "import-keras", help="convert a Keras .keras/.h5 model to a handnet .npz"
    )
    command.add_argument(
        "source", type=Path, metavar="IN", help="a Keras 3 .keras file or a legacy .h5 file"
    )
    command.add_argument(
        "target", type=Path, metavar="OUT", help="the handnet model file to write (.npz)"
    )
    command.add_argument(
        "--no-check",
        action="store_true",
        help="do not store Keras's outputs on a few random inputs for `handnet check` (stored "
        "by default when Keras is installed)",
    )
    command.set_defaults(command=import_keras_command)

    command = subparsers.add_parser(
        "export-keras", help="write a handnet (or Keras) model as a Keras 3 .keras file"
    )
    command.add_argument(
        "source", type=Path, metavar="MODEL", help="a handnet .npz (or a .keras/.h5 file)"
    )
    command.add_argument("target", type=Path, metavar="OUT.keras", help="the .keras file to write")
    command.set_defaults(command=export_keras_command)

    command = subparsers.add_parser(
        "compare-keras",
        help="run a Keras model in Keras and in handnet and compare them layer by layer",
    )
    command.add_argument(
        "source", type=Path, metavar="FILE", help="a Keras 3 .keras file or a legacy .h5 file"
    )
    command.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default="mnist",
        help="test images to feed (default: mnist)",
    )
    command.add_argument(
        "--samples",
        type=_positive_int,
        default=1000,
        help="inputs compared layer by layer (default: 1000)",
    )
    command.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="largest max abs difference a layer may show, times max(1, its largest output) "
        f"(default: {DEFAULT_TOLERANCE:g})",
    )
    command.add_argument(
        "--pixels",
        choices=("auto", "unit", "raw"),
        default="auto",
        help="feed pixels scaled to [0, 1] (unit) or as 0..255 (raw); auto: raw when the model "
        "starts "
        "with a Rescaling layer, else unit",
    )
    command.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    command.set_defaults(command=compare_keras_command)

    command = subparsers.add_parser(
        "check",
        help="re-run the reference outputs import-keras stored in a handnet model (NumPy only)",
    )
    command.add_argument("source", type=Path, metavar="MODEL", help="a handnet .npz")
    command.add_argument(
        "--tolerance",
        type=float,
        default=check.DEFAULT_TOLERANCE,
        help="largest max abs difference an output may show "
        f"(default: {check.DEFAULT_TOLERANCE:g})",
    )
    command.set_defaults(command=check_command)


def import_keras_command(args):
    model = from_keras(args.source)
    references, note = None, "reference outputs not stored (--no-check)"
    if not args.no_check:
        try:
            references = check.reference_arrays(model, args.source)
            note = (
                f"stored Keras's outputs on {check.SAMPLES} random inputs: "
                f"`handnet check {args.target}` re-runs them"
            )
        except KerasUnavailableError:
            note = "Keras is not installed: no reference outputs stored for `handnet check`"
        except HandnetError as error:
            note = f"no reference outputs stored: {error}"
    save_model(model, args.target, extra_arrays=references)
    print(
        f"read {args.source}: {len(model.layers)} layers, {model.count_params():,} parameters "
        f"-> wrote {args.target}"
    )
    print(note)
    return 0


def export_keras_command(args):
    model = load_any(args.source)
    to_keras(model, args.target)
    print(f"wrote {args.target} ({len(model.layers)} layers, {model.count_params():,} parameters)")
    return 0


def check_command(args):
    report = check.run_check(args.source, tolerance=args.tolerance)
    print(report)
    return 0 if report.passed else OVER_TOLERANCE


def compare_keras_command(args):
    model = from_keras(args.source)
    if len(model.input_names) != 1:
        raise HandnetError(
            f"{args.source}: compare-keras feeds one batch of images, and the model has "
            f"{len(model.input_names)} inputs {model.input_names}; in Python, "
            "handnet.keras_io.compare.compare_keras(path, [x1, x2, …]) takes several"
        )
    _, (images, labels) = DATASETS[args.dataset].load_data()
    first = model.nodes[0].layer if model.nodes else None
    raw = args.pixels == "raw" or (args.pixels == "auto" and isinstance(first, Rescaling))
    # prepare_images divides uint8 pixels by 255 and leaves float ones as they are.
    x = prepare_images(images.astype(np.float32) if raw else images, model.input_shape)
    print(f"{args.dataset} test set, pixels {'0..255' if raw else 'in [0, 1]'}", file=sys.stderr)
    report = compare_keras(args.source, x, labels, samples=args.samples, tolerance=args.tolerance)
    print(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=1) + "\n")
    return 0 if report.passed else OVER_TOLERANCE


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
