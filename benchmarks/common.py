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
