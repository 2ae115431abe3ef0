"""Build and runtime information: what was compiled and which code path runs."""
from __future__ import annotations

import os
import platform

import numpy as np

from . import _core
from . import cuda as _cuda


_FLUSH_ENV = "PYRNN_FLUSH_DENORMALS"


def set_flush_denormals(enabled: bool) -> None:
    """Whether the kernels' threads flush subnormal floats to zero (FTZ and DAZ) during a call.

    On by default: vanishing gradients in long BPTT become subnormal, and arithmetic on them is
    about 100x slower. The caller's floating-point mode is restored after every call, so NumPy
    code outside the kernels is never affected. Turn it off (or set ``PYRNN_FLUSH_DENORMALS=0``
    before import) for IEEE gradual underflow inside the kernels, as torch computes."""
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    _core.set_flush_denormals(bool(enabled))


def flush_denormals() -> bool:
    """Whether the kernels flush subnormal floats to zero (see set_flush_denormals)."""
    return bool(_core.flush_denormals())


def _apply_flush_env() -> None:
    value = os.environ.get(_FLUSH_ENV)
    if value is None or value == "":
        return
    if value not in ("0", "1"):
        raise ValueError(f"{_FLUSH_ENV} must be 0 or 1, got {value!r}")
    _core.set_flush_denormals(value == "1")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config() -> dict:
    """The build and runtime configuration as a dict."""
    info = dict(_core.build_info())
    from . import __version__

    info.update(
        version=__version__,
        default_threads=_core.max_threads(),
        threads_backend=_core.threads_backend(),
        python=platform.python_version(),
        numpy=np.__version__,
        machine=platform.machine(),
        cuda_info=_cuda.info(),
        array_pool=_core.array_pool(),
        cpu=cpu_model(),
        supported_isas=_core.supported_isas(),
        cache_sizes=_core.cache_sizes(),
        flush_denormals=flush_denormals(),
    )
    return info


def show_config() -> None:
    """Print version, compiler, OpenMP, default threads, CPU and its caches, instruction-set
    path, Eigen, subnormal flushing, array pool, CUDA."""
    info = config()
    caches = info["cache_sizes"]
    rows = [
        ("pyrnn", info["version"]),
        ("compiler", info["compiler"]),
        ("OpenMP", info["openmp"] or "not available (serial build)"),
        ("default threads", info["default_threads"]),
        ("threads run by", info["threads_backend"]),
        ("CPU", info["cpu"]),
        ("caches", f'L1d {caches["l1d"] >> 10} KiB, L2 {caches["l2"] >> 10} KiB per core, '
                   f'L3 {caches["l3"] >> 20} MiB (from {caches["source"]})'),
        ("instruction set in use", f'{info["isa"]} (built: {info["available_isas"]}; this CPU '
                                   f'runs: {info["supported_isas"]}; force with PYRNN_ISA=NAME)'),
        ("Eigen", f'{info["eigen_version"]} ({info["eigen_simd"]})'),
        ("subnormals", "flushed to zero in kernel threads (PYRNN_FLUSH_DENORMALS=0 keeps them)"
                       if info["flush_denormals"] else "kept (IEEE gradual underflow)"),
        ("array pool", f'keeps up to {info["array_pool"]["limit_bytes"] >> 20} MB of freed '
                       "output memory (PYRNN_ARRAY_POOL_MB)"),
        ("CUDA", _cuda.describe()),
        ("python / numpy", f'{info["python"]} / {info["numpy"]} on {info["machine"]}'),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
