"""handnet plot: redraw the learning curves of a saved training history."""

import json
from pathlib import Path

from .. import plots
from ..errors import HandnetError


def register(subparsers):
    parser = subparsers.add_parser(
        "plot",
        help="redraw the learning curves from a history.json",
        description="Draw curves.png (loss, accuracy and learning rate per epoch, training vs "
        "validation) from the history.json that train writes.",
    )
    parser.add_argument(
        "history", type=Path, metavar="HISTORY.json", help="a history written by train"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for curves.png (default: the history's folder)",
    )
    parser.add_argument("--title", help="the figure's title (default: the history's folder name)")
    parser.set_defaults(command=plot_command)


def plot_command(args):
    history = read_history(args.history)
    out = args.out or args.history.parent
    title = args.title or f"{args.history.resolve().parent.name}: training curves"
    # The history names no loss; one with accuracy is a classifier's, trained on cross-entropy.
    loss_name = "cross-entropy" if "accuracy" in history else None
    plots.plot_training_curves(history, out / "curves.png", title=title, loss_name=loss_name)
    print(f"Wrote {out / 'curves.png'} ({len(history['loss'])} epochs)")
    return 0


def read_history(path):
    """{"loss": [...], ...} from a history file: ``History.to_json``'s {"epoch", "history"} or
    the bare dict of per-epoch lists. Every list must have one number per epoch."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HandnetError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HandnetError(f"{path}: not a JSON history ({error})") from None
    history = data.get("history", data) if isinstance(data, dict) else None
    if not isinstance(history, dict) or not isinstance(history.get("loss"), list):
        raise HandnetError(
            f'{path}: expected {{"history": {{"loss": [...], ...}}}} as train writes it, '
            "with one loss per epoch"
        )
    epochs = len(history["loss"])
    if not epochs:
        raise HandnetError(f"{path}: the history has no epoch")
    for key, values in history.items():
        if not isinstance(values, list) or len(values) != epochs:
            raise HandnetError(
                f"{path}: {key!r} should have one value per epoch ({epochs}), got {values!r:.60}"
            )
        if not all(_is_number(value) for value in values):
            raise HandnetError(f"{path}: {key!r} should hold numbers, got {values!r:.60}")
    return history


def _is_number(value):
    # NaN, as a diverged run logs it, is a float too: the curve shows a gap there.
    return isinstance(value, (int, float)) and not isinstance(value, bool)
