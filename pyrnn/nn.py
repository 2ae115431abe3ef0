"""NumPy layers with hand-written backward passes, and the softmax cross-entropy loss.

Each layer caches what its ``backward`` needs during ``forward``; ``backward(dy)``
accumulates parameter gradients into ``layer.grads`` and returns the input gradient.
Initialisation follows PyTorch's defaults.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _core, _validate
from .module import IncompatibleKeys, Module, StateDictError

__all__ = [
    "Module",
    "StateDictError",
    "IncompatibleKeys",
    "Linear",
    "Embedding",
    "softmax",
    "log_softmax",
    "softmax_cross_entropy",
]


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    return dtype


def _check_size(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _rows(a: np.ndarray) -> np.ndarray:
    """View ``a[..., n]`` as a 2-D ``[rows, n]`` array (also when n or rows is 0)."""
    return a.reshape(int(np.prod(a.shape[:-1], dtype=np.int64)), a.shape[-1])


def _as_index_array(name: str, indices) -> np.ndarray:
    """Integer array from ``indices``; booleans, floats and other kinds raise TypeError."""
    array = np.asarray(indices)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {array.dtype}")
    return array


class Linear(Module):
    """``y = x W^T + b`` on inputs ``[..., in_features]``; weight ``[out, in]``, bias ``[out]``.

    float32 and float64 run on the kernels' threads (up to ``num_threads``; None: all of
    them), other dtypes through NumPy.
    """

    _transient = {"_x": None}  # the forward's input, kept for backward
    _num_threads: Optional[int] = None  # (also for pickles made before the attribute)
    num_threads = _validate.ThreadsSetting()  # the products' threads (None: all)

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, seed=None, *, num_threads: Optional[int] = None) -> None:
        super().__init__()
        self.num_threads = num_threads
        self.in_features = _check_size("in_features", in_features)
        self.out_features = _check_size("out_features", out_features)
        self.dtype = _float_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(in_features) if in_features > 0 else 0.0
        shapes = {"weight": (out_features, in_features)}
        if bias:
            shapes["bias"] = (out_features,)
        for name, shape in shapes.items():
            self.add_param(name, rng.uniform(-bound, bound, size=shape).astype(self.dtype))
        self._x: Optional[np.ndarray] = None

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self.params.get("bias")

    def forward(self, x) -> np.ndarray:
        """Apply the layer to ``x[..., in_features]`` (cast to the layer dtype)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x: expected shape [..., {self.in_features}], got {list(x.shape)}"
            )
        self._x = x
        out_shape = x.shape[:-1] + (self.out_features,)
        if self._on_kernels():
            x2d = np.ascontiguousarray(_rows(x))
            self._x = x2d.reshape(x.shape)
            return _core.linear_forward(x2d, self.weight, self.bias,
                                        self._threads()).reshape(out_shape)
        # One 2-D GEMM: matmul of a 3-D x runs one BLAS call per leading index.
        y = (_rows(x) @ self.weight.T).reshape(out_shape)
        if self.bias is not None:
            y += self.bias
        return y

    def _threads(self) -> int:
        return self._num_threads or _core.max_threads()

    def _on_kernels(self) -> bool:
        """Whether the products run on pyrnn's kernels (float32/float64, contiguous params)."""
        return self.dtype in _validate.KERNEL_DTYPES and all(
            p.dtype == self.dtype and p.flags.c_contiguous for p in self.params.values())

    def backward(self, dy) -> np.ndarray:
        """Accumulate ``dW``/``db`` from ``dy[..., out_features]``; return ``dx``."""
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        dy = np.asarray(dy, dtype=self.dtype)
        expected = self._x.shape[:-1] + (self.out_features,)
        if dy.shape != expected:
            raise ValueError(f"dy: expected shape {list(expected)}, got {list(dy.shape)}")
        dy2d = _rows(dy)
        grads = self.grads
        if self._on_kernels() and all(g.dtype == self.dtype and g.flags.c_contiguous
                                      and g.flags.writeable for g in grads.values()):
            dx = _core.linear_backward(np.ascontiguousarray(dy2d),
                                       np.ascontiguousarray(_rows(self._x)), self.weight,
                                       grads["weight"], grads.get("bias"), self._threads())
            return dx.reshape(self._x.shape)
        self.grads["weight"] += dy2d.T @ _rows(self._x)
        if self.bias is not None:
            self.grads["bias"] += dy2d.sum(axis=0)
        return (dy2d @ self.weight).reshape(self._x.shape)


