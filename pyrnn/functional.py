"""Functional API of the fused kernels: NumPy in, NumPy out.

Shapes (DESIGN.md legend): x [T, B, I], y [T, B, H], states [B, H]; parameters in PyTorch's
layout: w_ih [G*H, I], w_hh [G*H, H], b_ih [G*H], b_hh [G*H] with G = 4 (LSTM, gates i, f, g, o),
3 (GRU, gates r, z, n) or 1 (RNN).

Every forward takes ``training=False`` (inference: nothing saved, ``cache`` is None) or
``training=True`` (saves what backpropagation through time needs). ``reverse=True`` runs each
sequence from its end; ``lengths`` (one int per batch row) gives variable-length batches as in
PyTorch packed sequences: outputs past a row's length are zero and its final state is the state
after its last valid step.

``device="cuda"`` runs the same kernels on an NVIDIA GPU (when pyrnn was built with CUDA and
:func:`pyrnn.cuda.is_available`); NumPy arrays still go in and come out, and the cache keeps x,
the weights and the saved activations on the GPU for the backward, which runs where its forward ran.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _core
from . import _validate as v
from . import cuda as _cuda

_CELL_IDS = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3, "lstm_coupled": 4,
             "lstm_peephole": 5, "gru_reset_before": 6}
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1, "lstm_coupled": 3,
          "lstm_peephole": 4, "gru_reset_before": 3}
_LSTM_CELLS = ("lstm", "lstm_coupled", "lstm_peephole")
_PEEPHOLE_NAMES = ("w_ci", "w_cf", "w_co")

__all__ = [
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
    "rnn_forward", "rnn_backward", "Cache",
]


class Cache:
    """What a training forward saved for its backward; one backward call consumes it."""

    __slots__ = ("cell", "x", "w_ih", "w_hh", "has_bias", "lengths", "reverse",
                 "num_threads", "saves", "consumed", "device", "peephole", "w_hr")

    def __init__(self, cell, x, w_ih, w_hh, has_bias, lengths, reverse, num_threads, saves,
                 device="cpu", peephole=None, w_hr=None):
        self.cell = cell
        self.x = x
        self.w_ih = w_ih
        self.w_hh = w_hh
        self.has_bias = has_bias
        self.lengths = lengths
        self.reverse = reverse
        self.num_threads = num_threads
        self.saves = saves  # CPU: (gates, h_prev, aux) arrays; CUDA: a _core.CudaSaves
        self.consumed = False
        self.device = device
        self.peephole = peephole  # [3, H] stacked (w_ci, w_cf, w_co) for "lstm_peephole"
        self.w_hr = w_hr  # [P, H] LSTM projection, or None

    @property
    def shape(self):
        """(T, B, I, H) of the forward that made this cache."""
        T, B, I = self.x.shape
        return T, B, I, self.w_ih.shape[0] // _GATES[self.cell]

    @property
    def state_size(self):
        """Columns of y and h: H, or the projection size P."""
        return self.w_hh.shape[1]

    def __repr__(self):
        T, B, I, H = self.shape
        state = "consumed" if self.consumed else "ready"
        where = ", cuda" if self.device == "cuda" else ""
        proj = "" if self.w_hr is None else f", P={self.w_hr.shape[0]}"
        return (f"Cache({self.cell}, T={T}, B={B}, I={I}, H={H}{proj}, {self.x.dtype}{where}, "
                f"{state})")


_POOLED = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))


def _own_copy(arr: np.ndarray, original) -> np.ndarray:
    """The cache must not see later in-place changes of the caller's arrays (e.g. an optimizer
    step between forward and backward), so keep a private copy."""
    if arr is original or np.shares_memory(arr, np.asarray(original)):
        # From the array pool: a fresh copy of megabytes of weights faulted in (and zeroed) new
        # pages on every training call (LSTM T=25 B=64 H=1024: 11% of the forward).
        return _core.pooled_copy(arr) if arr.dtype in _POOLED and arr.flags.c_contiguous else arr.copy()
    return arr


def _device(device) -> str:
    if not isinstance(device, str):
        raise TypeError(f"device: expected 'cpu' or 'cuda', got {type(device).__name__}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    return device


class _Checked(NamedTuple):
    """A forward call's arguments after validation, as the kernels take them."""
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray]
    b_hh: Optional[np.ndarray]
    h0: Optional[np.ndarray]
    c0: Optional[np.ndarray]
    lengths: Optional[np.ndarray]
    num_threads: int
    peephole: Optional[np.ndarray]
    w_hr: Optional[np.ndarray]


