"""A minimal base class for NumPy layers: parameters, gradients and state dicts.

There is no autograd engine. A layer keeps its parameters in ``params`` and the
matching gradient buffers in ``grads`` (same keys, shapes and dtypes); its
``backward`` accumulates into ``grads``. Optimizers update ``params`` in place.

Modules pickle and deep-copy as their configuration, parameters and gradients (so they can be
shipped to worker processes); what a forward saved for its backward and handles to device
memory are not carried over (``_transient``).
"""
from __future__ import annotations

from collections import namedtuple
from typing import Dict, Mapping

import numpy as np

__all__ = ["Module", "StateDictError", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(KeyError, ValueError):
    """A state dict does not fit a module; catchable as ``KeyError`` or ``ValueError``."""

    def __str__(self) -> str:  # KeyError would otherwise print the message quoted
        return str(self.args[0]) if self.args else ""


class Module:
    """Base of all layers: ``params``/``grads`` dicts, ``zero_grad``, state dicts, train/eval."""

    # Attributes reset to these values in a pickled or deep-copied module: a forward's tape
    # (what backward needs) and handles to memory that is not the process's own.
    _transient: Mapping[str, object] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(self._transient)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._restore_transient()

    def _restore_transient(self) -> None:
        """Rebuild what ``_transient`` dropped, after unpickling (layers on a GPU re-upload)."""

    def __init__(self) -> None:
        self.params: Dict[str, np.ndarray] = {}
        self.grads: Dict[str, np.ndarray] = {}
        self.training = True

    def add_param(self, name: str, value) -> np.ndarray:
        """Register a parameter array under ``name`` with a zeroed gradient buffer."""
        array = np.asarray(value, order="C")
        self.params[name] = array
        self.grads[name] = np.zeros_like(array)
        return array

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def parameters(self) -> Dict[str, np.ndarray]:
        """The live parameter dict (arrays are shared, not copied)."""
        return self.params

    def zero_grad(self) -> None:
        """Set every gradient buffer to zero in place."""
        for grad in self.grads.values():
            grad.fill(0)

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``self.training``); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Set inference mode; returns self."""
        return self.train(False)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of all parameters, keyed by name."""
        return {name: value.copy() for name, value in self.params.items()}

    def load_state_dict(self, state: Mapping, strict: bool = True) -> IncompatibleKeys:
        """Copy ``state`` into the parameters in place, cast to each parameter's dtype.

        Values may be any array-likes (NumPy arrays, ``tensor.numpy()``, lists).
        Wrong shapes always raise; missing or unexpected keys raise when ``strict``.
        All problems are reported together in one :class:`StateDictError`
        (a ``KeyError`` and a ``ValueError``); nothing is written when it raises.
        """
        arrays = {name: np.asarray(value) for name, value in state.items()}
        missing = [name for name in self.params if name not in arrays]
        unexpected = [name for name in arrays if name not in self.params]
        wrong_shape = [
            f"{name}: expected {self.params[name].shape}, got {arrays[name].shape}"
            for name in self.params
            if name in arrays and arrays[name].shape != self.params[name].shape
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if wrong_shape:
            problems.append(f"wrong shapes [{'; '.join(wrong_shape)}]")
        if problems:
            raise StateDictError(
                f"cannot load state dict into {type(self).__name__}: " + ", ".join(problems)
            )
        for name, param in self.params.items():
            if name in arrays:
                param[...] = arrays[name].astype(param.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"
