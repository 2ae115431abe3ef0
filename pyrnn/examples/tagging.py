"""Many-to-many (aligned): tag every character of Python source with its token type.

The labels are real and need no download: Python's own :mod:`tokenize` reads the standard
library's source files and says which token each character belongs to. The tags are
``whitespace`` (spaces, newlines, indentation: everything outside a token), ``name``,
``keyword`` (:data:`keyword.kwlist`), ``operator``, ``string`` (f-string parts included),
``number`` and ``comment``. The files are split, not the windows: every fifth file is held out
for testing.

The model: a character embedding, a stacked (2-layer) bidirectional LSTM over windows of
variable length (``lengths``), and a linear softmax per character; the loss counts only the
valid steps. The baseline gives each character its most frequent tag in the training files
(``e`` -> name, ``#`` -> comment, ``"`` -> string ...); the network must use the context
(is this ``e`` in a comment, a string, a keyword?) to beat it. Per-tag accuracy is reported
for both.

Run ``python -m pyrnn.examples.tagging`` (under 3 minutes on 2 cores); ``main()`` returns the
summary dict.
"""
from __future__ import annotations

import io
import keyword
import tokenize
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pyrnn.layers import LSTM
from pyrnn.nn import Embedding, Linear, softmax_cross_entropy

from .common import (ExampleError, Params, Vocab, base_parser, fit, pad_batch, positive_int,
                     report, run_main, stdlib_sources, valid_mask, write_summary)

__all__ = ["TAGS", "char_tags", "load_tagged_files", "Tagger", "train_and_evaluate", "main"]

FILE_CHARS = 20_000  # at most this much of each file: more files for the same budget
TAGS = ("whitespace", "name", "keyword", "operator", "string", "number", "comment")
_TOKEN_TAG = {tokenize.OP: "operator", tokenize.STRING: "string", tokenize.NUMBER: "number",
              tokenize.COMMENT: "comment"}
for _name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END"):  # Python >= 3.12
    if hasattr(tokenize, _name):
        _TOKEN_TAG[getattr(tokenize, _name)] = "string"


def char_tags(source: str) -> np.ndarray:
    """``int8 [len(source)]``: the index in ``TAGS`` of each character's token type, as
    :func:`tokenize.generate_tokens` labels it. Raises ``tokenize.TokenError`` or
    ``SyntaxError`` for source that does not tokenize."""
    tags = np.zeros(len(source), dtype=np.int8)  # whitespace unless a token covers it
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    index = {t: i for i, t in enumerate(TAGS)}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME:
            tag = "keyword" if keyword.iskeyword(tok.string) else "name"
        else:
            tag = _TOKEN_TAG.get(tok.type)
        if tag is None:
            continue
        (r0, c0), (r1, c1) = tok.start, tok.end
        start = line_starts[r0 - 1] + c0
        stop = line_starts[r1 - 1] + c1 if r1 - 1 < len(line_starts) else len(source)
        tags[start:stop] = index[tag]
    return tags


def load_tagged_files(max_chars: int) -> Tuple[List[Tuple[str, np.ndarray]],
                                               List[Tuple[str, np.ndarray]]]:
    """``(train, test)`` lists of ``(source, tags)``: the top-level standard-library files in a
    fixed shuffled order (many modules, not the first few in the alphabet), each cut to its first
    ``FILE_CHARS`` characters after tokenizing, until about ``max_chars`` characters; every
    fifth file is held out. Files that do not tokenize are skipped."""
    files = stdlib_sources()
    tagged, total = [], 0
    for i in np.random.default_rng(0).permutation(len(files)):  # fixed: not the --seed
        if total >= max_chars:
            break
        source = files[i][1]
        try:
            tags = char_tags(source)
        except (tokenize.TokenError, SyntaxError):
            continue
        tagged.append((source[:FILE_CHARS], tags[:FILE_CHARS]))
        total += len(tagged[-1][0])
    train = [f for i, f in enumerate(tagged) if i % 5 != 4]
    test = [f for i, f in enumerate(tagged) if i % 5 == 4]
    if not train or not test:
        raise ExampleError(f"found {len(tagged)} tokenizable standard-library file(s) within "
                           f"{max_chars:,} characters, need at least 5 (raise --corpus-chars)")
    return train, test


