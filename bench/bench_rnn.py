"""Benchmark pyrnn's fused kernels against torch.nn and the pure-NumPy reference.

    python bench/bench_rnn.py --shapes quick --threads 1,2
    python bench/bench_rnn.py --shapes deepbench --filter cell=lstm,H=512,B=32 --json out.json

For every shape, mode and thread count the contenders run in one process, side by side:
after a warm-up each contender is timed once per round, round after round (ABAB...), and the
median of the rounds is reported. A timed run repeats the call enough times to last at least
``--min-run-ms`` (so microsecond calls are measured too) and reports the time per call.

Contenders (float32 throughout, the same weights everywhere, copied from the torch module):
- pyrnn: ``pyrnn.functional`` with ``num_threads=n``.
- torch: ``torch.nn.LSTM/GRU/RNN`` after ``torch.set_num_threads(n)``; inference under
  ``torch.no_grad()`` with the module in eval mode, training with autograd
  (``x.requires_grad``, ``y.backward(dy)`` with a fixed random ``dy``, gradients reset to None
  before each call).
- onnxrt (inference rows only): ONNX Runtime running one ONNX LSTM/GRU/RNN node with the same
  weights, ``intra_op_num_threads=n``, its thread pools set not to spin (``onnx_contender``);
  checked once per row against torch's output. Optional: "—" when it is not installed.
- numpy: ``pyrnn.reference`` (same API). It is slow on big shapes, so it runs at most
  ``NUMPY_MAX_RUNS`` rounds and is skipped ("—") above ``--numpy-max-gflop`` per call.
- gemm: the practical GEMM limit, timed side by side with the row (see ``gemm_step``).
- peak: a square float32 GEMM (``peak_step``), also side by side with every row; the best of
  its rounds over the whole run, per thread count, is the machine's practical peak. Each row's
  "ceiling" is that peak over torch's rate on the row: the speedup over torch of a kernel that
  did the row's arithmetic at the peak. A target well above a row's ceiling is out of reach
  on this machine, by pyrnn or anything else that does the same arithmetic.

Modes: ``infer`` = forward without saved activations; ``train`` = forward saving activations
plus the full backward (gradients w.r.t. input, initial state and all weights and biases).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

# OpenBLAS's worker threads (the NumPy reference) keep spinning for a long time after each call
# and, on a 2-core machine, steal a core from whichever contender runs next (measured: pyrnn's
# 2-thread rows up to 3x slower right after the reference). A short timeout parks them at once.
# Set before NumPy loads OpenBLAS; an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402
import torch  # noqa: E402

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
import pyrnn  # the installed package (pip install ".[bench]")
from pyrnn import _core  # noqa: E402
from pyrnn import functional as F  # noqa: E402
from pyrnn import reference as R  # noqa: E402

if _BENCH_DIR not in sys.path:  # bench/shapes.py, also when this file is loaded by path
    sys.path.insert(0, _BENCH_DIR)
import onnx_contender  # noqa: E402
import shapes as shape_sets  # noqa: E402
from shapes import (CELLS, LARGE_B, LARGE_H, MODES, ONNXRT_BEHIND, SMALL_BATCH_MAX,  # noqa: E402
                    Shape, is_large, is_small_batch_infer)

try:  # optional: lets the NumPy reference's BLAS use the same thread count as the others
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None

DEFAULT_REPEATS = 5
DEFAULT_MIN_RUN_MS = 20.0
DEFAULT_NUMPY_MAX_GFLOP = 4.0
NUMPY_MAX_RUNS = 3
CONTENDERS = ("pyrnn", "torch", "numpy", "onnxrt")
PEAK_N = 512  # the square GEMM of the peak (measured faster than 1024 and 768 on 1-2 cores)

FLOP_NOTE = ("FLOP convention: forward = 2*T*B*G*H*(I+H) (pointwise work ignored; G = 4 LSTM, "
             "3 GRU, 1 RNN); train (forward + backward) = 3 x forward.")
GEMM_NOTE = ("GEMM limit: one float32 torch.mm of the recurrent size, [B,H] x [G*H,H]^T, called "
             "T times in a Python loop after torch.set_num_threads(threads), timed side by side "
             "with each row, best round (torch because its thread count is set per call with no "
             "extra package; numpy's BLAS needs threadpoolctl). '% GEMM limit' = pyrnn GFLOP/s "
             "/ that GFLOP/s. It can pass 100%: the input projection (and in training the weight "
             "gradients) run as larger, faster GEMMs over T*B rows, and for tiny H the limit is "
             "mostly Python call overhead.")
PEAK_NOTE = (f"Peak: a square float32 torch.mm (n = {PEAK_N}) timed side by side with every "
             "row; its best round over the run, per thread count. 'ceiling' = peak / torch "
             "GFLOP/s: the speedup over torch of a kernel running the row's FLOP (convention "
             "above) at that peak; a target well above it is out of reach on this machine.")


# --------------------------------------------------------------------------- problem set-up


def forward_flop(shape: Shape) -> float:
    return 2.0 * shape.T * shape.B * shape.G * shape.H * (shape.I + shape.H)


def mode_flop(shape: Shape, mode: str) -> float:
    return forward_flop(shape) * (3.0 if mode == "train" else 1.0)


def make_torch_module(shape: Shape) -> torch.nn.Module:
    if shape.cell == "lstm":
        return torch.nn.LSTM(shape.I, shape.H)
    if shape.cell == "gru":
        return torch.nn.GRU(shape.I, shape.H)
    return torch.nn.RNN(shape.I, shape.H, nonlinearity=shape.cell.split("_")[1])


@dataclass
class Problem:
    """One shape's data: the torch module and the same weights, input and dy as NumPy."""
    shape: Shape
    module: torch.nn.Module
    params: tuple  # (w_ih, w_hh, b_ih, b_hh) float32, copied from the module
    x: np.ndarray  # [T, B, I]
    dy: np.ndarray  # [T, B, H]


