"""Experiments: train a grid of networks that differ in a few settings, and compare them.

    experiment = Experiment.from_toml("experiments/activations.toml")
    experiment.vary("lr", [0.01, 0.1], where="my script")
    results = run_experiment(experiment, "runs/activations", jobs=2)

settings.py  the settings a run is made of, how each is written, their defaults
spec.py      an experiment: base settings + grid -> named runs
training.py  one run: build, train, test, write its folder (what a worker process runs)
runner.py    the grid in parallel processes, finished runs skipped
report.py    results.md / .csv / .json and the overlaid learning curves
"""

from .runner import run_experiment
from .settings import SETTINGS
from .spec import Experiment, run_name

__all__ = ["SETTINGS", "Experiment", "run_experiment", "run_name"]
