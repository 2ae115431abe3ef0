"""Recurrent layers ``LSTM``, ``GRU`` and ``RNN`` built on the fused kernels of
:mod:`pyrnn.functional`, with the constructor, parameter names and shapes of ``torch.nn``.

Stacking (``num_layers``), bidirectional layers and inverted dropout between layers are done
here in thin Python; every recurrence runs in one kernel call per layer and direction.
There is no autograd: ``y, state = layer(x)`` followed by ``dx = layer.backward(dy, dstate)``,
which accumulates parameter gradients into ``layer.grads`` (clear them with ``zero_grad``)
and leaves the gradient of the initial state in ``layer.state_grad``.

Shapes (DESIGN.md legend): ``x [T, B, I]`` (``[B, T, I]`` with ``batch_first``),
``y [T, B, D*H]`` (``[B, T, D*H]``), every state ``[L*D, B, H]`` in PyTorch's order
(layer-major, forward direction before reverse), whatever ``batch_first`` says. An LSTM with
``proj_size=P`` has P in place of H in y and h (c stays H wide), as ``torch.nn.LSTM``.

The two directions of a bidirectional layer run concurrently, each with half of
``num_threads``: in eval mode with one thread each, as one grouped kernel call on the kernels'
OpenMP team, both writing their halves of one output; otherwise in two Python threads (the
kernels release the GIL). With one thread they run one after the other. A unidirectional stack in eval mode whose layers would each run on one thread
(steps too small to split by units) runs as a wavefront instead: time is cut into chunks and
layer l works on chunk c while layer l+1 works on chunk c-1, each kernel call on one thread
of the kernels' OpenMP team, at most ``num_threads`` at once (see ``_wavefront_chunks``).

``layer.to("cuda")`` runs the kernels on an NVIDIA GPU (CUDA build, :func:`pyrnn.cuda.is_available`)
and ``layer.to("cpu")`` brings them back; NumPy arrays go in and come out either way. On the GPU
each direction of each layer keeps its parameters in device buffers (a ``_core.CudaWeights``) and
the activations of a training forward stay there for the backward. ``params`` on the host remain
the parameters (optimizers, ``load_state_dict`` and in-place edits work on them as before), so every
forward first refreshes the device buffers from them: one host-to-device copy of the weights, no
allocation, and the backward uploads nothing.
"""
from __future__ import annotations

import atexit
import math
import numbers
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from . import _core
from . import _validate as v
from . import cuda as _cuda
from . import functional as F
from .module import Module

__all__ = ["LSTM", "GRU", "RNN"]

_executor: Optional[ThreadPoolExecutor] = None


def _pool() -> ThreadPoolExecutor:
    """A private pool that runs the reverse direction while the caller runs the forward one.

    Only this module submits to it and its tasks never submit again, so it cannot deadlock;
    several layers used from several user threads at once only queue here.
    """
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pyrnn-direction")
        atexit.register(_executor.shutdown, wait=False)
    return _executor


def _forget_pool_after_fork() -> None:
    """A forked child inherits the pool object but none of its threads: work submitted to it
    would wait forever. The child makes a fresh pool on first use."""
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _run_directions(fns, concurrent: bool):
    """Call each zero-argument function in ``fns``; concurrently when there are two and the
    layer has more than one thread (with one, the directions run one after the other)."""
    if len(fns) == 1 or not concurrent:
        return [fn() for fn in fns]
    future = _pool().submit(fns[1])
    try:
        first = fns[0]()
    finally:
        second = future.result()  # always wait, so no kernel outlives this call
    return [first, second]


# Wavefront over stacked layers (LSTM/GRU/RNN eval forward, see _RNNBase._wavefront_chunks).
# False runs every stack layer after layer (bench/bench_stacked.py times both).
WAVEFRONT = True
# A chunk of time steps is one kernel call per layer, which must carry enough work to repay the
# call and the stage's synchronisation. Two threads, inference, alternating runs: 2-layer LSTM
# B=1 H=128 T=1000 8.5 ms layer after layer, 5.5 ms in 8 chunks (33 MFLOP each), 5.6 ms in
# 16; H=64 T=1000 2.31 -> 1.66 ms (8 x 8.2 MFLOP); H=64 T=300 0.70-0.73 -> 0.62-0.63 ms (3-6
# chunks of 3.3-6.5 MFLOP); H=128 T=50 0.47 -> 0.44 ms (3 x 4.4 MFLOP); H=64 T=100 0.26 ->
# 0.28 ms (3 x 2.2 MFLOP, slower); H=32 T=100 0.11 -> 0.21 ms (4 x 0.4 MFLOP).
_WAVEFRONT_CHUNK_FLOPS = 4e6
_WAVEFRONT_MAX_CHUNKS = 8
_WAVEFRONT_MIN_CHUNKS = 3