def make_problem(shape: Shape, seed: int) -> Problem:
    torch.manual_seed(seed)
    module = make_torch_module(shape).float()
    params = tuple(getattr(module, f"{name}_l0").detach().numpy().copy()
                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    rng = np.random.default_rng([seed, CELLS.index(shape.cell), shape.T, shape.B, shape.I,
                                 shape.H])
    x = rng.standard_normal((shape.T, shape.B, shape.I), dtype=np.float32)
    dy = rng.standard_normal((shape.T, shape.B, shape.H), dtype=np.float32)
    return Problem(shape, module, params, x, dy)


# --------------------------------------------------------------------------- contenders


def cell_functions(api, cell: str):
    """(forward, backward) of ``cell`` in ``api`` (pyrnn.functional or pyrnn.reference)."""
    if cell.startswith("rnn_"):
        return partial(api.rnn_forward, nonlinearity=cell[4:]), api.rnn_backward
    return getattr(api, f"{cell}_forward"), getattr(api, f"{cell}_backward")


def kernel_step(api, problem: Problem, mode: str, threads: int) -> Callable[[], None]:
    """One call of pyrnn (or of the NumPy reference, which has the same API)."""
    forward, backward = cell_functions(api, problem.shape.cell)
    x, params, dy = problem.x, problem.params, problem.dy
    if mode == "infer":
        return lambda: forward(x, *params, num_threads=threads)

    def train_step():
        _, _, cache = forward(x, *params, training=True, num_threads=threads)
        backward(cache, dy)

    return train_step


def torch_step(problem: Problem, mode: str) -> Callable[[], None]:
    """One call of the torch module; the thread count is set by the caller."""
    module = problem.module
    x, dy = torch.from_numpy(problem.x), torch.from_numpy(problem.dy)
    if mode == "infer":
        module.eval()

        def infer_step():
            with torch.no_grad():
                module(x)

        return infer_step

    module.train()
    params = list(module.parameters())

    def train_step():
        for p in params:
            p.grad = None
        y, _ = module(x.detach().requires_grad_())
        y.backward(dy)

    return train_step


def onnxrt_step(problem: Problem, threads: int) -> Callable[[], None]:
    """One ONNX Runtime inference call, after checking its output against torch's once."""
    with torch.no_grad():
        expected = problem.module.eval()(torch.from_numpy(problem.x))[0].numpy()
    return onnx_contender.infer_step(problem.shape.cell, problem.params, problem.x, threads,
                                     expected)


def gemm_step(shape: Shape) -> Callable[[], None]:
    """T recurrent-size GEMMs [B,H] x [G*H,H]^T (the practical limit of the per-step work)."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(shape.B, shape.H, generator=gen)
    w_t = torch.randn(shape.G * shape.H, shape.H, generator=gen).t()
    out = torch.empty(shape.B, shape.G * shape.H)
    steps = range(shape.T)

    def step():
        for _ in steps:
            torch.mm(h, w_t, out=out)

    return step


def gemm_flop(shape: Shape) -> float:
    return 2.0 * shape.T * shape.B * shape.G * shape.H * shape.H


def peak_step(n: int = PEAK_N) -> Callable[[], None]:
    """One square float32 GEMM [n,n] x [n,n] (torch.mm: MKL or OpenBLAS), the machine's
    practical peak; the thread count is set by the caller."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    return lambda: torch.mm(a, b, out=out)


def add_ceilings(rows: list) -> dict:
    """The peak per thread count (the best of its rows' peak measurements) and, on every row,
    ``peak_gflops`` and ``ceiling_vs_torch``. Returns {threads: peak GFLOP/s}."""
    peaks: dict = {}
    for row in rows:
        peaks[row["threads"]] = max(peaks.get(row["threads"], 0.0), row["peak_gflops_row"])
    for row in rows:
        row["peak_gflops"] = peaks[row["threads"]]
        row["ceiling_vs_torch"] = row["peak_gflops"] / row["torch_gflops"]
    return peaks


# --------------------------------------------------------------------------- timing


@dataclass
class Contender:
    name: str
    step: Callable[[], None]
    runs: int


def timed_run(step: Callable[[], None], inner: int) -> float:
    """Seconds per call, over ``inner`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        step()
    return (time.perf_counter() - start) / inner


def calibrate(step: Callable[[], None], min_run_s: float) -> int:
    """Warm up, then choose how many calls make one timed run last at least ``min_run_s``."""
    step()
    once = timed_run(step, 1)
    return max(1, math.ceil(min_run_s / max(once, 1e-9))) if once < min_run_s else 1


@contextlib.contextmanager
def gc_paused():
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_side_by_side(contenders: list, min_run_s: float) -> dict:
    """Per contender: the list of seconds-per-call, one per round, rounds alternating
    between contenders (ABAB...); a contender with fewer ``runs`` drops out early."""
    with gc_paused():
        inner = {c.name: calibrate(c.step, min_run_s) for c in contenders}
        times = {c.name: [] for c in contenders}
        for r in range(max(c.runs for c in contenders)):
            for c in contenders:
                if r < c.runs:
                    times[c.name].append(timed_run(c.step, inner[c.name]))
    return times


def blas_threads(threads: int):
    """Limit NumPy's BLAS to ``threads`` where threadpoolctl is installed."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


# --------------------------------------------------------------------------- one row


def numpy_skip_reason(shape: Shape, mode: str, numpy_max_gflop: float) -> Optional[str]:
    gflop = mode_flop(shape, mode) / 1e9
    if gflop > numpy_max_gflop:
        return f"{gflop:.3g} GFLOP per call > --numpy-max-gflop {numpy_max_gflop:g}"
    return None


def ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    return None if num is None or den is None else num / den


def bench_row(problem: Problem, mode: str, threads: int, repeats: int, min_run_s: float,
              numpy_max_gflop: float) -> dict:
    shape = problem.shape
    torch.set_num_threads(threads)
    contenders = [Contender("pyrnn", kernel_step(F, problem, mode, threads), repeats),
                  Contender("torch", torch_step(problem, mode), repeats),
                  Contender("gemm", gemm_step(shape), repeats),
                  Contender("peak", peak_step(), repeats)]
    skip = numpy_skip_reason(shape, mode, numpy_max_gflop)
    if skip is None:
        contenders.append(Contender("numpy", kernel_step(R, problem, mode, threads),
                                    min(repeats, NUMPY_MAX_RUNS)))
    if mode == "infer" and onnx_contender.AVAILABLE:
        contenders.append(Contender("onnxrt", onnxrt_step(problem, threads), repeats))
    with blas_threads(threads):
        times = time_side_by_side(contenders, min_run_s)

    flop = mode_flop(shape, mode)
    ms = {name: (1e3 * statistics.median(times[name]) if name in times else None)
          for name in CONTENDERS}
    gemm_gflops = gemm_flop(shape) / min(times["gemm"]) / 1e9  # a limit: the best round
    pyrnn_gflops = flop / ms["pyrnn"] / 1e6
    row = dict(cell=shape.cell, mode=mode, threads=threads, T=shape.T, B=shape.B, I=shape.I,
               H=shape.H, G=shape.G, note=shape.note, flop=flop)
    row.update({f"{name}_ms": ms[name] for name in CONTENDERS})
    row.update({f"{name}_gflops": (flop / ms[name] / 1e6 if ms[name] else None)
                for name in CONTENDERS})
    row.update(speedup_vs_torch=ratio(ms["torch"], ms["pyrnn"]),
               speedup_vs_numpy=ratio(ms["numpy"], ms["pyrnn"]),
               speedup_vs_onnxrt=ratio(ms["onnxrt"], ms["pyrnn"]),
               numpy_skipped=skip,
               gemm_gflops=gemm_gflops,
               gemm_share=pyrnn_gflops / gemm_gflops,
               peak_gflops_row=2.0 * PEAK_N ** 3 / min(times["peak"]) / 1e9,
               runs_ms={name: [1e3 * t for t in ts] for name, ts in times.items()})
    return row


def row_label(row: dict) -> str:
    return (f"{row['cell']} {row['mode']} threads={row['threads']} "
            f"T={row['T']} B={row['B']} I={row['I']} H={row['H']}")


# --------------------------------------------------------------------------- the run


def machine_info() -> dict:
    cpu_model, flags = "unknown", set()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu_model == "unknown":
                    cpu_model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    cfg = pyrnn._config.config()
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    try:
        numpy_blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001 - only informative
        numpy_blas = "unknown"
    return dict(
        cpu_model=cpu_model,
        cpu_flags=sorted(flags & {"avx", "avx2", "fma", "avx512f", "f16c"}),
        logical_cpus=os.cpu_count(),
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(),
        python=platform.python_version(),
        pyrnn=pyrnn.__version__,
        pyrnn_isa=cfg.get("isa"),
        pyrnn_default_threads=_core.max_threads(),
        torch=torch.__version__,
        torch_blas=blas.group(1) if blas else "unknown",
        numpy=np.__version__,
        numpy_blas=numpy_blas,
        numpy_blas_threads_limited=threadpool_limits is not None,
        onnxruntime=onnx_contender.VERSION,
    )


def load_average() -> Optional[list]:
    """1, 5 and 15 minute load averages: other jobs on a shared machine make times noisy."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def row_plan(shapes: list, threads: list, modes: list) -> list:
    """(shape, mode, threads) for every row, in table order."""
    return [(shape, mode, n) for shape in shapes for mode in MODES
            if mode in modes and mode in shape.modes for n in threads]


def run(shapes, threads=(1, 2), modes=MODES, repeats=DEFAULT_REPEATS, *,
        min_run_ms=DEFAULT_MIN_RUN_MS, numpy_max_gflop=DEFAULT_NUMPY_MAX_GFLOP, seed=0,
        progress: Optional[Callable[[str], None]] = None) -> dict:
    """Benchmark ``shapes`` (a list of shapes.Shape); returns the JSON-ready result."""
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    start, cpu_start, load_start = time.perf_counter(), time.process_time(), load_average()
    plan = row_plan(list(shapes), list(threads), list(modes))
    problem, rows = None, []
    saved_threads = torch.get_num_threads()
    try:
        for i, (shape, mode, n) in enumerate(plan, 1):
            if problem is None or problem.shape.key != shape.key:
                problem = make_problem(shape, seed)  # one shape's data alive at a time
            row_start = time.perf_counter()
            row = bench_row(problem, mode, n, repeats, min_run_ms / 1e3, numpy_max_gflop)
            row["wall_s"] = time.perf_counter() - row_start
            rows.append(row)
            if progress:
                progress(f"[{i}/{len(plan)}] {row_label(row)}: pyrnn {row['pyrnn_ms']:.4g} ms, "
                         f"torch {row['torch_ms']:.4g} ms, onnxrt {fmt(row['onnxrt_ms'], 'ms')}")
    finally:
        torch.set_num_threads(saved_threads)
    peaks = add_ceilings(rows)
    return dict(
        machine=dict(machine_info(), load_average_start=load_start,
                     load_average_end=load_average()),
        settings=dict(threads=list(threads), modes=list(modes), repeats=repeats,
                      numpy_max_runs=NUMPY_MAX_RUNS, min_run_ms=min_run_ms,
                      numpy_max_gflop=numpy_max_gflop, seed=seed, dtype="float32",
                      statistic="median"),
        notes=notes(shapes, numpy_max_gflop),
        rows=rows,
        gemm_limits=gemm_limits(rows),
        peak_gflops={str(n): v for n, v in sorted(peaks.items())},
        summary=summarize(rows),
        wall_s=time.perf_counter() - start,
        process_cpu_s=time.process_time() - cpu_start,
    )


def gemm_limits(rows: list) -> list:
    """The GEMM limit per distinct (threads, B, H, G): the best of the rows that measured it."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["threads"], row["B"], row["H"], row["G"]), []).append(
            row["gemm_gflops"])
    return [dict(threads=t, B=b, H=h, G=g, gflops=max(v), measurements=len(v))
            for (t, b, h, g), v in groups.items()]


