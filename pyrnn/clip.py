"""Gradient clipping in place, with the semantics of ``torch.nn.utils.clip_grad_*_``."""
from __future__ import annotations

import math
from typing import List, Mapping

import numpy as np

__all__ = ["clip_grad_norm", "clip_grad_value"]

_NORM_CHUNK = 32768  # float32 elements per dot product in the 2-norm


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


def _vector_norm(x: np.ndarray, norm_type: float) -> float:
    """``torch.linalg.vector_norm(x, norm_type)`` of the flattened array, in float64."""
    if norm_type == 2:  # squares need no abs: one pass fewer over the largest case
        a = np.ascontiguousarray(x).ravel()
        if a.dtype != np.float32 or a.size <= _NORM_CHUNK:
            a = a.astype(np.float64, copy=False)
            return float(np.sqrt(np.dot(a, a)))
        # float32: BLAS dot products of chunks, summed in float64 (relative error ~1e-7, where
        # one float32 dot of millions of squares drifts to 1e-4) without a float64 copy.
        total = sum(float(np.dot(a[i:i + _NORM_CHUNK], a[i:i + _NORM_CHUNK]))
                    for i in range(0, a.size, _NORM_CHUNK))
        return math.sqrt(total)
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
                   error_if_nonfinite: bool = False) -> float:
    """Scale ``grads`` in place so their joint ``norm_type``-norm is at most ``max_norm``.

    Like ``torch.nn.utils.clip_grad_norm_``: the total norm is the norm of the per-array
    norms, every array is multiplied by ``min(max_norm / (total + 1e-6), 1)``, and the
    total norm before clipping is returned. With ``error_if_nonfinite`` a NaN or infinite
    total norm raises ``RuntimeError`` and leaves the gradients untouched.
    """
    arrays = _grad_arrays(grads)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not arrays:
        return 0.0
    total = _vector_norm(np.array([_vector_norm(g, norm_type) for g in arrays]), norm_type)
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
