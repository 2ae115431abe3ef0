"""Small models, streaming shapes: pyrnn's layers against torch.nn at batch 1-4 and 16-128
units, with each row's per-step cost beside the limit its arithmetic and memory traffic allow.

    python bench/bench_small.py [--repeats 5] [--json small.json] [--quick]

The ``small`` set (see ``small_rows``): LSTM (plain and peephole), GRU and Elman RNN,
H in {16, 25, 32, 64, 128}, B in {1, 2, 4}, T in {1000, 3000}, 1-3 layers, bidirectional or
not; input size = H. Per row, float32 inference, timed in alternating rounds (median):

- ``pyrnn``: ``pyrnn.LSTM/GRU/RNN(...).eval()`` with num_threads=1;
- ``torch``: the same ``torch.nn`` module under no_grad, torch.set_num_threads(1) (torch has no
  peephole LSTM: those rows run its plain LSTM of the same size, which does a little less);
- ``kernels``: the layer's kernel calls alone (pyrnn.functional, one per layer and direction,
  one after the other, inputs prepared beforehand): ``overhead`` = pyrnn / kernels - 1 is what
  the layer adds (stacking, concatenating directions, checks);
- ``2 threads`` (bidirectional rows): the layer with num_threads=2, whose directions run
  concurrently; ``dir x`` = pyrnn / (2 threads).

The limit of a kernel step (one layer, one direction, one time step): its products'
arithmetic, 2 B G H (I + H) FLOP, at the machine's measured peak (a square float32 torch.mm of
512, one thread, timed beside every row as in bench_rnn.py), or the recurrent weights' bytes
at the measured L2 read bandwidth (a one-thread BLAS dot product over vectors filling half the
L2) when they do not fit in L1d, whichever is longer. Gate activations are not counted, so the limit is optimistic
and ``x limit`` (per-step time / limit) a conservative figure. Asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import pyrnn
from pyrnn import _core
from pyrnn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_rnn, also when loaded by path
from bench_rnn import (Contender, blas_threads, machine_info, peak_step, time_side_by_side,
                       timed_run, write_json)

GATES = {"lstm": 4, "lstm_peephole": 4, "gru": 3, "rnn_tanh": 1}
PEAK_FLOP = 2 * 512 ** 3


@dataclass(frozen=True)
class SmallRow:
    cell: str
    H: int
    B: int
    T: int
    layers: int
    bidirectional: bool

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def label(self) -> str:
        kind = "bi" if self.bidirectional else "uni"
        return f"{self.cell} H={self.H} B={self.B} T={self.T} L={self.layers} {kind}"


def small_rows(quick: bool = False) -> list:
    """Per cell and size two rows: a stream at batch 1 through a 3-layer bidirectional stack
    over 3000 frames (the shape of published beat trackers), and a short batch of 2 or 4 through
    1-2 unidirectional layers over 1000 steps."""
    if quick:
        return [SmallRow("lstm", 16, 1, 50, 2, True), SmallRow("gru", 32, 2, 40, 1, False),
                SmallRow("lstm_peephole", 25, 1, 30, 1, True)]
    rows = []
    for cell in GATES:
        for i, H in enumerate((16, 25, 32, 64, 128)):
            rows.append(SmallRow(cell, H, 1, 3000, 3, True))
            rows.append(SmallRow(cell, H, 4 if i % 2 else 2, 1000, 1 + i % 2, False))
    return rows


def make_layers(row: SmallRow, threads: int):
    kw = dict(num_layers=row.layers, bidirectional=row.bidirectional, seed=0,
              num_threads=threads)
    if row.cell.startswith("lstm"):
        return pyrnn.LSTM(row.H, row.H, peephole=row.cell == "lstm_peephole", **kw).eval()
    if row.cell == "gru":
        return pyrnn.GRU(row.H, row.H, **kw).eval()
    return pyrnn.RNN(row.H, row.H, **kw).eval()


def make_torch(row: SmallRow, layer) -> torch.nn.Module:
    cls = {"lstm": torch.nn.LSTM, "lstm_peephole": torch.nn.LSTM, "gru": torch.nn.GRU,
           "rnn_tanh": torch.nn.RNN}[row.cell]
    module = cls(row.H, row.H, num_layers=row.layers, bidirectional=row.bidirectional).eval()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(layer.params[name]))
    return module


def kernel_calls(row: SmallRow, layer, x):
    """The layer's kernel calls alone, one after the other, on inputs prepared beforehand."""
    p, calls, inp = layer.params, [], x
    for k in range(row.layers):
        outs = []
        for d in range(row.directions):
            s = f"_l{k}" + ("_reverse" if d else "")
            w = [p[n + s] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            kw = dict(reverse=bool(d), num_threads=1)
            if row.cell == "lstm_peephole":
                kw["peephole"] = tuple(p[n + s] for n in ("weight_ci", "weight_cf", "weight_co"))
            fn = {"lstm": F.lstm_forward, "lstm_peephole": F.lstm_forward,
                  "gru": F.gru_forward, "rnn_tanh": F.rnn_forward}[row.cell]
            calls.append((fn, inp, w, kw))
            outs.append(fn(inp, *w, **kw)[0])
        inp = np.ascontiguousarray(np.concatenate(outs, axis=2))

    def run():
        for fn, xin, w, kw in calls:
            fn(xin, *w, **kw)
    return run


def l2_read_bandwidth() -> float:
    """Bytes/s of a float32 dot product (NumPy's BLAS, one thread) of two vectors that fill half
    the L2 together, less the time of a tiny dot (the call's own cost): the rate a streaming
    read reaches from L2 with two loads per FMA."""
    n = _core.cache_sizes()["l2"] // 2 // 8
    a, b = np.ones(n, np.float32), np.ones(n, np.float32)

    def best(fn):
        fn()
        return min(timed_run(fn, 500) for _ in range(9))
    with blas_threads(1):
        seconds = best(lambda: np.dot(a, b)) - best(lambda: np.dot(a[:16], b[:16]))
    return 8.0 * n / max(seconds, 1e-9)


def step_limit(row: SmallRow, layer_index: int, peak: float, bandwidth: float) -> float:
    """Seconds one kernel step of layer `layer_index` cannot beat (see the module docstring)."""
    G, H, B = GATES[row.cell], row.H, row.B
    I = H if layer_index == 0 else row.directions * H
    arithmetic = 2.0 * B * G * H * (I + H) / peak
    weight_bytes = 4.0 * G * H * H
    memory = weight_bytes / bandwidth if weight_bytes > _core.cache_sizes()["l1d"] else 0.0
    return max(arithmetic, memory)


def bench_row(row: SmallRow, repeats: int, min_run_s: float, bandwidth: float) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((row.T, row.B, row.H)).astype(np.float32)
    one = make_layers(row, 1)
    module = make_torch(row, one)
    xt = torch.from_numpy(x)

    def torch_run():
        with torch.no_grad():
            module(xt)
    contenders = [Contender("pyrnn", lambda: one(x), repeats),
                  Contender("torch", torch_run, repeats),
                  Contender("kernels", kernel_calls(row, one, x), repeats),
                  Contender("peak", peak_step(), repeats)]
    if row.bidirectional:
        two = make_layers(row, 2)
        contenders.append(Contender("2 threads", lambda: two(x), repeats))
    times = {k: statistics.median(v) for k, v in time_side_by_side(contenders, min_run_s).items()}
    peak = PEAK_FLOP / times["peak"]
    steps = row.T * row.layers * row.directions
    limit = sum(step_limit(row, k, peak, bandwidth) for k in range(row.layers))
    limit *= row.T * row.directions / steps  # mean over the row's kernel steps
    out = dict(asdict(row), label=row.label(), pyrnn_ms=times["pyrnn"] * 1e3,
               torch_ms=times["torch"] * 1e3, kernels_ms=times["kernels"] * 1e3,
               speedup=times["torch"] / times["pyrnn"],
               overhead=times["pyrnn"] / times["kernels"] - 1.0,
               step_us=times["kernels"] / steps * 1e6, limit_us=limit * 1e6,
               peak_gflops=peak / 1e9)
    out["x_limit"] = out["step_us"] / out["limit_us"]
    if row.bidirectional:
        out["two_threads_ms"] = times["2 threads"] * 1e3
        out["direction_speedup"] = times["pyrnn"] / times["2 threads"]
    return out


def summarize(rows: list) -> dict:
    speedups = [r["speedup"] for r in rows]
    bi = [r["direction_speedup"] for r in rows if "direction_speedup" in r]
    return dict(
        geomean_vs_torch=statistics.geometric_mean(speedups), lowest_vs_torch=min(speedups),
        rows_below_1_5x=sum(s < 1.5 for s in speedups), rows=len(rows),
        overhead_max=max(r["overhead"] for r in rows),
        overhead_median=statistics.median(r["overhead"] for r in rows),
        x_limit_median=statistics.median(r["x_limit"] for r in rows),
        x_limit_max=max(r["x_limit"] for r in rows),
        direction_speedup=(dict(min=min(bi), max=max(bi)) if bi else None))


def format_report(result: dict) -> str:
    head = ("| row | pyrnn ms | torch ms | vs torch | kernels ms | overhead | us/step | "
            "limit us | x limit | dirs on 2 threads |")
    lines = [head, "|" + "---|" * 10]
    for r in result["rows"]:
        two = f"{r['direction_speedup']:.2f}x" if "direction_speedup" in r else "—"
        lines.append(f"| {r['label']} | {r['pyrnn_ms']:.2f} | {r['torch_ms']:.2f} | "
                     f"{r['speedup']:.2f}x | {r['kernels_ms']:.2f} | {r['overhead']:+.0%} | "
                     f"{r['step_us']:.3f} | {r['limit_us']:.3f} | {r['x_limit']:.1f} | {two} |")
    s, m = result["summary"], result["machine"]
    lines += ["", f"CPU: {m['cpu_model']}, pyrnn {m['pyrnn_isa']}, torch {m['torch']}; "
                  f"L2 read bandwidth {result['l2_bandwidth_gbs']:.0f} GB/s (BLAS dot), "
                  f"peak {max(r['peak_gflops'] for r in result['rows']):.0f} GFLOP/s (one thread)",
              f"vs torch (one thread each): geometric mean {s['geomean_vs_torch']:.2f}x, lowest "
              f"{s['lowest_vs_torch']:.2f}x, {s['rows_below_1_5x']} of {s['rows']} rows below "
              "1.5x",
              f"layer overhead over its kernel calls: median {s['overhead_median']:+.0%}, "
              f"largest {s['overhead_max']:+.0%}",
              f"per-step cost / limit: median {s['x_limit_median']:.1f}x, largest "
              f"{s['x_limit_max']:.1f}x"]
    if s["direction_speedup"]:
        d = s["direction_speedup"]
        lines.append(f"bidirectional, 2 threads vs 1: {d['min']:.2f}x - {d['max']:.2f}x")
    return "\n".join(lines)


def run(rows, repeats: int = 5, min_run_s: float = 0.05) -> dict:
    torch.set_num_threads(1)
    bandwidth = l2_read_bandwidth()
    results = []
    for row in rows:
        results.append(bench_row(row, repeats, min_run_s, bandwidth))
        print(f"  {row.label()}: {results[-1]['speedup']:.2f}x torch", file=sys.stderr)
    return dict(machine=machine_info(), l2_bandwidth_gbs=bandwidth / 1e9, rows=results,
                summary=summarize(results))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds per contender")
    ap.add_argument("--json", help="write the rows and summary as JSON")
    ap.add_argument("--quick", action="store_true", help="three tiny rows (a smoke test)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats: expected >= 1")
    result = run(small_rows(args.quick), args.repeats, 0.01 if args.quick else 0.05)
    print(format_report(result))
    if args.json:
        write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
