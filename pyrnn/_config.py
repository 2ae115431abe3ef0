"""Build and runtime information: what was compiled and which code path runs."""
from __future__ import annotations

import platform

import numpy as np

from . import _core
from . import cuda as _cuda


def config() -> dict:
    """The build and runtime configuration as a dict."""
    info = dict(_core.build_info())
    from . import __version__

    info.update(
        version=__version__,
        default_threads=_core.max_threads(),
        python=platform.python_version(),
        numpy=np.__version__,
        machine=platform.machine(),
        cuda_info=_cuda.info(),
        array_pool=_core.array_pool(),
    )
    return info


def show_config() -> None:
    """Print version, compiler, OpenMP, default threads, instruction-set path, Eigen, array
    pool, CUDA."""
    info = config()
    rows = [
        ("pyrnn", info["version"]),
        ("compiler", info["compiler"]),
        ("OpenMP", info["openmp"] or "not available (serial build)"),
        ("default threads", info["default_threads"]),
        ("instruction set in use", f'{info["isa"]} (built: {info["available_isas"]}; '
                                   "force with PYRNN_ISA=baseline)"),
        ("Eigen", f'{info["eigen_version"]} ({info["eigen_simd"]})'),
        ("array pool", f'keeps up to {info["array_pool"]["limit_bytes"] >> 20} MB of freed '
                       "output memory (PYRNN_ARRAY_POOL_MB)"),
        ("CUDA", _cuda.describe()),
        ("python / numpy", f'{info["python"]} / {info["numpy"]} on {info["machine"]}'),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
