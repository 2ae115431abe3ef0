"""Pure-NumPy reference implementation of LSTM, GRU and Elman-RNN forward and BPTT.

This module is the test oracle and the NumPy benchmark baseline for the compiled
kernels in :mod:`pyrnn.functional`; it has exactly the same call signatures, so it
is a drop-in replacement. It favours clarity over speed: one explicit loop over
time, vectorised over the batch.

Shapes (see DESIGN.md): ``x [T, B, I]`` (time-major), states ``[B, H]``,
``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``b_ih [G*H]``, ``b_hh [G*H]`` with G = 4
(LSTM, gates i, f, g, o), 3 (GRU, gates r, z, n) or 1 (RNN).

Common semantics:

* ``reverse=True`` runs each sequence from its end towards time 0.
* ``lengths`` (int ``[B]``, ``0 <= len <= T``): row ``b`` processes only times
  ``0 .. len_b - 1`` (reversed: from ``len_b - 1`` down to 0); outputs past a row's
  length are exactly zero; the final state is the state after the row's last valid
  step (the initial state when ``len_b == 0``). This matches PyTorch packed
  sequences (``pack_padded_sequence(..., enforce_sorted=False)``), including the
  reverse direction of a bidirectional module.
* Computation happens in ``x.dtype`` (float32 or float64); weights, biases and
  states are converted to it. Results have that dtype.
* ``cache`` is ``None`` unless ``training=True``; a cache may be consumed by
  exactly one backward call.
* ``num_threads`` is accepted for signature compatibility and ignored.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "rnn_forward",
    "rnn_backward",
]

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


# --------------------------------------------------------------------------- helpers


def _sigmoid(a):
    """Numerically stable logistic function (no overflow for large |a|)."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def _as(name, value, dtype, shape):
    """Convert ``value`` to ``dtype`` and check its shape."""
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")
    return arr


def _prepare(cell, x, w_ih, w_hh, b_ih, b_hh, lengths):
    """Validate and convert the common forward inputs.

    Returns ``(x, w_ih, w_hh, b_ih, b_hh, lengths, T, B, I, H)`` with everything in
    ``x.dtype`` and ``lengths`` either None or an int64 array ``[B]``.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"x: expected 3 dimensions [T, B, I], got shape {x.shape}")
    dtype = x.dtype
    T, B, I = x.shape
    G = _GATES[cell]
    w_hh = np.asarray(w_hh, dtype=dtype)
    if w_hh.ndim != 2 or w_hh.shape[0] != G * w_hh.shape[1]:
        raise ValueError(f"w_hh: expected shape [{G}*H, H], got {w_hh.shape}")
    H = w_hh.shape[1]
    w_ih = _as("w_ih", w_ih, dtype, (G * H, I))
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih and b_hh must be given together or both be None")
    if b_ih is not None:
        b_ih = _as("b_ih", b_ih, dtype, (G * H,))
        b_hh = _as("b_hh", b_hh, dtype, (G * H,))
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (B,):
            raise ValueError(f"lengths: expected shape ({B},), got {lengths.shape}")
        if lengths.size and not np.issubdtype(lengths.dtype, np.integer):
            raise TypeError(f"lengths: expected an integer array, got {lengths.dtype}")
        lengths = lengths.astype(np.int64)
        if lengths.size and (lengths.min() < 0 or lengths.max() > T):
            raise ValueError(f"lengths: values must lie in [0, {T}]")
    return x, w_ih, w_hh, b_ih, b_hh, lengths, T, B, I, H


def _time_order(T, reverse):
    """Times in processing order."""
    return range(T - 1, -1, -1) if reverse else range(T)


def _valid(lengths, t, B):
    """Boolean column ``[B, 1]``: which rows process time ``t``."""
    if lengths is None:
        return np.ones((B, 1), dtype=bool)
    return (t < lengths)[:, None]


def _initial(name, value, dtype, B, H):
    if value is None:
        return np.zeros((B, H), dtype=dtype)
    return _as(name, value, dtype, (B, H)).copy()


def _take_cache(cache, cell):
    """Check that ``cache`` is an unused training cache of ``cell`` and mark it used."""
    if cache is None:
        raise ValueError("cache is None: run the forward with training=True")
    if not isinstance(cache, dict) or cache.get("cell") != cell:
        raise ValueError(f"cache does not come from {cell}_forward(training=True)")
    if cache["used"]:
        raise ValueError("this cache has already been consumed by a backward call")
    cache["used"] = True
    return cache


def _upstream(dy, dstate_h, cache):
    """Convert ``dy`` and a final-state gradient to arrays of the right shape."""
    T, B, H, dtype = cache["T"], cache["B"], cache["H"], cache["x"].dtype
    dy = np.zeros((T, B, H), dtype) if dy is None else _as("dy", dy, dtype, (T, B, H))
    dh = _initial("dh_n", dstate_h, dtype, B, H)
    return dy, dh


def _param_grads(cache):
    """Zero-initialised parameter gradients matching the forward's parameters."""
    d = {"w_ih": np.zeros_like(cache["w_ih"]), "w_hh": np.zeros_like(cache["w_hh"])}
    if cache["has_bias"]:
        GH = cache["w_hh"].shape[0]
        d["b_ih"] = np.zeros(GH, cache["x"].dtype)
        d["b_hh"] = np.zeros(GH, cache["x"].dtype)
    return d


