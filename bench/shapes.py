"""Shape sets for bench/bench_rnn.py.

A shape is one layer, one direction, time-major input: T steps, B batch, I input features,
H hidden units (the DESIGN.md legend). ``modes`` lists the modes the shape is meant for:
DeepBench separates its training and inference shapes, the quick set runs both.

Sets:
- ``quick``: a handful covering every cell, small (1-4) and medium (16-64) batches, I != H;
  the whole set runs in well under 2 minutes at threads 1,2.
- ``deepbench``: Baidu DeepBench's RNN kernels (https://github.com/baidu-research/DeepBench,
  ``rnn_bench``) that fit a 2-core machine: input size = hidden size, one layer,
  unidirectional.
- ``heldout``: 24 shapes drawn once from a seeded generator over every cell, odd and even
  sizes, T = 1-300, B = 1-96, I != H (see ``_heldout``): a check that the speedups hold off
  the sets above (the one-thread kernels were not tuned on them). Both modes.
- ``heldout2``: 24 more shapes from the same generator with another seed, drawn after the
  kernel changes of 2026-11-30 12:00-12:50 UTC and run once at the end of that work (the
  first held-out set had by then served in A/B checks): the clean hold-out. Both modes.
- ``heldout3``: 24 more shapes from the same generator (seed 20261205), drawn on 2026-12-05
  for the AVX-512 work on an Intel Xeon and run only to check it, never to tune on. Both modes.
- ``lstm_mid``: LSTMs of medium size, T=100, I = H in {384, 512, 768}, B in {8, 16, 33}: the
  shapes where torch (oneDNN's fused LSTM) is as fast as pyrnn or faster, kept as a set so
  that the README's statement about them can be rerun (added 2026-11-30 after a probe found
  inference rows at 0.86-0.99x). Both modes.
- ``all``: quick and deepbench together (a shape in both runs the union of its modes).

Any other shape: ``bench_rnn.py --shape lstm:T,B,I,H`` (repeatable), or ``parse_shape``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
MODES = ("infer", "train")

# The groups of benchmark rows (dicts with mode, B, H) that the summaries speak of.
SMALL_BATCH_MAX = 4
LARGE_B, LARGE_H = 32, 512
ONNXRT_BEHIND = 0.95  # rows below this speedup vs ONNX Runtime are counted as pyrnn behind


def is_small_batch_infer(row: dict) -> bool:
    return row["mode"] == "infer" and row["B"] <= SMALL_BATCH_MAX


def is_large(row: dict) -> bool:
    return row["B"] >= LARGE_B and row["H"] >= LARGE_H
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


@dataclass(frozen=True)
class Shape:
    cell: str
    T: int
    B: int
    I: int
    H: int
    modes: tuple = MODES
    note: str = field(default="", compare=False)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell: expected one of {CELLS}, got {self.cell!r}")
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise ValueError(f"modes: expected a subset of {MODES}, got {bad}")

    @property
    def G(self) -> int:
        return GATES[self.cell]

    @property
    def key(self) -> tuple:
        return (self.cell, self.T, self.B, self.I, self.H)

    def label(self) -> str:
        return f"{self.cell} T={self.T} B={self.B} I={self.I} H={self.H}"


def _square(cell, H, B, T, modes, note=""):
    """A DeepBench shape: input size equals hidden size."""
    return Shape(cell, T, B, H, H, modes=modes, note=note)


QUICK = [
    Shape("lstm", 50, 1, 256, 256),
    Shape("lstm", 50, 32, 128, 256),
    Shape("gru", 50, 4, 256, 256),
    Shape("gru", 50, 64, 256, 256),
    Shape("rnn_tanh", 100, 16, 256, 256),
    Shape("rnn_relu", 100, 2, 128, 128),
]

_TRAIN, _INFER = ("train",), ("infer",)

DEEPBENCH = (
    # LSTM training
    [_square("lstm", H, B, 25, _TRAIN) for H in (512, 1024) for B in (16, 32, 64)]
    + [_square("lstm", 256, B, 150, _TRAIN) for B in (16, 32, 64)]
    # LSTM inference
    + [_square("lstm", H, B, 25, _INFER) for H in (512, 1024) for B in (1, 2, 4)]
    + [_square("lstm", 256, 1, 150, _INFER)]
    # vanilla (ReLU) RNN
    + [_square("rnn_relu", 32, 1, 672, _INFER), _square("rnn_relu", 64, 1, 96, _INFER),
       _square("rnn_relu", 1760, 16, 50, _TRAIN)]
    # GRU
    + [_square("gru", 512, B, 1, _INFER) for B in (1, 2, 4)]
    + [_square("gru", 1024, 1, 1500, _INFER),
       _square("gru", 1024, 32, 150, _TRAIN, note="DeepBench T=1500, cut to T=150")]
)


def _heldout(count: int = 24, seed: int = 20261130) -> list:
    """``count`` shapes drawn with ``random.Random(seed)``: cells in turn, each size from a
    range that mixes powers of two with odd values (stdlib only, so the draw never changes)."""
    import random

    rng = random.Random(seed)
    shapes = []
    for i in range(count):
        cell = CELLS[i % len(CELLS)]
        H = rng.choice([24, 64, 96, 128, 150, 200, 256, 300, 384, 480, 512, 700])
        I = rng.choice([1, 16, 40, 100, 128, 257, H, 2 * H])
        B = rng.choice([1, 2, 3, 4, 5, 7, 8, 10, 16, 24, 33, 64, 96])
        T = rng.choice([1, 3, 10, 25, 64, 100, 200, 300])
        shapes.append(Shape(cell, T, B, I, H, note="held out"))
    return shapes


def parse_shape(text: str) -> Shape:
    """``"lstm:100,8,64,128"`` (cell:T,B,I,H) -> Shape, both modes."""
    cell, sep, sizes = text.partition(":")
    try:
        T, B, I, H = (int(v) for v in sizes.split(","))
    except ValueError:
        T = B = I = H = -1
    if not sep or min(T, B, I, H) < 1:
        raise ValueError(f"shape: expected CELL:T,B,I,H with sizes >= 1 (e.g. lstm:100,8,64,128),"
                         f" got {text!r}")
    return Shape(cell.strip(), T, B, I, H)


HELDOUT = _heldout()
HELDOUT2 = _heldout(seed=31337)
HELDOUT3 = _heldout(seed=20261205)
LSTM_MID = [_square("lstm", H, B, 100, MODES, note="medium LSTM")
            for H in (384, 512, 768) for B in (8, 16, 33)]


def merge(*sets) -> list:
    """Union of shape lists: one entry per (cell, T, B, I, H), modes and notes merged,
    first-seen order kept."""
    merged: dict = {}
    for shape in (s for group in sets for s in group):
        old = merged.get(shape.key)
        if old is None:
            merged[shape.key] = shape
        else:
            modes = tuple(m for m in MODES if m in old.modes or m in shape.modes)
            note = "; ".join(n for n in (old.note, shape.note) if n)
            merged[shape.key] = replace(old, modes=modes, note=note)
    return list(merged.values())


SETS = {"quick": QUICK, "deepbench": DEEPBENCH, "heldout": HELDOUT, "heldout2": HELDOUT2,
        "heldout3": HELDOUT3,
        "lstm_mid": LSTM_MID, "all": merge(QUICK, DEEPBENCH)}


def get(name: str) -> list:
    try:
        return list(SETS[name])
    except KeyError:
        raise ValueError(f"shape set: expected one of {sorted(SETS)}, got {name!r}") from None
