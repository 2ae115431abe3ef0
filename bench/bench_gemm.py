"""The kernels' GEMM share: pyrnn's packed step product against torch.mm, one thread.

Every step of a pyrnn kernel multiplies by the same weights: the recurrent product
``[B, H] x [G*H, H]^T`` and, over chunks of 64 rows, the input projection ``[64, I] x [G*H, I]^T``.
``_core.packed_product`` runs exactly that code (the weights packed once, then the products) on
its own; this script times it against ``torch.mm`` (MKL) on the same shapes, side by side in
alternating rounds, and against the machine's peak (a square 512 float32 torch.mm).

    python bench/bench_gemm.py                      # the GEMM-bound rows of quick and deepbench
    python bench/bench_gemm.py --shape 32,1024,256  # M,N,K of your own
    PYRNN_ISA=avx2 python bench/bench_gemm.py       # another instruction-set build
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes as shape_sets  # noqa: E402

import torch  # noqa: E402

from pyrnn import _config, _core  # noqa: E402

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
INPUT_ROWS = 64  # rows per input-projection product (recurrent.h kInputRowBlock)
MIN_BATCH = 8    # smaller batches are bound by streaming the weights, not by the GEMM
PEAK_N = 512
TARGET = 0.95    # issue 19: at least 95% of torch.mm on the same shapes


def default_shapes() -> list:
    """(label, M, N, K) of the recurrent and input products of quick's and deepbench's rows
    with B >= MIN_BATCH, each shape once."""
    out, seen = [], set()
    for s in shape_sets.get("all"):
        if s.B < MIN_BATCH:
            continue
        G = GATES[s.cell]
        for label, M, K in (("recurrent", s.B, s.H), ("input", INPUT_ROWS, s.I)):
            key = (M, G * s.H, K)
            if key not in seen:
                seen.add(key)
                out.append((f"{s.cell} {label} H={s.H}", *key))
    return out


def timed(fn, reps: int) -> float:
    t0 = time.perf_counter()
    fn(reps)
    return (time.perf_counter() - t0) / reps


def measure(M: int, N: int, K: int, rounds: int, min_ms: float, rng) -> dict:
    X = rng.standard_normal((M, K), dtype=np.float32)
    W = rng.standard_normal((N, K), dtype=np.float32)
    C = _core.packed_product(X, W, 1)
    want = X.astype(np.float64) @ W.T.astype(np.float64)
    err = float(np.max(np.abs(C - want)) / max(1.0, float(np.max(np.abs(want)))))
    if err > 1e-4:
        raise RuntimeError(f"packed_product({M}x{K}, {N}x{K}) is wrong: relative error {err:.2e}")
    Xt, Wt = torch.from_numpy(X), torch.from_numpy(W)
    Ct = torch.empty(M, N)

    def torch_run(reps):
        for _ in range(reps):
            torch.mm(Xt, Wt.t(), out=Ct)

    def pyrnn_run(reps):
        _core.packed_product(X, W, reps)

    flop = 2.0 * M * N * K
    reps = max(1, int(min_ms * 1e-3 / max(timed(torch_run, 1), 1e-7)))
    times = {"pyrnn": [], "torch": []}
    for _ in range(rounds):  # alternating rounds; the best of each (the machine is shared)
        times["pyrnn"].append(timed(pyrnn_run, reps))
        times["torch"].append(timed(torch_run, reps))
    best = {k: min(v) for k, v in times.items()}
    return dict(M=M, N=N, K=K, pyrnn_gflops=flop / best["pyrnn"] / 1e9,
                torch_gflops=flop / best["torch"] / 1e9,
                ratio=best["torch"] / best["pyrnn"], rounds=times)


def peak_gflops(rounds: int) -> float:
    a, b, c = torch.randn(PEAK_N, PEAK_N), torch.randn(PEAK_N, PEAK_N), torch.empty(PEAK_N, PEAK_N)
    best = min(timed(lambda r: [torch.mm(a, b, out=c) for _ in range(r)], 20) for _ in range(rounds))
    return 2.0 * PEAK_N ** 3 / best / 1e9


def parse_shape(text: str):
    try:
        M, N, K = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected M,N,K (e.g. 32,1024,256), got {text!r}")
    if min(M, N, K) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got {text!r}")
    return (f"M={M} N={N} K={K}", M, N, K)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", action="append", type=parse_shape, metavar="M,N,K",
                   help="C[M,N] = X[M,K] W[N,K]^T (repeatable); default: the bench's rows")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--min-ms", type=float, default=20.0, help="each timed run lasts about this")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for label, M, N, K in args.shape or default_shapes():
        row = measure(M, N, K, args.rounds, args.min_ms, rng)
        row["label"] = label
        rows.append(row)
    peak = peak_gflops(args.rounds)
    info = _config.config()
    print(f"pyrnn {info['version']} ({info['isa']}, Eigen {info['eigen_simd']}) vs torch "
          f"{torch.__version__} on {info['cpu']}, one thread; peak (float32 torch.mm n={PEAK_N}) "
          f"{peak:.1f} GFLOP/s")
    print(f"| product | M | N | K | pyrnn GFLOP/s | torch GFLOP/s | pyrnn / torch | pyrnn % peak |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['label']} | {r['M']} | {r['N']} | {r['K']} | {r['pyrnn_gflops']:.1f} | "
              f"{r['torch_gflops']:.1f} | {r['ratio']:.2f}x | {100 * r['pyrnn_gflops'] / peak:.0f}% |")
    ratios = [r["ratio"] for r in rows]
    below = [r for r in rows if r["ratio"] < TARGET]
    print(f"pyrnn / torch.mm: geometric mean {statistics.geometric_mean(ratios):.2f}x, lowest "
          f"{min(ratios):.2f}x; {len(below)} of {len(rows)} below {TARGET:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=info["cpu"], isa=info["isa"], peak_gflops=peak, rows=rows), f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
