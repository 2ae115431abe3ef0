"""One-to-many: caption small images drawn with NumPy.

Each image is ``SIZE x SIZE`` RGB pixels with one shape on a noisy dark background: a
``square``, ``circle``, ``triangle`` or ``cross``, ``red``, ``green``, ``blue`` or ``yellow``,
``small`` or ``big``, in one of the four quadrants (jittered). Its caption is generated from
what was drawn, e.g. ``a big red circle at the top left`` (``big`` only for big shapes, so
captions have 7 or 8 words): 128 different captions.

The model: an image encoder (a linear map of the pixels) sets the initial state (h0 through a
tanh, and c0) of an LSTM decoder over word embeddings; a linear softmax predicts the next word.
Training uses teacher forcing (the decoder reads the true previous words, ``<bos>`` first; the
loss counts the valid steps of the variable-length captions); the gradient of the initial state
flows back into the encoder. Captions are decoded greedily (and by sampling at a
``--temperature``) one kernel call per word for the whole batch. The metric is the share of
test images whose greedy caption is exactly right; the baseline always says the most frequent
training caption. A few test images with their captions go to a PNG grid (with matplotlib),
or to the terminal as text.

Run ``python -m pyrnn.examples.captioning`` (under 3 minutes on 2 cores); ``main()`` returns
the summary dict.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pyrnn.layers import LSTM
from pyrnn.nn import Embedding, Linear, softmax, softmax_cross_entropy

from .common import (ExampleError, Params, Vocab, base_parser, fit, number_above, pad_batch,
                     positive_int, report, run_main, valid_mask, write_summary)

__all__ = ["SIZE", "draw_images", "Captioner", "train_and_evaluate", "main"]

SIZE = 20
SHAPES = ("square", "circle", "triangle", "cross")
COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.15, 0.75, 0.2), "blue": (0.2, 0.35, 1.0),
           "yellow": (0.95, 0.85, 0.1)}
ROWS, COLUMNS = ("top", "bottom"), ("left", "right")
MAX_WORDS = 12  # longest greedy caption (the true ones have at most 8 words)


def _shape_mask(shape: str, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8 * r
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "triangle":  # pointing up: wider towards the bottom
        return (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= 0.55 * (dy + r))
    return ((np.abs(dx) <= 0.3 * r) & (np.abs(dy) <= r)) | \
        ((np.abs(dy) <= 0.3 * r) & (np.abs(dx) <= r))  # cross


def draw_images(rng: np.random.Generator, n: int) -> Tuple[np.ndarray, List[str]]:
    """``n`` images ``float32 [n, SIZE, SIZE, 3]`` in [0, 1] and their captions."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    images = np.clip(0.1 + 0.05 * rng.standard_normal((n, SIZE, SIZE, 3)), 0, 1)
    captions = []
    colour_names = list(COLOURS)
    for i in range(n):
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = colour_names[rng.integers(len(colour_names))]
        big = bool(rng.integers(2))
        row, col = int(rng.integers(2)), int(rng.integers(2))
        r = (0.2 if big else 0.12) * SIZE
        cy = (0.25 + 0.5 * row) * SIZE + rng.uniform(-1, 1)
        cx = (0.25 + 0.5 * col) * SIZE + rng.uniform(-1, 1)
        mask = _shape_mask(shape, yy - cy, xx - cx, r)
        images[i][mask] = np.asarray(COLOURS[colour]) * rng.uniform(0.8, 1.0)
        size_word = "big " if big else ""
        captions.append(f"a {size_word}{colour} {shape} at the {ROWS[row]} {COLUMNS[col]}")
    return images.astype(np.float32), captions