def _positive_int(name, value, minimum=1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def _shape(shape) -> str:
    return v.shape_str(shape)


class _RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layer over one cell type.

    Subclasses set ``_gates`` (G), ``_has_cell`` (LSTM's c) and implement ``_cell_forward``
    and ``_cell_backward`` in terms of :mod:`pyrnn.functional`.
    """

    _gates = 1
    _has_cell = False
    _cell = ""  # the kernel's cell name in pyrnn.functional ("lstm", "gru", "rnn_tanh", ...)
    proj_size = 0  # LSTM projection size P (0: none); set before _RNNBase.__init__
    _transient = {"_tape": None, "_tape_state": "none", "_cuda_weights": None}

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, seed=None, *, num_threads: Optional[int] = None) -> None:
        super().__init__()
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout: expected a number in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                f"dropout={self.dropout} has no effect with num_layers=1: dropout is applied "
                "between stacked layers only", UserWarning, stacklevel=2)
        self.dtype = np.dtype(dtype)
        if self.dtype not in v.FLOAT_DTYPES:
            raise TypeError(f"dtype: expected float32 or float64, got {self.dtype}")
        if num_threads is not None:
            v.thread_count(num_threads, 1)  # validates
        self.num_threads = num_threads
        self.seed = seed
        # Initialisation as torch.nn.RNNBase.reset_parameters: every parameter U(-k, k),
        # k = 1/sqrt(hidden_size), in PyTorch's parameter order. The same generator then
        # draws the dropout masks, so a seed fixes both.
        self.rng = np.random.default_rng(seed)
        G, H, R = self._gates, self.hidden_size, self.output_size
        k = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else self.num_directions * R
            for d in range(self.num_directions):
                shapes = [("weight_ih", (G * H, layer_in)), ("weight_hh", (G * H, R))]
                if self.bias:
                    shapes += [("bias_ih", (G * H,)), ("bias_hh", (G * H,))]
                if self.proj_size:
                    shapes.append(("weight_hr", (R, H)))
                for kind, shape in shapes:
                    value = self.rng.uniform(-k, k, size=shape).astype(self.dtype)
                    self.add_param(self._name(kind, layer, d), value)
        self._tape = None        # what backward needs: caches, dropout masks, shapes
        self._tape_state = "none"  # "none" | "ready" | "eval" | "consumed"
        self.state_grad = None   # gradient of the initial state after backward
        self.device = "cpu"      # "cpu" | "cuda", set by to()
        self._cuda_weights = None  # {(layer, direction): _core.CudaWeights} on "cuda"

    # ------------------------------------------------------------------ cell interface
    def _cell_forward(self, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, lengths, training,
                      num_threads):
        """-> y, h_n, c_n (None unless LSTM), cache."""
        raise NotImplementedError

    def _cell_backward(self, cache, dy, dh_n, dc_n):
        """-> dx, dh0, dc0 (None unless LSTM), dparams {w_ih, w_hh[, b_ih, b_hh]}."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    @property
    def output_size(self) -> int:
        """Columns of h (and of y per direction): hidden_size, or proj_size with a projection."""
        return self.proj_size or self.hidden_size

    def _state_widths(self):
        """Width of each state (h[, c]): h is output_size wide, c hidden_size."""
        return (self.output_size, self.hidden_size)[:len(self._state_names())]

    @staticmethod
    def _name(kind: str, layer: int, direction: int) -> str:
        return f"{kind}_l{layer}" + ("_reverse" if direction == 1 else "")

    def _layer_params(self, layer, d):
        p = self.params
        names = [self._name(k, layer, d) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return (p[names[0]], p[names[1]],
                p[names[2]] if self.bias else None, p[names[3]] if self.bias else None)

    def _extra_params(self, layer, d):
        """Keyword arguments of ``_cell_forward`` beyond the four standard parameters."""
        return {}

    def _thread_split(self):
        """Threads per kernel call: all of them, or split between two concurrent directions."""
        n = v.thread_count(self.num_threads, _core.max_threads())
        if self._directions_concurrent():
            return [n - n // 2, n // 2]
        return [n] * self.num_directions

    def _directions_grouped(self, training, threads) -> bool:
        """Whether an eval forward runs its two directions in one grouped kernel call (one
        OpenMP thread each, or both on the one thread of a single-threaded layer) rather than
        as two calls: when each direction has one thread. The kernels' team is already awake
        between calls, where the direction pool's thread must be woken per layer (about
        0.1-0.3 ms on the 2-core VM of the bench), which is most of a direction's time in a
        small model; and the directions write one output, with no concatenation after."""
        return (not training and self.device == "cpu" and self.num_directions == 2
                and list(threads) == [1, 1])

    def _forward_directions_grouped(self, inp, layer, states0, lens):
        """Both directions of one layer in eval mode through F._forward_group, each writing its
        half of one [T, B, 2R] output (no concatenation after). Returns (y, h_n, c_n, None)
        pairs like _cell_forward's (their y unused) and that output."""
        T, B = inp.shape[:2]
        R = self._state_widths()[0]
        both = np.empty((T, B, 2 * R), self.dtype)
        calls = []
        for d in range(2):
            init = [s[layer * 2 + d] if s is not None else None for s in states0]
            extra = self._extra_params(layer, d)
            calls.append((self._cell, inp, *self._layer_params(layer, d), init[0],
                          init[1] if self._has_cell else None, lens, extra.get("peephole"),
                          extra.get("w_hr"), d == 1, both, d * R))
        team = 2 if self._directions_concurrent() else 1
        outs = [(y, h_n, c_n, None) for y, h_n, c_n in F._forward_group(calls, team)]
        return outs, both

    def _directions_concurrent(self) -> bool:
        """Whether the two directions run at once: only with two threads or more in all."""
        return self.num_directions == 2 and v.thread_count(self.num_threads,
                                                            _core.max_threads()) > 1

    def _wavefront_chunks(self, T, B, threads) -> int:
        """Time chunks for a wavefront over the layers of this forward, or 0 for layer after
        layer: only a unidirectional stack in eval mode on the CPU whose every layer, run
        alone with ``threads`` threads, would take one (so cores would sit idle), and only
        with at least _WAVEFRONT_MIN_CHUNKS chunks of _WAVEFRONT_CHUNK_FLOPS each."""
        L = self.num_layers
        if (not WAVEFRONT or L < 2 or threads < 2 or self.num_directions != 1 or self.training
                or self.device != "cpu" or T < _WAVEFRONT_MIN_CHUNKS or B == 0):
            return 0
        least = math.inf  # FLOPs of the smallest layer's call
        for layer in range(L):
            w_ih, w_hh = self._layer_params(layer, 0)[:2]
            extra = self._extra_params(layer, 0)
            H, (GH, R), I = self.hidden_size, w_hh.shape, w_ih.shape[1]
            batch_allowed = not extra  # the kernels' batch split skips peepholes and projections
            used, _ = _core.forward_threads(threads, T, B, I, H, R, GH // H, self.dtype.itemsize,
                                            batch_allowed)
            if used > 1:
                return 0
            least = min(least, 2.0 * T * B * GH * (I + R))
        chunks = min(_WAVEFRONT_MAX_CHUNKS, T, int(least // _WAVEFRONT_CHUNK_FLOPS))
        return chunks if chunks >= _WAVEFRONT_MIN_CHUNKS else 0

    def _forward_wavefront(self, xt, states0, lens, chunks, threads):
        """Eval-mode forward of a unidirectional stack as a wavefront: in stage s, layer l runs
        time chunk s - l, starting from its state after chunk s - l - 1. A stage's calls run
        at once on the kernels' OpenMP team (one thread each, at most ``threads`` together),
        so the workers are the threads every kernel call uses, kept spinning between stages.
        Returns ``y [T, B, R]`` and the final states, as layer after layer (rows past their
        length keep their state through later chunks and get zeros in y)."""
        T = xt.shape[0]
        L = self.num_layers
        bounds = [T * i // chunks for i in range(chunks + 1)]
        state = [[s[layer] if s is not None else None for s in states0] for layer in range(L)]
        outs = [[None] * chunks for _ in range(L)]
        params = [self._layer_params(layer, 0) for layer in range(L)]
        extras = [self._extra_params(layer, 0) for layer in range(L)]

        def call(layer, c):
            t0, t1 = bounds[c], bounds[c + 1]
            return (self._cell, xt[t0:t1] if layer == 0 else outs[layer - 1][c], *params[layer],
                    state[layer][0], state[layer][1] if self._has_cell else None,
                    None if lens is None else np.clip(lens - t0, 0, t1 - t0),
                    extras[layer].get("peephole"), extras[layer].get("w_hr"))

        for stage in range(chunks + L - 1):
            tasks = [(layer, stage - layer) for layer in range(L) if 0 <= stage - layer < chunks]
            results = F._forward_group([call(*t) for t in tasks], threads)
            for (layer, c), (y, h_n, c_n) in zip(tasks, results):
                outs[layer][c] = y
                state[layer] = [h_n, c_n]
        finals = [np.stack([state[layer][k] for layer in range(L)])
                  for k in range(len(self._state_names()))]
        return np.concatenate(outs[L - 1], axis=0), finals

    def _state_names(self):
        return ("h", "c") if self._has_cell else ("h",)

    def _check_state_array(self, name, value, B, width):
        if value is None:
            return None
        arr = np.asarray(value)
        if arr.dtype != self.dtype:
            raise TypeError(f"{name}: expected dtype {self.dtype} (the layer's dtype), got {arr.dtype}")
        expected = (self.num_layers * self.num_directions, B, width)
        if arr.shape != expected:
            what = "proj_size" if width != self.hidden_size else "hidden_size"
            raise ValueError(f"{name}: expected shape {_shape(expected)} = (num_layers*num_directions, "
                             f"B, {what}), got {_shape(arr.shape)}")
        return np.ascontiguousarray(arr)

    def _split_state(self, state, what, B):
        """``state`` as a tuple of per-kind arrays (h[, c]), each [L*D, B, H] or None."""
        names = [f"{what}[{i}] ({n}{'_n' if what == 'dstate' else '0'})"
                 for i, n in enumerate(self._state_names())]
        if state is None:
            return (None,) * len(names)
        if self._has_cell:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"{what}: expected a tuple (h, c) of arrays [L*D, B, H] or None, "
                                f"got {type(state).__name__}")
            return tuple(self._check_state_array(n, s, B, w)
                         for n, s, w in zip(names, state, self._state_widths()))
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{what}: expected one array h [L*D, B, H] (no cell state for "
                            f"{type(self).__name__}), got a {type(state).__name__}")
        return (self._check_state_array(what, state, B, self._state_widths()[0]),)

    def _pack_state(self, arrays):
        return tuple(arrays) if self._has_cell else arrays[0]

    def _restore_transient(self) -> None:
        if self.device == "cuda":  # the weights' GPU copies were not pickled
            self.to("cuda")

    # ------------------------------------------------------------------ device
    def to(self, device: str) -> "_RNNBase":
        """Run the kernels on ``"cuda"`` (weights uploaded to the GPU) or ``"cpu"``; returns self.
        Raises RuntimeError, saying why, when CUDA is not available."""
        device = F._device(device)
        if device == "cuda" and self._cell not in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
            raise ValueError(f"{type(self).__name__}.to('cuda'): no CUDA kernel for the "
                             f"{self._cell} cell variant; it runs on 'cpu' only")
        if device == "cuda" and self.proj_size:
            raise ValueError(f"{type(self).__name__}.to('cuda'): no CUDA kernel for the LSTM "
                             "projection (proj_size); it runs on 'cpu' only")
        if device == "cuda":
            _cuda.require(f"{type(self).__name__}.to('cuda')")
            cell = F._CELL_IDS[self._cell]
            self._cuda_weights = {
                (layer, d): _core.CudaWeights(cell, *self._layer_params(layer, d))
                for layer in range(self.num_layers) for d in range(self.num_directions)}
        else:
            self._cuda_weights = None  # frees the GPU memory
        self.device = device
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, x, state=None, lengths=None):
        """Run the layer: returns ``y, state`` (``state = (h_n, c_n)`` for LSTM, ``h_n`` else).

        ``lengths`` (one int per batch row, 0 <= length <= T) gives a variable-length batch as
        a PyTorch packed sequence: outputs past a row's length are zero, its final state is the
        state after its last valid step, and the reverse direction starts at that step.
        """
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype != self.dtype:
            raise TypeError(f"x: expected dtype {self.dtype} (the layer's dtype), got {x.dtype}")
        if x.ndim != 3:
            layout = "[B, T, input_size]" if self.batch_first else "[T, B, input_size]"
            raise ValueError(f"x: expected 3 dimensions {layout}, got shape {_shape(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x: expected input_size {self.input_size} in the last dimension, "
                             f"got {x.shape[2]} (shape {_shape(x.shape)})")
        xt = np.ascontiguousarray(x.transpose(1, 0, 2) if self.batch_first else x)
        T, B, _ = xt.shape
        self._tape, self._tape_state = None, "none"  # a failed forward leaves nothing to reuse
        states0 = self._split_state(state, "state", B)
        lens = v.lengths_array(lengths, B, T)
        training = self.training
        L, D = self.num_layers, self.num_directions
        threads = self._thread_split()
        chunks = self._wavefront_chunks(T, B, threads[0])
        if chunks:
            self._tape, self._tape_state = None, "eval"
            y, finals = self._forward_wavefront(xt, states0, lens, chunks, threads[0])
            return (y.transpose(1, 0, 2) if self.batch_first else y), self._pack_state(finals)
        finals = [np.empty((L * D, B, w), self.dtype) for w in self._state_widths()]
        caches, masks = [], []
        inp = xt
        for layer in range(L):
            if layer > 0 and training and self.dropout > 0:
                mask = self._dropout_mask(inp.shape)
                inp = inp * mask
                masks.append(mask)
            else:
                masks.append(None)

            def run(d, inp=inp, layer=layer):
                init = [s[layer * D + d] if s is not None else None for s in states0]
                h0 = init[0]
                c0 = init[1] if self._has_cell else None
                if self.device == "cuda":
                    params = self._layer_params(layer, d)
                    weights = self._cuda_weights[(layer, d)]
                    weights.update(*params)  # host params are the source of truth
                    return F._forward(self._cell, inp, *params, h0, c0, d == 1, lens, training,
                                      threads[d], device="cuda", cuda_weights=weights)
                return self._cell_forward(inp, *self._layer_params(layer, d), h0, c0, d == 1, lens,
                                          training, threads[d], **self._extra_params(layer, d))

            both = None  # y of both directions, when they write one array
            if self._directions_grouped(training, threads):
                outs, both = self._forward_directions_grouped(inp, layer, states0, lens)
            else:
                outs = _run_directions([lambda d=d: run(d) for d in range(D)],
                                       self._directions_concurrent())
            for d, (_, h_n, c_n, _) in enumerate(outs):
                finals[0][layer * D + d] = h_n
                if self._has_cell:
                    finals[1][layer * D + d] = c_n
            caches.append([o[3] for o in outs])
            if both is not None:
                inp = both
            else:
                inp = outs[0][0] if D == 1 else np.concatenate([o[0] for o in outs], axis=2)
        if training:
            self._tape = {"caches": caches, "masks": masks, "shape": (T, B)}
            self._tape_state = "ready"
        else:
            self._tape = None
            self._tape_state = "eval"
        y = inp.transpose(1, 0, 2) if self.batch_first else inp
        return y, self._pack_state(finals)

    def _dropout_mask(self, shape):
        keep = 1.0 - self.dropout
        if keep == 0.0:
            return np.zeros(shape, self.dtype)
        mask = (self.rng.random(shape) < keep).astype(self.dtype)
        mask *= self.dtype.type(1.0 / keep)
        return mask

    # ------------------------------------------------------------------ backward
    def backward(self, dy, dstate=None):
        """Backpropagation through time for the last (training-mode) forward.

        ``dy`` is the gradient of the output (shaped like y, or None for zeros), ``dstate`` that
        of the final state (shaped like the state; it and its elements may be None).
        Accumulates parameter gradients into ``self.grads``, sets ``self.state_grad`` (the
        gradient of the initial state, shaped like the state) and returns ``dx``, shaped like x.
        """
        if self._tape_state != "ready":
            why = {
                "none": "no forward has run",
                "eval": "the last forward ran in eval mode, which keeps no activations; call "
                        "layer.train() and run the forward again",
                "consumed": "backward already ran for the last forward; run the forward again "
                            "before another backward",
            }[self._tape_state]
            raise RuntimeError(f"{type(self).__name__}.backward: {why}")
        T, B = self._tape["shape"]
        L, D, H = self.num_layers, self.num_directions, self.output_size
        if dy is not None:
            dy = np.asarray(dy)
            if dy.dtype != self.dtype:
                raise TypeError(f"dy: expected dtype {self.dtype} (the layer's dtype), got {dy.dtype}")
            expected = (B, T, D * H) if self.batch_first else (T, B, D * H)
            if dy.shape != expected:
                raise ValueError(f"dy: expected shape {_shape(expected)} (like y), got {_shape(dy.shape)}")
            if self.batch_first:
                dy = dy.transpose(1, 0, 2)
        dfinal = self._split_state(dstate, "dstate", B)
        caches, masks = self._tape["caches"], self._tape["masks"]
        self._tape, self._tape_state = None, "consumed"
        dstate0 = [np.zeros((L * D, B, w), self.dtype) for w in self._state_widths()]
        grad = dy  # gradient of the current layer's output [T, B, D*H], or None
        for layer in reversed(range(L)):
            def run(d, grad=grad, layer=layer):
                dy_d = None
                if grad is not None:
                    dy_d = grad if D == 1 else np.ascontiguousarray(grad[:, :, d * H:(d + 1) * H])
                fin = [s[layer * D + d] if s is not None else None for s in dfinal]
                return self._cell_backward(caches[layer][d], dy_d, fin[0],
                                           fin[1] if self._has_cell else None)

            outs = _run_directions([lambda d=d: run(d) for d in range(D)],
                                   self._directions_concurrent())
            grad = outs[0][0] if D == 1 else outs[0][0] + outs[1][0]
            for d, (_, dh0, dc0, dparams) in enumerate(outs):
                dstate0[0][layer * D + d] = dh0
                if self._has_cell:
                    dstate0[1][layer * D + d] = dc0
                for kind, key in (("weight_ih", "w_ih"), ("weight_hh", "w_hh"),
                                  ("bias_ih", "b_ih"), ("bias_hh", "b_hh"), ("weight_ci", "w_ci"),
                                  ("weight_cf", "w_cf"), ("weight_co", "w_co"),
                                  ("weight_hr", "w_hr")):
                    if key in dparams:
                        self.grads[self._name(kind, layer, d)] += dparams[key]
            if masks[layer] is not None:
                grad = grad * masks[layer]
        self.state_grad = self._pack_state(dstate0)
        return grad.transpose(1, 0, 2) if self.batch_first else grad

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        if self.device != "cpu":
            s += f", device='{self.device}'"
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class LSTM(_RNNBase):
    """Long short-term memory layer as ``torch.nn.LSTM`` (gates i, f, g, o); state ``(h, c)``.

    Variants (keyword-only, CPU only):

    - ``coupled=True``: coupled input-forget gate, ``c' = f*c + (1-f)*g``; three gate blocks
      f, g, o, so ``weight_ih_l{k}`` is ``[3H, in]`` etc.
    - ``peephole=True``: Gers & Schmidhuber peepholes; adds ``weight_ci_l{k}``, ``weight_cf_l{k}``,
      ``weight_co_l{k}`` (each [H], ``_reverse`` for the reverse direction), initialised
      U(-k, k) like the rest, drawn after the layer-direction's four standard parameters.
      Not combinable with ``coupled`` (ValueError).
    - ``forget_bias=b``: added, at initialisation only, to the forget-gate slice of
      ``bias_ih_l{k}`` (``bias_hh`` is left as drawn), e.g. 1.0 as in Jozefowicz et al. 2015;
      needs ``bias=True``. The default 0.0 keeps ``torch.nn.LSTM``'s initialisation.
    - ``proj_size=P`` (0 < P < hidden_size): an LSTM with projection as
      ``torch.nn.LSTM(proj_size=P)``, ``h' = W_hr (o*tanh(c'))`` with ``weight_hr_l{k}`` [P, H];
      h and y have P columns per direction, ``weight_hh_l{k}`` is [4H, P], and the next layer's
      input is D*P wide. Combines with the other variants.
    """

    _gates = 4
    _has_cell = True
    _cell = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, seed=None, *, num_threads: Optional[int] = None,
                 coupled: bool = False, peephole: bool = False, forget_bias: float = 0.0,
                 proj_size: int = 0) -> None:
        for name, flag in (("coupled", coupled), ("peephole", peephole)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}")
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) \
                or not np.isfinite(forget_bias):
            raise ValueError(f"forget_bias: expected a finite number, got {forget_bias!r}")
        if forget_bias != 0 and not bias:
            raise ValueError("forget_bias: needs bias=True (it initialises bias_ih's forget-gate "
                             "slice)")
        self._cell = F.lstm_cell_name(bool(coupled), bool(peephole))  # raises on bad combos
        self.coupled, self.peephole = bool(coupled), bool(peephole)
        self.forget_bias = float(forget_bias)
        self._gates = 3 if self.coupled else 4
        self.proj_size = _positive_int("proj_size", proj_size, minimum=0)
        if self.proj_size and isinstance(hidden_size, numbers.Integral) \
                and self.proj_size >= hidden_size:
            raise ValueError(f"proj_size: expected 0 <= proj_size < hidden_size = {hidden_size} "
                             f"(as torch.nn.LSTM), got {self.proj_size}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, num_threads=num_threads)
        H, k = self.hidden_size, 1.0 / np.sqrt(self.hidden_size)
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                if self.bias and self.forget_bias != 0:
                    f0 = 0 if self.coupled else H  # f is block 0 (coupled) or 1 (i, f, g, o)
                    self.params[self._name("bias_ih", layer, d)][f0:f0 + H] += \
                        self.dtype.type(self.forget_bias)
                if self.peephole:
                    for kind in ("weight_ci", "weight_cf", "weight_co"):
                        value = self.rng.uniform(-k, k, size=(H,)).astype(self.dtype)
                        self.add_param(self._name(kind, layer, d), value)

    def _extra_params(self, layer, d):
        extra = {}
        if self.peephole:
            extra["peephole"] = tuple(self.params[self._name(kind, layer, d)]
                                      for kind in ("weight_ci", "weight_cf", "weight_co"))
        if self.proj_size:
            extra["w_hr"] = self.params[self._name("weight_hr", layer, d)]
        return extra

    def _cell_forward(self, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, lengths, training, nt,
                      peephole=None, w_hr=None):
        y, (h_n, c_n), cache = F.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, (h0, c0), reverse=reverse,
                                              lengths=lengths, training=training, num_threads=nt,
                                              peephole=peephole, coupled=self.coupled, w_hr=w_hr)
        return y, h_n, c_n, cache

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.coupled:
            s += ", coupled=True"
        if self.peephole:
            s += ", peephole=True"
        if self.forget_bias:
            s += f", forget_bias={self.forget_bias}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s

    def _cell_backward(self, cache, dy, dh_n, dc_n):
        dx, (dh0, dc0), dparams = F.lstm_backward(cache, dy, (dh_n, dc_n))
        return dx, dh0, dc0, dparams


class GRU(_RNNBase):
    """Gated recurrent unit layer as ``torch.nn.GRU`` (gates r, z, n); state ``h``.

    ``reset_after=False`` (keyword-only, CPU only) applies the reset before the recurrent
    product, ``n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)`` (Keras ``reset_after=False``);
    the default ``True`` is PyTorch's form. Parameter names and shapes are the same.
    """

    _gates = 3
    _cell = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32, seed=None, *, num_threads: Optional[int] = None,
                 reset_after: bool = True) -> None:
        self._cell = F.gru_cell_name(reset_after)  # validates
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, num_threads=num_threads)

    def _cell_forward(self, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, lengths, training, nt):
        y, h_n, cache = F.gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, reverse=reverse,
                                      lengths=lengths, training=training, num_threads=nt,
                                      reset_after=self.reset_after)
        return y, h_n, None, cache

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + ("" if self.reset_after else ", reset_after=False")

    def _cell_backward(self, cache, dy, dh_n, dc_n):
        dx, dh0, dparams = F.gru_backward(cache, dy, dh_n)
        return dx, dh0, None, dparams


class RNN(_RNNBase):
    """Elman RNN layer as ``torch.nn.RNN``: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with
    ``nonlinearity`` ``"tanh"`` (default) or ``"relu"``; state ``h``."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=np.float32, seed=None,
                 *, num_threads: Optional[int] = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._cell = "rnn_" + nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, num_threads=num_threads)

    def _cell_forward(self, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, lengths, training, nt):
        y, h_n, cache = F.rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=self.nonlinearity,
                                      reverse=reverse, lengths=lengths, training=training,
                                      num_threads=nt)
        return y, h_n, None, cache

    def _cell_backward(self, cache, dy, dh_n, dc_n):
        dx, dh0, dparams = F.rnn_backward(cache, dy, dh_n)
        return dx, dh0, None, dparams

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")
