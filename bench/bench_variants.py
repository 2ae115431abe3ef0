"""Cell variants vs their base cell, side by side: alternating runs, median time, ratio.

    python bench/bench_variants.py [--T 50 --B 32 --I 256 --H 256 --P 128 --threads 1
                                    --repeats 15]

(uses the importable pyrnn: the installed package, or the in-tree build with PYTHONPATH=.)

Pairs: coupled LSTM and peephole LSTM vs the standard LSTM; reset-before GRU
(reset_after=False) vs the standard GRU; the LSTM with projection (w_hr [P, H]) vs the standard
LSTM and, when torch is installed, vs torch.nn.LSTM(proj_size=P) at the same shape and thread count.
Inference forward and training forward+backward, float32. A ratio > 1 means the variant (or
pyrnn) is slower. Prints; asserts nothing.
"""
import argparse
import statistics
import time

import numpy as np

from pyrnn import functional as F


def make(G, T, B, I, H, rng, R=None):
    """x, w_ih, w_hh, b_ih, b_hh with h R wide (R = P with a projection, else H)."""
    k = np.float32(1 / np.sqrt(H))
    u = lambda *s: rng.uniform(-k, k, s).astype(np.float32)  # noqa: E731
    return (rng.standard_normal((T, B, I)).astype(np.float32), u(G * H, I), u(G * H, R or H),
            u(G * H), u(G * H))


def torch_proj_runner(args, training, nt, rng):
    import torch

    T, B, I, H, P = args.T, args.B, args.I, args.H, args.P
    torch.set_num_threads(nt)
    mod = torch.nn.LSTM(I, H, proj_size=P).train(training)
    x = torch.from_numpy(rng.standard_normal((T, B, I)).astype(np.float32))
    dy = torch.from_numpy(rng.standard_normal((T, B, P)).astype(np.float32))

    def run():
        if not training:
            with torch.no_grad():
                mod(x)
            return
        mod.zero_grad()
        y, _ = mod(x.requires_grad_())
        y.backward(dy)
    return run


def runner(kind, args, training, nt, rng):
    T, B, I, H = args.T, args.B, args.I, args.H
    if kind == "torch_lstm_proj":
        return torch_proj_runner(args, training, nt, rng)
    if kind.startswith("lstm"):
        G = 3 if kind == "lstm_coupled" else 4
        proj = kind == "lstm_proj"
        x, w_ih, w_hh, b_ih, b_hh = make(G, T, B, I, H, rng, args.P if proj else None)
        kw = dict(coupled=kind == "lstm_coupled",
                  peephole=tuple(rng.uniform(-.5, .5, H).astype(np.float32) for _ in range(3))
                  if kind == "lstm_peephole" else None)
        if proj:
            kw["w_hr"] = rng.uniform(-.1, .1, (args.P, H)).astype(np.float32)
        dy = rng.standard_normal((T, B, args.P if proj else H)).astype(np.float32)

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
    for n, d in (("T", 50), ("B", 32), ("I", 256), ("H", 256), ("P", 128), ("threads", 1),
                 ("repeats", 15)):
        ap.add_argument(f"--{n}", type=int, default=d)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"T={args.T} B={args.B} I={args.I} H={args.H} P={args.P} float32 "
          f"threads={args.threads} median of {args.repeats} alternating runs")
    pairs = [("lstm_coupled", "lstm"), ("lstm_peephole", "lstm"), ("gru_reset_before", "gru"),
             ("lstm_proj", "lstm")]
    try:
        import torch  # noqa: F401
        pairs.append(("lstm_proj", "torch_lstm_proj"))
    except ImportError:
        print("(torch not installed: no torch.nn.LSTM(proj_size) row)")
    for variant, base in pairs:
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
            print(f"{variant:17s} vs {base:15s} {what:14s} {mv * 1e3:8.2f} ms vs {mb * 1e3:8.2f} ms"
                  f"  ratio {mv / mb:5.2f}")


if __name__ == "__main__":
    main()
