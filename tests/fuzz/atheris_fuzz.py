"""Coverage-guided fuzzing of the loaders with atheris (libFuzzer for Python); optional.

    pip install atheris
    cd tests && python -m fuzz.atheris_fuzz TARGET [libFuzzer options] [CORPUS_DIR]

TARGET is one of idx, npz, keras, h5, image, pickle. For example, 200 000 runs on the IDX reader
with libFuzzer's memory cap (a loader that trusts a declared size trips it):

    cd tests && python -m fuzz.atheris_fuzz idx -atheris_runs=200000 -rss_limit_mb=2048 -timeout=10

Each input goes to the loader as a file. A HandnetError is the expected refusal; any other
exception, a crash, a timeout or an allocation over the cap is reported by libFuzzer with the
input that caused it (crash-<hash> in the working folder). The corpus starts from the same seeds
as the hypothesis tests.
"""

import sys
import tempfile
from functools import partial
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from handnet.datasets.idx import read_idx
    from handnet.datasets.safe_pickle import safe_load_pickle
    from handnet.errors import HandnetError
    from handnet.keras_io import load_any
    from handnet.preprocess import load_image, to_mnist
    from handnet.saving import load_model

from .keras_seeds import KERAS_SEED, LEGACY_SEED
from .test_fuzz_idx import SEEDS as IDX_SEEDS
from .test_fuzz_images import SEEDS as IMAGE_SEEDS
from .test_fuzz_npz import SEED as NPZ_SEED
from .test_fuzz_pickle import SEEDS as PICKLE_SEEDS


def _read_pickle(path):
    with open(path, "rb") as file:
        return safe_load_pickle(file)


def _read_digit(path):
    return to_mnist(load_image(path))


# In this process: atheris sees coverage only here, and libFuzzer's -timeout catches a hang.
_read_keras_in_process = partial(load_any, isolate=False)


TARGETS = {
    "idx": (read_idx, ".idx", IDX_SEEDS),
    "npz": (load_model, ".npz", [NPZ_SEED]),
    "keras": (_read_keras_in_process, ".keras", [KERAS_SEED]),
    "h5": (_read_keras_in_process, ".h5", [LEGACY_SEED]),
    "image": (_read_digit, ".png", list(IMAGE_SEEDS.values())),
    "pickle": (_read_pickle, ".pkl", PICKLE_SEEDS),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.atheris_fuzz {{{','.join(TARGETS)}}} [libFuzzer options]")
    load, suffix, seeds = TARGETS[sys.argv[1]]
    case = Path(tempfile.mkdtemp(prefix="handnet-atheris-")) / f"case{suffix}"
    corpus = [arg for arg in sys.argv[2:] if not arg.startswith("-")]
    if corpus:
        for i, seed in enumerate(seeds):
            Path(corpus[0]).mkdir(parents=True, exist_ok=True)
            (Path(corpus[0]) / f"seed-{i}").write_bytes(seed)

    def one_input(data):
        case.write_bytes(data)
        try:
            load(case)
        except HandnetError:
            pass

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