def _check_forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, num_threads, peephole,
                   w_hr) -> _Checked:
    """Validate a forward call's arguments (ValueError/TypeError naming the argument)."""
    G = _GATES[cell]
    xa = v.as_float_array("x", x)
    if xa.ndim != 3:
        raise ValueError(f"x: expected 3 dimensions [T, B, I], got shape {v.shape_str(xa.shape)}")
    T, B, I = xa.shape
    dtype = xa.dtype
    whh = v.as_float_array("w_hh", w_hh, dtype)
    whr = None
    if w_hr is not None:
        whr = v.as_float_array("w_hr", w_hr, dtype)
        if whr.ndim != 2 or 0 in whr.shape:
            raise ValueError(f"w_hr: expected shape (P, H) with P >= 1 and H >= 1, got "
                             f"{v.shape_str(whr.shape)}")
        P, H = whr.shape
        v.expect_shape("w_hh", whh, (G * H, P),
                       f"= ({G}*H, P) with (P, H) = {v.shape_str(whr.shape)} from w_hr")
    elif whh.ndim != 2 or whh.shape[0] != G * whh.shape[1]:
        raise ValueError(
            f"w_hh: expected shape ({G}*H, H) for {cell} ({G} gate{'s' if G > 1 else ''}), "
            f"got {v.shape_str(whh.shape)}")
    else:
        H = whh.shape[1]
    R = whh.shape[1]  # width of h and y: H, or P with a projection
    wih = v.as_float_array("w_ih", w_ih, dtype)
    v.expect_shape("w_ih", wih, (G * H, I), f"= ({G}*H, I) with H={H} from w_hh and I={I} from x")
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih, b_hh: give both biases or neither")
    bih = v.optional_array("b_ih", b_ih, (G * H,), dtype, f"= ({G}*H,)")
    bhh = v.optional_array("b_hh", b_hh, (G * H,), dtype, f"= ({G}*H,)")
    h0a = v.optional_array("h0", h0, (B, R), dtype, "= (B, H)" if whr is None else "= (B, P)")
    c0a = v.optional_array("c0", c0, (B, H), dtype, "= (B, H)")
    lens = v.lengths_array(lengths, B, T)
    nt = v.thread_count(num_threads, _core.max_threads())
    peep = None
    if cell == "lstm_peephole":
        if not isinstance(peephole, (tuple, list)) or len(peephole) != 3:
            raise TypeError("peephole: expected a tuple (w_ci, w_cf, w_co) of arrays [H], got "
                            f"{type(peephole).__name__}")
        peep = np.stack([v.optional_array(n, p, (H,), dtype, "= (H,)")
                         if p is not None else _missing(n)
                         for n, p in zip(_PEEPHOLE_NAMES, peephole)])
    return _Checked(xa, wih, whh, bih, bhh, h0a, c0a, lens, nt, peep, whr)


def _forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, lengths, training, num_threads,
             device="cpu", cuda_weights=None, peephole=None, w_hr=None):
    """``cuda_weights``: a resident _core.CudaWeights holding w_ih..b_hh (layers), else uploaded.
    ``peephole``: (w_ci, w_cf, w_co) for the "lstm_peephole" cell. ``w_hr``: LSTM projection."""
    if _device(device) == "cuda":
        if cell not in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
            raise ValueError(f"device: 'cuda' has no kernel for the {cell} cell variant; "
                             "run it on 'cpu'")
        if w_hr is not None:
            raise ValueError("device: 'cuda' has no kernel for the LSTM projection (w_hr); "
                             "run it on 'cpu'")
        _cuda.require("device='cuda'")
    xa, wih, whh, bih, bhh, h0a, c0a, lens, nt, peep, whr = _check_forward(
        cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, num_threads, peephole, w_hr)
    if device == "cuda":
        weights = cuda_weights
        if weights is None:
            weights = _core.CudaWeights(_CELL_IDS[cell], wih, whh, bih, bhh)
        y, h_n, c_n, saves = _core.cuda_forward(_CELL_IDS[cell], xa, weights, h0a, c0a, lens,
                                                bool(reverse), bool(training))
        cache = None
        if training:  # x and the weights live on the GPU in `saves`; these are for shape/dtype
            cache = Cache(cell, xa, wih, whh, bih is not None, lens, bool(reverse), nt, saves,
                          device="cuda")
        return y, h_n, c_n, cache
    y, h_n, c_n, saves = _core.forward(_CELL_IDS[cell], xa, wih, whh, bih, bhh, h0a, c0a, lens,
                                       bool(reverse), bool(training), nt, peep, whr)
    cache = None
    if training:  # np.stack made peep a private copy already
        cache = Cache(cell, _own_copy(xa, x), _own_copy(wih, w_ih), _own_copy(whh, w_hh),
                      bih is not None, None if lens is None else lens.copy(), bool(reverse), nt,
                      saves, peephole=peep, w_hr=None if whr is None else _own_copy(whr, w_hr))
    return y, h_n, c_n, cache