# --------------------------------------------------------------------------- LSTM


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, state=None, *, reverse=False,
                 lengths=None, training=False, num_threads=None):
    """LSTM forward over a sequence (gate order i, f, g, o).

    ``c' = f*c + i*g``, ``h' = o*tanh(c')``. ``state`` is ``(h0, c0)`` (either may be
    None) or None for zeros. Returns ``y [T,B,H], (h_n, c_n), cache``.
    """
    x, w_ih, w_hh, b_ih, b_hh, lengths, T, B, I, H = _prepare(
        "lstm", x, w_ih, w_hh, b_ih, b_hh, lengths)
    dtype = x.dtype
    h0, c0 = (None, None) if state is None else state
    h = _initial("h0", h0, dtype, B, H)
    c = _initial("c0", c0, dtype, B, H)
    bias = 0 if b_ih is None else b_ih + b_hh

    y = np.zeros((T, B, H), dtype)
    if training:  # per-time saved values, indexed by time t
        h_prev = np.zeros((T, B, H), dtype)
        c_prev = np.zeros((T, B, H), dtype)
        c_new_all = np.zeros((T, B, H), dtype)
        gates_all = np.zeros((T, B, 4 * H), dtype)  # post-activation i, f, g, o

    for t in _time_order(T, reverse):
        valid = _valid(lengths, t, B)
        pre = x[t] @ w_ih.T + h @ w_hh.T + bias
        i = _sigmoid(pre[:, 0 * H:1 * H])
        f = _sigmoid(pre[:, 1 * H:2 * H])
        g = np.tanh(pre[:, 2 * H:3 * H])
        o = _sigmoid(pre[:, 3 * H:4 * H])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if training:
            h_prev[t], c_prev[t], c_new_all[t] = h, c, c_new
            gates_all[t] = np.concatenate([i, f, g, o], axis=1)
        y[t] = np.where(valid, h_new, 0)
        h = np.where(valid, h_new, h)
        c = np.where(valid, c_new, c)

    cache = None
    if training:
        cache = dict(cell="lstm", used=False, T=T, B=B, I=I, H=H, x=x, w_ih=w_ih, w_hh=w_hh,
                     has_bias=b_ih is not None, reverse=reverse, lengths=lengths,
                     h_prev=h_prev, c_prev=c_prev, c_new=c_new_all, gates=gates_all)
    return y, (h, c), cache


