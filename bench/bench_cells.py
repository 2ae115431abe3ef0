"""One step of a cell, per call: pyrnn's cells against torch.nn's, and the one-step sequence
call they replace (pyrnn.functional with T=1, the char-LM sampler's path before the cells).

    python bench/bench_cells.py [--repeats 7]

Per cell (LSTM, GRU, Elman tanh), batch B in {1, 4} and H in {16, 32, 128} (input size = H),
float32, one thread, state given: the best of `repeats` timed runs of many back-to-back calls,
contenders alternating. Prints a markdown table; asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import pyrnn
from pyrnn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_rnn, also when loaded by path
from bench_rnn import machine_info, timed_run  # noqa: E402

CELLS = {"lstm": (pyrnn.LSTMCell, torch.nn.LSTMCell, F.lstm_forward),
         "gru": (pyrnn.GRUCell, torch.nn.GRUCell, F.gru_forward),
         "rnn_tanh": (pyrnn.RNNCell, torch.nn.RNNCell, F.rnn_forward)}


def per_call(fn, repeats: int, calls: int = 2000) -> float:
    """Best seconds per call over `repeats` runs of `calls` calls."""
    timed_run(fn, 200)  # warm-up
    return min(timed_run(fn, calls) for _ in range(repeats))


def row(cell: str, B: int, H: int, repeats: int) -> dict:
    ours_cls, torch_cls, functional = CELLS[cell]
    ours = ours_cls(H, H, seed=0)
    theirs = torch_cls(H, H)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, H)).astype(np.float32)
    h = rng.standard_normal((B, H)).astype(np.float32)
    xt, ht = torch.from_numpy(x), torch.from_numpy(h)
    lstm = cell == "lstm"
    state, tstate = ((h, h.copy()), (ht, ht.clone())) if lstm else (h, ht)
    w = [ours.params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    x3 = x[None]

    def torch_call():
        with torch.no_grad():
            theirs(xt, tstate)

    times = {"pyrnn cell": per_call(lambda: ours(x, state), repeats),
             "torch cell": per_call(torch_call, repeats),
             "functional T=1": per_call(lambda: functional(x3, *w, state=state, num_threads=1),
                                        repeats)}
    return dict(cell=cell, B=B, H=H, **{k: v * 1e6 for k, v in times.items()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats: expected >= 1")
    torch.set_num_threads(1)
    print("| cell | B | H | pyrnn cell us | torch cell us | torch / pyrnn | functional T=1 us |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for cell in CELLS:
        for B in (1, 4):
            for H in (16, 32, 128):
                r = row(cell, B, H, args.repeats)
                print(f"| {cell} | {B} | {H} | {r['pyrnn cell']:.2f} | {r['torch cell']:.2f} | "
                      f"{r['torch cell'] / r['pyrnn cell']:.1f}x | {r['functional T=1']:.2f} |")
    print(f"\nCPU: {machine_info()['cpu_model']}, pyrnn {pyrnn._core.isa()}, "
          f"torch {torch.__version__}, one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
