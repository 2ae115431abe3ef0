"""Thread stress: many Python threads hammering the kernels and layers at once.

Eight Python threads run a mixed job list (functional forward+backward of every cell, both
dtypes, lengths/reverse, 1 or 2 OpenMP threads each; stacked/bidirectional layers in training
and shared eval-mode layers in inference) for a bounded time, and every result is compared
bitwise with a result computed serially beforehand (the same call always gives the same bits;
see test_determinism.py). tests/test_threads.py covers 2-4 threads with a fixed job count; this
is the oversubscribed, time-bounded version (8 Python threads x up to 2 OpenMP threads on a
2-core machine).

PYRNN_STRESS_SECONDS sets the time budget (default 3 s).
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

import pyrnn
from pyrnn import functional as F

N_THREADS = 8
SECONDS = float(os.environ.get("PYRNN_STRESS_SECONDS", "3"))
HARD_LIMIT = 60 + 10 * SECONDS  # a hung worker fails the test instead of hanging the suite

CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")]
G = {"lstm": 4, "gru": 3, "rnn": 1}


def _functional_job(j):
    cell, nl = CELLS[j % 4]
    rng = np.random.default_rng(1000 + j)
    dtype = np.float64 if (j // 4) % 2 == 0 else np.float32
    # The last shape is big enough for the kernels to really use 2 OpenMP threads when asked
    # (see step_threads in csrc/pyrnn/recurrent.h); the others run on one whatever is asked.
    big_h = 256 if cell == "rnn" else 128
    T, B, I, H = [(6, 5, 4, 9), (3, 8, 7, 16), (9, 3, 5, 33), (3, 32, 8, big_h)][(j // 8) % 4]
    num_threads = 2 if (j // 8) % 4 == 3 else 1 + (j % 3 == 0)
    reverse = j % 2 == 1
    lengths = rng.integers(0, T + 1, size=B) if j % 5 != 4 else None
    k = 1 / np.sqrt(H)
    u = lambda *s, a=1.0: rng.uniform(-a, a, s).astype(dtype)  # noqa: E731
    p = [u(G[cell] * H, I, a=k), u(G[cell] * H, H, a=k), u(G[cell] * H, a=k),
         u(G[cell] * H, a=k)]
    x, dy, h0, dh = u(T, B, I), u(T, B, H), u(B, H), u(B, H)
    state = (h0, u(B, H)) if cell == "lstm" else h0
    dstate = (dh, u(B, H)) if cell == "lstm" else dh
    kw = dict(reverse=reverse, lengths=lengths, training=True, num_threads=num_threads)
    if nl:
        kw["nonlinearity"] = nl
    fwd = getattr(F, f"{cell}_forward")
    bwd = getattr(F, f"{cell}_backward")

    def run():
        y, st, cache = fwd(x, *p, state, **kw)
        dx, dst, dp = bwd(cache, dy, dstate)
        out = [y, dx, *(st if isinstance(st, tuple) else (st,)),
               *(dst if isinstance(dst, tuple) else (dst,))]
        return out + [dp[k] for k in sorted(dp)]

    return f"F{j}:{cell}{nl or ''}", run


def _layer_job(j):
    """A private training layer per job (forward+backward), or a shared eval-mode layer."""
    kind = [pyrnn.LSTM, pyrnn.GRU, pyrnn.RNN][j % 3]
    dtype = np.float32 if j % 2 else np.float64
    bidir = j % 4 < 2
    layer = kind(5, 12, num_layers=2, bidirectional=bidir, batch_first=j % 3 == 1, dtype=dtype,
                 seed=j, num_threads=1 + (j % 2))
    rng = np.random.default_rng(j)
    T, B = 7, 6
    x = rng.standard_normal((B, T, 5) if layer.batch_first else (T, B, 5)).astype(dtype)
    lengths = np.array([7, 0, 3, 7, 1, 5])
    D = 2 if bidir else 1
    dy = rng.standard_normal((B, T, D * 12) if layer.batch_first else (T, B, D * 12)).astype(dtype)
    lock = threading.Lock()
    train = j % 3 != 2  # every third layer job is a shared inference-only layer
    if train:
        layer.train()

        def run():
            # One layer object holds one forward's tape: serialise use of this object (other
            # jobs, other layers, still run concurrently), as a user sharing a layer must.
            with lock:
                layer.zero_grad()
                y, st = layer(x, lengths=lengths)
                dx = layer.backward(dy)
                grads = [layer.grads[k].copy() for k in sorted(layer.grads)]
            states = list(st) if isinstance(st, tuple) else [st]
            return [y, dx, *states, *grads]
    else:
        layer.eval()

        def run():  # shared by every thread without a lock: inference keeps no state
            y, st = layer(x, lengths=lengths)
            return [y, *(list(st) if isinstance(st, tuple) else [st])]

    return f"L{j}:{kind.__name__}{'-bi' if bidir else ''}{'-train' if train else '-eval'}", run


def _jobs():
    return [_functional_job(j) for j in range(32)] + [_layer_job(j) for j in range(9)]


def test_many_threads_match_serial():
    jobs = _jobs()
    want = [run() for _, run in jobs]
    assert all(any(a.size for a in w) for w in want)
    mismatches, errors = [], []
    counts = [0] * N_THREADS
    start_gate = threading.Barrier(N_THREADS)
    deadline = [0.0]

    def worker(tid):
        try:
            start_gate.wait()
            rng = np.random.default_rng(tid)
            rounds = 0
            # At least two full passes; then until the deadline.
            while rounds < 2 or time.perf_counter() < deadline[0]:
                for j in rng.permutation(len(jobs)):
                    name, run = jobs[j]
                    got = run()
                    counts[tid] += 1
                    if len(got) != len(want[j]) or not all(
                            g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
                            for g, w in zip(got, want[j])):
                        mismatches.append((tid, name))
                rounds += 1
        except BaseException as e:  # reported by the main thread
            errors.append((tid, repr(e)))

    deadline[0] = time.perf_counter() + SECONDS
    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(N_THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, t0 + HARD_LIMIT - time.perf_counter()))
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors
    assert not mismatches, (f"{len(mismatches)} results differ from the serial run",
                            mismatches[:10])
    assert all(c >= 2 * len(jobs) for c in counts), counts


def test_layers_and_functional_interleaved_with_gc():
    """Threads that drop results and caches while others allocate: a training forward whose
    cache is dropped without a backward, a backward in another thread than its forward, and
    gc.collect() from a third thread must all be harmless."""
    import gc
    import queue

    rng = np.random.default_rng(7)
    T, B, I, H = 5, 4, 6, 10
    x = rng.standard_normal((T, B, I))
    w = [rng.standard_normal(s) * 0.3 for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    dy = rng.standard_normal((T, B, H))
    y_ref, st_ref, cache = F.lstm_forward(x, *w, training=True, num_threads=1)
    want = F.lstm_backward(cache, dy)

    caches: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()
    errors, bad = [], []

    def producer():
        try:
            while not stop.is_set():
                y, _, c = F.lstm_forward(x, *w, training=True, num_threads=1)
                if not np.array_equal(y, y_ref):
                    bad.append("forward")
                F.lstm_forward(x, *w, training=True, num_threads=1)  # cache dropped unused
                caches.put(c, timeout=10)
        except BaseException as e:
            errors.append(repr(e))

    def consumer():
        try:
            while not stop.is_set() or not caches.empty():
                try:
                    c = caches.get(timeout=0.05)
                except queue.Empty:
                    continue
                dx, (dh0, dc0), dp = F.lstm_backward(c, dy)
                if not (np.array_equal(dx, want[0]) and np.array_equal(dh0, want[1][0])
                        and all(np.array_equal(dp[k], want[2][k]) for k in dp)):
                    bad.append("backward")
        except BaseException as e:
            errors.append(repr(e))

    def collector():
        while not stop.is_set():
            gc.collect()
            time.sleep(0.01)

    threads = ([threading.Thread(target=producer, daemon=True) for _ in range(3)]
               + [threading.Thread(target=consumer, daemon=True) for _ in range(3)]
               + [threading.Thread(target=collector, daemon=True)])
    for t in threads:
        t.start()
    time.sleep(min(1.5, SECONDS))
    stop.set()
    for t in threads:
        t.join(timeout=HARD_LIMIT)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors
    assert not bad, bad[:10]
