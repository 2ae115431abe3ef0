"""Leaks: thousands of kernel calls leave memory and reference counts flat.

- Resident memory (from /proc/self/statm) after warm-up stays flat over two windows of ~1500
  forward/backward calls each (every cell, both dtypes, lengths/reverse, inference calls,
  refused calls, layers): total growth below 20 MB, and the second window grows no more than a
  small fixed amount (a leak would grow both windows in proportion to the calls; one leaked
  y/saves buffer per call here is >= 8 KB, i.e. >= 12 MB per window).
- Python-level allocations (tracemalloc, which also sees NumPy's data buffers) are flat over a
  window: catches small leaks of Python objects the RSS windows would miss.
- Reference counts of every argument are unchanged after many calls, successful or refused
  (catches a binding that keeps or drops references), and results and caches are freed when
  the caller drops them (weak references die).
"""
from __future__ import annotations

import ctypes
import gc
import os
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

import pyrnn
from pyrnn import _core
from pyrnn import functional as F

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc"),
    pytest.mark.skipif(os.environ.get("PYRNN_SANITIZED") == "1",
                       reason="RSS is meaningless under ASan (quarantine, shadow memory)"),
]

CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")]
G = {"lstm": 4, "gru": 3, "rnn": 1}
MB = 1 << 20

