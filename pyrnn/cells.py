"""Single-step cells ``LSTMCell``, ``GRUCell`` and ``RNNCell`` with ``torch.nn``'s constructor,
parameter names, call convention and math, for streaming, generation and online inference.

A call is one step: ``h, c = lstm_cell(x, (h, c))``, ``h = gru_cell(x, h)``, with ``x [B, I]``
(or ``[I]`` unbatched, as torch) and the state optional (zeros). It runs on the calling thread
through one C++ call that validates, computes and returns: at batch 1 the cost is the step's
arithmetic plus about a microsecond. Cells are for inference; to train, run the sequence layers
(:mod:`pyrnn.layers`), which backpropagate through time. ``load_state_dict`` takes a torch
cell's ``state_dict()`` converted to NumPy, and ``pyrnn.LSTM`` weights work unchanged (same
layout, see :meth:`from_layer`). Downstream C or Cython code reaches the same step through
``pyrnn/capi.pxd``, without the GIL.
"""
from __future__ import annotations

import numpy as np

from . import _core
from . import _validate as v
from .layers import _positive_int
from .module import Module

__all__ = ["LSTMCell", "GRUCell", "RNNCell"]

_KIND = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}


class _CellBase(Module):
    _gates = 1
    _has_c = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=np.float32,
                 seed=None) -> None:
        super().__init__()
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.dtype = np.dtype(dtype)
        if self.dtype not in v.FLOAT_DTYPES:
            raise TypeError(f"dtype: expected float32 or float64, got {self.dtype}")
        self.seed = seed
        # As torch.nn.RNNCellBase.reset_parameters: every parameter U(-k, k), k = 1/sqrt(H).
        rng = np.random.default_rng(seed)
        G, H, k = self._gates, self.hidden_size, 1.0 / np.sqrt(self.hidden_size)
        shapes = [("weight_ih", (G * H, self.input_size)), ("weight_hh", (G * H, H))]
        if self.bias:
            shapes += [("bias_ih", (G * H,)), ("bias_hh", (G * H,))]
        for name, shape in shapes:
            self.add_param(name, rng.uniform(-k, k, size=shape).astype(self.dtype))
        self.training = False

    # The parameters as attributes, as torch.nn cells have them (the arrays in ``params``).
    @property
    def weight_ih(self) -> np.ndarray:
        return self.params["weight_ih"]

    @property
    def weight_hh(self) -> np.ndarray:
        return self.params["weight_hh"]

    @property
    def bias_ih(self):
        return self.params.get("bias_ih")

    @property
    def bias_hh(self):
        return self.params.get("bias_hh")

    def train(self, mode: bool = True):
        if mode:
            raise NotImplementedError(
                f"{type(self).__name__} is inference-only; train the sequence layers "
                "(pyrnn.LSTM/GRU/RNN, which backpropagate through time) and load their weights "
                "with from_layer()")
        self.training = False
        return self

    @classmethod
    def _from_weights(cls, layer, kwargs, layer_index: int, direction: int):
        suffix = f"_l{layer_index}" + ("_reverse" if direction else "")
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if layer.bias else [])
        try:
            state = {n: layer.params[n + suffix] for n in names}
        except KeyError:
            raise ValueError(f"from_layer: {type(layer).__name__} has no layer {layer_index} "
                             f"direction {direction}") from None
        in_size = state["weight_ih"].shape[1]
        cell = cls(in_size, layer.hidden_size, bias=layer.bias, dtype=layer.dtype, **kwargs)
        cell.load_state_dict(state)
        return cell

    def _step(self, x, h, c):
        p = self.params
        args = (p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
        if type(x) is np.ndarray and x.ndim == 2:
            try:  # the fast path: C++ validates, and raises on anything it cannot take
                return _core.cell_step(self._kind, x, h, c, *args)
            except (TypeError, ValueError):
                pass  # explained (or repaired) below, off the fast path
        x, h, c, unbatched = self._checked(x, h, c)
        h_out, c_out = _core.cell_step(self._kind, x, h, c, *args)
        if unbatched:
            return h_out[0], (None if c_out is None else c_out[0])
        return h_out, c_out

    def _checked(self, x, h, c):
        """x, h, c as C-contiguous arrays of the cell's dtype and shapes, or a clear error."""
        if not isinstance(x, np.ndarray):  # lists and scalars take the cell's dtype
            x = np.asarray(x, dtype=self.dtype)
        x = v.as_float_array("x", x)
        if x.dtype != self.dtype:
            raise TypeError(f"x: dtype {x.dtype} does not match the cell's dtype {self.dtype}")
        unbatched = x.ndim == 1  # [I], as torch.nn cells accept
        if x.ndim not in (1, 2):
            raise ValueError(f"x: expected [B, I] or [I], got shape {v.shape_str(x.shape)}")
        if unbatched:
            x = x[None, :]
        B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"x: expected {self.input_size} input features (input_size), got "
                             f"shape {v.shape_str(x.shape[1:] if unbatched else x.shape)}")
        if B == 0:
            raise ValueError("x: empty batch (B = 0)")
        want = (self.hidden_size,) if unbatched else (B, self.hidden_size)
        states = []
        for name, s in (("h", h), ("c", c)):
            if s is not None:
                if not isinstance(s, np.ndarray):
                    s = np.asarray(s, dtype=self.dtype)
                s = v.as_float_array(name, s, self.dtype)
                v.expect_shape(name, s, want, "[B, H]" if not unbatched else "[H]")
                s = s.reshape(B, self.hidden_size)
            states.append(s)
        return x, states[0], states[1], unbatched

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class LSTMCell(_CellBase):
    """One LSTM step (torch.nn.LSTMCell): gates i, f, g, o; ``h, c = cell(x, (h, c))``."""

    _gates = 4
    _kind = _KIND["lstm"]

    def forward(self, x, state=None):
        if state is None:
            return self._step(x, None, None)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError("LSTMCell: state must be a tuple (h, c) of [B, H] arrays, or None")
        return self._step(x, state[0], state[1])

    @classmethod
    def from_layer(cls, layer, layer_index: int = 0, direction: int = 0):
        """The cell of one layer and direction of a plain ``pyrnn.LSTM`` (weights copied)."""
        if getattr(layer, "_cell", "lstm") != "lstm" or getattr(layer, "proj_size", 0):
            raise ValueError("from_layer: only a plain LSTM (no peephole, coupled or "
                             "projection) has an LSTMCell")
        return cls._from_weights(layer, {}, layer_index, direction)


