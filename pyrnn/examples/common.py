"""What the lectures' task examples (``classify``, ``tagging``, ``captioning``) share.

- :class:`Vocab`: tokens (characters or words) to indices, with padding 0 and unknown 1;
- :func:`pad_batch`: variable-length sequences to a time-major ``[T, B]`` batch and ``lengths``,
  :func:`valid_mask`: which steps of such a batch are real;
- :class:`Params`: the parameters and gradients of several layers under one prefixed dict;
- :func:`fit`: the training loop (Adam with a cosine learning-rate decay, gradient-norm
  clipping, progress bar, step and time budget, divergence check);
- :func:`stdlib_sources`: Python source files of the standard library, the data that is always
  there offline;
- :func:`base_parser`, :func:`report`, :func:`write_summary`: the common command line, the
  result beside its baseline, and the ``--summary-json`` file.

The progress bar, argument types and BLAS guard are the char-LM's (:mod:`pyrnn.charlm`), reused.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import sysconfig
import time
from collections import Counter
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from pyrnn.charlm._blas import single_blas_thread
from pyrnn.charlm.cli import _float, _Formatter, _positive_int
from pyrnn.charlm.data import read_source
from pyrnn.charlm.training import _make_progress
from pyrnn.clip import clip_grad_norm
from pyrnn.module import Module
from pyrnn.optim import Adam

__all__ = ["ExampleError", "Vocab", "pad_batch", "valid_mask", "Params", "fit", "stdlib_sources",
           "base_parser", "report", "write_summary", "run_main", "positive_int", "number_above",
           "PAD", "UNK"]

PAD, UNK = 0, 1
positive_int = _positive_int  # argparse type: an integer >= 1, with a clear message otherwise
number_above = _float         # number_above(low, inclusive[, high]): an argparse type for floats


class ExampleError(Exception):
    """A user-facing error (bad data, bad argument); ``main`` prints it and exits with status 2."""


# ---------------------------------------------------------------------- vocabulary and batches
class Vocab:
    """Tokens in order of first appearance after ``<pad>`` (index 0) and ``<unk>`` (index 1).

    ``min_count`` drops rarer tokens (they encode as ``<unk>``); ``extra`` tokens (e.g. ``<bos>``)
    always get an index, right after the two reserved ones.
    """

    def __init__(self, tokens: Iterable[str], min_count: int = 1,
                 extra: Sequence[str] = ()) -> None:
        counts = Counter(tokens)
        self.itos: List[str] = ["<pad>", "<unk>", *extra]
        seen = set(self.itos)
        for token, n in counts.items():  # Counter keeps first-appearance order
            if n >= min_count and token not in seen:
                self.itos.append(token)
                seen.add(token)
        self.stoi: Dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        return np.array([self.stoi.get(t, UNK) for t in tokens], dtype=np.int64)

    def decode(self, indices: Iterable[int]) -> List[str]:
        return [self.itos[int(i)] for i in indices]


def pad_batch(seqs: Sequence[np.ndarray], pad: int = PAD) -> Tuple[np.ndarray, np.ndarray]:
    """``(x [T, B] int64, lengths [B])``: the sequences side by side, time-major, padded to the
    longest (``T = max(lengths)``) with ``pad``."""
    if not seqs:
        raise ValueError("pad_batch: no sequences")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    x = np.full((int(lengths.max()), len(seqs)), pad, dtype=np.int64)
    for b, s in enumerate(seqs):
        x[:len(s), b] = s
    return x, lengths


def valid_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    """``[T, B]`` bool: True where step t is within row b's length."""
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


# ---------------------------------------------------------------------- parameters of a model
class Params:
    """One ``params``/``grads`` dict over named layers (keys ``"name.param"``), so a whole model
    goes to the optimizer, the clipping and ``zero_grad`` at once. The arrays are the layers' own
    (shared, not copied)."""

    def __init__(self, **modules: Module) -> None:
        self.modules = modules
        self.params = {f"{m}.{k}": v for m, mod in modules.items() for k, v in mod.params.items()}
        self.grads = {f"{m}.{k}": v for m, mod in modules.items() for k, v in mod.grads.items()}

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode: bool = True) -> None:
        for mod in self.modules.values():
            mod.train(mode)

    @property
    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))


# ---------------------------------------------------------------------- training loop
def fit(params: Params, loss_and_grads: Callable[[int], float], steps: int, *, lr: float,
        clip: float, time_budget: float = 0.0, lr_final: float = 0.1, progress: str = "auto",
        stream=None, log_every: int = 0, log: Optional[Callable[[str], None]] = None) -> Dict:
    """Train: for each step ``loss_and_grads(step)`` runs forward and backward on a batch of its
    choosing (gradients zeroed before), then clipping of the gradient norm to ``clip`` (0: off)
    and an Adam step. The learning rate decays from ``lr`` to ``lr_final * lr`` along a cosine
    over the run (as the char-LM's). Stops after ``steps`` steps or ``time_budget`` seconds (0:
    no limit), whichever comes first; Ctrl-C stops early. Returns ``{"losses", "steps",
    "seconds", "steps_per_s", "interrupted"}``; raises ExampleError if the loss is not
    finite."""
    stream = stream or sys.stdout
    opt = Adam(params.params, lr=lr)
    bar = _make_progress(steps, "steps", progress, stream)
    say = log or bar.write
    losses: List[float] = []
    start = time.perf_counter()
    interrupted = False
    params.train(True)
    try:
        with single_blas_thread():  # the kernels own the threads; NumPy's GEMMs stay on one
            for step in range(steps):
                elapsed = time.perf_counter() - start
                if time_budget and elapsed >= time_budget:
                    say(f"time budget of {time_budget:g} s reached after {step} steps")
                    break
                # the fraction of the run done: of the steps, or of the time if that runs out first
                frac = max(step / steps, elapsed / time_budget if time_budget else 0.0)
                opt.lr = lr * (lr_final + (1 - lr_final) * 0.5 * (1 + math.cos(math.pi * frac)))
                params.zero_grad()
                loss = float(loss_and_grads(step))
                if not math.isfinite(loss):
                    raise ExampleError(f"training diverged at step {step} (loss {loss}); "
                                       "try a lower --lr")
                if clip > 0:
                    clip_grad_norm(params.grads, clip)
                opt.step(params.grads)
                losses.append(loss)
                bar.update(1)
                recent = float(np.mean(losses[-20:]))
                bar.set_postfix_str(f"loss {recent:.3f}", refresh=False)
                if log_every and (step + 1) % log_every == 0:
                    say(f"step {step + 1:5d} {time.perf_counter() - start:6.1f}s | "
                        f"train loss (mean of the last 20) {recent:.4f}")
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping training, evaluating what was learned so far")
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return {"losses": losses, "steps": len(losses), "seconds": seconds,
            "steps_per_s": len(losses) / seconds if seconds > 0 else 0.0,
            "interrupted": interrupted}