def _windows(files, rng: np.random.Generator, n: int, min_len: int, max_len: int):
    """``n`` random windows ``(text, tags)`` of ``min_len..max_len`` characters."""
    sizes = np.array([max(len(s) - min_len + 1, 0) for s, _ in files], dtype=np.float64)
    if not sizes.any():
        raise ExampleError(f"no source file is at least {min_len} characters long "
                           "(lower --min-len/--max-len)")
    picks = rng.choice(len(files), size=n, p=sizes / sizes.sum())
    out = []
    for f in picks:
        source, tags = files[f]
        length = int(rng.integers(min_len, min(max_len, len(source)) + 1))
        start = int(rng.integers(0, len(source) - length + 1))
        out.append((source[start:start + length], tags[start:start + length]))
    return out


class Tagger:
    """Embedding -> stacked bidirectional LSTM (``lengths``) -> linear softmax per step."""

    def __init__(self, vocab_size: int, embed: int, hidden: int, layers: int, seed: int,
                 num_threads: int = 1, dtype=np.float32) -> None:
        self.embed = Embedding(vocab_size, embed, dtype=dtype, seed=seed)
        self.rnn = LSTM(embed, hidden, num_layers=layers, bidirectional=True, dtype=dtype,
                        seed=seed + 1, num_threads=num_threads)
        self.head = Linear(2 * hidden, len(TAGS), dtype=dtype, seed=seed + 2)
        self.params = Params(embed=self.embed, rnn=self.rnn, head=self.head)

    def predict(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        self.params.train(False)
        try:
            y, _ = self.rnn(self.embed(x), lengths=lengths)
            return np.argmax(self.head(y), axis=-1)
        finally:
            self.params.train(True)

    def loss_and_grads(self, x: np.ndarray, lengths: np.ndarray, tags: np.ndarray) -> float:
        y, _ = self.rnn(self.embed(x), lengths=lengths)
        loss, dlogits = softmax_cross_entropy(self.head(y), tags,
                                              mask=valid_mask(lengths, x.shape[0]))
        dy = self.head.backward(dlogits.astype(y.dtype))
        self.embed.backward(self.rnn.backward(dy))
        return loss


def _batch(vocab: Vocab, windows):
    x, lengths = pad_batch([vocab.encode(text) for text, _ in windows])
    tags, _ = pad_batch([t.astype(np.int64) for _, t in windows])
    return x, lengths, tags


def _per_tag(pred: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    return {tag: float(np.mean(pred[truth == k] == k)) if np.any(truth == k) else float("nan")
            for k, tag in enumerate(TAGS)}


def train_and_evaluate(args, parser=None) -> Dict:
    train_files, test_files = load_tagged_files(args.corpus_chars)
    rng = np.random.default_rng(args.seed)
    test_windows = _windows(test_files, np.random.default_rng(args.seed + 10_000),
                            args.test_windows, args.max_len, args.max_len)
    train_text = "".join(s for s, _ in train_files)
    train_tags = np.concatenate([t for _, t in train_files])
    vocab = Vocab(train_text, min_count=2)
    # the baseline: each character's most frequent tag in the training files
    table = np.zeros((len(vocab), len(TAGS)), dtype=np.int64)
    np.add.at(table, (vocab.encode(train_text), train_tags), 1)
    most_frequent = np.argmax(table, axis=1)
    most_frequent[table.sum(axis=1) == 0] = np.argmax(np.bincount(train_tags))
    model = Tagger(len(vocab), args.embed, args.hidden, args.layers, args.seed, args.threads)
    print(f"corpus: {len(train_files)} train / {len(test_files)} held-out standard-library "
          f"files, {len(train_text):,} training characters, vocabulary {len(vocab)}")
    print(f"model: embedding {args.embed} -> {args.layers} x bidirectional LSTM {args.hidden} "
          f"-> linear {len(TAGS)} ({model.params.num_params:,} parameters); windows of "
          f"{args.min_len}..{args.max_len} chars, batch {args.batch}, Adam lr {args.lr:g}, "
          f"clip {args.clip:g}")

    def step(_):
        return model.loss_and_grads(*_batch(vocab, _windows(train_files, rng, args.batch,
                                                             args.min_len, args.max_len)))

    run = fit(model.params, step, args.steps, lr=args.lr, clip=args.clip,
              time_budget=args.time_budget, progress=args.progress, log_every=args.steps // 5)
    pred_parts, truth_parts, base_parts = [], [], []
    for i in range(0, len(test_windows), 128):
        xb, lb, tb = _batch(vocab, test_windows[i:i + 128])
        vb = valid_mask(lb, xb.shape[0])
        pred_parts.append(model.predict(xb, lb)[vb])
        truth_parts.append(tb[vb])
        base_parts.append(most_frequent[xb][vb])
    pred, truth, base = (np.concatenate(p) for p in (pred_parts, truth_parts, base_parts))
    acc, base_acc = float(np.mean(pred == truth)), float(np.mean(base == truth))
    per_tag, base_per_tag = _per_tag(pred, truth), _per_tag(base, truth)
    print(f"\ntrained {run['steps']} steps in {run['seconds']:.0f} s "
          f"({run['steps_per_s']:.1f} steps/s); test: {truth.size:,} characters of held-out files")
    print(f"  {'tag':<11} {'share':>6} {'model':>6} {'baseline':>8}")
    for k, tag in enumerate(TAGS):
        share = float(np.mean(truth == k))
        print(f"  {tag:<11} {share:6.3f} {per_tag[tag]:6.3f} {base_per_tag[tag]:8.3f}")
    report("per-character accuracy", acc, base_acc, "most frequent tag of each character")
    return write_summary(args.summary_json, parser, "per-character accuracy", acc, base_acc, True,
                         per_tag_accuracy=per_tag, baseline_per_tag_accuracy=base_per_tag,
                         steps=run["steps"], train_seconds=round(run["seconds"], 3),
                         test_chars=int(truth.size),
                         final_train_loss=float(np.mean(run["losses"][-20:])),
                         config=vars(args))


def build_parser():
    parser = base_parser("python -m pyrnn.examples.tagging", __doc__.split("\n\n")[0],
                         steps=1500, batch=32, lr=1e-2, hidden=48)
    model = parser.add_argument_group("model and data")
    model.add_argument("--layers", type=positive_int, default=2, help="stacked layers")
    model.add_argument("--embed", type=positive_int, default=24, help="embedding size")
    model.add_argument("--corpus-chars", type=positive_int, default=600_000,
                       help="characters of standard-library source to tokenize (train + test)")
    model.add_argument("--min-len", type=positive_int, default=60, help="shortest window")
    model.add_argument("--max-len", type=positive_int, default=160,
                       help="longest window (test windows all have this length)")
    model.add_argument("--test-windows", type=positive_int, default=400, help="test windows")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    def body(args, parser):
        if args.min_len > args.max_len:
            parser.error(f"--min-len ({args.min_len}) must not exceed --max-len ({args.max_len})")
        if args.max_len > FILE_CHARS:
            parser.error(f"--max-len must be at most {FILE_CHARS} (the characters taken from "
                         f"each file), got {args.max_len}")
        return train_and_evaluate(args, parser)

    return run_main(build_parser(), body, argv)


if __name__ == "__main__":
    main()
