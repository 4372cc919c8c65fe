"""handnet experiment: train a grid of networks that differ in a few settings, and compare them."""

import argparse
import os
import textwrap
from pathlib import Path

from ..experiments import SETTINGS, Experiment, run_experiment
from ..experiments.report import PLOTS
from ..experiments.settings import DEFAULTS, format_value
from ..experiments.spec import parse_assignment
from .common import positive_int

REPORT_FILES = ("results.md", "results.csv", "results.json", *PLOTS)


def register(subparsers):
    settings = "\n".join(
        textwrap.fill(
            f"{name:<17}{setting.help}: {setting.expects}"
            + (f"; default {format_value(DEFAULTS[name])}" if DEFAULTS[name] is not None else ""),
            width=100,
            initial_indent="  ",
            subsequent_indent=" " * 19,
        )
        for name, setting in SETTINGS.items()
    )
    experiment = subparsers.add_parser(
        "experiment",
        help="train a grid of networks and compare their learning curves",
        description="Train one network per combination of the varied settings, in parallel "
        "processes (or on a Dask cluster), then write results.md, results.csv, results.json, "
        "accuracy.png and loss.png. "
        "Each run has its own folder; a run already finished there is not trained again.",
        epilog="examples:\n"
        "  handnet experiment experiments/activations.toml\n"
        "  handnet experiment --vary activation=sigmoid,relu --vary lr=0.01,0.1 --epochs 5 "
        "--train-limit 5000 --out runs/exp1\n"
        "  handnet experiment --vary hidden=32,256,256-128 --set dropout=0    "
        "(256-128: two hidden layers)\n"
        "  handnet experiment experiments/capacity.toml --scheduler tcp://host:8786    "
        "(on a Dask cluster)\n\n"
        "settings (unset ones come from the model's recipe, as in handnet train):\n" + settings,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    experiment.add_argument(
        "spec",
        nargs="?",
        type=Path,
        metavar="EXPERIMENT.toml",
        help="a file with [base] settings and a [grid] of values to try (see experiments/)",
    )
    experiment.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="SETTING=V1,V2",
        help="try each value; several --vary give every combination (replaces the file's grid "
        "for that setting)",
    )
    experiment.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="use VALUE in every run (overrides the file's base)",
    )
    experiment.add_argument(
        "--epochs", type=positive_int, help="same as --set epochs=N"
    )
    experiment.add_argument(
        "--train-limit", type=positive_int, metavar="N", help="same as --set train_limit=N"
    )
    where = experiment.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=positive_int,
        help="runs trained at once on this machine, one process each (default: the number of "
        f"cores, {os.cpu_count()})",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="train the runs on the workers of this Dask scheduler (tcp://host:8786) instead; "
        "their results come back here (needs pip install 'handnet[cluster]'; docs/experiments.md)",
    )
    experiment.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the runs and the report (default: runs/<name of EXPERIMENT.toml>, "
        "or runs/experiment)",
    )
    experiment.add_argument(
        "--dry-run", action="store_true", help="list the runs and their settings; train nothing"
    )
    experiment.set_defaults(command=experiment_command)


def experiment_command(args):
    experiment = _experiment(args)
    if args.dry_run:
        for run in experiment.runs():
            settings = ", ".join(f"{k}={format_value(v)}" for k, v in run.config.items())
            print(f"{run.name}: {settings}")
        return 0
    out = args.out or Path("runs") / (args.spec.stem if args.spec else "experiment")
    where = (
        f"on the Dask cluster at {args.scheduler}"
        if args.scheduler
        else f"{args.jobs or os.cpu_count() or 1} at a time"
    )
    print(f"{experiment.title}: {len(experiment.runs())} runs, {where}, in {out}/")
    run_experiment(experiment, out, jobs=args.jobs, scheduler=args.scheduler)
    table = (out / "results.md").read_text().split("\n")
    print("\n".join(line for line in table if line.startswith("|")))
    print(f"Wrote {out}/: {' '.join(REPORT_FILES)}, and a folder per run")
    return 0


def _experiment(args):
    """The file's experiment (or an empty one), with the command line's settings applied."""
    experiment = Experiment.from_toml(args.spec) if args.spec else Experiment()
    assignments = [("--set", *parse_assignment(text, "--set")) for text in args.set]
    if args.epochs:
        assignments.append(("--epochs", "epochs", args.epochs))
    if args.train_limit:
        assignments.append(("--train-limit", "train_limit", args.train_limit))
    for option, name, value in assignments:
        experiment.fix(name, value, where=option)
    for text in args.vary:
        name, values = parse_assignment(text, "--vary")
        experiment.vary(name, values.split(","), where="--vary")
    if not args.spec and experiment.grid:
        experiment.title = "Varying " + " and ".join(experiment.grid)
    return experiment