def _forward_group(calls, num_threads):
    """Eval-mode forward calls run at once by the kernels' OpenMP team, one thread each, at
    most ``num_threads`` together (the layers' wavefront and bidirectional layers). ``calls``:
    tuples ``(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, peephole, w_hr[, reverse[,
    out, column]])``; with ``out`` [T, B, W] the call's y goes to ``out[:, :, column:column+R]``
    (and its returned y is not that). Returns ``[(y, h_n, c_n), ...]``."""
    args = []
    for cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, peephole, w_hr, *rest in calls:
        c = _check_forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, 1, peephole, w_hr)
        reverse = bool(rest[0]) if rest else False
        into = tuple(rest[1:3]) if len(rest) >= 3 else ()
        args.append((_CELL_IDS[cell], c.x, c.w_ih, c.w_hh, c.b_ih, c.b_hh, c.h0, c.c0,
                     c.lengths, reverse, False, 1, c.peephole, c.w_hr) + into)
    nt = v.thread_count(num_threads, _core.max_threads())
    return [tuple(r[:3]) for r in _core.forward_group(args, nt)]


def _missing(name):
    raise TypeError(f"peephole: {name} is None; give all three of (w_ci, w_cf, w_co)")


def _backward(cell, cache, dy, dh_n, dc_n, fn_name, device=None):
    if cache is None:
        raise ValueError(f"cache: is None; run the forward with training=True before {fn_name}")
    if not isinstance(cache, Cache):
        raise TypeError(f"cache: expected the Cache returned by a training forward, got {type(cache).__name__}")
    if cache.cell != cell and not (cell == "rnn" and cache.cell.startswith("rnn_")) \
            and not (cell == "lstm" and cache.cell in _LSTM_CELLS) \
            and not (cell == "gru" and cache.cell == "gru_reset_before"):
        raise ValueError(f"cache: was made by a {cache.cell} forward, not usable by {fn_name}")
    if cache.consumed:
        raise ValueError("cache: already consumed by an earlier backward; run the forward again "
                         "with training=True")
    if device is not None and _device(device) != cache.device:
        raise ValueError(f"device: {device!r}, but the cache was made by a forward on "
                         f"{cache.device!r}; the backward runs where its forward ran")
    T, B, _, H = cache.shape
    R = cache.state_size
    dtype = cache.x.dtype
    what = "H" if cache.w_hr is None else "P"
    dya = v.optional_array("dy", dy, (T, B, R), dtype, f"= (T, B, {what}), like y")
    dha = v.optional_array("dh_n", dh_n, (B, R), dtype, f"= (B, {what}), like h_n")
    dca = v.optional_array("dc_n", dc_n, (B, H), dtype, "= (B, H), like c_n")
    if cache.device == "cuda":
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = _core.cuda_backward(
            _CELL_IDS[cache.cell], cache.saves, dya, dha, dca)
        cache.saves.release()  # free the GPU memory now
    else:
        gates, h_prev, aux = cache.saves[:3]
        proj_in = cache.saves[3] if cache.w_hr is not None else None
        out = _core.backward(
            _CELL_IDS[cache.cell], cache.x, cache.w_ih, cache.w_hh, cache.has_bias,
            cache.lengths, cache.reverse, gates, h_prev, aux, dya, dha, dca, cache.num_threads,
            cache.peephole, cache.w_hr, proj_in)
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = out[:7]
    cache.consumed = True
    cache.saves = None  # free the activations
    dparams = {"w_ih": dw_ih, "w_hh": dw_hh}
    if cache.has_bias:
        dparams["b_ih"] = db_ih
        dparams["b_hh"] = db_hh
    if cache.cell == "lstm_peephole":
        for name, grad in zip(_PEEPHOLE_NAMES, out[7]):
            dparams[name] = grad
    if cache.w_hr is not None:
        dparams["w_hr"] = out[-1]
    return dx, dh0, dc0, dparams


def _split_state(state, name="state"):
    if state is None:
        return None, None
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{name}: expected a tuple (h, c) or None, got {type(state).__name__}")
    return state[0], state[1]


