"""Many-to-one: which standard-library package does a snippet of Python source come from?

The data ships with Python: snippets of 40 to 200 characters cut at random places from the
source files of a few standard-library packages (default ``asyncio``, ``email``,
``multiprocessing``, ``tkinter``, ``xml``). The files are split, not the snippets: every fourth
file of each package (in sorted order) is held out, so the test snippets come from files the
model never saw. Snippets are drawn in proportion to the packages' sizes, so the classes are as
unbalanced as the library; the baseline always answers the most frequent training class.

The model reads characters: an embedding, a bidirectional LSTM (or GRU) over the variable-length
batch (``lengths``, like a PyTorch packed sequence), the mean of its outputs over the valid steps
(or the final states of both directions, ``--pool last``) and a linear softmax head.

Run ``python -m pyrnn.examples.classify`` (under 3 minutes on 2 cores); ``main()`` returns the
summary dict.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pyrnn.layers import GRU, LSTM
from pyrnn.nn import Embedding, Linear, softmax_cross_entropy

from .common import (ExampleError, Params, Vocab, base_parser, fit, pad_batch, positive_int,
                     report, run_main, stdlib_sources, valid_mask, write_summary)

__all__ = ["SnippetData", "load_packages", "Classifier", "train_and_evaluate", "main"]

DEFAULT_PACKAGES = ("asyncio", "email", "multiprocessing", "tkinter", "xml")


def load_packages(packages: Sequence[str]) -> Dict[str, Tuple[List[str], List[str]]]:
    """``{package: (train texts, test texts)}``: every fourth file (sorted order) is held out."""
    out = {}
    for name in packages:
        texts = [text for _, text in stdlib_sources(name)]
        if len(texts) < 2:
            raise ExampleError(f"package {name!r}: found {len(texts)} source file(s) in this "
                               "Python's standard library, need at least 2 (one to hold out)")
        out[name] = ([t for i, t in enumerate(texts) if i % 4 != 3],
                     [t for i, t in enumerate(texts) if i % 4 == 3])
    return out


class SnippetData:
    """Draws labelled snippets from the files of each class, in proportion to their sizes."""

    def __init__(self, texts_by_class: Sequence[List[str]], min_len: int, max_len: int) -> None:
        if not 1 <= min_len <= max_len:
            raise ExampleError(f"snippet lengths must satisfy 1 <= min <= max, got {min_len}, "
                               f"{max_len}")
        self.min_len, self.max_len = min_len, max_len
        self.files = [(label, text) for label, texts in enumerate(texts_by_class)
                      for text in texts if len(text) >= max_len]
        if not self.files:
            raise ExampleError(f"no source file is at least {max_len} characters long")
        sizes = np.array([len(t) - max_len + 1 for _, t in self.files], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def class_shares(self, classes: int) -> np.ndarray:
        """The probability that a drawn snippet has each label."""
        labels = np.array([label for label, _ in self.files])
        return np.bincount(labels, weights=self.weights, minlength=classes)

    def draw(self, rng: np.random.Generator, n: int) -> Tuple[List[str], np.ndarray]:
        """``n`` snippets and their labels."""
        picks = rng.choice(len(self.files), size=n, p=self.weights)
        lengths = rng.integers(self.min_len, self.max_len + 1, size=n)
        snippets, labels = [], np.empty(n, dtype=np.int64)
        for i, (f, length) in enumerate(zip(picks, lengths)):
            label, text = self.files[f]
            start = int(rng.integers(0, len(text) - length + 1))
            snippets.append(text[start:start + length])
            labels[i] = label
        return snippets, labels


class Classifier:
    """Embedding -> bidirectional LSTM/GRU (``lengths``) -> mean or last state -> linear."""

    def __init__(self, vocab_size: int, classes: int, embed: int, hidden: int, cell: str,
                 pool: str, seed: int, num_threads: int = 1, dtype=np.float32) -> None:
        if pool not in ("mean", "last"):
            raise ExampleError(f"--pool must be mean or last, got {pool!r}")
        layer = {"lstm": LSTM, "gru": GRU}[cell]
        self.pool, self.hidden = pool, hidden
        self.embed = Embedding(vocab_size, embed, dtype=dtype, seed=seed)
        self.rnn = layer(embed, hidden, bidirectional=True, dtype=dtype, seed=seed + 1,
                         num_threads=num_threads)
        self.head = Linear(2 * hidden, classes, dtype=dtype, seed=seed + 2)
        self.params = Params(embed=self.embed, rnn=self.rnn, head=self.head)

    def _features(self, x: np.ndarray, lengths: np.ndarray):
        y, state = self.rnn(self.embed(x), lengths=lengths)
        h_n = state[0] if isinstance(state, tuple) else state      # [2, B, H]
        if self.pool == "mean":
            mask = valid_mask(lengths, x.shape[0])[..., None].astype(y.dtype)
            return (y * mask).sum(axis=0) / np.maximum(lengths, 1)[:, None].astype(y.dtype), y
        return np.concatenate([h_n[0], h_n[1]], axis=1), y

    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.head(self._features(x, lengths)[0])

    def predict(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        self.params.train(False)
        try:
            return np.argmax(self.logits(x, lengths), axis=1)
        finally:
            self.params.train(True)

    def loss_and_grads(self, x: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> float:
        features, y = self._features(x, lengths)
        loss, dlogits = softmax_cross_entropy(self.head(features), labels)
        dfeatures = self.head.backward(dlogits.astype(features.dtype))
        if self.pool == "mean":
            mask = valid_mask(lengths, x.shape[0])[..., None].astype(y.dtype)
            dy = mask * (dfeatures / np.maximum(lengths, 1)[:, None].astype(y.dtype))[None]
            dx = self.rnn.backward(dy)
        else:
            dh = np.ascontiguousarray(np.stack([dfeatures[:, :self.hidden],
                                                dfeatures[:, self.hidden:]]))
            dx = self.rnn.backward(None, (dh, None) if isinstance(self.rnn, LSTM) else dh)
        self.embed.backward(dx)
        return loss


def _accuracy(model: Classifier, vocab: Vocab, snippets: List[str], labels: np.ndarray,
              chunk: int = 256) -> np.ndarray:
    """Predicted labels for all snippets (in chunks)."""
    preds = []
    for i in range(0, len(snippets), chunk):
        x, lengths = pad_batch([vocab.encode(s) for s in snippets[i:i + chunk]])
        preds.append(model.predict(x, lengths))
    return np.concatenate(preds)


def train_and_evaluate(args, parser=None) -> Dict:
    packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    if len(packages) < 2 or len(set(packages)) != len(packages):
        raise ExampleError(f"--packages must name at least 2 different packages, got "
                           f"{args.packages!r}")
    split = load_packages(packages)
    train_data = SnippetData([split[p][0] for p in packages], args.min_len, args.max_len)
    test_data = SnippetData([split[p][1] for p in packages], args.min_len, args.max_len)
    rng = np.random.default_rng(args.seed)
    test_snippets, test_labels = test_data.draw(np.random.default_rng(args.seed + 10_000),
                                                args.test_size)
    vocab = Vocab("".join(t for texts, _ in split.values() for t in texts), min_count=5)
    model = Classifier(len(vocab), len(packages), args.embed, args.hidden, args.cell, args.pool,
                       args.seed, args.threads)
    majority = int(np.argmax(train_data.class_shares(len(packages))))
    baseline = float(np.mean(test_labels == majority))
    print(f"classes: {', '.join(packages)} (standard library of this Python); "
          f"train files {sum(len(split[p][0]) for p in packages)}, held-out files "
          f"{sum(len(split[p][1]) for p in packages)}")
    print(f"snippets of {args.min_len}..{args.max_len} characters, vocabulary {len(vocab)}; "
          f"model: embedding {args.embed} -> bidirectional {args.cell.upper()} {args.hidden} -> "
          f"{args.pool} -> linear {len(packages)} ({model.params.num_params:,} parameters)")
    print(f"training {args.steps} steps of batch {args.batch}, Adam lr {args.lr:g}, "
          f"clip {args.clip:g}")

    def step(_):
        snippets, labels = train_data.draw(rng, args.batch)
        x, lengths = pad_batch([vocab.encode(s) for s in snippets])
        return model.loss_and_grads(x, lengths, labels)

    run = fit(model.params, step, args.steps, lr=args.lr, clip=args.clip,
              time_budget=args.time_budget, progress=args.progress, log_every=args.steps // 5)
    preds = _accuracy(model, vocab, test_snippets, test_labels)
    acc = float(np.mean(preds == test_labels))
    print(f"\ntrained {run['steps']} steps in {run['seconds']:.0f} s "
          f"({run['steps_per_s']:.1f} steps/s); test set: {args.test_size} snippets from "
          "held-out files")
    per_class = {}
    for k, name in enumerate(packages):
        sel = test_labels == k
        per_class[name] = float(np.mean(preds[sel] == k)) if sel.any() else float("nan")
        print(f"  {name:<16} {int(sel.sum()):5d} snippets, accuracy {per_class[name]:.3f}")
    report("test accuracy", acc, baseline, f"always '{packages[majority]}'")
    return write_summary(args.summary_json, parser, "test accuracy", acc, baseline, True,
                         per_class_accuracy=per_class, steps=run["steps"],
                         train_seconds=round(run["seconds"], 3), classes=packages,
                         final_train_loss=float(np.mean(run["losses"][-20:])),
                         config=vars(args))


def build_parser():
    parser = base_parser("python -m pyrnn.examples.classify", __doc__.split("\n\n")[0],
                         steps=3000, batch=32, lr=5e-3, hidden=64)
    model = parser.add_argument_group("model and data")
    model.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    model.add_argument("--pool", choices=("mean", "last"), default="mean",
                       help="mean of the outputs over valid steps, or both directions' final "
                            "states")
    model.add_argument("--embed", type=positive_int, default=32, help="embedding size")
    model.add_argument("--packages", default=",".join(DEFAULT_PACKAGES),
                       help="comma-separated standard-library packages, one class each")
    model.add_argument("--min-len", type=positive_int, default=40, help="shortest snippet")
    model.add_argument("--max-len", type=positive_int, default=200, help="longest snippet")
    model.add_argument("--test-size", type=positive_int, default=2000, help="test snippets")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = build_parser()

    def body(args, parser):
        if args.min_len > args.max_len:
            parser.error(f"--min-len ({args.min_len}) must not exceed --max-len ({args.max_len})")
        return train_and_evaluate(args, parser)

    return run_main(parser, body, argv)


if __name__ == "__main__":
    main()
