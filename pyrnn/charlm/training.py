"""Training: truncated BPTT over B parallel streams of the text, Adam, gradient clipping by norm,
a cosine learning-rate decay over the budget (wall time and/or steps), periodic validation, a
progress bar (tqdm when installed, plain lines otherwise) and, with ``threads="auto"``, a choice
of the kernels' thread count by timing real training steps (on a shared machine one thread can
beat two by far).

Data parallel over MPI (``comm``, see :mod:`pyrnn.distributed`): every rank holds the model and
trains on its own slice of the streams; the gradients (weighted by each rank's share of the
streams, so the result is the whole batch's mean) are summed in one message before clipping, so
the clipping sees the global norm and every rank takes the same optimizer step. Rank 0 decides
when to stop and to validate; validation is split over the ranks as well."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from .. import _core
from .. import nn
from ..clip import clip_grad_norm
from ..optim import Adam
from ._blas import single_blas_thread
from .data import CharLMError, Vocab, chunks, split_train_val, streams, unigram_loss
from .model import CharLM

__all__ = ["TrainConfig", "TrainResult", "train", "train_step", "evaluate", "bits", "perplexity"]

LN2 = math.log(2.0)


def bits(nats: float) -> float:
    """Nats per character -> bits per character."""
    return nats / LN2


def perplexity(nats: float) -> float:
    return math.exp(min(nats, 700.0))


@dataclass
class TrainConfig:
    """Everything that defines a training run (also stored in the checkpoint and the summary)."""
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    batch: int = 32
    bptt: int = 64
    lr: float = 1e-2
    lr_final: float = 0.1      # final learning rate as a fraction of lr (cosine decay)
    clip: float = 1.0          # max gradient norm; 0 disables clipping
    time_budget: float = 200.0  # seconds of training (incl. interim validation); 0 = no limit
    max_steps: Optional[int] = None
    val_fraction: float = 0.05
    eval_every: float = 25.0   # seconds between interim validations
    eval_chars: int = 20_000   # chars of interim validation, spread over the split (final: all)
    seed: int = 0
    threads: Union[str, int] = "auto"

    def check(self) -> "TrainConfig":
        if self.cell not in ("lstm", "gru", "rnn"):
            raise CharLMError(f"--cell must be lstm, gru or rnn, got {self.cell!r}")
        for name in ("layers", "hidden", "embed", "batch", "bptt"):
            if int(getattr(self, name)) < 1:
                raise CharLMError(f"--{name} must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise CharLMError(f"--lr must be > 0, got {self.lr}")
        if self.clip < 0:
            raise CharLMError(f"--clip must be >= 0, got {self.clip}")
        if self.time_budget < 0:
            raise CharLMError(f"--time-budget must be >= 0, got {self.time_budget}")
        if self.max_steps is not None and self.max_steps < 1:
            raise CharLMError(f"--steps must be >= 1, got {self.max_steps}")
        if not self.time_budget and not self.max_steps:
            raise CharLMError("give a --time-budget > 0 or --steps, or training never ends")
        if self.threads != "auto" and int(self.threads) < 1:
            raise CharLMError(f"--threads must be 'auto' or >= 1, got {self.threads}")
        return self


@dataclass
class TrainResult:
    model: CharLM
    vocab: Vocab
    summary: Dict
    history: List[Dict] = field(default_factory=list)


# ---------------------------------------------------------------------- progress display
class _PlainProgress:
    """Fallback when tqdm is missing: a line now and then, and the log lines."""

    def __init__(self, total, unit, stream):
        self.total, self.unit, self.stream = total, unit, stream
        self.n, self.postfix, self._last = 0.0, "", time.perf_counter()

    def update(self, delta):
        self.n += delta
        now = time.perf_counter()
        if now - self._last >= 10.0:
            self._last = now
            pct = 100.0 * self.n / self.total if self.total else 0.0
            print(f"  [{pct:5.1f}%] {self.n:.0f}/{self.total:.0f} {self.unit} {self.postfix}",
                  file=self.stream, flush=True)

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def write(self, text):
        print(text, file=self.stream, flush=True)

    def close(self):
        pass


class _SilentProgress(_PlainProgress):
    def update(self, delta):
        self.n += delta

    def write(self, text):
        pass


def _make_progress(total, unit, mode, stream):
    if mode == "off":
        return _SilentProgress(total, unit, stream)
    isatty = getattr(stream, "isatty", lambda: False)()
    if mode == "auto" and isatty:  # in a log file or a pipe, plain lines read better
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            fmt = "{l_bar}{bar}| {n:.0f}/{total:.0f} " + unit + "{postfix}"
            return tqdm(total=total, unit=unit, file=stream, bar_format=fmt, dynamic_ncols=True,
                        leave=True, mininterval=0.5)
    return _PlainProgress(total, unit, stream)


# ---------------------------------------------------------------------- thread choice
class _ThreadTuner:
    """Picks the kernels' thread count from the measured seconds per character of real training
    steps. On a shared machine the faster setting changes with the load, so the other setting is
    probed now and then: two steps (the first only warms up), every 20 steps at first, and half
    as often each time the probe loses (at most every 640 steps)."""

    def __init__(self, threads, top=None):
        if threads == "auto":
            top = max(1, int(top or _core.max_threads()))
            self.options = sorted({1, top})
        else:
            self.options = [int(threads)]
        self.best = self.options[0]
        self.cost: Dict[int, float] = {}
        self.step = 0
        self.interval = 20
        self.next_probe = 3      # step 1 warms up, step 2 measures the first setting
        self._probe_left = 0

    def next(self) -> int:
        self.step += 1
        if len(self.options) == 1:
            return self.best
        if self._probe_left == 0 and self.step >= self.next_probe:
            self._probe_left = 2
        if self._probe_left:
            return next(n for n in self.options if n != self.best)
        return self.best

    def record(self, n: int, seconds_per_char: float) -> None:
        if self.step == 1 or self._probe_left == 2:  # warm-up steps are not measured
            self._probe_left = max(self._probe_left - 1, 0)
            return
        old = self.cost.get(n)
        self.cost[n] = seconds_per_char if old is None else 0.7 * old + 0.3 * seconds_per_char
        if self._probe_left:             # the measured probe step: decide
            self._probe_left = 0
            if self.cost[n] < self.cost.get(self.best, float("inf")):
                self.best, self.interval = n, 20
            else:
                self.interval = min(2 * self.interval, 640)
            self.next_probe = self.step + self.interval


# ---------------------------------------------------------------------- evaluation
def _rank_columns(n: int, comm) -> np.ndarray:
    """This rank's streams: the columns of an ``[steps, n]`` stream matrix, in contiguous
    near-equal blocks over the ranks."""
    return np.array_split(np.arange(n), comm.Get_size())[comm.Get_rank()]


def evaluate(model: CharLM, matrix: np.ndarray, chunk: int = 256, comm=None) -> float:
    """Mean cross-entropy (nats/char) over all next-character predictions in ``matrix [n, B]``
    (B parallel streams, state carried across chunks), in inference mode. With an MPI ``comm``
    every rank evaluates its share of the streams and all get the mean over all of them."""
    if comm is not None and comm.Get_size() > 1:
        cols = _rank_columns(matrix.shape[1], comm)
        sums = np.array(_loss_sum(model, matrix[:, cols], chunk) if cols.size else (0.0, 0.0))
        from ..distributed import mpi
        comm.Allreduce(mpi().IN_PLACE, sums)
        return float(sums[0] / max(sums[1], 1))
    total, count = _loss_sum(model, matrix, chunk)
    return total / max(count, 1)


def _loss_sum(model: CharLM, matrix: np.ndarray, chunk: int):
    """(summed cross-entropy, number of predictions) over ``matrix``."""
    was_training = model.rnn.training
    model.eval()
    total, count, state = 0.0, 0, None
    try:
        with single_blas_thread():
            for x, y in chunks(matrix, chunk):
                logits, state = model.forward(x, state)
                logp = nn.log_softmax(logits)
                total -= float(np.take_along_axis(logp, y[..., None], axis=-1)
                               .sum(dtype=np.float64))
                count += y.size
    finally:
        model.train(was_training)
    return total, count


# ---------------------------------------------------------------------- training
def train_step(model: CharLM, opt: Adam, x: np.ndarray, y: np.ndarray, state=None,
               clip: float = 1.0, comm=None, share: float = 1.0):
    """One step of truncated BPTT: forward ``x [T, B]`` from the carried ``state``, softmax
    cross-entropy against ``y [T, B]``, backward (not into the state), clipping of the gradient
    norm to ``clip`` (0: off) and an optimizer step. Returns ``(loss, final state)``; the
    caller carries the state to the next chunk (and runs it under ``single_blas_thread()``).

    Data parallel: ``x``/``y`` are this rank's streams, ``share`` their fraction of all ranks'
    streams; gradients and loss are summed over ``comm`` weighted by ``share`` (the whole
    batch's mean), then clipped by the global norm. The loss returned is the whole batch's."""
    model.zero_grad()
    logits, state = model.forward(x, state)
    loss, dlogits = nn.softmax_cross_entropy(logits, y, num_threads=model.num_threads)
    model.backward(dlogits)
    if comm is not None:
        from ..distributed import allreduce_grads
        fused = dict(model.grads)
        for grad in fused.values():
            grad *= grad.dtype.type(share)
        # the loss rides in the gradients' buffer: one message per step
        fused["(loss)"] = np.array([loss * share], dtype=model.dtype)
        allreduce_grads(fused, average=False, comm=comm)
        loss = float(fused["(loss)"][0])
    if clip > 0:
        clip_grad_norm(model.grads, clip, num_threads=model.num_threads)
    opt.num_threads = model.num_threads  # the update on the model's threads, as its layers
    opt.step(model.grads)
    return loss, state


def train(text: str, config: Optional[TrainConfig] = None, *, progress: str = "auto",
          log: Optional[Callable[[str], None]] = None, stream=None,
          source: str = "text", comm=None) -> TrainResult:
    """Train a :class:`CharLM` on ``text``; returns the model, vocabulary, summary and history.

    ``progress`` is ``"auto"`` (a tqdm bar when tqdm is installed and the output is a terminal,
    else plain lines), ``"plain"`` or ``"off"``;
    ``log`` receives the interval reports (default: printed through the progress display).
    Stops at ``config.time_budget`` seconds or ``config.max_steps`` steps, whichever comes
    first; Ctrl-C stops early and still returns the model.

    ``comm`` (an mpi4py communicator of more than one rank): data-parallel training, every rank
    calling ``train`` with the same text and config; all ranks return the same model, only
    rank 0 reports (the others run silently).
    """
    cfg = (config or TrainConfig()).check()
    if comm is not None and comm.Get_size() == 1:
        comm = None
    if comm is not None and comm.Get_rank() != 0:
        progress, log = "off", (lambda line: None)
    with single_blas_thread():
        return _train(text, cfg, progress, log, stream or sys.stdout, source, comm)


def _train(text, cfg, progress, log, stream, source, comm):
    if not text:
        raise CharLMError("the training text is empty")
    vocab = Vocab.from_text(text)
    data = vocab.encode(text)
    train_data, val_data = split_train_val(data, cfg.val_fraction)
    train_mat = streams(train_data, cfg.batch)
    streams_total = train_mat.shape[1]
    share, top_threads = 1.0, None
    if comm is not None:
        from .. import distributed as dist
        if streams_total < comm.Get_size():
            raise CharLMError(f"{streams_total} streams cannot be split over {comm.Get_size()} "
                              "ranks: give a --batch of at least the number of ranks")
        train_mat = np.ascontiguousarray(train_mat[:, _rank_columns(streams_total, comm)])
        share = train_mat.shape[1] / streams_total
        top_threads = dist.threads_per_rank(comm)
    val_mat = streams(val_data, 64)
    # interim validation: the first steps of all 64 validation streams, so it samples the
    # whole split evenly (the final validation uses all of it)
    sub_mat = val_mat[: max(2, -(-cfg.eval_chars // val_mat.shape[1]) + 1)]
    unigram = unigram_loss(train_data, val_mat[1:], len(vocab))

    model = CharLM(len(vocab), cfg.hidden, cfg.layers, cfg.embed, cfg.cell, seed=cfg.seed)
    if comm is not None:
        dist.broadcast_params(model.params, comm=comm)  # the same start whatever the seeding
    opt = Adam(model.params, lr=cfg.lr)
    threads = cfg.threads
    if top_threads is not None and threads != "auto" and int(threads) > top_threads:
        threads = top_threads  # more would oversubscribe the node's cores
    tuner = _ThreadTuner(threads, top_threads)

    by_time = cfg.time_budget > 0
    total = cfg.time_budget if by_time else cfg.max_steps
    bar = _make_progress(total, "s" if by_time else "steps", progress, stream)
    say = log or bar.write
    chars_per_epoch = (train_mat.shape[0] - 1) * streams_total
    say(f"corpus: {source}: {len(data):,} chars, vocabulary {len(vocab)}, "
        f"train {len(train_data):,} / validation {len(val_data):,} chars")
    say(f"model: embedding {cfg.embed} -> {cfg.layers} x {cfg.cell.upper()} {cfg.hidden} -> "
        f"linear {len(vocab)} ({model.num_params:,} parameters); batch {streams_total} "
        f"streams x bptt {cfg.bptt}, Adam lr {cfg.lr:g}, clip {cfg.clip:g}")
    if comm is not None:
        say(f"data parallel: {comm.Get_size()} MPI ranks, {train_mat.shape[1]} streams on "
            f"rank 0; kernel threads per rank: {'/'.join(map(str, tuner.options))}" +
            (f" (not {cfg.threads}: the node's cores / its ranks is {top_threads})"
             if threads != cfg.threads else ""))
    say(f"unigram baseline (character frequencies): {unigram:.4f} nats/char = "
        f"{bits(unigram):.3f} bits/char, perplexity {perplexity(unigram):.2f}")
    budget = (f"{cfg.time_budget:g} s" if by_time else "") + \
        (" or " if by_time and cfg.max_steps else "") + \
        (f"{cfg.max_steps} steps" if cfg.max_steps else "")
    say(f"training for {budget} ...")

    history: List[Dict] = []
    start = time.perf_counter()
    compute = 0.0           # seconds spent in training steps (not validation)
    chars_seen, step, epoch = 0, 0, 0
    interval_loss, interval_n = 0.0, 0
    last_eval, last_tick = start, start
    last_train = math.nan
    interrupted = False

    eval_cost = 0.0

    def report():
        nonlocal interval_loss, interval_n, last_train, eval_cost
        tl = interval_loss / interval_n if interval_n else last_train
        last_train = tl
        interval_loss, interval_n = 0.0, 0
        model.num_threads = tuner.best
        t0 = time.perf_counter()
        vl = evaluate(model, sub_mat, comm=comm)
        eval_cost = time.perf_counter() - t0
        cps = chars_seen / compute if compute else 0.0
        history.append({"step": step, "time_s": round(time.perf_counter() - start, 3),
                        "chars": chars_seen, "train_loss": tl, "val_loss": vl})
        say(f"step {step:5d} {time.perf_counter() - start:6.0f}s | train {tl:.3f} | "
            f"val {vl:.3f} nats = {bits(vl):.3f} bpc, ppl {perplexity(vl):6.2f} | "
            f"{cps:,.0f} chars/s")

    try:
        done = False
        while not done:
            state = None
            for x, y in chunks(train_mat, cfg.bptt):
                elapsed = time.perf_counter() - start
                frac = max(elapsed / cfg.time_budget if by_time else 0.0,
                           step / cfg.max_steps if cfg.max_steps else 0.0)
                if comm is not None:  # rank 0's clock decides for all
                    frac = comm.bcast(frac, root=0)
                if frac >= 1.0:
                    done = True
                    break
                opt.lr = cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 *
                                   (1 + math.cos(math.pi * frac)))
                threads = tuner.next()
                model.num_threads = threads
                t0 = time.perf_counter()
                loss, state = train_step(model, opt, x, y, state, cfg.clip, comm, share)
                dt = time.perf_counter() - t0
                if not math.isfinite(loss):
                    raise CharLMError(f"training diverged at step {step} (loss {loss}); "
                                      "try a lower --lr or a smaller --clip")
                tuner.record(threads, dt / y.size)
                compute += dt
                chars_seen += y.shape[0] * streams_total  # all ranks' characters
                step += 1
                interval_loss += loss
                interval_n += 1
                now = time.perf_counter()
                if by_time:
                    bar.update(min(now, start + cfg.time_budget) - last_tick)
                    last_tick = now
                else:
                    bar.update(1)
                bar.set_postfix_str(f"loss {loss:.3f}, {chars_seen / compute:,.0f} chars/s, "
                                    f"{tuner.best} thr", refresh=False)
                room = not by_time or now + eval_cost < start + cfg.time_budget
                due = now - last_eval >= cfg.eval_every and room
                if comm is not None:
                    due = comm.bcast(due, root=0)
                if due:
                    report()
                    last_eval = time.perf_counter()
            else:
                epoch += 1
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping training, evaluating what was learned so far")
    finally:
        bar.close()
    train_wall = time.perf_counter() - start
    if interval_n:
        last_train = interval_loss / interval_n
    model.num_threads = tuner.best
    t0 = time.perf_counter()
    val = evaluate(model, val_mat, comm=comm)
    eval_time = time.perf_counter() - t0
    history.append({"step": step, "time_s": round(train_wall, 3), "chars": chars_seen,
                    "train_loss": last_train, "val_loss": val, "final": True})
    summary = {
        "val_loss": val,
        "val_bits_per_char": bits(val),
        "val_perplexity": perplexity(val),
        "unigram_loss": unigram,
        "unigram_bits_per_char": bits(unigram),
        "unigram_perplexity": perplexity(unigram),
        "train_loss": last_train,
        "train_time_s": round(train_wall, 3),
        "train_compute_s": round(compute, 3),
        "final_eval_s": round(eval_time, 3),
        "chars_per_s": round(chars_seen / compute, 1) if compute else 0.0,
        "chars_seen": chars_seen,
        "steps": step,
        "epochs": round(chars_seen / max(chars_per_epoch, 1), 3),
        "threads": tuner.best,
        "ranks": 1 if comm is None else comm.Get_size(),
        "interrupted": interrupted,
        "config": asdict(cfg),
        "corpus": {"source": source, "chars": int(len(data)), "vocab_size": len(vocab),
                   "train_chars": int(len(train_data)), "val_chars": int(len(val_data))},
        "num_params": model.num_params,
    }
    return TrainResult(model, vocab, summary, history)

