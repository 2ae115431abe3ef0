"""Determinism: the same call gives the same bits, whatever ran before it and whatever the heap.

- Repeated calls (forward and backward, every cell, both dtypes, forward and reverse with
  lengths) on a shape where the kernels really run 2 OpenMP threads are bitwise identical, also
  when calls of other shapes with NaN/inf inputs ran in between (the kernels keep their scratch
  memory between calls, uninitialised: a read of stale scratch would show here).
- Results are bitwise identical across processes whose malloc fills fresh and freed memory with
  different garbage (glibc MALLOC_PERTURB_).
- Inference and training forwards give the same bits.
- Layers (stacked, bidirectional: two concurrent directions) repeat bitwise.
- num_threads=1 vs 2: MEASURED bitwise identical on the baseline (SSE2) build, NOT on the
  AVX2+FMA build (see NUM_THREADS_BITWISE below). Asserted within a few ulps everywhere;
  bitwise asserted on baseline and kept as a strict xfail on AVX2, so that it fails loudly
  (XPASS) once the AVX2 kernels become thread-count invariant.

tests/test_functional_torch.py::test_repeated_calls_bitwise_identical covers repetition on the
small THREAD_SHAPES with a shifted heap; this file adds stale scratch, other processes, 2-thread
shapes for every cell and dtype, and the thread-count measurement.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyrnn
from pyrnn import _core
from pyrnn import functional as F

CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")]
CELL_IDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
G = {"lstm": 4, "gru": 3, "rnn": 1}
DTYPES = [np.float32, np.float64]
MODES = [(False, False), (True, True)]  # (reverse, lengths)

CELL_PARAMS = pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
DTYPE_PARAMS = pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
MODE_PARAMS = pytest.mark.parametrize("reverse,lengths", MODES, ids=["fwd", "rev_lengths"])


def big_shape(cell):
    """(T, B, I, H) on which the kernels split units over 2 threads when asked: per-step
    recurrent work 2*B*G*H*H >= 2 * 1M flops (csrc/pyrnn/thread_plan.h, step_threads) and
    recurrent weights G*H*H above the batch split's limit (batch_threads, 1.25 MiB)."""
    return (3, 32, 16, 640 if cell == "rnn" else 352)


def batch_split_shapes(cell):
    """(T, B, I, H) on which the kernels split batch rows over 2 threads (batch_threads):
    whole panels of 4 rows per thread; B = 14 (7 rows per thread, a zero-padded partial panel
    where one thread has a whole one) with I = 300 and, LSTM and GRU, G*H > 256: products of
    two depth blocks, where a padded panel must add its sums to C block by block as a whole
    panel does, and dX of 84 rows (split on Eigen's panels); 2 steps of 16 rows, whose input
    projection reads w_ih in place as dot products. B = 10 (5 rows each, a single row left
    over) is single_row_split_shape. Not bitwise (recurrent.h, batch_threads): single steps,
    which use the weights in place."""
    rnn = cell == "rnn"
    return [(20, 16, 9, 96 if rnn else 40), (6, 14, 300, deep_h(cell)),
            (2, 16, 300, 96 if rnn else 40)]


def deep_h(cell):
    """H with G*H > 256 for LSTM and GRU (two depth blocks in the backward product)."""
    return {"lstm": 80, "gru": 96, "rnn": 96}[cell]


def single_row_split_shape(cell):
    """B = 10 over 2 threads: 5 rows each, so each thread has a single row left over after its
    panel of 4, at rows that sit in whole panels with one thread; I = 300 as above."""
    return (6, 10, 300, deep_h(cell))


def make(cell, T, B, I, H, dtype, seed, lengths, poison=False):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    u = lambda *s, a=1.0: rng.uniform(-a, a, s).astype(dtype)  # noqa: E731
    GH = G[cell] * H
    a = dict(x=u(T, B, I), w=[u(GH, I, a=k), u(GH, H, a=k), u(GH, a=k), u(GH, a=k)],
             h0=u(B, H), c0=u(B, H), dy=u(T, B, H), dh=u(B, H), dc=u(B, H),
             lengths=None)
    if lengths:
        lens = rng.integers(1, T + 1, B)
        lens[0], lens[-1] = T, 0
        a["lengths"] = lens
    if poison:  # garbage for the kernels' scratch memory
        a["x"][..., ::3] = np.nan
        a["h0"][::2] = np.inf
        a["dy"][::2] = -np.inf
    return a