def notes(shapes, numpy_max_gflop: float) -> list:
    shape_notes = [f"{s.label()}: {s.note}" for s in shapes if s.note]
    blas = ("NumPy reference: pyrnn.reference; its BLAS is limited to the row's thread count "
            "with threadpoolctl." if threadpool_limits is not None else
            "NumPy reference: pyrnn.reference; its BLAS uses NumPy's own default thread count "
            "(threadpoolctl not installed), whatever the row's threads.")
    onnxrt = (f"ONNX Runtime {onnx_contender.VERSION}: one ONNX LSTM/GRU/RNN node with the same "
              "weights, CPU provider, intra_op_num_threads = the row's threads, thread pools "
              "not spinning; inference rows only, output checked against torch's first."
              if onnx_contender.AVAILABLE else onnx_contender.NOT_INSTALLED)
    return [FLOP_NOTE, GEMM_NOTE, PEAK_NOTE, onnxrt,
            f"{blas} It runs at most {NUMPY_MAX_RUNS} rounds and is skipped ('—') above "
            f"{numpy_max_gflop:g} GFLOP per call (--numpy-max-gflop).",
            "Times: median over the rounds, contenders alternating run by run after a warm-up; "
            "speedup = other's time / pyrnn's time (> 1: pyrnn faster)."] + shape_notes


