"""Try a dataset's sources in order: verify each, cache the first good one, report every failure.

Both loaders (MNIST, Fashion-MNIST) describe their sources as ``Source`` objects and hand them to
``load_first_valid``; the folder-of-IDX-files source is shared too (both use the same file names).
"""

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cache import load_npz, save_npz_atomic
from .errors import DatasetError
from .idx import read_idx
from .verify import SPLIT_NAMES, verify

# Array name -> (file stem, number of dimensions) in the IDX file names MNIST made standard.
IDX_FILE_STEMS = {
    "x_train": ("train-images", 3),
    "y_train": ("train-labels", 1),
    "x_test": ("t10k-images", 3),
    "y_test": ("t10k-labels", 1),
}


@dataclass(frozen=True)
class Source:
    """A place a dataset can come from; ``load()`` returns a dict keyed by SPLIT_NAMES or raises."""

    description: str
    load: Callable[[], dict]
    is_cache: bool = False


def load_first_valid(spec, sources, *, cache_path, verbose, how_to_supply):
    """Return ``((x_train, y_train), (x_test, y_test))`` from the first source passing ``verify``.

    With a ``cache_path``, the cache is tried before ``sources`` and written after any other
    source succeeds (a corrupt cache is thus skipped and rebuilt). A source that raises
    DatasetError or OSError, or whose arrays fail verification, is reported and the next is tried.
    If all fail, raises one DatasetError listing each source with its reason, then
    ``how_to_supply``.
    """
    if cache_path is not None:
        sources = [cache_source(cache_path), *sources]
    failures = []
    for source in sources:
        try:
            arrays = source.load()
            verify(arrays, spec)
        except (DatasetError, OSError) as error:
            failures.append(f"  - {source.description}: {error}")
            _say(verbose, f"{spec.name}: skipped {source.description}: {error}")
            continue
        _say(verbose, f"{spec.name} from {source.description}")
        if cache_path is not None and not source.is_cache:
            _write_cache(cache_path, arrays, spec.name, verbose)
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    tried = "\n".join(failures)
    raise DatasetError(
        f"could not load {spec.name} from any source; tried:\n{tried}\n{how_to_supply}"
    )


def cache_source(path):
    """The ``.npz`` cache that ``load_first_valid`` writes; missing on a first run."""
    path = Path(path)

    def load():
        if not path.exists():
            raise DatasetError("no file there yet")
        return load_npz(path)

    return Source(f"cache {path}", load, is_cache=True)


def folder_source(folder, npz_name=None):
    """A folder the user filled: the four IDX files (plain or .gz), else ``npz_name`` if given."""
    folder = Path(folder).expanduser()
    what = "IDX files" + (f" or {npz_name}" if npz_name else "")
    return Source(f"folder {folder} ({what})", lambda: load_folder(folder, npz_name))


def load_folder(folder, npz_name=None):
    """Read the four IDX files in ``folder`` into a dict keyed by SPLIT_NAMES (or ``npz_name``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    found = {name: find_idx_file(folder, *IDX_FILE_STEMS[name]) for name in SPLIT_NAMES}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return {name: read_idx(path) for name, path in found.items()}
    if npz_name and (folder / npz_name).is_file():
        return load_npz(folder / npz_name)
    expected = ", ".join(
        f"{IDX_FILE_STEMS[name][0]}-idx{IDX_FILE_STEMS[name][1]}-ubyte[.gz]" for name in missing
    )
    alternative = f", and no {npz_name}" if npz_name else ""
    raise DatasetError(f"{folder} lacks {expected}{alternative}")


def find_idx_file(folder, stem, ndim):
    """The first of ``stem-idxN-ubyte``, ``stem.idxN-ubyte`` (each plain or .gz) in ``folder``.

    None if there is none.
    """
    for name in (f"{stem}-idx{ndim}-ubyte", f"{stem}.idx{ndim}-ubyte"):
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    return None


def _write_cache(path, arrays, dataset_name, verbose):
    try:
        save_npz_atomic(path, **arrays)
    except OSError as error:
        warnings.warn(f"handnet: could not cache {dataset_name} at {path}: {error}", stacklevel=3)
        return
    _say(verbose, f"{dataset_name} cached at {path}")


def _say(verbose, message):
    if verbose:
        print(f"handnet: {message}", file=sys.stderr)
