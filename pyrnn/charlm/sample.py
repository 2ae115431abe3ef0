"""Text generation: the prime runs through the stacked layer in one call per layer, then each new
character is one cell step per layer (pyrnn.cells: one C++ call each, on this thread), the state
carried from step to step. Per character the Python work is the embedding row, those steps,
one small matrix-vector product for the logits and drawing from the softmax."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import cells as C
from .. import functional as F
from .data import CharLMError, Vocab
from .model import CharLM

__all__ = ["Generator", "generate"]


class Generator:
    """Step-by-step sampler over a trained :class:`CharLM` (its weights are copied once)."""

    def __init__(self, model: CharLM, vocab: Vocab, num_threads: int = 1) -> None:
        # One thread: at B=1 a step is a matrix-vector product, too small to share out.
        self.model, self.vocab, self.num_threads = model, vocab, int(num_threads)
        self.cell = model.cell
        p = model.params
        L = model.layers
        self.weights = [tuple(np.ascontiguousarray(p[f"rnn.{kind}_l{k}"])
                              for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                        for k in range(L)]
        cell_class = {"lstm": C.LSTMCell, "gru": C.GRUCell, "rnn": C.RNNCell}[self.cell]
        self.cells = [cell_class.from_layer(model.rnn, k) for k in range(L)]
        self.emb = np.ascontiguousarray(p["embed.weight"])
        self.head_wt = np.ascontiguousarray(p["head.weight"].T.astype(np.float64))
        self.head_b = p["head.bias"].astype(np.float64)
        self.reset()

    def reset(self) -> None:
        H, L, dt = self.model.hidden, self.model.layers, self.model.dtype
        self.h = [np.zeros((1, H), dt) for _ in range(L)]
        self.c = [np.zeros((1, H), dt) for _ in range(L)] if self.cell == "lstm" else None
        self.logits = None

    def feed(self, text: str) -> np.ndarray:
        """Run ``text`` through the model (one kernel call per layer over all of it); returns
        and keeps the logits after its last character."""
        if not text:
            raise CharLMError("cannot feed empty text")
        x = self.emb[self.vocab.encode(text)][:, None, :]
        for k, w in enumerate(self.weights):
            x = self._layer(k, w, x)
        self.logits = x[-1, 0].astype(np.float64) @ self.head_wt + self.head_b
        return self.logits

    def _layer(self, k, w, x):
        nt = self.num_threads
        if self.cell == "lstm":
            y, (self.h[k], self.c[k]), _ = F.lstm_forward(x, *w, state=(self.h[k], self.c[k]),
                                                          num_threads=nt)
        elif self.cell == "gru":
            y, self.h[k], _ = F.gru_forward(x, *w, state=self.h[k], num_threads=nt)
        else:
            y, self.h[k], _ = F.rnn_forward(x, *w, state=self.h[k], num_threads=nt)
        return y

    def generate(self, length: int, temperature: float = 1.0, prime: str = "\n",
                 seed: Optional[int] = None) -> str:
        """``length`` new characters after ``prime`` (state and logits start from the prime)."""
        if length < 0:
            raise CharLMError(f"length must be >= 0, got {length}")
        if not temperature > 0:
            raise CharLMError(f"temperature must be > 0, got {temperature}")
        self.reset()
        self.feed(prime)
        rng = np.random.default_rng(seed)
        uniforms = rng.random(length)
        out = np.empty(length, dtype=np.int64)
        inv_t = 1.0 / float(temperature)
        cells, emb, head_wt, head_b = self.cells, self.emb, self.head_wt, self.head_b
        h, c = self.h, self.c
        logits = self.logits
        for i in range(length):
            z = logits * inv_t
            p = np.exp(z - z.max())
            cdf = np.cumsum(p)
            j = min(int(np.searchsorted(cdf, uniforms[i] * cdf[-1], side="right")), len(cdf) - 1)
            out[i] = j
            x = emb[j:j + 1]  # [1, E]
            for k, cell in enumerate(cells):
                if c is not None:
                    h[k], c[k] = cell(x, (h[k], c[k]))
                else:
                    h[k] = cell(x, h[k])
                x = h[k]
            logits = x[0].astype(np.float64) @ head_wt + head_b
        self.logits = logits
        return self.vocab.decode(out)


def generate(model: CharLM, vocab: Vocab, length: int = 300, temperature: float = 1.0,
             prime: str = "\n", seed: Optional[int] = None) -> str:
    """Convenience wrapper: ``Generator(model, vocab).generate(...)``."""
    return Generator(model, vocab).generate(length, temperature, prime, seed)