# --------------------------------------------------------------------------- summary


def speedup_stats(rows: list, key: str, below: Optional[float] = None) -> Optional[dict]:
    """Geometric mean and worst of ``key`` over the rows that have it; with ``below``, also
    how many are under that value."""
    rated = [r for r in rows if r.get(key) is not None]
    if not rated:
        return None
    worst = min(rated, key=lambda r: r[key])
    stats = dict(geomean=statistics.geometric_mean([r[key] for r in rated]), worst=worst[key],
                 worst_row=row_label(worst), n=len(rated))
    if below is not None:
        stats.update(below=below, n_below=sum(r[key] < below for r in rated))
    return stats


def share_stats(rows: list) -> Optional[dict]:
    if not rows:
        return None
    shares = [r["gemm_share"] for r in rows]
    return dict(geomean=statistics.geometric_mean(shares), min=min(shares), max=max(shares), n=len(rows))


def summarize(rows: list) -> dict:
    groups = {f"threads={n} {m}": [r for r in rows if r["threads"] == n and r["mode"] == m]
              for n in sorted({r["threads"] for r in rows}) for m in MODES}
    small = [r for r in rows if is_small_batch_infer(r)]
    large = [r for r in rows if is_large(r)]
    return dict(
        vs_torch=speedup_stats(rows, "speedup_vs_torch"),
        vs_torch_by_group={k: speedup_stats(v, "speedup_vs_torch") for k, v in groups.items()
                           if v},
        vs_numpy=speedup_stats(rows, "speedup_vs_numpy"),
        vs_onnxrt_by_group={k: speedup_stats(v, "speedup_vs_onnxrt", below=ONNXRT_BEHIND)
                            for k, v in groups.items() if k.endswith(" infer") and v},
        numpy_skipped_rows=sum(r["numpy_ms"] is None for r in rows),
        small_batch_infer_vs_torch=speedup_stats(small, "speedup_vs_torch"),
        ceiling_vs_torch=speedup_stats(rows, "ceiling_vs_torch"),
        small_batch_infer_ceiling=speedup_stats(small, "ceiling_vs_torch"),
        large_shapes_gemm_share=share_stats(large),
    )


