"""The learner's path runs as tests: every ``python`` block of every chapter (docs/learn/*.md),
in order, in one namespace per chapter, in a fresh folder (Sybil, a well-kept plugin).

A chapter reads as a notebook would run: a block sees what the blocks above it defined. Each
chapter starts in an empty temporary folder, with matplotlib drawing off screen, so its figures
land there and nothing is left behind. A chapter that uses real MNIST says so in a comment
``<!-- needs: mnist -->``: its blocks then skip when MNIST cannot be had (failing under
HANDNET_REQUIRE_ALL=1), as the tests marked ``mnist`` do (../../conftest.py).
"""

import os
import shutil
import tempfile
from pathlib import Path

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

HERE = Path(__file__).parent
NEEDS = ("mnist", "fashion", "browser")


def _setup(namespace):
    import matplotlib

    matplotlib.use("Agg")
    namespace["_learn_home"] = os.getcwd()
    namespace["_learn_folder"] = tempfile.mkdtemp(prefix="handnet-learn-")
    os.chdir(namespace["_learn_folder"])


def _teardown(namespace):
    import matplotlib.pyplot as plt

    plt.close("all")
    os.chdir(namespace["_learn_home"])
    shutil.rmtree(namespace["_learn_folder"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()


def pytest_collection_modifyitems(items):
    """Mark every block of a chapter with what the chapter says it needs."""
    for item in items:
        path = Path(str(item.path))
        if path.suffix != ".md" or HERE not in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        for resource in NEEDS:
            if f"<!-- needs: {resource} -->" in text:
                item.add_marker(resource)
