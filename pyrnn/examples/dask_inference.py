"""Batch inference on Dask: a trained recurrent classifier over a large collection of
variable-length sequences, on a ``distributed.LocalCluster`` of 2 worker processes x 1 thread.

    pip install dask distributed        (both are in pyrnn's 'test' extra)
    python -m pyrnn.examples.dask_inference [--sequences 20000] [--max-len 200]

What it shows:

1. The model (a GRU and a linear read-out of its last state, trained here for a few Adam steps
   to tell whether a sequence's first feature sums to more than zero) is shipped to the workers
   once: ``client.scatter(model, broadcast=True)``. Layers pickle as their configuration and
   weights (no kernel handles), so any worker can rebuild them.
2. Each task is a bucket of sequences of similar length, padded into one ``[T, B, I]`` batch and
   run with ``lengths`` (outputs past a row's length are not computed into its state), so one
   kernel call serves many sequences.
3. Threads: Dask's nanny sets OMP_NUM_THREADS=1 in its workers; the kernels' thread count is set
   per task instead, to the cores divided by the workers in use (all cores for 1 worker, half
   each for 2), so the cluster never runs more kernel threads than there are cores.
4. It times the collection on 1 worker, then on 2, checks both against an in-process run and
   prints sequences/s and time steps/s for each.

``main(argv)`` returns the figures and the predictions (tests/test_dask_inference.py).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from pyrnn.layers import GRU
from pyrnn.nn import Linear, softmax_cross_entropy
from pyrnn.optim import Adam

__all__ = ["SequenceClassifier", "make_sequences", "buckets", "predict_bucket", "main"]


class SequenceClassifier:
    """``logits[B, 2] = Linear(h_n of GRU(x, lengths))``; pickles as its two layers."""

    def __init__(self, input_size: int, hidden: int, seed: int = 0) -> None:
        self.rnn = GRU(input_size, hidden, seed=seed)
        self.head = Linear(hidden, 2, seed=seed + 1)

    def forward(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        _, h_n = self.rnn(x, lengths=lengths)
        return self.head(h_n[-1])

    def backward(self, dlogits: np.ndarray, steps: int) -> None:
        """Gradients from ``dlogits [B, 2]`` of the last forward, whose input had ``steps``
        time steps (only the final state feeds the read-out: the outputs get zero gradient)."""
        dh = self.head.backward(dlogits)
        dy = np.zeros((steps, dlogits.shape[0], self.rnn.hidden_size), self.rnn.dtype)
        self.rnn.backward(dy, dh[None])

    def train_steps(self, steps: int, rng: np.random.Generator, max_len: int) -> float:
        params = {**{f"rnn.{k}": v for k, v in self.rnn.params.items()},
                  **{f"head.{k}": v for k, v in self.head.params.items()}}
        grads = {**{f"rnn.{k}": v for k, v in self.rnn.grads.items()},
                 **{f"head.{k}": v for k, v in self.head.grads.items()}}
        opt = Adam(params, lr=1e-2)
        loss = float("nan")
        for _ in range(steps):
            seqs = make_sequences(64, self.rnn.input_size, max_len, rng)
            x, lengths = pad(seqs)
            self.rnn.zero_grad(), self.head.zero_grad()
            loss, dlogits = softmax_cross_entropy(self.forward(x, lengths), labels(seqs))
            self.backward(dlogits, x.shape[0])
            opt.step(grads)
        return loss


def make_sequences(n: int, features: int, max_len: int, rng: np.random.Generator,
                   min_len: int = 1) -> List[np.ndarray]:
    """``n`` float32 sequences ``[length, features]``, lengths uniform in [min_len, max_len]."""
    lengths = rng.integers(min_len, max_len + 1, size=n)
    return [rng.standard_normal((int(t), features)).astype(np.float32) for t in lengths]


def labels(seqs: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([int(s[:, 0].sum() > 0) for s in seqs])


def pad(seqs: Sequence[np.ndarray]):
    """Time-major zero-padded batch ``[T, B, I]`` and the lengths."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    x = np.zeros((int(lengths.max()), len(seqs), seqs[0].shape[1]), np.float32)
    for b, s in enumerate(seqs):
        x[: len(s), b] = s
    return x, lengths