class Embedding(Module):
    """Lookup table ``weight[num_embeddings, embedding_dim]`` initialised N(0, 1)."""

    _transient = {"_indices": None}  # the forward's indices, kept for backward

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 dtype=np.float32, seed=None) -> None:
        super().__init__()
        self.num_embeddings = _check_size("num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("embedding_dim", embedding_dim)
        self.dtype = _float_dtype(dtype)
        rng = np.random.default_rng(seed)
        weight = rng.standard_normal((num_embeddings, embedding_dim)).astype(self.dtype)
        self.add_param("weight", weight)
        self._indices: Optional[np.ndarray] = None

    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"]

    def forward(self, indices) -> np.ndarray:
        """Rows of ``weight`` for integer ``indices`` of any shape -> ``[*shape, dim]``."""
        indices = _as_index_array("indices", indices)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            raise IndexError(
                f"indices must lie in [0, {self.num_embeddings}), "
                f"got values in [{indices.min()}, {indices.max()}]"
            )
        self._indices = indices
        return self.weight[indices]

    def backward(self, dy) -> None:
        """Scatter-add ``dy[*shape, dim]`` into ``grads['weight']`` (repeats accumulate)."""
        if self._indices is None:
            raise RuntimeError("Embedding.backward called before forward")
        dy = np.asarray(dy, dtype=self.dtype)
        expected = self._indices.shape + (self.embedding_dim,)
        if dy.shape != expected:
            raise ValueError(f"dy: expected shape {list(expected)}, got {list(dy.shape)}")
        flat = self._indices.ravel()
        if flat.size == 0:
            return
        # Rows grouped by index (stable: ascending row order within an index), one sum per
        # index: np.add.at's element-wise scatter was 10x slower at the char-LM's 2048 rows.
        order = np.argsort(flat, kind="stable")
        grouped = flat[order]
        starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
        self.grads["weight"][grouped[starts]] += np.add.reduceat(_rows(dy)[order], starts, axis=0)


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log(softmax(x))`` along ``axis``."""
    x = _as_float(x)
    shift = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(shift), shift, 0).astype(x.dtype)
    shifted = x - shift
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    return np.exp(log_softmax(x, axis=axis))


def _counted_positions(targets: np.ndarray, ignore_index, mask) -> np.ndarray:
    """Boolean array: positions that enter the loss (mask true, target not ignored)."""
    counted = np.ones(targets.shape, dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        try:
            counted &= np.broadcast_to(mask.astype(bool), targets.shape)
        except ValueError:
            raise ValueError(
                f"mask: expected a shape broadcastable to targets' {list(targets.shape)}, "
                f"got {list(mask.shape)}"
            ) from None
    if ignore_index is not None:
        counted &= targets != ignore_index
    return counted


def softmax_cross_entropy(logits, targets, *, ignore_index: Optional[int] = None,
                          mask=None, reduction: str = "mean",
                          num_threads: Optional[int] = None) -> Tuple[float, np.ndarray]:
    """Cross-entropy of ``logits[..., C]`` against integer ``targets[...]``.

    Returns ``(loss, dlogits)`` with ``dlogits`` the gradient of ``loss``. Positions where
    ``targets == ignore_index`` or ``mask`` is false are excluded and get zero gradient.
    ``reduction="mean"`` averages over counted positions (0.0 when there are none),
    ``"sum"`` adds them up. float32 and float64 logits run as one fused pass per row on the
    kernels' threads (up to ``num_threads``; None: all of them), other dtypes through NumPy.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    logits = _as_float(logits)
    targets = _as_index_array("targets", targets)
    if logits.ndim == 0 or targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets: expected shape {list(logits.shape[:-1])} (logits' leading dims), "
            f"got {list(targets.shape)}"
        )
    num_classes = logits.shape[-1]
    counted = _counted_positions(targets, ignore_index, mask)
    bad = counted & ((targets < 0) | (targets >= num_classes))
    if bad.any():
        raise IndexError(
            f"targets must lie in [0, {num_classes}) at counted positions, got {targets[bad][0]}"
        )
    x = _rows(logits)
    flat_counted = counted.ravel()
    divisor = max(int(flat_counted.sum()), 1) if reduction == "mean" else 1
    if x.dtype in _validate.KERNEL_DTYPES and x.size:
        nt = _validate.thread_count(num_threads, _core.max_threads())
        target = np.where(flat_counted, targets.ravel(), -1).astype(np.int64)
        total, dlogits = _core.softmax_xent(np.ascontiguousarray(x), target, 1.0 / divisor, nt)
        return float(total / divisor), dlogits.reshape(logits.shape)
    # NumPy, on [N, C] rows: the softmax once (its exponentials serve the loss's normaliser and
    # the gradient), the target column picked by index, as few passes over the rows as can be.
    safe = np.where(counted, targets, 0).ravel()
    rows = np.arange(x.shape[0])
    shift = np.max(x, axis=1, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(shift), shift, 0).astype(x.dtype)
    dlogits = np.exp(x - shift)
    total = np.sum(dlogits, axis=1, keepdims=True)
    nll = np.log(total[:, 0]) - (x[rows, safe] - shift[:, 0])  # -log p(target) per row
    loss = float(np.sum(nll, where=flat_counted, dtype=np.float64) / divisor)
    dlogits /= total
    dlogits[rows, safe] -= 1
    if divisor != 1:
        dlogits /= divisor
    if not flat_counted.all():
        dlogits[~flat_counted] = 0
    return loss, dlogits.reshape(logits.shape)
