"""The optional CUDA kernels: whether they are built and usable here, and on which GPU.

pyrnn's CUDA kernels are built only when asked for (``pip install . -Ccmake.define.PYRNN_CUDA=ON``
with nvcc and cuBLAS present). They are used with ``device="cuda"`` in :mod:`pyrnn.functional`
and ``layer.to("cuda")`` for the layers; NumPy arrays go in and come out either way.

>>> import pyrnn.cuda
>>> pyrnn.cuda.is_available()      # built, the library loads and a GPU it has code for is present
>>> pyrnn.cuda.unavailable_reason()  # why not, in words (None when available)
"""
from __future__ import annotations

from typing import Optional

from . import _core

__all__ = ["is_available", "device_name", "unavailable_reason", "info", "describe"]

NOT_BUILT = ("pyrnn was built without CUDA support; rebuild with nvcc and cuBLAS present: "
             "pip install . -Ccmake.define.PYRNN_CUDA=ON")


_INFO: Optional[dict] = None


def _query() -> dict:
    query = getattr(_core, "cuda_device_info", None)
    if query is None:
        return {"built": False, "available": False, "reason": NOT_BUILT, "device_count": 0}
    try:
        return dict(query())
    except Exception as exc:  # defensive: the query itself is written not to raise
        return {"built": True, "available": False, "device_count": 0,
                "reason": f"querying the CUDA device failed: {exc}"}


def info() -> dict:
    """What the CUDA part sees, as a dict: ``built``, ``available``, ``reason`` (why not; None when
    available), ``device_count`` and, when a device was found, ``name``, ``compute_capability``,
    ``total_memory``; also the compiled ``architectures`` and CUDA runtime/driver versions.
    Queried once per process (the CUDA runtime fixes its devices when it starts). Never raises."""
    global _INFO
    if _INFO is None:
        _INFO = _query()
    return dict(_INFO)


def is_available() -> bool:
    """True when the CUDA kernels are built, load, and a GPU they have code for is present.
    Never raises."""
    return bool(info().get("available", False))


def device_name() -> Optional[str]:
    """The name of the GPU the kernels would run on, or None when CUDA is not available."""
    i = info()
    return i.get("name") if i.get("available") else None


def unavailable_reason() -> Optional[str]:
    """Why CUDA cannot be used here (not built, library not loadable, no device...), or None."""
    i = info()
    return None if i.get("available") else str(i.get("reason") or "unknown reason")


def require(what: str) -> None:
    """Raise a RuntimeError naming ``what`` and the reason when CUDA is not available."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"{what}: CUDA is not available: {reason}")


def _arch_list(archs: str) -> str:
    """'800,900' -> 'sm_80 sm_90'."""
    out = []
    for a in str(archs).split(","):
        a = a.strip()
        if a.isdigit():
            out.append(f"sm_{int(a) // 10}")
    return " ".join(out) or str(archs)


def _version(v) -> str:
    v = int(v or 0)
    return f"{v // 1000}.{(v % 1000) // 10}" if v else "none"


def describe() -> str:
    """One line for :func:`pyrnn.show_config`: built or not, and which GPU is seen."""
    i = info()
    if not i.get("built"):
        return "not built (build with -Ccmake.define.PYRNN_CUDA=ON)"
    parts = []
    if "architectures" in i:
        parts.append(f"{_arch_list(i['architectures'])}; runtime {_version(i.get('runtime_version'))}"
                     f", driver {_version(i.get('driver_version'))}")
    built = "built" + (f" ({parts[0]})" if parts else "")
    if i.get("available"):
        cc = i.get("compute_capability", (0, 0))
        mem = i.get("total_memory", 0) / 2**30
        return f"{built}; GPU {i.get('device', 0)}: {i.get('name')} (sm_{cc[0]}{cc[1]}, {mem:.1f} GiB)"
    return f"{built}; not usable: {i.get('reason')}"
