"""The character-level language model: embedding -> stacked LSTM/GRU/RNN -> linear -> softmax,
and its checkpoints (``.npz`` without pickle: weights, vocabulary as code points, config as
JSON bytes)."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

import numpy as np

from .. import nn
from ..serialization import load as _load_npz
from ..serialization import save as _save_npz
from .data import CharLMError, Vocab

__all__ = ["CharLM", "CELLS", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CELLS = ("lstm", "gru", "rnn")
CHECKPOINT_FORMAT = "pyrnn-charlm/1"


def _layer_class(cell: str):
    try:
        from .. import layers
    except ImportError as exc:  # pragma: no cover - only while layers.py is missing
        raise CharLMError(f"pyrnn.layers is not available ({exc})") from None
    return {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.RNN}[cell]


class CharLM:
    """``logits[T, B, V] = Linear(RNN(Embedding(idx[T, B])))``.

    ``params``/``grads`` are flat dicts (``embed.weight``, ``rnn.weight_ih_l0``, ...,
    ``head.weight``, ``head.bias``) sharing the arrays of the three layers, so an optimizer and
    gradient clipping see the whole model. ``state`` is the recurrent layer's state
    (``(h, c)`` for LSTM, ``h`` for GRU/RNN, each ``[layers, B, hidden]``) or None for zeros.
    """

    def __init__(self, vocab_size: int, hidden: int = 256, layers: int = 2, embed: int = 64,
                 cell: str = "lstm", seed: Optional[int] = 0, num_threads: Optional[int] = None,
                 dtype=np.float32) -> None:
        if cell not in CELLS:
            raise CharLMError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        for name, value in (("vocab_size", vocab_size), ("hidden", hidden), ("layers", layers),
                            ("embed", embed)):
            if int(value) < 1:
                raise CharLMError(f"{name} must be a positive integer, got {value}")
        self.vocab_size, self.hidden, self.layers, self.embed_dim = (
            int(vocab_size), int(hidden), int(layers), int(embed))
        self.cell = cell
        self.dtype = np.dtype(dtype)
        seeds = np.random.SeedSequence(seed).spawn(3) if seed is not None else [None] * 3
        rngs = [None if s is None else int(s.generate_state(1)[0]) for s in seeds]
        self.embed = nn.Embedding(self.vocab_size, self.embed_dim, dtype=self.dtype, seed=rngs[0])
        self.rnn = _layer_class(cell)(self.embed_dim, self.hidden, self.layers, dtype=self.dtype,
                                      seed=rngs[1], num_threads=num_threads)
        self.head = nn.Linear(self.hidden, self.vocab_size, dtype=self.dtype, seed=rngs[2],
                              num_threads=num_threads)
        if cell == "lstm":
            # Forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015): remember by default.
            H = self.hidden
            for layer in range(self.layers):
                self.rnn.params[f"bias_ih_l{layer}"][H:2 * H] += 1.0
        self.params: Dict[str, np.ndarray] = {}
        self.grads: Dict[str, np.ndarray] = {}
        for prefix, module in self._modules():
            for name in module.params:
                self.params[f"{prefix}.{name}"] = module.params[name]
                self.grads[f"{prefix}.{name}"] = module.grads[name]

    def _modules(self):
        return (("embed", self.embed), ("rnn", self.rnn), ("head", self.head))

    @property
    def config(self) -> dict:
        return {"cell": self.cell, "hidden": self.hidden, "layers": self.layers,
                "embed": self.embed_dim, "vocab_size": self.vocab_size}

    @property
    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    @property
    def num_threads(self) -> Optional[int]:
        return self.rnn.num_threads

    @num_threads.setter
    def num_threads(self, value: Optional[int]) -> None:
        self.rnn.num_threads = value
        self.head.num_threads = value

    # ------------------------------------------------------------------ training interface
    def train(self, mode: bool = True) -> "CharLM":
        for _, module in self._modules():
            module.train(mode)
        return self

    def eval(self) -> "CharLM":
        return self.train(False)

    def zero_grad(self) -> None:
        for grad in self.grads.values():
            grad.fill(0)

    def forward(self, idx: np.ndarray, state=None) -> Tuple[np.ndarray, object]:
        """``idx [T, B]`` int -> ``logits [T, B, V]``, final state."""
        x = self.embed(idx)
        y, state = self.rnn(x, state)
        return self.head(y), state

    __call__ = forward

    def backward(self, dlogits: np.ndarray) -> None:
        """Accumulate all parameter gradients from ``dlogits`` (the state's gradient is not
        carried: truncated BPTT)."""
        self.embed.backward(self.rnn.backward(self.head.backward(dlogits)))

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> Dict[str, np.ndarray]:
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        missing = sorted(set(self.params) - set(state))
        unexpected = sorted(set(state) - set(self.params))
        wrong = [f"{k}: expected {self.params[k].shape}, got {np.shape(state[k])}"
                 for k in self.params if k in state and np.shape(state[k]) != self.params[k].shape]
        if missing or unexpected or wrong:
            raise CharLMError("checkpoint weights do not fit the model: "
                              f"missing {missing}, unexpected {unexpected}, wrong shapes {wrong}")
        for name, param in self.params.items():
            param[...] = np.asarray(state[name]).astype(param.dtype, copy=False)


# ---------------------------------------------------------------------- checkpoints
def save_checkpoint(path, model: CharLM, vocab: Vocab, extra: Optional[dict] = None) -> str:
    """Write weights (``param/<name>``), ``vocab`` (int32 code points) and ``config`` (JSON as
    uint8) to an ``.npz``; returns the path written."""
    config = {"format": CHECKPOINT_FORMAT, "model": model.config}
    if extra:
        config.update(extra)
    arrays = {f"param/{name}": p for name, p in model.params.items()}
    arrays["vocab"] = vocab.code_points
    arrays["config"] = np.frombuffer(json.dumps(config, sort_keys=True).encode("utf-8"),
                                     dtype=np.uint8)
    try:
        return _save_npz(path, arrays)
    except OSError as exc:
        raise CharLMError(f"cannot write checkpoint {os.fspath(path)}: {exc.strerror or exc}") \
            from None


def load_checkpoint(path, num_threads: Optional[int] = None) -> Tuple[CharLM, Vocab, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(model, vocab, config)``."""
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.isfile(path):
        raise CharLMError(f"checkpoint not found: {path}")
    try:
        arrays = _load_npz(path)
    except Exception as exc:  # zipfile/np.load errors vary
        raise CharLMError(f"{path} is not a readable .npz checkpoint ({exc})") from None
    if "config" not in arrays or "vocab" not in arrays:
        raise CharLMError(f"{path} is not a pyrnn-charlm checkpoint (no config/vocab)")
    try:
        config = json.loads(arrays["config"].astype(np.uint8).tobytes().decode("utf-8"))
        mc = config["model"]
    except (ValueError, KeyError, TypeError):
        raise CharLMError(f"{path}: unreadable config in checkpoint") from None
    if config.get("format") != CHECKPOINT_FORMAT:
        raise CharLMError(f"{path}: unknown checkpoint format {config.get('format')!r}")
    vocab = Vocab(arrays["vocab"])
    if len(vocab) != mc["vocab_size"]:
        raise CharLMError(f"{path}: vocabulary has {len(vocab)} characters, config says "
                          f"{mc['vocab_size']}")
    model = CharLM(mc["vocab_size"], mc["hidden"], mc["layers"], mc["embed"], mc["cell"],
                   seed=0, num_threads=num_threads)
    model.load_state_dict({k[len("param/"):]: v for k, v in arrays.items()
                           if k.startswith("param/")})
    return model, vocab, config
