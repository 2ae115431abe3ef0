"""The adding problem (Hochreiter & Schmidhuber 1997): long-range memory, LSTM vs vanilla RNN.

Each sequence has ``T`` steps of two inputs: a value drawn uniformly from [0, 1] and a marker
that is 1 at exactly two steps (one in the first half of the sequence, one in the second
half) and 0 elsewhere. After the last step the network must output the sum of the two marked
values. The information it needs is up to ``T`` steps back, with nothing but noise in between.

A model that learns nothing predicts the mean of the sum, 1.0, and scores the variance of
the sum of two independent U(0, 1) values: ``MSE = 2/12 = 0.1667`` (the figure 0.1767 is often
quoted, e.g. by Le et al. 2015, for the same trivial predictor). The script prints that
baseline both analytically and measured on its test set; "solved" means a test MSE below a
tenth of it.

The model: one recurrent layer (LSTM or tanh RNN, from :mod:`pyrnn.layers`), a linear read-out
of the last hidden state, mean squared error, Adam, and optionally gradient clipping by norm.
Run ``python -m pyrnn.examples.adding`` (about a minute on two busy cores; ``--steps`` to
change); it prints a small table: the LSTM gets below a hundredth of the baseline, with and
without clipping, while the vanilla RNN stays at it. ``main()`` returns the rows of the table.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pyrnn.clip import clip_grad_norm
from pyrnn.layers import LSTM, RNN
from pyrnn.nn import Linear
from pyrnn.optim import Adam

__all__ = ["adding_batch", "trivial_mse", "train_model", "main"]

TRIVIAL_MSE = 1.0 / 6.0  # Var(U1 + U2) = 2 * 1/12


def adding_batch(rng: np.random.Generator, batch: int, T: int,
                 dtype=np.float32) -> Tuple[np.ndarray, np.ndarray]:
    """``x [T, batch, 2]`` (value, marker) and ``y [batch]``, the sum of the marked values.

    The first marker is uniform over the first ``T // 2`` steps, the second over the rest.
    """
    if T < 2:
        raise ValueError(f"T must be >= 2, got {T}")
    values = rng.random((T, batch))
    first = rng.integers(0, T // 2, size=batch)
    second = rng.integers(T // 2, T, size=batch)
    markers = np.zeros((T, batch))
    cols = np.arange(batch)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[first, cols] + values[second, cols]).astype(dtype)
    return x, y


def trivial_mse(y: np.ndarray) -> float:
    """MSE of always predicting 1.0 (the expected sum) on targets ``y``."""
    return float(np.mean((np.asarray(y, dtype=np.float64) - 1.0) ** 2))


class AddingModel:
    """Recurrent layer -> linear read-out of the last step's output -> scalar."""

    def __init__(self, cell: str, hidden: int, seed: int, num_threads: int = 1) -> None:
        if cell == "lstm":
            self.rnn = LSTM(2, hidden, seed=seed, num_threads=num_threads)
            # forget-gate bias 1: remember by default (Gers et al. 2000)
            self.rnn.params["bias_ih_l0"][hidden:2 * hidden] += 1.0
        elif cell == "rnn":
            self.rnn = RNN(2, hidden, seed=seed, num_threads=num_threads)
        else:
            raise ValueError(f"cell must be 'lstm' or 'rnn', got {cell!r}")
        self.head = Linear(hidden, 1, seed=seed + 1)
        self.params = {f"rnn.{k}": v for k, v in self.rnn.params.items()}
        self.params.update({f"head.{k}": v for k, v in self.head.params.items()})
        self.grads = {f"rnn.{k}": v for k, v in self.rnn.grads.items()}
        self.grads.update({f"head.{k}": v for k, v in self.head.grads.items()})

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.rnn.eval()
        y, _ = self.rnn(x)
        self.rnn.train()
        return self.head(y[-1])[:, 0]

    def loss_and_grads(self, x: np.ndarray, target: np.ndarray) -> float:
        """MSE on the batch; leaves its gradients in ``self.grads``."""
        for g in self.grads.values():
            g.fill(0)
        y, _ = self.rnn(x)
        pred = self.head(y[-1])[:, 0]
        err = pred - target
        loss = float(np.mean(err.astype(np.float64) ** 2))
        dpred = (2.0 / err.size) * err
        dy = np.zeros_like(y)
        dy[-1] = self.head.backward(dpred[:, None])
        self.rnn.backward(dy)
        return loss


