"""Stacked layers in eval mode: the wavefront over layers vs layer after layer vs torch.nn.

    python bench/bench_stacked.py [--threads 2 --repeats 9] [--stack lstm:L,T,B,H ...]

(uses the importable pyrnn: the installed package, or the in-tree build with PYTHONPATH=.)

Per stack (cell, layers L, steps T, batch B, hidden H = input size), float32 inference forward
of ``pyrnn.LSTM/GRU/RNN(num_layers=L).eval()`` with ``num_threads=threads``, timed three ways
in alternating rounds after a warm-up, the order rotated every round (median reported): with the wavefront
(``pyrnn.layers.WAVEFRONT = True``, the default), layer after layer (``False``), and
``torch.nn.LSTM/GRU/RNN(num_layers=L)`` under ``no_grad`` after ``torch.set_num_threads``.
"chunks" is the wavefront's chunk count (0: the stack runs layer after layer anyway, e.g.
because each layer already uses every thread). Prints a markdown table; asserts nothing.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import pyrnn
from pyrnn import layers

CLASSES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn_tanh": ("RNN", {}),
           "rnn_relu": ("RNN", {"nonlinearity": "relu"})}

# (cell, L, T, B, H): stacks whose layers run on one thread each (steps too small for a split
# by units: the wavefront's case), then three controls where it does not engage (chunks too
# small to repay a call; layers that split their steps over both threads themselves).
DEFAULT_STACKS = [
    ("lstm", 2, 1000, 1, 64), ("lstm", 3, 1000, 2, 48), ("lstm", 2, 300, 1, 64),
    ("gru", 2, 1000, 2, 64), ("rnn_tanh", 2, 1000, 1, 128), ("rnn_relu", 3, 2000, 4, 128),
    ("lstm", 2, 100, 1, 64), ("lstm", 2, 1000, 1, 128), ("lstm", 2, 100, 16, 512),
]


def parse_stack(text):
    """``"lstm:2,1000,1,128"`` (cell:L,T,B,H) -> tuple."""
    cell, _, sizes = text.partition(":")
    values = [int(v) for v in sizes.split(",")]
    if cell not in CLASSES or len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected CELL:L,T,B,H with CELL in {sorted(CLASSES)} "
                                         f"and sizes >= 1, got {text!r}")
    return (cell, *values)


def contenders(cell, L, T, B, H, threads, rng):
    import torch

    name, kwargs = CLASSES[cell]
    model = getattr(pyrnn, name)(H, H, num_layers=L, seed=0, num_threads=threads,
                                 **kwargs).eval()
    reference = getattr(torch.nn, name)(H, H, num_layers=L, **kwargs).eval()
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    xt = torch.from_numpy(x)

    def pyrnn_run(wavefront):
        def run():
            saved, layers.WAVEFRONT = layers.WAVEFRONT, wavefront
            try:
                model(x)
            finally:
                layers.WAVEFRONT = saved
        return run

    def torch_run():
        with torch.no_grad():
            reference(xt)

    chunks = model._wavefront_chunks(T, B, threads)
    return chunks, {"wavefront": pyrnn_run(True), "layers": pyrnn_run(False), "torch": torch_run}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--stack", type=parse_stack, action="append",
                    help="CELL:L,T,B,H (repeatable); default: a built-in list")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"float32 inference, threads={args.threads}, median of {args.repeats} alternating "
          f"rounds; pyrnn {pyrnn.__version__}, torch {torch.__version__}\n")
    print("| cell | L | T | B | H | chunks | wavefront ms | layer after layer ms | torch ms "
          "| wavefront vs layers | wavefront vs torch |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for cell, L, T, B, H in args.stack or DEFAULT_STACKS:
        chunks, fns = contenders(cell, L, T, B, H, args.threads, rng)
        times = {k: [] for k in fns}
        for fn in fns.values():
            fn()  # warm up
        order = list(fns)
        for r in range(args.repeats):
            # rotated every round: in a fixed order two contenders running the same code
            # measured 0.74x apart (the one after torch pays, probably for cold caches)
            for k in order[r % len(order):] + order[:r % len(order)]:
                t0 = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - t0)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        print(f"| {cell} | {L} | {T} | {B} | {H} | {chunks} | {ms['wavefront']:.3g} "
              f"| {ms['layers']:.3g} | {ms['torch']:.3g} | {ms['layers'] / ms['wavefront']:.2f}x "
              f"| {ms['torch'] / ms['wavefront']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
