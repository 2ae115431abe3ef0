"""Argument checks shared by the functional API: clear errors naming the argument, with the
expected and the actual shape or dtype."""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def shape_str(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_float_array(name: str, value, dtype=None) -> np.ndarray:
    """A C-contiguous float32/float64 array; dtype (when given) must match exactly."""
    if value is None:
        raise TypeError(f"{name}: expected an array, got None")
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        order = {">": "big-endian", "<": "little-endian"}[arr.dtype.byteorder]
        raise TypeError(f"{name}: expected native byte order, got {order} {arr.dtype.str}; "
                        f"convert with .astype({arr.dtype.newbyteorder('=').name})")
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(
            f"{name}: dtype {arr.dtype} does not match x's dtype {dtype}; "
            "every array of a call must have the same dtype"
        )
    return np.ascontiguousarray(arr)


def expect_shape(name: str, arr: np.ndarray, shape, meaning: str = "") -> None:
    shape = tuple(int(s) for s in shape)
    if arr.shape != shape:
        what = f" {meaning}" if meaning else ""
        raise ValueError(f"{name}: expected shape {shape_str(shape)}{what}, got {shape_str(arr.shape)}")


def optional_array(name, value, shape, dtype, meaning=""):
    if value is None:
        return None
    arr = as_float_array(name, value, dtype)
    expect_shape(name, arr, shape, meaning)
    return arr


def lengths_array(lengths, B: int, T: int):
    """int64 [B] with 0 <= length <= T, or None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"lengths: expected integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths: expected shape {shape_str((B,))} (one per batch row), got {shape_str(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    bad = np.flatnonzero((arr < 0) | (arr > T))
    if bad.size:
        b = int(bad[0])
        raise ValueError(f"lengths: entry {b} is {int(arr[b])}, expected 0 <= length <= T = {T}")
    return arr


# The dtypes the compiled kernels take; others go through NumPy.
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def thread_count(num_threads, default: int) -> int:
    if num_threads is None:
        return max(1, int(default))
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"num_threads: expected an int or None, got {type(num_threads).__name__}")
    if num_threads < 1:
        raise ValueError(f"num_threads: expected >= 1, got {num_threads}")
    return int(num_threads)


class ThreadsSetting:
    """A ``num_threads`` attribute (None: all the kernels' threads), validated as the layers'
    argument and kept in ``_num_threads`` (a class default of None serves old pickles)."""

    def __get__(self, obj, owner=None):
        return self if obj is None else obj._num_threads

    def __set__(self, obj, value) -> None:
        obj._num_threads = None if value is None else thread_count(value, 1)
