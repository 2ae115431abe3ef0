"""Truncated backpropagation through time (TBPTT) with a pyrnn LSTM.

The task: ``B`` endless streams of random symbols; at every step the model must output the
symbol it saw ``DELAY`` steps earlier. The streams are cut into chunks of ``chunk`` steps.
Each chunk is one training step:

1. forward the chunk, starting from the final LSTM state of the previous chunk
   (the state is carried, so the first ``DELAY`` targets of a chunk are still solvable);
2. backward through this chunk only: the carried state is a plain NumPy array, so nothing
   flows into the previous chunk (``dstate=None``, and ``lstm.state_grad`` is ignored);
3. clip the global gradient norm (``pyrnn.clip_grad_norm``) and take an Adam step.

Run it with ``python -m pyrnn.examples.tbptt``; it prints the loss falling and finishes in a
few seconds. ``main()`` returns the per-chunk losses.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pyrnn.clip import clip_grad_norm
from pyrnn.layers import LSTM
from pyrnn.nn import Embedding, Linear, softmax_cross_entropy
from pyrnn.optim import Adam

DELAY = 3


def main(steps: int = 300, chunk: int = 10, batch: int = 32, vocab: int = 5, hidden: int = 32,
         lr: float = 1e-2, max_norm: float = 1.0, seed: int = 0, verbose: bool = True):
    """Train for ``steps`` chunks; returns the list of per-chunk losses."""
    rng = np.random.default_rng(seed)
    embed = Embedding(vocab, 8, seed=seed)
    # Time-major x [T, B, 8]. One thread: at this size a step's work is a few microseconds,
    # less than the cost of synchronising OpenMP threads (and far less on a busy machine).
    lstm = LSTM(8, hidden, seed=seed + 1, num_threads=1)
    head = Linear(hidden, vocab, seed=seed + 2)
    modules = {"embed": embed, "lstm": lstm, "head": head}
    params = {f"{m}.{k}": p for m, mod in modules.items() for k, p in mod.params.items()}
    grads = {f"{m}.{k}": g for m, mod in modules.items() for k, g in mod.grads.items()}
    opt = Adam(params, lr=lr)

    state = None                                   # (h, c) carried from chunk to chunk
    history = rng.integers(vocab, size=(DELAY, batch))  # the last DELAY symbols seen
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        tokens = rng.integers(vocab, size=(chunk, batch))
        seen = np.concatenate([history, tokens])   # [DELAY + chunk, B]
        targets = seen[:chunk]                     # symbol DELAY steps before each token
        history = seen[-DELAY:]
        if step == 0:                              # the very first DELAY targets do not exist
            mask = np.arange(chunk)[:, None] >= DELAY
        else:
            mask = None

        for mod in modules.values():
            mod.zero_grad()
        x = embed(tokens)                          # [T, B, 8]
        y, state = lstm(x, state)                  # start from the carried state
        logits = head(y)                           # [T, B, vocab]
        loss, dlogits = softmax_cross_entropy(logits, targets, mask=mask)
        dy = head.backward(dlogits)
        dx = lstm.backward(dy)                     # no dstate: the chunk ends here
        embed.backward(dx)
        # `state` is just arrays: the next chunk starts from it, nothing flows back into
        # this chunk (the truncation of TBPTT).
        clip_grad_norm(grads, max_norm)
        opt.step(grads)
        losses.append(loss)
        if verbose and (step % max(1, steps // 10) == 0 or step == steps - 1):
            print(f"chunk {step:4d}  loss {loss:.4f}")
    if verbose:
        print(f"{steps} chunks of {chunk} steps in {time.perf_counter() - start:.2f} s")
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, chunk=args.chunk, seed=args.seed)