def run(cell, nl, a, reverse, num_threads, training=True):
    """Forward (+ backward when training): list of (name, array)."""
    kw = dict(reverse=reverse, lengths=a["lengths"], training=training, num_threads=num_threads)
    if nl:
        kw["nonlinearity"] = nl
    lstm = cell == "lstm"
    y, st, cache = getattr(F, f"{cell}_forward")(a["x"], *a["w"], (a["h0"], a["c0"]) if lstm
                                                 else a["h0"], **kw)
    out = [("y", y)] + list(zip(["h_n", "c_n"], st if lstm else (st,)))
    if not training:
        return out
    dx, dst, dp = getattr(F, f"{cell}_backward")(cache, a["dy"], (a["dh"], a["dc"]) if lstm
                                                 else a["dh"])
    out += [("dx", dx)] + list(zip(["dh0", "dc0"], dst if lstm else (dst,)))
    return out + [("d" + k, dp[k]) for k in sorted(dp)]


def assert_bitwise(got, want):
    assert [n for n, _ in got] == [n for n, _ in want]
    for (name, g), (_, w) in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        assert np.array_equal(g, w, equal_nan=True), (
            f"{name}: not bitwise identical, max |diff| {np.nanmax(np.abs(g - w)):.3e}")


def test_big_shapes_really_use_two_threads():
    """Guard: the shapes here stay above the kernels' threading threshold (step_threads in
    csrc/pyrnn/thread_plan.h: >= 1M recurrent flops per thread and step, >= 8 units per thread).
    Also implied by the strict xfail below: with one thread used, 1 vs 2 would be bitwise."""
    assert _core.max_threads() >= 1
    for cell, _ in CELLS:
        T, B, I, H = big_shape(cell)
        flops = 2.0 * B * G[cell] * H * H
        assert flops >= 2 * 1048576 and H // 8 >= 2, (cell, flops)


# --------------------------------------------------------------------------- repetition


@CELL_PARAMS
@DTYPE_PARAMS
@MODE_PARAMS
def test_repeated_calls_bitwise_with_stale_scratch(cell, nl, dtype, reverse, lengths):
    shape = big_shape(cell)
    a = make(cell, *shape, dtype, seed=1, lengths=lengths)
    first = run(cell, nl, a, reverse, num_threads=2)
    # A bigger call with NaN/inf inputs in between: the scratch block that the next call reuses
    # is full of non-finite garbage.
    T, B, I, H = shape
    junk = make(cell, T + 1, B + 4, I + 3, H, dtype, seed=2, lengths=not lengths, poison=True)
    run(cell, nl, junk, not reverse, num_threads=2)
    assert_bitwise(run(cell, nl, a, reverse, num_threads=2), first)
    for name, arr in first:
        assert np.isfinite(arr).all(), name


@CELL_PARAMS
@DTYPE_PARAMS
def test_small_shapes_repeat_bitwise_after_poison(cell, nl, dtype):
    """Single-threaded small shapes (odd sizes, T=1, B=1) after poisoned calls."""
    for shape, nt in (((1, 1, 3, 5), 1), ((7, 3, 5, 33), 2), ((3, 9, 1, 1), 2)):
        a = make(cell, *shape, dtype, seed=3, lengths=True)
        first = run(cell, nl, a, True, nt)
        run(cell, nl, make(cell, *[s + 4 for s in shape], dtype, seed=4, lengths=False,
                           poison=True), False, nt)
        assert_bitwise(run(cell, nl, a, True, nt), first)


@CELL_PARAMS
@DTYPE_PARAMS
def test_inference_equals_training_forward_bitwise(cell, nl, dtype):
    a = make(cell, *big_shape(cell), dtype, seed=5, lengths=True)
    for nt in (1, 2):
        train = run(cell, nl, a, True, nt)[: 3 if cell == "lstm" else 2]
        infer = run(cell, nl, a, True, nt, training=False)
        assert_bitwise(infer, train)


