"""The learner's path runs as tests: every ``python`` block of every chapter (docs/learn/*.md),
in order, in one namespace per chapter, in a fresh folder (Sybil, a well-kept plugin).

A chapter reads as a notebook would run: a block sees what the blocks above it defined. Each
chapter starts in an empty temporary folder, with matplotlib drawing off screen, so its figures
land there and nothing is left behind. A chapter that uses real MNIST says so in a comment
``<!-- needs: mnist -->``: its blocks then skip when MNIST cannot be had (failing under
HANDNET_REQUIRE_ALL=1), as the tests marked ``mnist`` do (../../conftest.py).

The chapters run on one BLAS thread (threadpoolctl): their arrays are small, and on a busy
machine a second BLAS thread made chapter 6's hundreds of little products 25× slower (measured:
200 predicts of a (500, 128) batch, 5.3 s against 0.2 s). The numbers also stop depending on
the thread count. A chapter may still ask for more inside a block (`threadpool_limits(2)`).
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
    from threadpoolctl import threadpool_limits

    matplotlib.use("Agg")
    namespace["_learn_threads"] = threadpool_limits(limits=1, user_api="blas")
    namespace["_learn_home"] = os.getcwd()
    namespace["_learn_folder"] = tempfile.mkdtemp(prefix="handnet-learn-")
    os.chdir(namespace["_learn_folder"])


def _teardown(namespace):
    import matplotlib.pyplot as plt

    plt.close("all")
    namespace["_learn_threads"].restore_original_limits()
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
