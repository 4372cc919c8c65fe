"""What every fuzz test shares: how many cases to run, byte mutations, and the property.

The property, for any bytes handed to a loader: it returns a correct result, or it raises a
HandnetError whose message names the file. Anything else fails the case: another exception, a
case that runs longer than CASE_SECONDS (a hang), or an allocation the memory guard refuses (a
size taken from the file without a check against the file's length and a cap).

HANDNET_FUZZ_EXAMPLES=N runs N cases per fuzz test instead of each test's CI count (see
docs/reliability.md for the long run).
"""

import contextlib
import io
import math
import os
import resource
import signal
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from handnet.errors import HandnetError

CASE_SECONDS = 10
#: Address space a fuzz case may add to what the process already maps. A loader that checks
#: declared sizes against the file length never comes near it; one that trusts a header does.
MEMORY_HEADROOM_BYTES = 3 * 2**30

CASE_DIR = Path(tempfile.mkdtemp(prefix="handnet-fuzz-"))


def fuzz_settings(ci_examples):
    """Hypothesis settings running ``ci_examples`` cases, or HANDNET_FUZZ_EXAMPLES when set.

    No deadline: timings on a shared CI machine vary; hangs are caught by ``outcome``'s alarm.
    No shrinking unless HANDNET_FUZZ_SHRINK=1: a loader case is slow to shrink (minutes), and the
    failing bytes are printed either way.
    """
    examples = int(os.environ.get("HANDNET_FUZZ_EXAMPLES", ci_examples))
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("HANDNET_FUZZ_SHRINK") == "1":
        phases.append(Phase.shrink)
    return settings(
        max_examples=examples,
        deadline=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def write_case(data, name):
    """Write one case's bytes to a file called ``name`` (its suffix matters to some loaders)."""
    path = CASE_DIR / name
    path.write_bytes(data)
    return path


def seed_file(name, write):
    """A valid file to mutate: (its bytes, {member: bytes} of the zip it is), made by
    ``write(path)`` (e.g. ``model.save``)."""
    path = write_case(b"", name)
    write(path)
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return data, {member: archive.read(member) for member in archive.namelist()}


def zip_of(members):
    """A zip archive holding {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class Hang(Exception):
    """A fuzz case ran past CASE_SECONDS."""


@contextlib.contextmanager
def time_limit(seconds=CASE_SECONDS):
    def expire(signum, frame):
        raise Hang(f"the loader ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _mapped_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def memory_guard(headroom=MEMORY_HEADROOM_BYTES):
    """Cap the address space at what is mapped now + ``headroom``, so an allocation sized by an
    unchecked header field fails with MemoryError (and fails the case) instead of swapping."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _mapped_bytes() + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def outcome(load, path, *args):
    """``load(path, *args)``'s result, or None when it raised a HandnetError naming the file.

    Any other exception (MemoryError included) or a hang propagates and fails the case.
    """
    try:
        with memory_guard(), time_limit():
            return load(path, *args)
    except HandnetError as error:
        message = str(error)
        assert path.name in message, f"the error does not name the file: {message!r}"
        return None


def check_model_loads(load, path):
    """``outcome(load, path)``; a model that loads must run: predict on one sample (when the
    sample is small enough)."""
    model = outcome(load, path)
    if model is not None:
        assert model.built
        check_predicts(model)
    return model


def check_predicts(model, max_values=10_000):
    """Predict on one sample of zeros per input (when the inputs are small enough) and check
    that every output has the shape the model declares."""
    shapes = [tensor.per_sample_shape for tensor in model.input_tensors]
    if sum(math.prod(shape) for shape in shapes) > max_values:
        return
    out = model.predict([np.zeros((1, *shape), model.dtype) for shape in shapes])
    if isinstance(out, dict):
        out = list(out.values())
    outputs = out if isinstance(out, list) else [out]
    declared = [tensor.per_sample_shape for tensor in model.output_tensors]
    assert [o.shape[1:] for o in outputs] == declared


# -- byte mutations ------------------------------------------------------------------------------
#: Values a forged header field likes to hold: the edges of 16, 32 and 64-bit integers.
HUGE_FIELDS = [
    value.to_bytes(width, order)
    for width in (2, 4, 8)
    for value in (2 ** (8 * width) - 1, 2 ** (8 * width - 1), 2 ** (8 * width - 1) - 1)
    for order in ("big", "little")
]


@st.composite
def mutated(draw, original, header_bytes=64):
    """``original`` after 1 to 6 edits: bit flips, truncation, inserted or deleted runs, random
    overwrites, and fields set to huge integers. Half the edit positions fall in the first
    ``header_bytes`` bytes, where sizes and counts live."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        end = len(data) - 1
        where = draw(st.one_of(st.integers(0, min(header_bytes, end)), st.integers(0, end)))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite", "huge"]))
        if edit == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif edit == "truncate":
            del data[where:]
        elif edit == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[where : where + draw(st.integers(1, 16))]
        elif edit == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=8))
            data[where : where + len(patch)] = patch
        else:
            patch = draw(st.sampled_from(HUGE_FIELDS))
            data[where : where + len(patch)] = patch
    return bytes(data)
