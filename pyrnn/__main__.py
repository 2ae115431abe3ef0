"""`python -m pyrnn`: run every kernel once on a medium shape, check it against the NumPy
reference, and time it against the reference. `python -m pyrnn --info` prints the build."""
from __future__ import annotations

import argparse
import time

import numpy as np

from . import functional as F
from . import reference as R
from ._config import show_config

CELLS = {
    "lstm": (4, F.lstm_forward, F.lstm_backward, R.lstm_forward, R.lstm_backward, {}),
    "gru": (3, F.gru_forward, F.gru_backward, R.gru_forward, R.gru_backward, {}),
    "rnn_tanh": (1, F.rnn_forward, F.rnn_backward, R.rnn_forward, R.rnn_backward,
                 {"nonlinearity": "tanh"}),
    "rnn_relu": (1, F.rnn_forward, F.rnn_backward, R.rnn_forward, R.rnn_backward,
                 {"nonlinearity": "relu"}),
}


def _best_ms(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def _train_step(fwd, bwd, x, w, kw, dy):
    y, _, cache = fwd(x, *w, training=True, **kw)
    return y, bwd(cache, dy)


def demo(T=50, B=16, I=128, H=128, seed=0):
    """Check and time each cell; returns the largest relative error seen."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    print(f"pyrnn kernels vs the NumPy reference, float32, T={T} B={B} I={I} H={H}")
    print(f"{'cell':<9} {'max rel err':>11} {'train ms':>9} {'numpy ms':>9} {'speedup':>8}")
    worst = 0.0
    for name, (G, fwd, bwd, rfwd, rbwd, kw) in CELLS.items():
        bound = 1.0 / np.sqrt(H)
        w = [rng.uniform(-bound, bound, shape).astype(np.float32)
             for shape in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
        y, (dx, *_) = _train_step(fwd, bwd, x, w, kw, dy)
        ry, (rdx, *_) = _train_step(rfwd, rbwd, x, w, kw, dy)
        err = max(np.abs(y - ry).max() / (np.abs(ry).max() + 1e-12),
                  np.abs(dx - rdx).max() / (np.abs(rdx).max() + 1e-12))
        worst = max(worst, float(err))
        ours = _best_ms(lambda: _train_step(fwd, bwd, x, w, kw, dy))
        ref = _best_ms(lambda: _train_step(rfwd, rbwd, x, w, kw, dy), repeats=1)
        print(f"{name:<9} {err:>11.2e} {ours:>9.2f} {ref:>9.2f} {ref / ours:>7.1f}x")
    status = "OK" if worst < 1e-4 else "MISMATCH"
    print(f"largest relative error {worst:.2e}: {status}")
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pyrnn", description=__doc__)
    parser.add_argument("--info", action="store_true", help="print the build configuration")
    args = parser.parse_args(argv)
    if args.info:
        show_config()
        return 0
    show_config()
    print()
    return 0 if demo() < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