class GRUCell(_CellBase):
    """One GRU step (torch.nn.GRUCell): gates r, z, n; ``h = cell(x, h)``."""

    _gates = 3
    _kind = _KIND["gru"]

    def forward(self, x, state=None):
        return self._step(x, state, None)[0]

    @classmethod
    def from_layer(cls, layer, layer_index: int = 0, direction: int = 0):
        """The cell of one layer and direction of a ``pyrnn.GRU`` (weights copied)."""
        if getattr(layer, "_cell", "gru") != "gru":
            raise ValueError("from_layer: only a plain GRU (reset after the product, as "
                             "torch) has a GRUCell")
        return cls._from_weights(layer, {}, layer_index, direction)


class RNNCell(_CellBase):
    """One Elman step (torch.nn.RNNCell): ``h = act(W_ih x + b_ih + W_hh h + b_hh)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=np.float32, seed=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._kind = _KIND["rnn_" + nonlinearity]
        super().__init__(input_size, hidden_size, bias, dtype, seed)

    def forward(self, x, state=None):
        return self._step(x, state, None)[0]

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra

    @classmethod
    def from_layer(cls, layer, layer_index: int = 0, direction: int = 0):
        """The cell of one layer and direction of a ``pyrnn.RNN`` (weights copied)."""
        return cls._from_weights(layer, {"nonlinearity": layer.nonlinearity}, layer_index,
                                 direction)