try:
    _libc = ctypes.CDLL("libc.so.6")
    _malloc_trim = _libc.malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def rss() -> int:
    """Resident set size in bytes, after a GC and giving free heap pages back to the OS."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _make(cell, nl, dtype, seed, T=8, B=8, I=16, H=32):
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-0.3, 0.3, s).astype(dtype)  # noqa: E731
    GH = G[cell] * H
    args = dict(x=u(T, B, I), w_ih=u(GH, I), w_hh=u(GH, H), b_ih=u(GH), b_hh=u(GH),
                h0=u(B, H), c0=u(B, H), dy=u(T, B, H), dh=u(B, H), dc=u(B, H),
                lengths=rng.integers(0, T + 1, B))
    # Look the functions up once: getattr with a fresh f-string per call fills CPython's
    # (bounded) attribute cache with new strings, which tracemalloc would show as growth.
    return cell, nl, args, getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")


CASES = [_make(c, nl, dt, 10 * i + j) for i, (c, nl) in enumerate(CELLS)
         for j, dt in enumerate((np.float64, np.float32))]


def _call(case, i):
    """One training forward + backward (reverse and lengths vary with i), one inference
    forward, one refused call (bad lengths) of one cell."""
    cell, nl, a, fwd, bwd = case
    kw = dict(reverse=i % 2 == 1, lengths=a["lengths"] if i % 3 else None, num_threads=1)
    if nl:
        kw["nonlinearity"] = nl
    state = (a["h0"], a["c0"]) if cell == "lstm" else a["h0"]
    dstate = (a["dh"], a["dc"]) if cell == "lstm" else a["dh"]
    y, st, cache = fwd(a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], state, training=True,
                       **kw)
    bwd(cache, a["dy"] if i % 4 else None, dstate)
    fwd(a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], state, training=False, **kw)
    try:
        fwd(a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], state,
            **dict(kw, lengths=-a["lengths"] - 1))
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("negative lengths accepted")


def _raw_refused_call(case):
    """A call refused by the raw binding after some arrays were checked (bad h0 dtype)."""
    cell, nl, a = case[:3]
    cell_id = {"lstm": 0, "gru": 1, "rnn": 2}[cell]
    try:
        _core.forward(cell_id, a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                      a["h0"].astype(np.float16), None, a["lengths"], False, True, 1)
    except TypeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("float16 h0 accepted")


def _layers():
    out = []
    for kind, dtype in ((pyrnn.LSTM, np.float32), (pyrnn.GRU, np.float64), (pyrnn.RNN, np.float32)):
        layer = kind(6, 10, num_layers=2, bidirectional=True, dtype=dtype, seed=1, num_threads=2)
        x = np.random.default_rng(2).standard_normal((5, 3, 6)).astype(dtype)
        dy = np.ones((5, 3, 20), dtype)
        out.append((layer, x, dy))
    return out


def _layer_call(item):
    layer, x, dy = item
    layer.train()
    layer(x, lengths=[5, 0, 2])
    layer.backward(dy)
    layer.zero_grad()
    layer.eval()
    layer(x)


def _work(n, layers):
    for i in range(n):
        _call(CASES[i % len(CASES)], i)
        if i % 8 == 0:
            _raw_refused_call(CASES[i % len(CASES)])
        if i % 10 == 0:
            _layer_call(layers[(i // 10) % len(layers)])


def test_rss_flat_over_many_calls():
    layers = _layers()
    _work(300, layers)  # warm-up: OpenMP pool, thread arenas, the layers' executor
    r0 = rss()
    _work(1500, layers)
    r1 = rss()
    _work(1500, layers)
    r2 = rss()
    first, second = (r1 - r0) / MB, (r2 - r1) / MB
    msg = f"RSS growth: first window {first:.2f} MB, second window {second:.2f} MB"
    assert r2 - r0 < 20 * MB, msg
    # A per-call leak grows both windows alike; after warm-up the second window must be flat.
    assert r2 - r1 < 3 * MB, msg


def test_python_allocations_flat():
    layers = _layers()
    _work(50, layers)
    gc.collect()
    tracemalloc.start()
    try:
        _work(100, layers)  # bounded caches (CPython's attribute cache, pybind11's) fill up
        gc.collect()
        base, _ = tracemalloc.get_traced_memory()
        snap0 = tracemalloc.take_snapshot()
        _work(200, layers)
        gc.collect()
        now, _ = tracemalloc.get_traced_memory()
        snap1 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    top = snap1.compare_to(snap0, "lineno")[:5]
    # 200 iterations of ~5 calls: one leaked small object (>= ~50 bytes) per iteration shows.
    assert now - base < 8 * 1024, f"{now - base} bytes:\n" + "\n".join(str(s) for s in top)


def test_argument_refcounts_unchanged():
    arrays = [case[2][k] for case in CASES for k in sorted(case[2])]
    before = [sys.getrefcount(arr) for arr in arrays]
    layers = _layers()
    _work(200, layers)
    gc.collect()
    after = [sys.getrefcount(arr) for arr in arrays]
    assert after == before


def test_results_and_caches_are_freed():
    a = CASES[0][2]
    refs = []
    for training in (False, True):
        y, (h, c), cache = F.lstm_forward(a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                                          (a["h0"], a["c0"]), training=training, num_threads=1)
        refs += [weakref.ref(y), weakref.ref(h), weakref.ref(c)]
        if training:
            assert sys.getrefcount(cache) == 2  # our name and getrefcount's argument
            refs += [weakref.ref(s) for s in cache.saves if s is not None]
            dx, (dh0, dc0), dp = F.lstm_backward(cache, a["dy"], (a["dh"], a["dc"]))
            refs += [weakref.ref(r) for r in (dx, dh0, dc0, *dp.values())]
            del dx, dh0, dc0, dp
        del y, h, c, cache
    # No gc.collect(): plain reference counting must free everything (no cycles, no leaks).
    alive = [r for r in refs if r() is not None]
    assert not alive, [type(r()).__name__ + str(getattr(r(), "shape", "")) for r in alive]


def test_unconsumed_training_caches_are_freed():
    """Training forwards whose caches are never used for a backward leak nothing."""
    a = CASES[2][2]

    def many(n):
        for _ in range(n):
            F.gru_forward(a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], a["h0"],
                          training=True, num_threads=1)

    many(200)
    r0 = rss()
    many(2000)  # each cache holds >= 8 KB of saved activations plus a private copy of x
    r1 = rss()
    assert r1 - r0 < 3 * MB, f"RSS grew {(r1 - r0) / MB:.2f} MB over 2000 dropped caches"