# --------------------------------------------------------------------------- formatting


def fmt(value: Optional[float], kind: str) -> str:
    if value is None:
        return "—"
    if kind == "ms":
        return f"{value:.4g}"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "pct":
        return f"{100 * value:.0f}%"
    return f"{value:.3g}"


TABLE_COLUMNS = [  # (header, row key, format kind, right-aligned)
    ("cell", "cell", "str", False), ("mode", "mode", "str", False),
    ("threads", "threads", "str", True), ("T", "T", "str", True), ("B", "B", "str", True),
    ("I", "I", "str", True), ("H", "H", "str", True),
    ("pyrnn ms", "pyrnn_ms", "ms", True), ("torch ms", "torch_ms", "ms", True),
    ("numpy ms", "numpy_ms", "ms", True), ("onnxrt ms", "onnxrt_ms", "ms", True),
    ("pyrnn GFLOP/s", "pyrnn_gflops", "num", True),
    ("vs torch", "speedup_vs_torch", "x", True), ("vs numpy", "speedup_vs_numpy", "x", True),
    ("vs onnxrt", "speedup_vs_onnxrt", "x", True),
    ("% GEMM limit", "gemm_share", "pct", True), ("ceiling", "ceiling_vs_torch", "x", True),
]


def format_table(rows: list) -> str:
    cells = [[fmt(r.get(key), kind) if kind != "str" else str(r[key])  # get: older JSON
              for _, key, kind, _ in TABLE_COLUMNS] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells])
              for i, (h, *_rest) in enumerate(TABLE_COLUMNS)]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if right else v.ljust(w) for v, w, (*_, right)
                                 in zip(values, widths, TABLE_COLUMNS)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if right else ("-" * (w + 2))
                          for w, (*_, right) in zip(widths, TABLE_COLUMNS)) + "|"
    return "\n".join([line([h for h, *_ in TABLE_COLUMNS]), rule] + [line(c) for c in cells])