def lstm_backward(cache, dy, dstate=None):
    """LSTM backward-through-time.

    ``dy [T,B,H]`` or None; ``dstate`` is ``(dh_n, dc_n)`` (either may be None) or None.
    Returns ``dx, (dh0, dc0), dparams`` with dparams keys w_ih, w_hh[, b_ih, b_hh].
    """
    cache = _take_cache(cache, "lstm")
    T, B, H = cache["T"], cache["B"], cache["H"]
    x, w_ih, w_hh, lengths = cache["x"], cache["w_ih"], cache["w_hh"], cache["lengths"]
    dh_n, dc_n = (None, None) if dstate is None else dstate
    dy, dh = _upstream(dy, dh_n, cache)
    dc = _initial("dc_n", dc_n, x.dtype, B, H)
    dx = np.zeros_like(x)
    dp = _param_grads(cache)

    # Visit the steps in the opposite of the forward's processing order.
    for t in _time_order(T, not cache["reverse"]):
        valid = _valid(lengths, t, B)
        gates = cache["gates"][t]
        i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
        tanh_c = np.tanh(cache["c_new"][t])

        dh_t = dh + dy[t]
        dc_t = dc + dh_t * o * (1 - tanh_c * tanh_c)
        d_i = dc_t * g * i * (1 - i)
        d_f = dc_t * cache["c_prev"][t] * f * (1 - f)
        d_g = dc_t * i * (1 - g * g)
        d_o = dh_t * tanh_c * o * (1 - o)
        dpre = np.where(valid, np.concatenate([d_i, d_f, d_g, d_o], axis=1), 0)

        dx[t] = dpre @ w_ih
        dp["w_ih"] += dpre.T @ x[t]
        dp["w_hh"] += dpre.T @ cache["h_prev"][t]
        if "b_ih" in dp:
            db = dpre.sum(axis=0)
            dp["b_ih"] += db
            dp["b_hh"] += db
        # Rows that skipped this step pass their state gradient through unchanged.
        dh = np.where(valid, dpre @ w_hh, dh)
        dc = np.where(valid, dc_t * f, dc)

    return dx, (dh, dc), dp


# --------------------------------------------------------------------------- GRU


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, state=None, *, reverse=False,
                lengths=None, training=False, num_threads=None):
    """GRU forward (gate order r, z, n; "linear before reset" form).

    ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``, ``h' = (1-z)*n + z*h``.
    ``state`` is ``h0`` or None. Returns ``y [T,B,H], h_n, cache``.
    """
    x, w_ih, w_hh, b_ih, b_hh, lengths, T, B, I, H = _prepare(
        "gru", x, w_ih, w_hh, b_ih, b_hh, lengths)
    dtype = x.dtype
    h = _initial("h0", state, dtype, B, H)
    bias_i = 0 if b_ih is None else b_ih
    bias_h = 0 if b_hh is None else b_hh

    y = np.zeros((T, B, H), dtype)
    if training:
        h_prev = np.zeros((T, B, H), dtype)
        gates_all = np.zeros((T, B, 3 * H), dtype)  # post-activation r, z, n
        hn_all = np.zeros((T, B, H), dtype)          # W_hn h + b_hn (before the reset)

    for t in _time_order(T, reverse):
        valid = _valid(lengths, t, B)
        gi = x[t] @ w_ih.T + bias_i
        gh = h @ w_hh.T + bias_h
        r = _sigmoid(gi[:, 0 * H:1 * H] + gh[:, 0 * H:1 * H])
        z = _sigmoid(gi[:, 1 * H:2 * H] + gh[:, 1 * H:2 * H])
        hn = gh[:, 2 * H:3 * H]
        n = np.tanh(gi[:, 2 * H:3 * H] + r * hn)
        h_new = (1 - z) * n + z * h
        if training:
            h_prev[t], hn_all[t] = h, hn
            gates_all[t] = np.concatenate([r, z, n], axis=1)
        y[t] = np.where(valid, h_new, 0)
        h = np.where(valid, h_new, h)

    cache = None
    if training:
        cache = dict(cell="gru", used=False, T=T, B=B, I=I, H=H, x=x, w_ih=w_ih, w_hh=w_hh,
                     has_bias=b_ih is not None, reverse=reverse, lengths=lengths,
                     h_prev=h_prev, gates=gates_all, hn=hn_all)
    return y, h, cache


