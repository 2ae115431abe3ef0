"""pyrnn.functional from several Python threads, and independence of a cache from the caller's
arrays.

- Kernels called from 2 and 4 Python threads at once give the results of a serial run.
- The GIL is released while a kernel runs (another Python thread keeps running).
- A training forward's cache keeps its own copies: changing the caller's inputs, weights,
  states or the returned outputs in place between forward and backward (as an optimizer step
  would) does not change the backward result.
"""
import threading
import time

import numpy as np
import pytest

import pyrnn
from pyrnn import functional as F
from torch_oracle import CELL_IDS, CELLS, make_case, run_functional

CELL_PARAMS = pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)


def assert_same(got, want):
    """Bitwise equal: the kernels are reproducible from call to call for a given thread count."""
    assert set(got) <= set(want), (sorted(got), sorted(want))
    for k in got:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def _jobs(n_jobs, num_threads):
    """Distinct work items: every cell, both dtypes, forward/reverse, different shapes."""
    jobs = []
    shapes = [(5, 4, 3, 7), (3, 9, 6, 5), (6, 2, 4, 33), (4, 7, 5, 3)]
    for j in range(n_jobs):
        cell, nl = CELLS[j % len(CELLS)]
        dtype = np.float64 if (j // 4) % 2 == 0 else np.float32
        case = make_case(cell, *shapes[(j // 2) % len(shapes)], dtype=dtype, seed=100 + j,
                         lengths=j % 3 == 0)
        jobs.append((case, nl, j % 2 == 1, num_threads))
    return jobs


def _run_job(job):
    case, nl, reverse, num_threads = job
    return run_functional(F, case, nl, reverse, num_threads=num_threads)


def _run_concurrently(jobs, n_threads, repeats):
    """Each Python thread runs its share of the jobs `repeats` times; all start together."""
    results = [[None] * repeats for _ in jobs]
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(tid):
        try:
            barrier.wait()
            for r in range(repeats):
                for j in range(tid, len(jobs), n_threads):
                    results[j][r] = _run_job(jobs[j])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors
    return results


@pytest.mark.parametrize("n_threads,num_threads", [(2, 1), (4, 1), (2, 2)],
                         ids=["2py_x_1omp", "4py_x_1omp", "2py_x_2omp"])
def test_concurrent_calls_match_serial(n_threads, num_threads):
    jobs = _jobs(16 if num_threads == 1 else 8, num_threads)
    serial = [_run_job(job) for job in jobs]
    concurrent = _run_concurrently(jobs, n_threads, repeats=3 if num_threads == 1 else 2)
    for want, gots in zip(serial, concurrent):
        for got in gots:
            assert set(got) == set(want)
            assert_same(got, want)


def test_shared_inputs_from_many_threads():
    """Four threads running the same forward/backward on the very same arrays at once."""
    case = make_case("lstm", 6, 5, 4, 9, seed=3, lengths=True)
    want = run_functional(F, case, None, True, num_threads=1)
    jobs = [(case, None, True, 1)] * 8
    for gots in _run_concurrently(jobs, 4, repeats=2):
        for got in gots:
            assert_same(got, want)


def test_gil_released_during_kernel():
    """While one thread is inside a long kernel, another Python thread keeps running.

    The main thread records a timestamp per loop iteration while a worker runs a ~0.1-0.5 s
    forward. If the GIL were held by the kernel, the main thread would see one gap as long as
    the whole kernel call.
    """
    rng = np.random.default_rng(0)
    Tn, Bn, In, Hn = 150, 32, 128, 128
    x = rng.standard_normal((Tn, Bn, In))
    w_ih = rng.standard_normal((4 * Hn, In)) * 0.05
    w_hh = rng.standard_normal((4 * Hn, Hn)) * 0.05
    F.lstm_forward(x[:2], w_ih, w_hh, num_threads=1)  # warm up
    span = {}

    def worker():
        span["start"] = time.perf_counter()
        F.lstm_forward(x, w_ih, w_hh, num_threads=1)
        span["end"] = time.perf_counter()

    for attempt in range(3):  # a busy machine may deschedule us: retry before failing
        span.clear()
        ticks = []
        t = threading.Thread(target=worker)
        t.start()
        while t.is_alive():
            ticks.append(time.perf_counter())
        t.join()
        start, end = span["start"], span["end"]
        inside = [s for s in ticks if start < s < end]
        points = [start] + inside + [end]
        max_gap = max(b - a for a, b in zip(points, points[1:]))
        if max_gap < 0.5 * (end - start):
            break
    assert end - start > 0.02, "kernel too short for a meaningful check"
    assert max_gap < 0.5 * (end - start), (max_gap, end - start, len(inside))


# --------------------------------------------------------------------------- cache independence

MUTABLE = ["x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "lengths", "y", "h_n", "c_n",
           "all"]


def _forward_then_mutate_then_backward(case, nl, reverse, what):
    """Training forward on private copies of the case, overwrite `what` in place (NaN for
    floats, 0 for lengths), then backward; returns the gradients."""
    cell = case["cell"]
    c = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.items()}
    p = c["params"] = {k: v.copy() for k, v in case["params"].items()}
    kw = dict(reverse=reverse, lengths=c["lengths"], training=True, num_threads=1)
    if cell == "rnn":
        kw["nonlinearity"] = nl
    state = (c["h0"], c["c0"]) if cell == "lstm" else c["h0"]
    y, st, cache = getattr(F, f"{cell}_forward")(c["x"], p["w_ih"], p["w_hh"], p["b_ih"],
                                                 p["b_hh"], state, **kw)
    owned = {"x": c["x"], "h0": c["h0"], "c0": c["c0"], "y": y, **p}
    if cell == "lstm":
        owned["h_n"], owned["c_n"] = st
    else:
        owned["h_n"] = st
    for name, arr in owned.items():
        if what in (name, "all") and arr is not None:
            arr[...] = np.nan
    if what in ("lengths", "all"):
        c["lengths"][:] = 0

    dstate = (c["dh"], c["dc"]) if cell == "lstm" else c["dh"]
    dx, dst, dp = getattr(F, f"{cell}_backward")(cache, c["dy"], dstate)
    got = {"dx": dx, **{"d" + k: v for k, v in dp.items()}}
    if cell == "lstm":
        got["dh0"], got["dc0"] = dst
    else:
        got["dh0"] = dst
    return got


@CELL_PARAMS
@pytest.mark.parametrize("what", MUTABLE)
def test_inplace_change_between_forward_and_backward(cell, nl, what):
    """Overwrite one input (or returned output) in place after a training forward, as an
    optimizer step would: the backward still returns the gradients of the original forward."""
    if what == "c_n" or what == "c0":
        if cell != "lstm":
            pytest.skip("LSTM only")
    case = make_case(cell, 5, 4, 3, 6, seed=31, lengths=True)
    want = run_functional(F, case, nl, True, num_threads=1)
    assert_same(_forward_then_mutate_then_backward(case, nl, True, what), want)


@CELL_PARAMS
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_inplace_weight_update_float32(cell, nl, reverse):
    case = make_case(cell, 5, 4, 3, 6, dtype=np.float32, seed=32)
    want = run_functional(F, case, nl, reverse, num_threads=1)
    assert_same(_forward_then_mutate_then_backward(case, nl, reverse, "w_hh"), want)


@CELL_PARAMS
def test_interleaved_caches_are_independent(cell, nl):
    """forward A, weights updated in place, forward B; backward B then backward A: A's gradients
    are those of A's own weights (each cache holds its own copies)."""
    case = make_case(cell, 4, 3, 5, 4, seed=41)
    want_a = run_functional(F, case, nl, num_threads=1)
    case_b = dict(case, params={k: v * 0.5 + 0.01 for k, v in case["params"].items()})
    want_b = run_functional(F, case_b, nl, num_threads=1)

    p = {k: v.copy() for k, v in case["params"].items()}
    fwd = getattr(F, f"{cell}_forward")
    bwd = getattr(F, f"{cell}_backward")
    kw = dict(training=True, num_threads=1)
    if cell == "rnn":
        kw["nonlinearity"] = nl
    state = (case["h0"], case["c0"]) if cell == "lstm" else case["h0"]
    dstate = (case["dh"], case["dc"]) if cell == "lstm" else case["dh"]
    _, _, cache_a = fwd(case["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], state, **kw)
    for k in p:  # in-place update, as an optimizer does
        p[k] *= 0.5
        p[k] += 0.01
    _, _, cache_b = fwd(case["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], state, **kw)
    grads_b = bwd(cache_b, case["dy"], dstate)[2]
    grads_a = bwd(cache_a, case["dy"], dstate)[2]
    assert_same({"d" + k: v for k, v in grads_a.items()}, want_a)
    assert_same({"d" + k: v for k, v in grads_b.items()}, want_b)
    assert not np.allclose(grads_a["w_hh"], grads_b["w_hh"])


def test_bidirectional_directions_concurrent_only_with_two_threads(monkeypatch):
    """num_threads=1 means one thread: the two directions run one after the other (forward
    and backward); with two threads the reverse direction runs on the direction pool."""
    from pyrnn import layers

    used = []
    real_pool = layers._pool

    def spy_pool():
        used.append(True)
        return real_pool()

    monkeypatch.setattr(layers, "_pool", spy_pool)
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)
    one = pyrnn.LSTM(3, 4, bidirectional=True, num_threads=1, seed=0)
    y1, _ = one(x)
    one.backward(np.ones_like(y1))
    assert used == []
    two = pyrnn.LSTM(3, 4, bidirectional=True, num_threads=2, seed=0)
    y2, _ = two(x)
    assert used, "two threads should run the directions concurrently"
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda nt: pyrnn.LSTM(5, 6, num_layers=2, bidirectional=True, num_threads=nt, seed=1),
    lambda nt: pyrnn.LSTM(5, 6, bidirectional=True, peephole=True, num_threads=nt, seed=1),
    lambda nt: pyrnn.LSTM(5, 6, bidirectional=True, proj_size=3, num_threads=nt, seed=1),
    lambda nt: pyrnn.GRU(5, 6, num_layers=2, bidirectional=True, reset_after=False,
                         num_threads=nt, seed=1),
    lambda nt: pyrnn.RNN(5, 6, bidirectional=True, nonlinearity="relu", num_threads=nt, seed=1),
], ids=["lstm", "peephole", "projection", "gru_reset_before", "rnn_relu"])
def test_grouped_directions_equal_one_after_the_other(make, monkeypatch):
    """In eval mode both directions run in one grouped kernel call (with two threads one
    OpenMP thread each, with one both on it): the bits of running them as separate calls
    (training mode, which never groups)."""
    from pyrnn import layers

    grouped = []
    real = layers.F._forward_group
    monkeypatch.setattr(layers.F, "_forward_group",
                        lambda calls, n: grouped.append((len(calls), n)) or real(calls, n))
    x = np.random.default_rng(2).standard_normal((9, 3, 5)).astype(np.float32)
    lengths = np.array([9, 4, 0])
    separate = make(1).train()
    y0, s0 = separate(x, lengths=lengths)
    assert grouped == []
    layers_count = separate.num_layers
    for threads in (1, 2):
        grouped.clear()
        y, s = make(threads).eval()(x, lengths=lengths)
        assert grouped == [(2, threads)] * layers_count
        np.testing.assert_array_equal(y, y0)
        for a, b in zip(s if isinstance(s, tuple) else (s,), s0 if isinstance(s0, tuple) else (s0,)):
            np.testing.assert_array_equal(a, b)


def test_forward_group_writes_into_columns_of_one_output_and_refuses_bad_ones():
    """The grouped call's (out, column): y lands in out[:, :, column:column+H], rows of other
    columns untouched; a wrong shape, dtype or layout is refused before anything runs."""
    rng = np.random.default_rng(0)
    T, B, I, H = 7, 3, 4, 5
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w = [rng.standard_normal(s).astype(np.float32) * 0.3
         for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    want, _, _ = F.lstm_forward(x, *w, reverse=True, lengths=np.array([7, 2, 0]))
    out = np.full((T, B, 3 * H), 7.0, np.float32)
    call = ("lstm", x, *w, None, None, np.array([7, 2, 0]), None, None, True)
    F._forward_group([call + (out, H)], 2)
    np.testing.assert_array_equal(out[:, :, H:2 * H], want)
    assert (out[:, :, :H] == 7).all() and (out[:, :, 2 * H:] == 7).all()
    for bad, match in ((np.zeros((T, B, H + 1), np.float32), "W >= column"),
                       (np.zeros((T, B, 3 * H), np.float64), "dtype"),
                       (np.zeros((T, B, 6 * H), np.float32)[:, :, ::2], "C-contiguous")):
        with pytest.raises(ValueError, match=match):
            F._forward_group([call + (bad, H)], 2)