def speedup_line(title: str, stats: Optional[dict], low: str = "worst") -> str:
    if stats is None:
        return f"{title}: no rows"
    line = (f"{title}: geometric mean {stats['geomean']:.2f}x, {low} {stats['worst']:.2f}x "
            f"({stats['worst_row']}), {stats['n']} rows")
    if "below" in stats:
        line += f", {stats['n_below']} below {stats['below']:.2f}x"
    return line


def format_peaks(peaks: dict) -> str:
    return "Peak (square float32 GEMM): " + ", ".join(
        f"{n} thread{'s' * (int(n) > 1)} {v:.1f} GFLOP/s" for n, v in peaks.items())


def format_summary(summary: dict) -> str:
    lines = [speedup_line("Speedup vs torch, all rows", summary["vs_torch"])]
    lines += [speedup_line(f"  {group}", stats)
              for group, stats in summary["vs_torch_by_group"].items()]
    lines.append(speedup_line("Speedup vs NumPy reference", summary["vs_numpy"])
                 + f" ({summary['numpy_skipped_rows']} rows skipped)")
    vs_onnxrt = {g: st for g, st in summary.get("vs_onnxrt_by_group", {}).items() if st}
    if vs_onnxrt:  # none without ONNX Runtime (the notes say so) or without inference rows
        lines.append("Speedup vs ONNX Runtime (inference rows):")
        lines += [speedup_line(f"  {group}", stats) for group, stats in vs_onnxrt.items()]
    lines.append(speedup_line(f"Batch 1-{SMALL_BATCH_MAX} inference vs torch",
                              summary["small_batch_infer_vs_torch"]))
    lines.append(speedup_line("Ceiling vs torch (at the peak), all rows",
                              summary["ceiling_vs_torch"], low="lowest"))
    lines.append(speedup_line(f"  batch 1-{SMALL_BATCH_MAX} inference",
                              summary["small_batch_infer_ceiling"], low="lowest"))
    share = summary["large_shapes_gemm_share"]
    title = f"Large shapes (B >= {LARGE_B}, H >= {LARGE_H}), share of the GEMM limit"
    lines.append(f"{title}: no rows" if share is None else
                 f"{title}: geometric mean {fmt(share['geomean'], 'pct')}, "
                 f"min {fmt(share['min'], 'pct')}, max {fmt(share['max'], 'pct')}, "
                 f"{share['n']} rows")
    return "\n".join(lines)