class Captioner:
    """Pixels -> linear -> (h0, c0) of an LSTM over word embeddings -> linear softmax."""

    def __init__(self, vocab_size: int, embed: int, hidden: int, seed: int,
                 num_threads: int = 1, dtype=np.float32) -> None:
        self.hidden = hidden
        self.encoder = Linear(SIZE * SIZE * 3, 2 * hidden, dtype=dtype, seed=seed)
        self.embed = Embedding(vocab_size, embed, dtype=dtype, seed=seed + 1)
        self.rnn = LSTM(embed, hidden, dtype=dtype, seed=seed + 2, num_threads=num_threads)
        self.head = Linear(hidden, vocab_size, dtype=dtype, seed=seed + 3)
        self.params = Params(encoder=self.encoder, embed=self.embed, rnn=self.rnn,
                             head=self.head)

    def initial_state(self, images: np.ndarray):
        """``(h0, c0)``, each ``[1, B, hidden]``: one linear map of the pixels gives both,
        ``h0 = tanh(first half)`` (h is a tanh-squashed quantity in an LSTM) and ``c0`` = the
        second half (the cell carries the image to the later words)."""
        pixels = images.reshape(len(images), -1) - images.dtype.type(0.5)
        z = self.encoder(pixels)
        return np.tanh(z[None, :, :self.hidden]), np.ascontiguousarray(z[None, :, self.hidden:])

    def loss_and_grads(self, images: np.ndarray, words: np.ndarray, lengths: np.ndarray,
                       targets: np.ndarray) -> float:
        """Teacher forcing: ``words [T, B]`` (``<bos>`` + caption) predict ``targets [T, B]``
        (caption + ``<eos>``) over the first ``lengths`` steps."""
        state = self.initial_state(images)
        y, _ = self.rnn(self.embed(words), state, lengths=lengths)
        loss, dlogits = softmax_cross_entropy(self.head(y), targets,
                                              mask=valid_mask(lengths, words.shape[0]))
        dx = self.rnn.backward(self.head.backward(dlogits.astype(y.dtype)))
        self.embed.backward(dx)
        dh0, dc0 = (g[0] for g in self.rnn.state_grad)
        h0 = state[0][0]
        self.encoder.backward(np.concatenate([dh0 * (1 - h0 * h0), dc0], axis=1))  # tanh'(z)
        return loss

    def decode(self, images: np.ndarray, bos: int, eos: int, temperature: float = 0.0,
               rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Word indices ``[B, MAX_WORDS]`` (``eos`` after the end): greedy when
        ``temperature`` is 0, else sampled from the softmax of ``logits / temperature``."""
        self.params.train(False)
        try:
            state = self.initial_state(images)
            B = len(images)
            word = np.full((1, B), bos, dtype=np.int64)
            out = np.full((B, MAX_WORDS), eos, dtype=np.int64)
            done = np.zeros(B, dtype=bool)
            for t in range(MAX_WORDS):
                y, state = self.rnn(self.embed(word), state)  # T=1, state carried
                logits = self.head(y[0]).astype(np.float64)
                if temperature > 0:
                    p = softmax(logits / temperature)
                    u = rng.random((B, 1))
                    nxt = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
                else:
                    nxt = np.argmax(logits, axis=1)
                nxt = np.where(done, eos, nxt)
                out[:, t] = nxt
                done |= nxt == eos
                if done.all():
                    break
                word = nxt[None].astype(np.int64)
            return out
        finally:
            self.params.train(True)


def _texts(vocab: Vocab, decoded: np.ndarray, eos: int) -> List[str]:
    texts = []
    for row in decoded:
        stop = int(np.argmax(row == eos)) if np.any(row == eos) else len(row)
        texts.append(" ".join(vocab.decode(row[:stop])))
    return texts


def _teacher_batch(vocab: Vocab, captions: Sequence[str]):
    bos, eos = vocab.stoi["<bos>"], vocab.stoi["<eos>"]
    encoded = [vocab.encode(c.split()) for c in captions]
    words, lengths = pad_batch([np.concatenate([[bos], e]) for e in encoded])
    targets, _ = pad_batch([np.concatenate([e, [eos]]) for e in encoded])
    return words, lengths, targets


def _ascii(image: np.ndarray) -> List[str]:
    """The image as text: the first letter of the nearest colour, ``.`` for background."""
    names = list(COLOURS)
    ref = np.array([COLOURS[n] for n in names])
    dist = ((image[:, :, None, :] - ref[None, None]) ** 2).sum(-1)
    bright = image.max(axis=-1) > 0.45
    letters = np.array([n[0] for n in names])[np.argmin(dist, axis=-1)]
    return ["".join(np.where(bright, letters, ".")[r]) for r in range(SIZE)]


def show(images: np.ndarray, captions: List[str], truths: List[str], path: Optional[str]) -> str:
    """A PNG grid at ``path`` when matplotlib is installed; else (or with no path) text.
    Returns what was done, for the log."""
    note = "images shown as text (r/g/b/y: colour, .: background)"
    if path:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            path = None
            note = "matplotlib is not installed: the images as text above instead of a PNG grid"
    if path:
        cols = 4
        rows = -(-len(images) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.7 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, image, caption, truth in zip(axes.ravel(), images, captions, truths):
            ax.imshow(image, interpolation="nearest")
            ok = "" if caption == truth else f"\n(true: {truth})"
            ax.set_title(caption + ok, fontsize=8, color="black" if not ok else "C3")
        fig.tight_layout()
        try:
            fig.savefig(path, dpi=100)
        except OSError as exc:
            raise ExampleError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            plt.close(fig)
        return f"images with their generated captions saved to {path}"
    for start in range(0, len(images), 4):
        group = range(start, min(start + 4, len(images)))
        art = [_ascii(images[i]) for i in group]
        for r in range(SIZE):
            print("  " + "   ".join(a[r] for a in art))
        for i in group:
            mark = "" if captions[i] == truths[i] else f"   (true: {truths[i]})"
            print(f"  [{i + 1}] {captions[i]}{mark}")
        print()
    return note


def train_and_evaluate(args, parser=None) -> Dict:
    rng = np.random.default_rng(args.seed)
    test_images, test_captions = draw_images(np.random.default_rng(args.seed + 10_000),
                                             args.test_size)
    vocab = Vocab(["a", "big", *COLOURS, *SHAPES, "at", "the", *ROWS, *COLUMNS],
                  extra=("<bos>", "<eos>"))
    bos, eos = vocab.stoi["<bos>"], vocab.stoi["<eos>"]
    _, seen = draw_images(np.random.default_rng(args.seed + 1), 2000)
    most_common = Counter(seen).most_common(1)[0][0]
    baseline = float(np.mean([c == most_common for c in test_captions]))
    model = Captioner(len(vocab), args.embed, args.hidden, args.seed, args.threads)
    print(f"images {SIZE}x{SIZE} RGB, {len(SHAPES)} shapes x {len(COLOURS)} colours x 2 sizes x "
          f"4 positions = 128 captions; vocabulary {len(vocab)} words")
    print(f"model: pixels {SIZE * SIZE * 3} -> linear -> (h0, c0) of LSTM {args.hidden} over "
          f"embeddings {args.embed} -> linear {len(vocab)} ({model.params.num_params:,} "
          f"parameters); batch {args.batch}, Adam lr {args.lr:g}, clip {args.clip:g}")

    def step(_):
        images, captions = draw_images(rng, args.batch)
        return model.loss_and_grads(images, *_teacher_batch(vocab, captions))

    run = fit(model.params, step, args.steps, lr=args.lr, clip=args.clip,
              time_budget=args.time_budget, progress=args.progress, log_every=args.steps // 5)
    greedy = _texts(vocab, model.decode(test_images, bos, eos), eos)
    acc = float(np.mean([g == t for g, t in zip(greedy, test_captions)]))
    word_acc = float(np.mean([sum(a == b for a, b in zip(g.split(), t.split())) / len(t.split())
                              for g, t in zip(greedy, test_captions)]))
    sampled = _texts(vocab, model.decode(test_images[:args.show], bos, eos, args.temperature,
                                         np.random.default_rng(args.seed + 2)), eos)
    print(f"\ntrained {run['steps']} steps in {run['seconds']:.0f} s "
          f"({run['steps_per_s']:.1f} steps/s); test: {args.test_size} new images")
    print(f"greedy captions: {acc:.3f} exactly right, {word_acc:.3f} of the words in place")
    print(f"sampled at temperature {args.temperature:g}:")
    for i, text in enumerate(sampled):
        print(f"  [{i + 1}] {text}")
    print(show(test_images[:args.show], greedy[:args.show], test_captions[:args.show],
               args.grid))
    report("exact-match caption accuracy", acc, baseline, f"always '{most_common}'")
    return write_summary(args.summary_json, parser, "exact-match caption accuracy", acc, baseline,
                         True, word_accuracy=word_acc, steps=run["steps"],
                         train_seconds=round(run["seconds"], 3),
                         examples=[{"greedy": g, "true": t, "sampled": s} for g, t, s in
                                   zip(greedy[:args.show], test_captions[:args.show], sampled)],
                         final_train_loss=float(np.mean(run["losses"][-20:])),
                         config=vars(args))


def build_parser():
    parser = base_parser("python -m pyrnn.examples.captioning", __doc__.split("\n\n")[0],
                         steps=6000, batch=64, lr=1e-2, hidden=64)
    model = parser.add_argument_group("model and output")
    model.add_argument("--embed", type=positive_int, default=16, help="word embedding size")
    model.add_argument("--test-size", type=positive_int, default=1000, help="test images")
    model.add_argument("--temperature", type=number_above(0.0, False), default=0.7,
                       help="temperature of the sampled captions (greedy ones are shown too)")
    model.add_argument("--show", type=positive_int, default=8, help="images to show")
    model.add_argument("--grid", default="captions.png", metavar="PNG",
                       help="PNG grid of images and captions (needs matplotlib; '' for text)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    def body(args, parser):
        if args.show > args.test_size:
            parser.error(f"--show ({args.show}) must not exceed --test-size ({args.test_size})")
        if args.grid and not os.path.isdir(os.path.dirname(os.path.abspath(args.grid))):
            parser.error(f"--grid: the folder of {args.grid} does not exist")
        return train_and_evaluate(args, parser)

    return run_main(build_parser(), body, argv)


if __name__ == "__main__":
    main()
