"""handnet train --checkpoint-dir / --resume: back a run up every epoch and when it is stopped,
and continue it later.

Ctrl-C or SIGTERM stops a checkpointed run after the step under way, with a checkpoint of that
step (handnet.training.interrupt), and the command exits with the shell's status for that signal
(130 for Ctrl-C). The checkpoint (handnet.training.checkpoint) keeps the command's own arguments, so
``--resume DIR`` needs nothing else: it runs the same command again, and fit continues with the
step after the one saved, ending with the weights an uninterrupted run would have, bit for bit.
"""

import argparse
import signal
import sys
from pathlib import Path

from ..errors import HandnetError
from ..training import callbacks, checkpoint, parallel
from ..training.interrupt import TrainingInterrupted


def add_arguments(parser):
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="save the whole training state to DIR/checkpoint.npz after every epoch, and after "
        "the step under way when Ctrl-C or SIGTERM stops the run (a second Ctrl-C stops at "
        "once); continue with --resume DIR",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run whose checkpoint is in DIR, with the settings it was started "
        "with (other options are ignored)",
    )


def arguments(args):
    """The arguments to run: those given, or with --resume those stored in the checkpoint.
    A new run's paths are made absolute (a resumed run may start elsewhere), and it records the
    thread count, which decides how batches are split and so the dropout masks drawn."""
    if args.resume is None:
        if args.checkpoint_dir is not None:
            _refuse_existing(args.checkpoint_dir)
            args.threads = parallel.blas_threads()
            for key, value in vars(args).items():
                if isinstance(value, Path):
                    setattr(args, key, value.resolve())
        return args
    path = Path(args.resume) / checkpoint.FILENAME
    if not path.is_file():
        raise HandnetError(f"no checkpoint to resume at {path}")
    saved = checkpoint.read(path)
    extra = saved.extra
    if not isinstance(extra, dict) or extra.get("command") != "train":
        raise HandnetError(f"{path} is a checkpoint that handnet train did not write")
    try:
        # Options added to handnet since the checkpoint was written keep their defaults.
        resumed = argparse.Namespace(**{**vars(args), **extra["arguments"]})
        for key in extra["paths"]:
            setattr(resumed, key, Path(getattr(resumed, key)))
    except (AttributeError, KeyError, TypeError) as error:
        raise HandnetError(f"{path}: the run's settings are malformed ({error!r})") from None
    resumed.command, resumed.resume, resumed.checkpoint_dir = args.command, args.resume, args.resume
    if not resumed.quiet:
        print(f"Resuming {path}: {saved.position()}", file=sys.stderr)
    return resumed


def _refuse_existing(folder):
    if (Path(folder) / checkpoint.FILENAME).exists():
        raise HandnetError(
            f"{folder} already holds a checkpoint; continue that run with "
            f"`handnet train --resume {folder}`, or choose another folder"
        )


def backup_callback(args):
    """The BackupAndRestore that saves the run (and restores it on --resume), or None."""
    if args.checkpoint_dir is None:
        return None
    stored = {key: value for key, value in vars(args).items() if key != "command"}
    paths = [key for key, value in stored.items() if isinstance(value, Path)]
    stored = {key: str(value) if key in paths else value for key, value in stored.items()}
    extra = {"command": "train", "arguments": stored, "paths": paths}
    return callbacks.BackupAndRestore(args.checkpoint_dir, delete_checkpoint=False, extra=extra)


def interrupted(backup, interruption):
    """Say where a checkpointed run stopped by ``interruption`` stands and how to go on; returns
    the exit status a shell gives for the signal (130 for Ctrl-C, 143 for SIGTERM).

    A TrainingInterrupted comes with a checkpoint of the very step it stopped after; any other
    KeyboardInterrupt (a second Ctrl-C, which does not wait) leaves the last one written."""
    path = Path(backup.backup_dir) / checkpoint.FILENAME
    try:
        saved = checkpoint.read(path)
    except HandnetError:
        saved = None
    stopped = isinstance(interruption, TrainingInterrupted)
    if saved is None:
        message = "no epoch was complete, so there is no checkpoint yet; start the run again"
    else:
        lost = "" if stopped else " (the batches since are done again)"
        message = (
            f"{path} holds the state {saved.position()}{lost}; "
            f"continue with: handnet train --resume {backup.backup_dir}"
        )
    cause = f" by {signal.Signals(interruption.signum).name}" if stopped else ""
    print(f"handnet: interrupted{cause}. {message}", file=sys.stderr)
    return interruption.exit_status if stopped else 130