def format_header(machine: dict) -> str:
    onnxrt = machine.get("onnxruntime")  # None: not installed (the notes say so) or older JSON
    return (f"pyrnn {machine['pyrnn']} ({machine['pyrnn_isa']}) vs torch {machine['torch']} "
            f"({machine['torch_blas']}) vs numpy {machine['numpy']} ({machine['numpy_blas']}) "
            + (f"vs ONNX Runtime {onnxrt} " if onnxrt else "") +
            f"on {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, {machine['date']}; "
            f"load average (1/5/15 min) {machine['load_average_start']} at start, "
            f"{machine['load_average_end']} at end")


def load_warning(machine: dict) -> list:
    """A warning line when other jobs kept more runnable threads than there are CPUs."""
    loads = [l for l in (machine["load_average_start"], machine["load_average_end"]) if l]
    cpus = machine["usable_cpus"] or machine["logical_cpus"] or 1
    if not loads or max(l[0] for l in loads) <= cpus:
        return []
    return [f"WARNING: 1-minute load average up to {max(l[0] for l in loads)} on {cpus} CPUs: "
            "other jobs compete for the cores, so multi-threaded rows (whose threads meet at a "
            "barrier every step) are slowed unevenly; trust the 1-thread ratios most.", ""]


def format_report(result: dict) -> str:
    parts = [format_header(result["machine"]), ""] + load_warning(result["machine"]) + [
             "\n".join(f"- {n}" for n in result["notes"]), "",
             format_table(result["rows"]), "",
             format_summary(result["summary"]),
             format_peaks(result["peak_gflops"]),
             f"Benchmark wall time: {result['wall_s']:.1f} s (CPU time of this process: "
             f"{result['process_cpu_s']:.1f} s)"]
    return "\n".join(parts)


# --------------------------------------------------------------------------- outputs


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


def matplotlib_pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


NO_MATPLOTLIB = "--plot: matplotlib is not installed (pip install matplotlib); no plot written"


def plot_label(row: dict) -> str:
    return f"{row['cell']}\nT{row['T']} B{row['B']}\nI{row['I']} H{row['H']}"