def buckets(seqs: Sequence[np.ndarray], size: int) -> List[List[int]]:
    """Indices of the sequences in groups of ``size`` of similar length (little padding)."""
    order = np.argsort([len(s) for s in seqs], kind="stable")
    return [order[i:i + size].tolist() for i in range(0, len(order), size)]


def predict_bucket(model: SequenceClassifier, seqs: Sequence[np.ndarray],
                   num_threads: int) -> np.ndarray:
    """The task each worker runs: class-1 probabilities of one bucket, with ``num_threads``
    kernel threads (the worker's share of the cores)."""
    model.rnn.num_threads = num_threads
    model.rnn.eval()
    x, lengths = pad(seqs)
    logits = model.forward(x, lengths)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p[:, 1] / p.sum(axis=1)).astype(np.float32)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run(client, model_future, seqs, groups, workers, threads) -> np.ndarray:
    futures = [client.submit(predict_bucket, model_future, [seqs[i] for i in g], threads,
                             workers=workers, pure=False) for g in groups]
    out = np.empty(len(seqs), np.float32)
    for g, probs in zip(groups, client.gather(futures)):
        out[g] = probs
    return out


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(prog="python -m pyrnn.examples.dask_inference",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=20000)
    parser.add_argument("--min-len", type=int, default=20)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--bucket", type=int, default=64, help="sequences per task")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        parser.exit(2, "this example needs dask and distributed: pip install dask distributed\n")

    rng = np.random.default_rng(args.seed)
    model = SequenceClassifier(args.features, args.hidden, seed=args.seed)
    loss = model.train_steps(args.train_steps, rng, max_len=min(args.max_len, 50))
    seqs = make_sequences(args.sequences, args.features, args.max_len, rng, args.min_len)
    groups = buckets(seqs, args.bucket)
    steps = int(sum(len(s) for s in seqs))
    print(f"model: GRU {args.features} -> {args.hidden}, linear -> 2; trained "
          f"{args.train_steps} steps (last loss {loss:.3f})")
    print(f"data: {len(seqs):,} sequences of {args.min_len}-{args.max_len} steps "
          f"({steps:,} steps), {len(groups)} tasks of up to {args.bucket} sequences")
    local = np.concatenate([predict_bucket(model, [seqs[i] for i in g], 1) for g in groups])
    local = local[np.argsort(np.concatenate(groups), kind="stable")]
    cores = _cores()
    results: Dict = {"cores": cores, "sequences": len(seqs), "steps": steps, "runs": []}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        model_future = client.scatter(model, broadcast=True)  # shipped once to every worker
        addresses = sorted(client.scheduler_info()["workers"])
        print(f"cluster: {len(addresses)} workers x 1 thread on {cores} cores")
        print(f"{'workers':>7}  {'kernel threads each':>19}  {'seconds':>8}  "
              f"{'sequences/s':>12}  {'steps/s':>12}")
        for n in sorted({1, len(addresses)}):
            threads = max(1, cores // n)
            _run(client, model_future, seqs, groups[:n], addresses[:n], threads)  # warm-up
            t0 = time.perf_counter()
            probs = _run(client, model_future, seqs, groups, addresses[:n], threads)
            dt = time.perf_counter() - t0
            run = {"workers": n, "threads": threads, "seconds": dt,
                   "sequences_per_s": len(seqs) / dt, "steps_per_s": steps / dt,
                   "max_abs_diff_vs_local": float(np.max(np.abs(probs - local)))}
            results["runs"].append(run)
            print(f"{n:>7}  {threads:>19}  {dt:8.2f}  {run['sequences_per_s']:12,.0f}  "
                  f"{run['steps_per_s']:12,.0f}")
    results["local"] = local
    results["accuracy"] = float(np.mean((local > 0.5) == labels(seqs)))
    print(f"accuracy of the predictions: {results['accuracy']:.3f} (chance 0.5); every run "
          f"matches the in-process one to "
          f"{max(r['max_abs_diff_vs_local'] for r in results['runs']):.1e}")
    return results


if __name__ == "__main__":
    main()
