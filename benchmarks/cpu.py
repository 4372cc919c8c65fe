"""The machine a figure was measured on: CPU model, ISA flags, BLAS and its kernel, and the
sgemm rate the BLAS reaches here (float32 products, one and all threads)."""

import os
import platform
import re
import sys
import time


#: Variables that change which kernel OpenBLAS runs, or on how many threads, and those of
#: common.ISA_CAPS (which kernels NumPy, PyTorch, oneDNN and MKL run).
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
CAP_VARIABLES = ("NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                 "MKL_ENABLE_INSTRUCTIONS")  # fmt: skip


def cpu_model():
    try:
        with open("/proc/cpuinfo") as file:
            text = file.read()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "amx_tile", "amx_bf16", "amx_int8")  # fmt: skip
    present = set(flags.group(1).split()) if flags else set()
    name = model.group(1).strip() if model else platform.machine()
    return name, [f for f in wanted if f in present]


def blas_info():
    import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)
    from threadpoolctl import threadpool_info

    return [
        {k: entry.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for entry in threadpool_info()
        if entry.get("user_api") == "blas"
    ]


def kernels_in_use():
    """{numpy: its SIMD targets enabled here, torch: ATen's CPU capability}: which kernels
    ran, checked (an ISA cap that a library ignored shows here); torch's when the benchmark
    imported it."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    kernels = {"numpy": [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]}
    if "torch" in sys.modules:
        kernels["torch"] = sys.modules["torch"].backends.cpu.get_cpu_capability()
    return kernels


def sgemm_rate(n=1024, repeats=5):
    """GFLOP/s of an n×n float32 product, best of ``repeats``."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def describe():
    """{cpu, isa, blas, sgemm_gflops, cores} for a benchmark's JSON and title."""
    model, isa = cpu_model()
    return {
        "cpu": model,
        "isa": isa,
        "cores": os.cpu_count(),
        "blas": blas_info(),
        "sgemm_gflops_1024": round(sgemm_rate(), 1),
        "kernels": kernels_in_use(),
        "env": {k: os.environ[k] for k in BLAS_VARIABLES + CAP_VARIABLES if k in os.environ},
    }


def headline(info):
    blas = ", ".join(
        f"{b['internal_api']} {b['version']} {b['architecture']}" for b in info["blas"]
    )
    isa = " ".join(info["isa"]) or "no AVX2"
    capped = ""
    if "ONEDNN_MAX_CPU_ISA" in info.get("env", {}):
        kernels = info.get("kernels", {})
        capped = (
            f"; every library capped at {info['env']['ONEDNN_MAX_CPU_ISA']} (emulation: NumPy "
            f"{' '.join(kernels.get('numpy', []))}, torch "
            f"{kernels.get('torch') or 'not loaded yet: named at the end'})"
        )
    return (
        f"{info['cpu']} ({info['cores']} cores; {isa}); BLAS {blas}; "
        f"sgemm 1024² {info['sgemm_gflops_1024']} GFLOP/s{capped}"
    )
