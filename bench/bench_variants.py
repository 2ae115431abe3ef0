"""Cell variants vs their base cell, side by side: alternating runs, median time, ratio.

    python bench/bench_variants.py [--T 50 --B 32 --I 256 --H 256 --threads 1 --repeats 15]

(uses the importable pyrnn: the installed package, or the in-tree build with PYTHONPATH=.)

Pairs: coupled LSTM and peephole LSTM vs the standard LSTM; reset-before GRU
(reset_after=False) vs the standard GRU. Inference forward and training forward+backward,
float32. A ratio > 1 means the variant is slower. Prints; asserts nothing.
"""
import argparse
import statistics
import time

import numpy as np

from pyrnn import functional as F


def make(G, T, B, I, H, rng):
    k = np.float32(1 / np.sqrt(H))
    u = lambda *s: rng.uniform(-k, k, s).astype(np.float32)  # noqa: E731
    return (rng.standard_normal((T, B, I)).astype(np.float32), u(G * H, I), u(G * H, H),
            u(G * H), u(G * H))


def runner(kind, args, training, nt, rng):
    T, B, I, H = args.T, args.B, args.I, args.H
    if kind.startswith("lstm"):
        G = 3 if kind == "lstm_coupled" else 4
        x, w_ih, w_hh, b_ih, b_hh = make(G, T, B, I, H, rng)
        kw = dict(coupled=kind == "lstm_coupled",
                  peephole=tuple(rng.uniform(-.5, .5, H).astype(np.float32) for _ in range(3))
                  if kind == "lstm_peephole" else None)
        dy = rng.standard_normal((T, B, H)).astype(np.float32)

        def run():
            y, _, cache = F.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, training=training,
                                         num_threads=nt, **kw)
            if training:
                F.lstm_backward(cache, dy)
        return run
    x, w_ih, w_hh, b_ih, b_hh = make(3, T, B, I, H, rng)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)

    def run():
        y, _, cache = F.gru_forward(x, w_ih, w_hh, b_ih, b_hh, training=training, num_threads=nt,
                                    reset_after=kind == "gru")
        if training:
            F.gru_backward(cache, dy)
    return run


def main():
    ap = argparse.ArgumentParser()
    for n, d in (("T", 50), ("B", 32), ("I", 256), ("H", 256), ("threads", 1), ("repeats", 15)):
        ap.add_argument(f"--{n}", type=int, default=d)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"T={args.T} B={args.B} I={args.I} H={args.H} float32 threads={args.threads} "
          f"median of {args.repeats} alternating runs")
    for variant, base in (("lstm_coupled", "lstm"), ("lstm_peephole", "lstm"),
                          ("gru_reset_before", "gru")):
        for training in (False, True):
            fns = {k: runner(k, args, training, args.threads, rng) for k in (variant, base)}
            times = {k: [] for k in fns}
            for k in fns:
                fns[k]()  # warm up
            for _ in range(args.repeats):
                for k, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - t0)
            mv, mb = (statistics.median(times[k]) for k in (variant, base))
            what = "train fwd+bwd" if training else "inference fwd"
            print(f"{variant:17s} vs {base:5s} {what:14s} {mv * 1e3:8.2f} ms vs {mb * 1e3:8.2f} ms"
                  f"  ratio {mv / mb:5.2f}")


if __name__ == "__main__":
    main()
