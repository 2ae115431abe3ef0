"""``pyrnn-charlm``: train a character-level language model, sample from it, see its cells.

    pyrnn-charlm [train] [--text FILE] [options]      train (default: on the stdlib's source)
    pyrnn-charlm sample [--checkpoint F] [--temperature T] [--length N] [--prime TEXT] [--seed S]
    pyrnn-charlm viz --text FILE [--checkpoint F] [--out page.html] [--cells auto|3,17,42]
    mpiexec -n N pyrnn-charlm [train] ...             data parallel over N ranks (extra 'mpi')

Every recurrence runs in pyrnn's fused kernels; errors in the arguments or the files end with a
message and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import List, Optional

from .data import DEFAULT_CORPUS_CHARS, MAX_FILE_BYTES, CharLMError, read_text, stdlib_corpus

__all__ = ["main", "build_parsers"]

PROG = "pyrnn-charlm"
COMMANDS = ("train", "sample", "viz")
DEFAULT_CHECKPOINT = "charlm.npz"


# ---------------------------------------------------------------------- argument types
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _float(low: float, inclusive: bool, high: float = math.inf):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = (value >= low if inclusive else value > low) and value < high
        if not ok or math.isnan(value):
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            if high < math.inf:
                bound += f" and < {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    return parse


def _threads(text: str):
    if text == "auto":
        return "auto"
    return _positive_int(text)


# ---------------------------------------------------------------------- parsers
class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None and False."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.help is None:
            return action.help
        return super()._get_help_string(action)


def build_parsers():
    """The three sub-parsers (train, sample, viz) keyed by command name."""
    fmt = _Formatter
    train = argparse.ArgumentParser(
        prog=PROG, formatter_class=fmt,
        usage=f"{PROG} [train] [options]\n       {PROG} sample [options]\n"
              f"       {PROG} viz --text FILE [options]",
        description="Train a character-level language model (embedding -> stacked LSTM/GRU/RNN "
                    "-> linear -> softmax) with truncated BPTT through pyrnn's fused kernels, "
                    "then print the validation loss against the unigram baseline and samples. "
                    "Without --text it trains on the Python standard library's own source code "
                    f"(the top-level *.py files of sysconfig's stdlib directory in sorted order, "
                    f"files over {MAX_FILE_BYTES // 1000} kB skipped, the first "
                    f"{DEFAULT_CORPUS_CHARS:,} characters), so it works offline.",
        epilog=f"other commands: '{PROG} sample -h' (generate text from a checkpoint), "
               f"'{PROG} viz -h' (HTML page of cell activations). The default run takes about "
               "4 minutes on 2 cores.")
    data = train.add_argument_group("data")
    data.add_argument("--text", metavar="FILE", help="train on this UTF-8 text file instead of "
                      "the stdlib source")
    data.add_argument("--max-chars", type=_positive_int, default=None, metavar="N",
                      help=f"use at most N characters of the text (default: the whole --text "
                           f"file, {DEFAULT_CORPUS_CHARS:,} of the stdlib corpus)")
    data.add_argument("--val-fraction", type=_float(0.0, False, 1.0), default=0.05,
                      help="held-out fraction at the end of the text, for validation")
    model = train.add_argument_group("model")
    model.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm",
                       help="recurrent cell")
    model.add_argument("--layers", type=_positive_int, default=2, help="stacked layers")
    model.add_argument("--hidden", type=_positive_int, default=256, help="hidden units per layer")
    model.add_argument("--embed", type=_positive_int, default=64, help="embedding size")
    opt = train.add_argument_group("optimisation")
    opt.add_argument("--batch", type=_positive_int, default=32,
                     help="parallel streams over the text")
    opt.add_argument("--bptt", type=_positive_int, default=64,
                     help="steps per chunk of truncated BPTT (state carried, gradient not)")
    opt.add_argument("--lr", type=_float(0.0, False), default=1e-2,
                     help="Adam learning rate (cosine decay to a tenth over the run)")
    opt.add_argument("--clip", type=_float(0.0, True), default=1.0,
                     help="clip the gradient norm to this (0: no clipping)")
    opt.add_argument("--time-budget", type=_float(0.0, True), default=200.0, metavar="SECONDS",
                     help="training time, interim validation included (0: no limit, give --steps)")
    opt.add_argument("--steps", type=_positive_int, default=None,
                     help="stop after this many steps (whichever comes first with the budget)")
    opt.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed")
    opt.add_argument("--threads", type=_threads, default="auto",
                     help="kernel threads; 'auto' times 1 and all cores on real steps and keeps "
                          "the faster")
    out = train.add_argument_group("output")
    out.add_argument("--eval-every", type=_float(0.0, False), default=25.0, metavar="SECONDS",
                     help="print train/validation loss, bits per char, perplexity, chars/s")
    out.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, metavar="FILE",
                     help="where to save the trained model (.npz)")
    out.add_argument("--no-save", action="store_true", help="do not save a checkpoint")
    out.add_argument("--summary-json", metavar="PATH", help="write the results as JSON here")
    out.add_argument("--plot", metavar="PNG", help="save the loss curves (needs matplotlib)")
    out.add_argument("--sample-length", type=_nonnegative_int, default=300, metavar="N",
                     help="characters per final sample (temperatures 0.5 and 1.0)")
    out.add_argument("--progress", choices=("auto", "plain", "off"), default="auto",
                     help="progress display: tqdm bar when installed, plain lines, or none")

    sample = argparse.ArgumentParser(
        prog=f"{PROG} sample", formatter_class=fmt,
        description="Generate text from a trained checkpoint: one fused-kernel call per layer "
                    "and character (T=1, B=1, inference mode, state carried).")
    sample.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, metavar="FILE")
    sample.add_argument("--temperature", type=_float(0.0, False), default=0.8,
                        help="softmax temperature (> 0; lower is more conservative)")
    sample.add_argument("--length", type=_nonnegative_int, default=500,
                        help="characters to generate")
    sample.add_argument("--prime", default=None, metavar="TEXT",
                        help="text to start from (default: a newline, or the model's first "
                             "character when it has no newline)")
    sample.add_argument("--seed", type=int, default=None, help="random seed, for repeatable text")

    viz = argparse.ArgumentParser(
        prog=f"{PROG} viz", formatter_class=fmt,
        description="Write a self-contained HTML page showing TEXT coloured by chosen cells: "
                    "tanh(c) of the LSTM cell state (h for GRU/RNN), one <span> per character.")
    viz.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, metavar="FILE")
    viz.add_argument("--text", required=True, metavar="FILE", help="UTF-8 text to run the model on")
    viz.add_argument("--out", default="charlm_viz.html", metavar="PAGE.html")
    viz.add_argument("--cells", default="auto",
                     help="'auto' (the cells most correlated with: inside quotes, bracket depth, "
                          "position in line) or cell numbers like 3,17,42")
    viz.add_argument("--layer", type=int, default=-1, help="layer to show (0-based; -1: the last)")
    viz.add_argument("--max-chars", type=_positive_int, default=3000, metavar="N",
                     help="show at most the first N characters of the text")
    return {"train": train, "sample": sample, "viz": viz}


# ---------------------------------------------------------------------- commands
def _fail(parser, message: str):
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def _mpi_comm():
    """COMM_WORLD when launched by mpiexec with more than one rank, else None (a plain run
    never imports mpi4py)."""
    from .. import distributed as dist

    if dist.launched_size() <= 1:
        return None
    try:
        comm = dist.mpi().COMM_WORLD
    except ImportError as exc:
        raise CharLMError(f"launched under mpiexec, but {exc}") from None
    return comm if comm.Get_size() > 1 else None


def _cmd_train(args, parser) -> int:
    from .training import TrainConfig, bits, perplexity, train
    from .model import save_checkpoint
    from .sample import Generator

    wall0 = time.perf_counter()
    comm = _mpi_comm()
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _fail(parser, "--plot needs matplotlib, which is not installed "
                          "(pip install matplotlib, or pip install 'pyrnn-kernels[demo]')")
    if args.text:
        text = read_text(args.text, args.max_chars)
        source, prime = args.text, None
    else:
        text, files = stdlib_corpus(args.max_chars or DEFAULT_CORPUS_CHARS)
        source = (f"Python {sys.version_info.major}.{sys.version_info.minor} standard library "
                  f"source ({len(files)} files, {files[0]} .. {files[-1]})")
        prime = "def "
    cfg = TrainConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed,
                      batch=args.batch, bptt=args.bptt, lr=args.lr, clip=args.clip,
                      time_budget=args.time_budget, max_steps=args.steps,
                      val_fraction=args.val_fraction, eval_every=args.eval_every,
                      seed=args.seed, threads=args.threads)
    result = train(text, cfg, progress=args.progress, source=source, comm=comm)
    if comm is not None and comm.Get_rank() != 0:
        return 0  # rank 0 reports, saves and samples
    s = result.summary
    model, vocab = result.model, result.vocab
    val, uni = s["val_loss"], s["unigram_loss"]
    print()
    print(f"validation loss  {val:.4f} nats/char = {bits(val):.3f} bits/char, "
          f"perplexity {perplexity(val):.2f}")
    print(f"unigram baseline {uni:.4f} nats/char = {bits(uni):.3f} bits/char, "
          f"perplexity {perplexity(uni):.2f}  (character frequencies alone)")
    verdict = "below" if val < uni else "NOT below"
    print(f"-> {verdict} the baseline by {uni - val:.3f} nats/char "
          f"({100 * (1 - val / uni):.0f}% fewer bits per char)")
    print(f"trained {s['train_time_s']:.0f} s: {s['steps']} steps, {s['chars_seen']:,} chars "
          f"({s['epochs']:.2f} epochs) at {s['chars_per_s']:,.0f} chars/s with "
          f"{s['threads']} kernel thread(s)" +
          (f" on each of {s['ranks']} ranks" if s["ranks"] > 1 else ""))
    if not args.no_save:
        path = save_checkpoint(args.checkpoint, model, vocab,
                               {"train": {k: v for k, v in s.items() if k != "config"},
                                "train_config": s["config"]})
        print(f"checkpoint saved to {path}  (try: {PROG} sample --checkpoint {path})")
        s["checkpoint"] = path
    if args.plot:
        label = os.path.basename(args.text) if args.text else "Python stdlib source"
        _plot(args.plot, result.history, uni,
              f"{label}: {args.layers} x {args.cell.upper()} {args.hidden}, "
              f"{s['train_time_s']:.0f} s")
        print(f"loss curves saved to {args.plot}")
    if prime is None:
        prime = "\n" if "\n" in vocab else text[0]
    samples = {}
    gen = Generator(model, vocab)
    for temperature in (0.5, 1.0):
        out = gen.generate(args.sample_length, temperature, prime, seed=args.seed)
        samples[str(temperature)] = prime + out
        print(f"\n--- sample, temperature {temperature} ---")
        print(prime + out)
    s["samples"] = samples
    s["wall_time_s"] = round(time.perf_counter() - wall0, 3)
    if args.summary_json:
        try:
            with open(args.summary_json, "w", encoding="utf-8") as handle:
                json.dump(s, handle, indent=2, ensure_ascii=False)
                handle.write("\n")
        except OSError as exc:
            _fail(parser, f"cannot write {args.summary_json}: {exc.strerror or exc}")
        print(f"\nsummary written to {args.summary_json}")
    print(f"\ntotal wall time {s['wall_time_s']:.0f} s")
    return 0


def _plot(path, history, unigram, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    interim = [h for h in history if not h.get("final")]
    final = [h for h in history if h.get("final")]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot([h["chars"] / 1e6 for h in history], [h["train_loss"] for h in history], "o-",
            label="train (mean since the last point)")
    ax.plot([h["chars"] / 1e6 for h in interim], [h["val_loss"] for h in interim], "s-",
            label="validation (sampled)")
    if final:
        ax.plot([h["chars"] / 1e6 for h in final], [h["val_loss"] for h in final], "D",
                color="C3", ms=8, label=f"validation, final (all): {final[-1]['val_loss']:.3f}")
    ax.axhline(unigram, color="grey", ls="--", label=f"unigram baseline {unigram:.2f}")
    ax.set_xlabel("characters trained on (millions)")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title(f"pyrnn-charlm: {title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise CharLMError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _cmd_sample(args, parser) -> int:
    from .model import load_checkpoint
    from .sample import Generator

    model, vocab, _ = load_checkpoint(args.checkpoint)
    prime = args.prime
    if prime is None:
        prime = "\n" if "\n" in vocab else vocab.decode([0])
    if prime == "":
        _fail(parser, "--prime must not be empty")
    text = Generator(model, vocab).generate(args.length, args.temperature, prime, args.seed)
    sys.stdout.write(prime + text + ("" if text.endswith("\n") else "\n"))
    return 0


def _cmd_viz(args, parser) -> int:
    from .model import load_checkpoint
    from .viz import make_page, parse_cells

    model, vocab, _ = load_checkpoint(args.checkpoint)
    parse_cells(args.cells, model.hidden)  # bad cells fail before any work
    text = read_text(args.text, args.max_chars)
    page, chosen = make_page(model, vocab, text, args.cells, args.layer, source=args.text)
    try:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(page)
    except OSError as exc:
        _fail(parser, f"cannot write {args.out}: {exc.strerror or exc}")
    print(f"wrote {args.out}: {len(text):,} characters, layer {args.layer % model.layers}")
    for cell, feature, r in chosen:
        what = f"{feature}, r = {r:+.3f}" if feature else "(no feature)"
        print(f"  cell {cell:4d}: {what}")
    return 0


def _printable_stdout() -> None:
    """Non-ASCII text (a model of Russian verse) printed to a stream whose encoding cannot hold
    it (a pipe under a legacy locale, PYTHONIOENCODING=ascii) comes out as escapes such as
    \\u043c instead of ending the run with a UnicodeEncodeError."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", "strict") == "strict":
        reconfigure(errors="backslashreplace")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``pyrnn-charlm`` and ``python -m pyrnn.charlm``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _printable_stdout()
    command = "train"
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
    parser = build_parsers()[command]
    args = parser.parse_args(argv)
    handler = {"train": _cmd_train, "sample": _cmd_sample, "viz": _cmd_viz}[command]
    try:
        return handler(args, parser)
    except CharLMError as exc:
        _fail(parser, str(exc))
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted\n")
    except BrokenPipeError:  # e.g. piped into head
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    return 0
