"""Freed memory kept for the next step: glibc's malloc asked not to hand it back to the kernel.

Every training step allocates the same arrays again: activations, gradients, im2col matrices,
Winograd tiles, a few MiB each. glibc's malloc serves a block of 128 KiB or more with an mmap
of its own (a threshold it raises, as such blocks are freed, up to 32 MiB) and unmaps it when
it is freed; and it gives the top of its heap back once more than twice that threshold is free
there. Either way the next step's arrays fault their pages in again, and the kernel zeroes
each 4 KiB page first. Measured on the cnn at batch 128, one thread (AMD EPYC, Zen 4): 416 page
faults a step, 1.4 ms of system time, and 25.5–32.0 ms of CPU time a step against 22.5–25.3
with the memory kept (three alternating runs; lenet 94.5–106 against 104–113 ms, the mlp, whose
arrays are small, the same).

``keep_freed_memory()`` sets glibc's M_MMAP_THRESHOLD to 32 MiB (its largest) and
M_TRIM_THRESHOLD to 256 MiB, once per process: blocks under 32 MiB come from the heap and go
back to it, and up to 256 MiB of free heap stays with the process for the next step. The cost
is resident memory: the process keeps its peak (and up to 256 MiB more) instead of shrinking
between steps. fit, predict and evaluate call it; ``HANDNET_KEEP_MEMORY=0`` in the environment
leaves malloc as it is. Elsewhere than glibc (musl, macOS, Windows) it does nothing.
"""

import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 256 * 2**20


@functools.cache
def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory (see above); True when it was asked, once per
    process (forked processes inherit it)."""
    if os.environ.get("HANDNET_KEEP_MEMORY", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt answers 1 on success, 0 for a value it refuses (then glibc's default stays)
    mmap_set = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_set = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap_set and trim_set)