def lstm_cell_name(coupled=False, peephole=False) -> str:
    """The kernel cell of an LSTM variant; raises ValueError for combinations not provided."""
    if not isinstance(coupled, (bool, np.bool_)):
        raise TypeError(f"coupled: expected a bool, got {type(coupled).__name__}")
    if coupled and peephole:
        raise ValueError("coupled=True and peephole cannot be combined: the coupled LSTM has no "
                         "input gate for w_ci to feed (and pyrnn has no coupled-peephole kernel)")
    return "lstm_coupled" if coupled else "lstm_peephole" if peephole else "lstm"


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, state=None, *, reverse=False, lengths=None,
                 training=False, num_threads=None, device="cpu", peephole=None, coupled=False,
                 w_hr=None):
    """LSTM over a whole sequence. Returns ``y [T,B,H], (h_n, c_n), cache``.

    ``state`` is ``(h0, c0)`` (each [B, H], either may be None for zeros) or None.

    ``w_hr`` [P, H] (CPU only): an LSTM with projection, as ``torch.nn.LSTM(proj_size=P)``:
    ``h' = W_hr (o*tanh(c'))``, so h0, h_n and y have P columns and ``w_hh`` is [4H, P];
    c0 and c_n stay [B, H]. Combines with ``coupled`` and ``peephole``.

    Variants (CPU only):

    - ``coupled=True``: coupled input-forget gate, ``c' = f*c + (1-f)*g``, three gate blocks
      f, g, o (``w_ih [3H, I]``, ``w_hh [3H, H]``, biases ``[3H]``).
    - ``peephole=(w_ci, w_cf, w_co)`` (each [H]): Gers & Schmidhuber peepholes,
      ``i = s(. + w_ci*c)``, ``f = s(. + w_cf*c)``, ``o = s(. + w_co*c')`` with the new c'.
      Not combinable with ``coupled``.
    """
    cell = lstm_cell_name(coupled, peephole is not None)
    h0, c0 = _split_state(state)
    y, h_n, c_n, cache = _forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, lengths,
                                  training, num_threads, device, peephole=peephole, w_hr=w_hr)
    return y, (h_n, c_n), cache


def lstm_backward(cache, dy, dstate=None, *, device=None):
    """Backpropagation through time for ``lstm_forward(..., training=True)``.

    ``dy`` [T,B,H] (or None), ``dstate = (dh_n, dc_n)`` (each may be None) or None; with a
    projection dy and dh_n have P columns.
    Returns ``dx, (dh0, dc0), dparams`` with dparams keys w_ih, w_hh (and b_ih, b_hh with bias,
    w_ci, w_cf, w_co for a peephole forward, w_hr with a projection). The variant is the one the
    cache remembers.
    """
    dh_n, dc_n = _split_state(dstate, "dstate")
    dx, dh0, dc0, dparams = _backward("lstm", cache, dy, dh_n, dc_n, "lstm_backward", device)
    return dx, (dh0, dc0), dparams


def gru_cell_name(reset_after=True) -> str:
    """The kernel cell of a GRU variant."""
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(f"reset_after: expected a bool, got {type(reset_after).__name__}")
    return "gru" if reset_after else "gru_reset_before"


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, state=None, *, reverse=False, lengths=None,
                training=False, num_threads=None, device="cpu", reset_after=True):
    """GRU. Returns ``y [T,B,H], h_n [B,H], cache``.

    ``reset_after=True`` (default): PyTorch's and cuDNN's form, the reset applied after the
    recurrent product, ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``.
    ``reset_after=False`` (CPU only): Keras' ``reset_after=False`` / the original GRU, the reset
    applied before it, ``n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)``; same parameter shapes.
    """
    y, h_n, _, cache = _forward(gru_cell_name(reset_after), x, w_ih, w_hh, b_ih, b_hh, state, None, reverse, lengths,
                                training, num_threads, device)
    return y, h_n, cache


def gru_backward(cache, dy, dstate=None, *, device=None):
    """Backward of ``gru_forward``: returns ``dx, dh0, dparams``; ``dstate`` is dh_n or None."""
    dx, dh0, _, dparams = _backward("gru", cache, dy, dstate, None, "gru_backward", device)
    return dx, dh0, dparams


def rnn_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, state=None, *, nonlinearity="tanh",
                reverse=False, lengths=None, training=False, num_threads=None, device="cpu"):
    """Elman RNN, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with act ``"tanh"`` or ``"relu"``.
    Returns ``y [T,B,H], h_n [B,H], cache``."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    y, h_n, _, cache = _forward("rnn_" + nonlinearity, x, w_ih, w_hh, b_ih, b_hh, state, None,
                                reverse, lengths, training, num_threads, device)
    return y, h_n, cache


def rnn_backward(cache, dy, dstate=None, *, device=None):
    """Backward of ``rnn_forward``: returns ``dx, dh0, dparams``; ``dstate`` is dh_n or None."""
    dx, dh0, _, dparams = _backward("rnn", cache, dy, dstate, None, "rnn_backward", device)
    return dx, dh0, dparams
