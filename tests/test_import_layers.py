"""The package keeps its stack (pyproject.toml [tool.importlinter], docs/architecture.md): a
level imports only the levels below it, siblings marked "|" import nothing of each other, every
module sits on a level, and no package's modules import each other in a cycle.

The last two tests break a copy of the package on purpose and check that import-linter says so.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root):
    """(exit status, output) of lint-imports run on the package and pyproject.toml in ``root``."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: pip install import-linter (the test extra)")
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_package_keeps_its_stack():
    status, output = lint_imports(ROOT)
    assert status == 0, output[-6000:]
    assert "2 kept, 0 broken" in output


@pytest.fixture
def copy(tmp_path):
    """The package and its pyproject.toml, copied to be broken."""
    shutil.copytree(ROOT / "handnet", tmp_path / "handnet", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_line(path, line):
    path.write_text(path.read_text() + f"\n{line}\n")


def test_a_layer_importing_the_zoo_breaks_the_stack(copy):
    add_line(copy / "handnet/layers/dense.py", "from ..zoo import architectures  # noqa")
    status, output = lint_imports(copy)
    assert status != 0
    assert "handnet.layers.dense -> handnet.zoo.architectures" in output


def test_an_import_inside_a_function_counts_too(copy):
    add_line(copy / "handnet/model/sequential.py", "def f():\n    from .. import training  # noqa")
    status, output = lint_imports(copy)
    assert status != 0
    assert "handnet.model.sequential -> handnet.training" in output


def test_siblings_that_must_stay_apart_may_not_import_each_other(copy):
    add_line(copy / "handnet/losses.py", "from . import optimizers  # noqa")
    status, output = lint_imports(copy)
    assert status != 0
    assert "handnet.losses -> handnet.optimizers" in output


def test_a_cycle_inside_a_package_is_found(copy):
    add_line(copy / "handnet/training/checkpoint.py", "from . import callbacks  # noqa")
    status, output = lint_imports(copy)
    assert status != 0
    assert "No import cycles among the modules of any package BROKEN" in output


def test_a_module_on_no_level_is_refused(copy):
    (copy / "handnet/stray.py").write_text("")
    status, output = lint_imports(copy)
    assert status != 0
    assert "stray" in output