def test_layers_repeat_bitwise():
    for kind in (pyrnn.LSTM, pyrnn.GRU, pyrnn.RNN):
        layer = kind(24, 128, num_layers=2, bidirectional=True, dtype=np.float32, seed=0,
                     num_threads=2)
        x = np.random.default_rng(0).standard_normal((5, 32, 24)).astype(np.float32)
        dy = np.random.default_rng(1).standard_normal((5, 32, 256)).astype(np.float32)
        lengths = np.random.default_rng(2).integers(0, 6, 32)
        results = []
        for _ in range(2):
            layer.zero_grad()
            y, st = layer(x, lengths=lengths)
            dx = layer.backward(dy)
            states = st if isinstance(st, tuple) else (st,)
            results.append([("y", y), ("dx", dx)] + [(f"s{i}", s) for i, s in enumerate(states)]
                           + [(k, layer.grads[k].copy()) for k in sorted(layer.grads)])
        assert_bitwise(results[1], results[0])


# --------------------------------------------------------------------------- other processes

_DIGEST_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import test_determinism as d
    h = hashlib.sha256()
    junk = np.empty(12345)  # shift the heap differently from the parent process
    for cell, nl in d.CELLS:
        for dtype in d.DTYPES:
            a = d.make(cell, *d.big_shape(cell), dtype, seed=11, lengths=True)
            for name, arr in d.run(cell, nl, a, True, 2):
                h.update(name.encode()); h.update(np.ascontiguousarray(arr).tobytes())
    print(h.hexdigest())
