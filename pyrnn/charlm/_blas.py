"""Best-effort control of NumPy's BLAS threads (OpenBLAS), without extra dependencies.

The language model's only NumPy GEMMs are the small output layer and its gradients. OpenBLAS
spreads them over all cores with spinning threads, which on a busy machine makes them 10-70x
slower than one thread; so training and evaluation run with one BLAS thread
(``OPENBLAS_NUM_THREADS=1`` does the same when set before NumPy is imported). Linux only (the
library is found through ``/proc/self/maps``); elsewhere this does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import re

__all__ = ["single_blas_thread"]

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")


def _openblas_functions():
    """(get, set) function pairs of every loaded OpenBLAS."""
    try:
        with open("/proc/self/maps") as handle:
            maps = handle.read()
    except OSError:
        return []
    pairs = []
    for path in sorted(set(re.findall(r"(/\S*openblas\S*\.so[\w.\-]*)", maps))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    pairs.append((get, put))
                    break
            else:
                continue
            break
    return pairs


@contextlib.contextmanager
def single_blas_thread():
    """Run the block with one OpenBLAS thread, then restore the previous count."""
    try:
        pairs = _openblas_functions()
        saved = [(put, get()) for get, put in pairs]
        for put, _ in saved:
            put(1)
    except Exception:  # never let a best-effort tweak break training
        saved = []
    try:
        yield
    finally:
        for put, old in saved:
            put(old)
