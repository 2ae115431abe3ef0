"""Gradient clipping in place, with the semantics of ``torch.nn.utils.clip_grad_*_``."""
from __future__ import annotations

import math
from typing import List, Mapping, Optional

import numpy as np

from . import _core, _validate

__all__ = ["clip_grad_norm", "clip_grad_value"]


def _grad_arrays(grads) -> List[np.ndarray]:
    """The gradient arrays of a dict, a list or a single array (``None`` entries skipped)."""
    if isinstance(grads, np.ndarray):
        grads = [grads]
    elif isinstance(grads, Mapping):
        grads = list(grads.values())
    arrays = [g for g in grads if g is not None]
    for g in arrays:
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            kind = getattr(g, "dtype", type(g).__name__)
            raise TypeError(
                f"grads must be floating-point NumPy arrays (modified in place), got {kind}"
            )
    return arrays


def _vector_norm(x: np.ndarray, norm_type: float, num_threads: int) -> float:
    """``torch.linalg.vector_norm(x, norm_type)`` of the flattened array, in float64."""
    if norm_type == 2:
        # Squares summed in double by the kernels' threads; NumPy's dot would wake OpenBLAS's
        # threads, which spin after the call and take the cores from the recurrent kernels.
        a = np.ascontiguousarray(x)
        if a.dtype not in _validate.KERNEL_DTYPES:
            a = a.astype(np.float64)
        return math.sqrt(_core.sum_squares(a, num_threads))
    a = np.abs(np.asarray(x, dtype=np.float64).ravel())
    if norm_type == math.inf:
        return float(a.max(initial=0.0))
    if norm_type == -math.inf:
        return float(a.min(initial=math.inf)) if a.size else math.inf
    if norm_type == 0:
        return float(np.count_nonzero(a))
    if norm_type == 1:
        return float(a.sum())
    return float(np.sum(a ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm(grads, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, *,
                   num_threads: Optional[int] = None) -> float:
    """Scale ``grads`` in place so their joint ``norm_type``-norm is at most ``max_norm``.

    Like ``torch.nn.utils.clip_grad_norm_``: the total norm is the norm of the per-array
    norms, every array is multiplied by ``min(max_norm / (total + 1e-6), 1)``, and the
    total norm before clipping is returned. With ``error_if_nonfinite`` a NaN or infinite
    total norm raises ``RuntimeError`` and leaves the gradients untouched. The 2-norm's sums
    of squares run in double on the kernels' threads (up to ``num_threads``; None: all).
    """
    arrays = _grad_arrays(grads)
    max_norm, norm_type = float(max_norm), float(norm_type)
    nt = _validate.thread_count(num_threads, _core.max_threads())
    if not arrays:
        return 0.0
    norms = np.array([_vector_norm(g, norm_type, nt) for g in arrays])
    total = _vector_norm(norms, norm_type, 1)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({total}), "
            "so it cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    if coef == 1.0:  # x * 1 == x for every value (NaN, inf and -0 too): skip the pass
        return total
    with np.errstate(invalid="ignore"):  # inf * 0 -> NaN, silently, as in torch
        for g in arrays:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value(grads, clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for g in _grad_arrays(grads):
        np.clip(g, -clip_value, clip_value, out=g)
