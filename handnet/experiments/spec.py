"""An experiment: settings shared by every run (the base) and a grid of settings to vary.

In a TOML file::

    title = "Activations"                  # optional; heads the tables and plots
    description = "Which trains fastest?"  # optional; one line under the title
    [base]                                 # settings every run shares
    hidden = "128"
    epochs = 5
    [grid]                                 # setting = the values to try; every combination runs
    activation = ["sigmoid", "tanh", "relu", "leaky_relu"]
    lr = [0.01, 0.1]

or on the command line: ``--vary activation=sigmoid,relu --vary lr=0.01,0.1 --set epochs=5``.
Each run is named after its varied values (``activation=relu_lr=0.1``): the name is its folder,
so a run keeps its name, and its results, when the experiment is run again.
"""

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HandnetError
from .settings import format_value, parse, resolve

TOML_KEYS = ("title", "description", "base", "grid")
# Run names become folder names: letters, digits and . _ = + - only.
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class Run:
    name: str
    varied: dict  # the grid's values for this run: {"lr": 0.1}
    requested: dict  # base + varied, as written (before defaults)
    config: dict  # every setting, defaults filled in


@dataclass
class Experiment:
    title: str = "Experiment"
    description: str = ""
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)  # setting -> list of values, in the order given

    @classmethod
    def from_toml(cls, path):
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise HandnetError(f"no experiment file {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise HandnetError(f"{path} is not valid TOML: {error}") from None
        unknown = sorted(set(data) - set(TOML_KEYS))
        if unknown:
            raise HandnetError(
                f"{path}: unknown key {', '.join(unknown)}; expected {', '.join(TOML_KEYS)} "
                "(settings go under [base] or [grid])"
            )
        for table in ("base", "grid"):
            if not isinstance(data.get(table, {}), dict):
                raise HandnetError(
                    f"{path}: {table} must be a table ([{table}]), got {data[table]!r}"
                )
        both = sorted(set(data.get("base", {})) & set(data.get("grid", {})))
        if both:
            raise HandnetError(
                f"{path}: {', '.join(both)} is in [base] and in [grid]; a setting is either "
                "fixed or varied"
            )
        experiment = cls(
            title=str(data.get("title", path.stem)), description=str(data.get("description", ""))
        )
        for name, value in data.get("base", {}).items():
            experiment.fix(name, value, where=f"{path}: base")
        for name, values in data.get("grid", {}).items():
            if not isinstance(values, list):
                raise HandnetError(
                    f"{path}: grid.{name} expects a list of values such as [1, 2], got {values!r}"
                )
            experiment.vary(name, values, where=f"{path}: grid")
        return experiment

    def fix(self, name, value, where):
        """Set ``name`` to ``value`` in every run."""
        if name in self.grid:
            raise HandnetError(
                f"{where}: {name} is varied ({', '.join(map(format_value, self.grid[name]))}), "
                "so it cannot also be fixed"
            )
        self.base[name] = parse(name, value, where)

    def vary(self, name, values, where):
        """Try each of ``values`` for ``name`` (replacing values given before)."""
        parsed = [parse(name, value, where) for value in values]
        if not parsed:
            raise HandnetError(f"{where}: {name} needs at least one value to try, got none")
        shown = [format_value(value) for value in parsed]
        repeated = sorted({text for text in shown if shown.count(text) > 1})
        if repeated:
            raise HandnetError(f"{where}: {name} lists {', '.join(repeated)} more than once")
        self.base.pop(name, None)
        self.grid[name] = parsed

    def runs(self):
        """Every combination of the grid's values as a Run, the last setting varying fastest."""
        names = list(self.grid)
        runs = []
        for values in itertools.product(*self.grid.values()):
            varied = dict(zip(names, values))
            requested = {**self.base, **varied}
            runs.append(Run(run_name(varied), varied, requested, resolve(requested)))
        return runs

    def to_dict(self):
        return {
            "title": self.title,
            "description": self.description,
            "base": self.base,
            "grid": self.grid,
        }


def run_name(varied):
    """{"activation": "relu", "lr": 0.1} -> "activation=relu_lr=0.1"; "base" when nothing varies."""
    if not varied:
        return "base"
    parts = (f"{name}={format_value(value)}" for name, value in varied.items())
    return "_".join(_UNSAFE.sub("-", part) for part in parts)


def parse_assignment(text, option):
    """"lr=0.01,0.1" -> ("lr", "0.01,0.1"), for --vary and --set."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip() or not value.strip():
        example = "lr=0.01,0.1" if option == "--vary" else "epochs=5"
        raise HandnetError(
            f"{option} expects SETTING=VALUE such as {example}, got {text!r}"
        )
    return name.strip(), value.strip()