""")


def _digest_in_subprocess(env_extra):
    env = dict(os.environ, **env_extra)
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyrnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, here], env=env, cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def _digest_here():
    h = hashlib.sha256()
    for cell, nl in CELLS:
        for dtype in DTYPES:
            a = make(cell, *big_shape(cell), dtype, seed=11, lengths=True)
            for name, arr in run(cell, nl, a, True, 2):
                h.update(name.encode())
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@pytest.mark.skipif(os.environ.get("PYRNN_SANITIZED") == "1",
                    reason="the sanitizer run does not start subprocesses with its runtime")
def test_bitwise_across_processes_and_malloc_garbage():
    """This process and one whose glibc malloc fills new and freed memory with garbage bytes
    (MALLOC_PERTURB_), with a differently shifted heap: a read of uninitialised memory would
    change the bits."""
    here = _digest_here()
    other = _digest_in_subprocess({"MALLOC_PERTURB_": "165", "OMP_WAIT_POLICY": "passive"})
    assert other == here


# --------------------------------------------------------------------------- thread counts

# Measured with the unit split (B=32, H=128/256 before the batch split took those; now
# big_shape's H=352/640, every cell, f32 and f64, forward and reverse with lengths; the batch
# split is bitwise equal to one thread, see test_batch_split_bitwise_equal_to_one_thread):
# - baseline (SSE2) build: results of num_threads=1 and 2 ARE bitwise identical.
# - AVX2+FMA build: they are NOT. GRU forward outputs are; the LSTM and RNN forwards and every
#   backward differ in the last bits (largest difference relative to the largest magnitude:
#   ~6e-16 in float64, ~6e-7 in float32; a few ulps). The activations are thread-split
#   invariant (csrc/pyrnn/activations.h); the differing elements come from the GEMMs, whose
#   operands are split differently between threads (e.g. the RNN input projection with h=0:
#   only output columns 252..255 of H=256 differ, the last 4 columns of each GEMM call).
# - AVX-512 build: float64 likewise differs. In float32 both SIMD builds were bitwise equal on
#   the Intel Xeon of 2026-12-05 (48 KiB L1d) and not on the AMD EPYC (32 KiB): the packed
#   depth blocks follow the L1d size (packed_gemm.h), so float32 is not asserted either way.
# Unknown instruction-set paths: not asserted bitwise.
ISA = pyrnn._config.config().get("isa")
NUM_THREADS_BITWISE = {"baseline": {"f32": True, "f64": True},
                       "avx2": {"f32": None, "f64": False},
                       "avx512": {"f32": None, "f64": False}}.get(ISA)
REL_TOL = {np.dtype(np.float32): 4e-6, np.dtype(np.float64): 8e-15}


def _max_rel_diffs(one, two):
    out = {}
    for (name, a), (_, b) in zip(one, two):
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        d = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
        out[name] = d / scale if scale else d
    return out


@CELL_PARAMS
@DTYPE_PARAMS
@MODE_PARAMS
def test_num_threads_1_vs_2_within_a_few_ulps(cell, nl, dtype, reverse, lengths):
    a = make(cell, *big_shape(cell), dtype, seed=7, lengths=lengths)
    one = run(cell, nl, a, reverse, 1)
    two = run(cell, nl, a, reverse, 2)
    diffs = _max_rel_diffs(one, two)
    worst = max(diffs.values())
    assert worst <= REL_TOL[np.dtype(dtype)], diffs


def small_step_shape(cell):
    """(T, B, I, H) with steps too small for step_threads (131-393 kFLOP) and too few rows
    for the batch split, which small_step_threads still splits by units over 2 threads."""
    return (40, 2, 20, 256 if cell == "rnn" else 128)


@CELL_PARAMS
@DTYPE_PARAMS
@MODE_PARAMS
def test_small_steps_split_by_units_within_a_few_ulps(cell, nl, dtype, reverse, lengths):
    T, B, I, H = small_step_shape(cell)
    plan = _core.forward_threads(2, T, B, I, H, H, G[cell], np.dtype(dtype).itemsize, True)
    assert plan == (2, False)
    a = make(cell, T, B, I, H, dtype, seed=9, lengths=lengths)
    diffs = _max_rel_diffs(run(cell, nl, a, reverse, 1), run(cell, nl, a, reverse, 2))
    assert max(diffs.values()) <= REL_TOL[np.dtype(dtype)], diffs


@CELL_PARAMS
@DTYPE_PARAMS
@MODE_PARAMS
@pytest.mark.parametrize("which", range(3), ids=["whole", "B14", "T2_in_place"])
def test_batch_split_bitwise_equal_to_one_thread(cell, nl, dtype, reverse, lengths, which):
    """Threads owning batch rows run the same per-element arithmetic as one thread (the same
    packed products over fewer rows): the results are bitwise equal, on every ISA."""
    a = make(cell, *batch_split_shapes(cell)[which], dtype, seed=8, lengths=lengths)
    assert_bitwise(run(cell, nl, a, reverse, 2), run(cell, nl, a, reverse, 1))


@CELL_PARAMS
@MODE_PARAMS
@pytest.mark.skipif(ISA not in ("avx2", "avx512"), reason=f"the float32 kernel for rows left over "
                    f"(packed_gemm.h, dots::panel_rows) is in the SIMD builds; ISA {ISA!r}")
def test_batch_split_single_row_left_bitwise_float32(cell, nl, reverse, lengths):
    """A thread left with a single row after its panels: in float32 on AVX2 that row is summed
    like a whole panel's (dots::panel_rows), so the batch split stays bitwise equal to one
    thread (in float64 and on the baseline build Eigen sums it on its own path)."""
    a = make(cell, *single_row_split_shape(cell), np.float32, seed=8, lengths=lengths)
    assert_bitwise(run(cell, nl, a, reverse, 2), run(cell, nl, a, reverse, 1))


def _bitwise_param(dtype, name):
    marks = []
    if NUM_THREADS_BITWISE is None or NUM_THREADS_BITWISE[name] is None:
        marks.append(pytest.mark.skip(reason=f"not determined for ISA {ISA!r}, {name} on "
                                      "every machine (the few-ulps test above asserts)"))
    elif not NUM_THREADS_BITWISE[name]:
        marks.append(pytest.mark.xfail(strict=True, reason=f"measured on {ISA}: num_threads=1 "
                                       "and 2 differ in the last bits"))
    return pytest.param(dtype, id=name, marks=marks)


@CELL_PARAMS
@pytest.mark.parametrize("dtype", [_bitwise_param(np.float32, "f32"),
                                   _bitwise_param(np.float64, "f64")])
def test_num_threads_1_vs_2_bitwise(cell, nl, dtype):
    """Bitwise where NUM_THREADS_BITWISE says so; a strict xfail elsewhere (an XPASS there means
    the kernels became thread-count invariant: set NUM_THREADS_BITWISE accordingly)."""
    a = make(cell, *big_shape(cell), dtype, seed=7, lengths=True)
    assert_bitwise(run(cell, nl, a, True, 2), run(cell, nl, a, True, 1))
