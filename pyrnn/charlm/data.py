"""Text in, integer streams out: the default corpus, the character vocabulary, the train and
validation split, the streams of truncated BPTT and the unigram baseline.

The default corpus is always there offline: the Python standard library's own source code.
It is the top-level ``*.py`` files of ``sysconfig.get_paths()["stdlib"]`` taken in sorted
(code point) order of their names, skipping files over ``MAX_FILE_BYTES``, concatenated until
``DEFAULT_CORPUS_CHARS`` characters; the selection and its order depend only on the installed
Python version.
"""
from __future__ import annotations

import math
import os
import sysconfig
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "CharLMError", "DEFAULT_CORPUS_CHARS", "MAX_FILE_BYTES", "stdlib_corpus", "read_text",
    "Vocab", "split_train_val", "streams", "chunks", "unigram_loss",
]

DEFAULT_CORPUS_CHARS = 1_500_000
MAX_FILE_BYTES = 150_000


class CharLMError(Exception):
    """A user-facing error (bad file, bad argument, bad checkpoint); the CLI prints its message
    and exits with a non-zero status, without a traceback."""


def read_source(path: str) -> Optional[str]:
    """The text of a UTF-8 source file of at most ``MAX_FILE_BYTES`` bytes, or None when it is
    missing, larger, not UTF-8 or blank (the corpus readers skip such files)."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_FILE_BYTES:
            return None
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.strip() else None


def stdlib_corpus(max_chars: int = DEFAULT_CORPUS_CHARS, root: Optional[str] = None
                  ) -> Tuple[str, List[str]]:
    """The default corpus: ``(text, file names)`` from the standard library's source files.

    Files are the top-level ``*.py`` of the stdlib directory in sorted order, each at most
    ``MAX_FILE_BYTES`` bytes and valid UTF-8, joined by a blank line; the text is cut at
    ``max_chars`` characters (so the last file may be partial).
    """
    root = root or sysconfig.get_paths()["stdlib"]
    try:
        names = sorted(n for n in os.listdir(root) if n.endswith(".py"))
    except OSError as exc:
        raise CharLMError(f"cannot list the standard library at {root!r} ({exc.strerror}); "
                          "pass --text FILE to train on a text file") from None
    parts, used, total = [], [], 0
    for name in names:
        if total >= max_chars:
            break
        source = read_source(os.path.join(root, name))
        if source is None:
            continue
        source = source.rstrip("\n") + "\n\n"
        parts.append(source)
        used.append(name)
        total += len(source)
    text = "".join(parts)[:max_chars]
    if not text:
        raise CharLMError(f"found no usable Python sources in {root!r} (this Python may ship "
                          "without them); pass --text FILE to train on a text file")
    return text, used


def read_text(path, max_chars: Optional[int] = None) -> str:
    """The UTF-8 text of ``path`` (optionally its first ``max_chars`` characters).

    Raises CharLMError for a missing or unreadable file, text that is not UTF-8 and empty text.
    """
    path = os.fspath(path)
    try:
        # utf-8-sig: a byte-order mark (editors on Windows write one, e.g. before Russian text)
        # is not a character of the text
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read() if max_chars is None else handle.read(max_chars)
    except FileNotFoundError:
        raise CharLMError(f"text file not found: {path}") from None
    except IsADirectoryError:
        raise CharLMError(f"expected a text file, got a directory: {path}") from None
    except UnicodeDecodeError as exc:
        raise CharLMError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CharLMError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise CharLMError(f"text file is empty: {path}")
    return text


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


class Vocab:
    """The characters of a text in code point order; index ``i`` is ``chars[i]``.

    Stored in checkpoints as an int array of code points (no pickle).
    """

    def __init__(self, code_points: Sequence[int]) -> None:
        cps = np.unique(np.asarray(code_points, dtype=np.int64))
        if cps.size == 0:
            raise CharLMError("the vocabulary is empty")
        if cps[0] < 0 or cps[-1] > 0x10FFFF:
            raise CharLMError("the vocabulary holds values that are not Unicode code points")
        self.code_points = cps.astype(np.int32)

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        if not text:
            raise CharLMError("cannot build a vocabulary from empty text")
        return cls(np.unique(_code_points(text)))

    def __len__(self) -> int:
        return int(self.code_points.size)

    @property
    def chars(self) -> str:
        return self.decode(np.arange(len(self)))

    def __contains__(self, char: str) -> bool:
        return len(char) == 1 and bool(np.isin(ord(char), self.code_points))

    def encode(self, text: str) -> np.ndarray:
        """int64 indices of ``text``; CharLMError names characters outside the vocabulary."""
        cps = _code_points(text).astype(np.int32)
        idx = np.searchsorted(self.code_points, cps)
        idx = np.minimum(idx, len(self) - 1)
        unknown = self.code_points[idx] != cps
        if unknown.any():
            missing = sorted({chr(c) for c in cps[unknown]})
            shown = ", ".join(repr(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise CharLMError(f"{len(missing)} character(s) not in the model's vocabulary: {shown}")
        return idx.astype(np.int64)

    def decode(self, indices) -> str:
        cps = self.code_points[np.asarray(indices, dtype=np.int64)].astype("<u4")
        return cps.tobytes().decode("utf-32-le", "surrogatepass")


def split_train_val(data: np.ndarray, val_fraction: float) -> Tuple[np.ndarray, np.ndarray]:
    """The last ``val_fraction`` of ``data`` is held out for validation (at least 2 symbols,
    leaving at least 2 for training)."""
    if not 0.0 < val_fraction < 1.0:
        raise CharLMError(f"--val-fraction must lie strictly between 0 and 1, got {val_fraction}")
    n = len(data)
    if n < 4:
        raise CharLMError(f"the text is too short to train on ({n} characters; need at least 4)")
    n_val = min(max(2, int(round(n * val_fraction))), n - 2)
    return data[: n - n_val], data[n - n_val:]


def streams(data: np.ndarray, batch: int) -> np.ndarray:
    """``data`` cut into ``batch`` contiguous streams side by side, time-major ``[n, batch]``
    (the tail that does not fill a row is dropped). ``batch`` shrinks so each stream has at
    least 2 symbols."""
    batch = max(1, min(int(batch), len(data) // 2))
    n = len(data) // batch
    return np.ascontiguousarray(data[: n * batch].reshape(batch, n).T)


def chunks(stream_matrix: np.ndarray, bptt: int):
    """Yield ``(inputs, targets)`` chunks ``[t, B]`` of at most ``bptt`` steps covering the
    streams; targets are the inputs shifted by one step."""
    n = stream_matrix.shape[0]
    for start in range(0, n - 1, bptt):
        stop = min(start + bptt, n - 1)
        yield stream_matrix[start:stop], stream_matrix[start + 1: stop + 1]


def unigram_loss(train: np.ndarray, targets: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats/char) of ``targets`` under the character frequencies of ``train``
    (add-one smoothing, so characters unseen in training still get a probability)."""
    counts = np.bincount(np.asarray(train).ravel(), minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    targets = np.asarray(targets).ravel()
    return float(-logp[targets].mean()) if targets.size else math.nan