# ---------------------------------------------------------------------- data always there
def stdlib_sources(package: Optional[str] = None, root: Optional[str] = None
                   ) -> List[Tuple[str, str]]:
    """``[(file name, source text), ...]`` of the standard library's ``*.py`` files: the top
    level (``package=None``) or every file under ``package`` (a subdirectory such as
    ``"email"``), in sorted order, skipping what the char-LM's ``read_source`` skips (files too
    large, not UTF-8, or blank). An absent package gives an empty list."""
    root = root or sysconfig.get_paths()["stdlib"]
    top = os.path.join(root, package) if package else root
    if not os.path.isdir(top):
        return []
    paths = []
    if package:
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            paths += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    else:
        paths = [os.path.join(top, f) for f in os.listdir(top) if f.endswith(".py")]
    out = []
    for path in sorted(paths):
        text = read_source(path)
        if text is not None:
            out.append((os.path.relpath(path, root), text))
    return out


# ---------------------------------------------------------------------- command line and output
def base_parser(prog: str, description: str, *, steps: int, batch: int, lr: float,
                hidden: int, time_budget: float = 150.0) -> argparse.ArgumentParser:
    """The options every example has: training budget, optimisation, seed, output."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=_Formatter)
    opt = parser.add_argument_group("training")
    opt.add_argument("--steps", type=_positive_int, default=steps, help="training steps")
    opt.add_argument("--time-budget", type=_float(0.0, True), default=time_budget,
                     metavar="SECONDS", help="stop training after this long even if --steps are "
                     "not done (0: no limit)")
    opt.add_argument("--batch", type=_positive_int, default=batch, help="sequences per step")
    opt.add_argument("--hidden", type=_positive_int, default=hidden,
                     help="hidden units per direction")
    opt.add_argument("--lr", type=_float(0.0, False), default=lr,
                     help="Adam learning rate (cosine decay to a tenth over the run)")
    opt.add_argument("--clip", type=_float(0.0, True), default=1.0,
                     help="clip the gradient norm to this (0: no clipping)")
    opt.add_argument("--seed", type=int, default=0, help="data, initialisation and sampling seed")
    opt.add_argument("--threads", type=_positive_int, default=1,
                     help="kernel threads (these steps are small; one thread is usually faster)")
    out = parser.add_argument_group("output")
    out.add_argument("--summary-json", metavar="PATH", help="write the results as JSON here")
    out.add_argument("--progress", choices=("auto", "plain", "off"), default="auto",
                     help="progress display: tqdm bar when installed, plain lines, or none")
    return parser


def report(metric: str, value: float, baseline: float, baseline_name: str,
           higher_is_better: bool = True) -> str:
    """Print and return the result beside the baseline, e.g. ``accuracy 0.81 vs 0.20``."""
    better = value > baseline if higher_is_better else value < baseline
    line = (f"{metric}: {value:.4f}   baseline ({baseline_name}): {baseline:.4f}   -> "
            f"{'beats' if better else 'does NOT beat'} the baseline")
    print(line, flush=True)
    return line


def write_summary(path: Optional[str], parser: Optional[argparse.ArgumentParser], metric: str,
                  value: float, baseline: float, higher_is_better: bool, **extra) -> Dict:
    """The summary dict (``metric``, ``value``, ``baseline``, ``higher_is_better`` and
    ``extra``); written as JSON to ``path`` when given (an unwritable path ends the program
    with a message, after training, so the printed results stand)."""
    summary = {"metric": metric, "value": float(value), "baseline": float(baseline),
               "higher_is_better": bool(higher_is_better), **extra}
    if path:
        try:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=2, ensure_ascii=False)
                handle.write("\n")
        except OSError as exc:
            if parser is None:
                raise ExampleError(f"cannot write {path}: {exc.strerror or exc}") from None
            parser.exit(2, f"{parser.prog}: error: cannot write {path}: "
                           f"{exc.strerror or exc}\n")
        print(f"summary written to {path}")
    return summary


def run_main(parser: argparse.ArgumentParser,
             body: Callable[[argparse.Namespace, argparse.ArgumentParser], Dict],
             argv: Optional[Sequence[str]]) -> Dict:
    """Parse ``argv`` and run ``body(args, parser)``; an ExampleError ends with its message and
    status 2, without a traceback."""
    args = parser.parse_args(argv)
    path = getattr(args, "summary_json", None)
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        parser.error(f"--summary-json: the folder of {path} does not exist")
    try:
        return body(args, parser)
    except ExampleError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
