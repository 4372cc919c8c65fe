"""Shared pieces of the benchmarks: timing, thread settings, the result table."""

import json
import os
import statistics
import time


def set_threads(threads):
    """Same thread count for NumPy's BLAS and PyTorch; call before importing numpy/torch."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("KERAS_BACKEND", "torch")


#: What keeps every library of a run to one instruction set on a CPU that has more: the
#: kernels an AVX2 CPU would run (OpenBLAS's, NumPy's loops, PyTorch's own, oneDNN's
#: convolutions and LSTM, MKL's products), on this CPU's caches, memory and clock. An
#: emulation of an AVX2 CPU's code paths, not of the CPU: figures from it are labelled so.
ISA_CAPS = {
    "avx2": {
        "OPENBLAS_CORETYPE": "Haswell",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
}


def add_isa_cap(parser):
    parser.add_argument(
        "--isa-cap", choices=sorted(ISA_CAPS), default=None,
        help="run every library's kernels for this instruction set only (an emulation of such "
        "a CPU's code paths; the JSON's machine says which kernels ran)",
    )  # fmt: skip


def cap_isa(name):
    """Set ISA_CAPS[name]'s variables (None: none); call before importing numpy or torch."""
    if name is not None:
        os.environ.update(ISA_CAPS[name])


def best_of(function, repeats):
    """Run ``function`` ``repeats`` times; return (min, median) seconds. The minimum is the
    least disturbed run on a noisy machine; the median shows how noisy it was."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def print_table(title, rows, columns):
    """rows: list of dicts; columns: list of (key, header, format)."""
    print(f"\n{title}")
    widths = [
        max(len(header), *(len(fmt.format(row[key])) for row in rows))
        for key, header, fmt in columns
    ]
    print("  ".join(header.ljust(w) for (_, header, _), w in zip(columns, widths)))
    for row in rows:
        print("  ".join(fmt.format(row[key]).ljust(w) for (key, _, fmt), w in zip(columns, widths)))


def write_json(path, payload):
    if path:
        with open(path, "w") as file:
            json.dump(payload, file, indent=2)
        print(f"\nwrote {path}")