def train_model(cell: str, clip: Optional[float], steps: int, T: int = 100, batch: int = 64,
                hidden: int = 32, lr: float = 2e-2, seed: int = 0, test: Tuple = None,
                num_threads: int = 1) -> Dict:
    """Train one model; returns a dict with the losses and the test MSE (NaN if diverged)."""
    rng = np.random.default_rng(seed)
    model = AddingModel(cell, hidden, seed, num_threads)
    opt = Adam(model.params, lr=lr)
    losses: List[float] = []
    start = time.perf_counter()
    diverged = False
    for _ in range(steps):
        x, y = adding_batch(rng, batch, T)
        loss = model.loss_and_grads(x, y)
        if not math.isfinite(loss):
            diverged = True
            break
        losses.append(loss)
        if clip:
            clip_grad_norm(model.grads, clip)
        opt.step(model.grads)
    seconds = time.perf_counter() - start
    test_mse = math.nan
    if test is not None and not diverged:
        xt, yt = test
        with np.errstate(all="ignore"):
            pred = model.predict(xt)
        test_mse = float(np.mean((pred.astype(np.float64) - yt) ** 2))
        if not math.isfinite(test_mse):
            diverged, test_mse = True, math.nan
    tail = losses[-50:]
    return {"cell": cell, "clip": clip, "steps": len(losses), "seconds": seconds,
            "train_mse": float(np.mean(tail)) if tail else math.nan,
            "first_mse": float(np.mean(losses[:10])) if losses else math.nan,
            "test_mse": test_mse, "diverged": diverged, "losses": losses}


def _solved_at(losses: Sequence[float], threshold: float, window: int = 50) -> Optional[int]:
    """First step (1-based) where the mean of the last ``window`` losses is below threshold."""
    if len(losses) < window:
        return None
    means = np.convolve(np.asarray(losses, dtype=np.float64), np.ones(window) / window, "valid")
    below = np.flatnonzero(means < threshold)
    return int(below[0]) + window if below.size else None


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    parser = argparse.ArgumentParser(
        prog="python -m pyrnn.examples.adding", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--T", type=int, default=100, help="sequence length")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-2, help="Adam learning rate")
    parser.add_argument("--clip", type=float, default=1.0, help="max gradient norm when clipping")
    parser.add_argument("--cells", default="lstm,rnn", help="comma-separated: lstm, rnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="kernel threads (at B=64, H=32 a step is too small to split)")
    args = parser.parse_args(argv)
    if args.T < 2 or args.steps < 1 or args.batch < 1 or args.hidden < 1:
        parser.error("--T must be >= 2 and --steps, --batch, --hidden >= 1")
    if not args.clip > 0:
        parser.error("--clip must be > 0")
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not cells or any(c not in ("lstm", "rnn") for c in cells):
        parser.error(f"--cells must list lstm and/or rnn, got {args.cells!r}")

    test = adding_batch(np.random.default_rng(10_000 + args.seed), 2000, args.T)
    baseline = trivial_mse(test[1])
    print(f"adding problem, T={args.T}: {args.steps} steps of batch {args.batch}, "
          f"hidden {args.hidden}, Adam lr {args.lr:g}")
    print(f"trivial baseline (always predict 1.0): MSE = Var(U1+U2) = 1/6 = {TRIVIAL_MSE:.4f}; "
          f"on the 2000-sequence test set {baseline:.4f}")
    print(f"'solved' = test MSE below {0.1 * baseline:.4f} (a tenth of the baseline)\n")
    header = (f"{'cell':<5} {'clipping':<9} {'steps':>5} {'first MSE':>9} {'train MSE':>9} "
              f"{'test MSE':>9} {'/baseline':>9} {'time':>6}  result")
    print("first/train MSE: mean of the first 10 / last 50 training batches; 'solved at': the "
          "first step where the mean of the last 50 fell below a tenth of the baseline\n")
    print(header)
    print("-" * len(header))
    rows = []
    for cell in cells:
        for clip in (args.clip, None):
            row = train_model(cell, clip, args.steps, args.T, args.batch, args.hidden, args.lr,
                              args.seed, test, args.threads)
            row["baseline"] = baseline
            rows.append(row)
            if row["diverged"]:
                result = f"diverged at step {row['steps'] + 1}"
            elif row["test_mse"] < 0.1 * baseline:
                result = "solved"
                at = _solved_at(row["losses"], 0.1 * baseline)
                if at is not None:
                    result += f" at step {at}"
            elif row["test_mse"] < 0.5 * baseline:
                result = "partly"
            else:
                result = "at baseline"
            clip_text = f"norm {clip:g}" if clip else "none"
            print(f"{cell:<5} {clip_text:<9} {row['steps']:>5} {row['first_mse']:>9.4f} "
                  f"{row['train_mse']:>9.4f} {row['test_mse']:>9.4f} "
                  f"{row['test_mse'] / baseline:>9.3f} {row['seconds']:>5.0f}s  {result}",
                  flush=True)
    return rows


if __name__ == "__main__":
    main()