def gru_backward(cache, dy, dstate=None):
    """GRU backward-through-time.

    ``dy [T,B,H]`` or None; ``dstate`` is ``dh_n`` or None.
    Returns ``dx, dh0, dparams`` with dparams keys w_ih, w_hh[, b_ih, b_hh].
    """
    cache = _take_cache(cache, "gru")
    T, B, H = cache["T"], cache["B"], cache["H"]
    x, w_ih, w_hh, lengths = cache["x"], cache["w_ih"], cache["w_hh"], cache["lengths"]
    dy, dh = _upstream(dy, dstate, cache)
    dx = np.zeros_like(x)
    dp = _param_grads(cache)

    for t in _time_order(T, not cache["reverse"]):
        valid = _valid(lengths, t, B)
        gates = cache["gates"][t]
        r, z, n = (gates[:, k * H:(k + 1) * H] for k in range(3))
        h_prev = cache["h_prev"][t]

        dh_t = dh + dy[t]
        d_n = dh_t * (1 - z) * (1 - n * n)             # grad of n's pre-activation
        d_z = dh_t * (h_prev - n) * z * (1 - z)
        d_r = d_n * cache["hn"][t] * r * (1 - r)
        dgi = np.where(valid, np.concatenate([d_r, d_z, d_n], axis=1), 0)
        dgh = np.where(valid, np.concatenate([d_r, d_z, d_n * r], axis=1), 0)

        dx[t] = dgi @ w_ih
        dp["w_ih"] += dgi.T @ x[t]
        dp["w_hh"] += dgh.T @ h_prev
        if "b_ih" in dp:
            dp["b_ih"] += dgi.sum(axis=0)
            dp["b_hh"] += dgh.sum(axis=0)
        dh = np.where(valid, dgh @ w_hh + dh_t * z, dh)

    return dx, dh, dp


# --------------------------------------------------------------------------- Elman RNN


def rnn_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, state=None, *, nonlinearity="tanh",
                reverse=False, lengths=None, training=False, num_threads=None):
    """Elman RNN forward: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act tanh or relu.

    ``state`` is ``h0`` or None. Returns ``y [T,B,H], h_n, cache``.
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    x, w_ih, w_hh, b_ih, b_hh, lengths, T, B, I, H = _prepare(
        "rnn", x, w_ih, w_hh, b_ih, b_hh, lengths)
    dtype = x.dtype
    h = _initial("h0", state, dtype, B, H)
    bias = 0 if b_ih is None else b_ih + b_hh

    y = np.zeros((T, B, H), dtype)
    if training:
        h_prev = np.zeros((T, B, H), dtype)
        h_new_all = np.zeros((T, B, H), dtype)

    for t in _time_order(T, reverse):
        valid = _valid(lengths, t, B)
        pre = x[t] @ w_ih.T + h @ w_hh.T + bias
        h_new = np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0)
        if training:
            h_prev[t], h_new_all[t] = h, h_new
        y[t] = np.where(valid, h_new, 0)
        h = np.where(valid, h_new, h)

    cache = None
    if training:
        cache = dict(cell="rnn", used=False, T=T, B=B, I=I, H=H, x=x, w_ih=w_ih, w_hh=w_hh,
                     has_bias=b_ih is not None, reverse=reverse, lengths=lengths,
                     nonlinearity=nonlinearity, h_prev=h_prev, h_new=h_new_all)
    return y, h, cache


def rnn_backward(cache, dy, dstate=None):
    """Elman RNN backward-through-time.

    ``dy [T,B,H]`` or None; ``dstate`` is ``dh_n`` or None.
    Returns ``dx, dh0, dparams`` with dparams keys w_ih, w_hh[, b_ih, b_hh].
    """
    cache = _take_cache(cache, "rnn")
    T, B = cache["T"], cache["B"]
    x, w_ih, w_hh, lengths = cache["x"], cache["w_ih"], cache["w_hh"], cache["lengths"]
    dy, dh = _upstream(dy, dstate, cache)
    dx = np.zeros_like(x)
    dp = _param_grads(cache)

    for t in _time_order(T, not cache["reverse"]):
        valid = _valid(lengths, t, B)
        h_new = cache["h_new"][t]
        if cache["nonlinearity"] == "tanh":
            dact = 1 - h_new * h_new
        else:
            dact = (h_new > 0).astype(x.dtype)
        dpre = np.where(valid, (dh + dy[t]) * dact, 0)

        dx[t] = dpre @ w_ih
        dp["w_ih"] += dpre.T @ x[t]
        dp["w_hh"] += dpre.T @ cache["h_prev"][t]
        if "b_ih" in dp:
            db = dpre.sum(axis=0)
            dp["b_ih"] += db
            dp["b_hh"] += db
        dh = np.where(valid, dpre @ w_hh, dh)

    return dx, dh, dp