def write_plot(result: dict, path: str) -> bool:
    """Bar chart of the speedup vs torch per shape (log scale), one panel per mode, one bar
    per thread count. Returns False (and writes nothing) without matplotlib."""
    plt = matplotlib_pyplot()
    if plt is None:
        return False
    from matplotlib.ticker import FuncFormatter

    rows = result["rows"]
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    threads = sorted({r["threads"] for r in rows})
    width = 0.8 / len(threads)
    n_labels = max(len({plot_label(r) for r in rows if r["mode"] == m}) for m in modes)
    fig, axes = plt.subplots(len(modes), 1, squeeze=False,
                             figsize=(max(6.0, 1.1 * n_labels), 3.8 * len(modes)))
    for ax, mode in zip(axes[:, 0], modes):
        mode_rows = [r for r in rows if r["mode"] == mode]
        labels = list(dict.fromkeys(plot_label(r) for r in mode_rows))
        for k, n in enumerate(threads):
            mine = [r for r in mode_rows if r["threads"] == n]
            offset = (k - (len(threads) - 1) / 2) * width
            ax.bar([labels.index(plot_label(r)) + offset for r in mine],
                   [r["speedup_vs_torch"] for r in mine], width,
                   label=f"{n} thread{'s' * (n > 1)}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylabel("speedup vs torch (log)")
        ax.set_title(f"pyrnn vs torch.nn, {mode} (> 1: pyrnn faster)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- command line


def csv(kind: Callable, allowed=None):
    def parse(text: str) -> list:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        if allowed is not None and any(v not in allowed for v in values):
            raise argparse.ArgumentTypeError(f"expected values from {', '.join(allowed)}")
        return values
    return parse


FILTER_KEYS = ("cell", "T", "B", "I", "H")


def parse_filter(text: str) -> dict:
    """``cell=lstm,H=512,B=32`` -> {"cell": "lstm", "H": 512, "B": 32}."""
    result = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise argparse.ArgumentTypeError(
                f"--filter: expected key=value items with keys {', '.join(FILTER_KEYS)}, "
                f"got {item!r}")
        result[key] = value if key == "cell" else int(value)
    return result


def shape_arg(text: str) -> Shape:
    try:
        return shape_sets.parse_shape(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def select(shapes: list, cells: list, where: dict) -> list:
    return [s for s in shapes if s.cell in cells
            and all(getattr(s, k) == v for k, v in where.items())]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=csv(str, CELLS), default=list(CELLS),
                   help="comma-separated cells (default: all of %(default)s)")
    p.add_argument("--shapes", choices=sorted(shape_sets.SETS), default="quick",
                   help="shape set from bench/shapes.py (default: %(default)s)")
    p.add_argument("--shape", action="append", type=shape_arg, metavar="CELL:T,B,I,H",
                   help="benchmark this shape instead of a set (repeatable), e.g. "
                        "lstm:100,8,64,128")
    p.add_argument("--threads", type=csv(int), default=sorted({1, _core.max_threads()}),
                   help="comma-separated thread counts (default: %(default)s)")
    p.add_argument("--modes", type=csv(str, MODES), default=list(MODES),
                   help="infer and/or train (default: both)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                   help="timed rounds per contender, median reported (default: %(default)s)")
    p.add_argument("--filter", type=parse_filter, default={},
                   help="only shapes matching key=value items, e.g. cell=lstm,H=512,B=32")
    p.add_argument("--min-run-ms", type=float, default=DEFAULT_MIN_RUN_MS,
                   help="a timed run repeats the call to last at least this (default: "
                        "%(default)s)")
    p.add_argument("--numpy-max-gflop", type=float, default=DEFAULT_NUMPY_MAX_GFLOP,
                   help="skip the NumPy reference above this work per call (default: "
                        "%(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write every number and machine info here")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the speedups vs torch")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    candidates = shape_sets.merge(args.shape) if args.shape else shape_sets.get(args.shapes)
    shapes = select(candidates, args.cells, args.filter)
    if not shapes:
        print("no shapes match --shape(s)/--cells/--filter", file=sys.stderr)
        return 2
    if args.plot and matplotlib_pyplot() is None:
        print(NO_MATPLOTLIB, file=sys.stderr)
    result = run(shapes, args.threads, args.modes, args.repeats, min_run_ms=args.min_run_ms,
                 numpy_max_gflop=args.numpy_max_gflop, seed=args.seed,
                 progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_report(result))
    if args.json:
        write_json(result, args.json)
        print(f"JSON written to {args.json}")
    if args.plot:
        print(f"plot written to {args.plot}" if write_plot(result, args.plot) else NO_MATPLOTLIB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
