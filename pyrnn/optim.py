"""SGD and Adam on dicts of NumPy arrays, with the update rules of ``torch.optim``.

An optimizer holds a dict of parameter arrays (or a :class:`~pyrnn.module.Module`'s
``params``) and updates them in place with ``opt.step(grads)``, where ``grads`` has the
same keys; parameters whose gradient is missing or ``None`` are skipped, as in torch.
``state_dict()`` is flat (``str`` -> number or array), so ``np.savez(path, **sd)`` or
:func:`pyrnn.save` can store it.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import numpy as np

from . import _core, _validate

__all__ = ["Optimizer", "SGD", "Adam"]


def _as_param_dict(params) -> Dict[str, np.ndarray]:
    """Validate ``params`` (a dict of arrays or an object with ``.params``)."""
    params = getattr(params, "params", params)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays or a Module, got {type(params).__name__}")
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f" or not p.flags.writeable:
            kind = getattr(p, "dtype", type(p).__name__)
            raise TypeError(
                f"params[{name!r}] must be a writeable floating NumPy array, got {kind}"
            )
    return dict(params)


def _nonnegative(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"invalid {name}: {value} (must be a finite number >= 0)")
    return value


_FUSED = (np.dtype(np.float32), np.dtype(np.float64))


def _adam_numpy(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, lr, step) -> None:
    """Adam's step in NumPy, for the arrays the fused kernel does not take (non-contiguous
    parameters, float16): the same operations in the same order."""
    exp_avg += (1.0 - beta1) * (grad - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1.0 - beta2) * grad * grad
    denom = np.sqrt(exp_avg_sq) / math.sqrt(1.0 - beta2 ** step) + eps
    param -= lr / (1.0 - beta1 ** step) * (exp_avg / denom)


class Optimizer:
    """Base class: parameter/gradient matching, per-parameter state, flat state dicts.

    Subclasses list their ``hyperparameters`` (set and validated by ``_configure``) and
    their per-parameter ``state_names``, and implement ``_update(param, grad, state)``.
    """

    hyperparameters: Tuple[str, ...] = ()
    state_names: Tuple[str, ...] = ()
    _num_threads: Optional[int] = None
    num_threads = _validate.ThreadsSetting()  # the fused updates' threads (None: all)

    def __init__(self, params, num_threads: Optional[int] = None) -> None:
        self.params = _as_param_dict(params)
        self.state: Dict[str, Dict[str, Any]] = {name: {} for name in self.params}
        self.num_threads = num_threads

    def _configure(self, **hyperparameters) -> None:
        raise NotImplementedError

    def _update(self, param: np.ndarray, grad: np.ndarray, state: Dict[str, Any]) -> None:
        raise NotImplementedError

    def step(self, grads: Mapping) -> None:
        """Update every parameter that has a gradient in ``grads``, in place."""
        for name, grad in self._matched_grads(grads):
            self._update(self.params[name], grad, self.state[name])

    def _matched_grads(self, grads: Mapping) -> Iterator[Tuple[str, np.ndarray]]:
        unknown = [name for name in grads if name not in self.params]
        if unknown:
            raise KeyError(f"grads has keys that are not parameters: {unknown}")
        for name, param in self.params.items():
            grad = grads.get(name)
            if grad is None:
                continue
            grad = np.asarray(grad, dtype=param.dtype)
            if grad.shape != param.shape:
                raise ValueError(
                    f"grads[{name!r}]: expected shape {param.shape}, got {grad.shape}"
                )
            yield name, grad

    def state_dict(self) -> Dict[str, Any]:
        """Hyperparameters and per-parameter state (``'<state>.<param>'`` keys), copied."""
        out: Dict[str, Any] = {name: getattr(self, name) for name in self.hyperparameters}
        for param_name, state in self.state.items():
            for state_name, value in state.items():
                copy = value.copy() if isinstance(value, np.ndarray) else value
                out[f"{state_name}.{param_name}"] = copy
        return out

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore hyperparameters and state (values may be 0-d arrays, e.g. from ``.npz``)."""
        hyper = {k: v for k, v in state_dict.items() if k in self.hyperparameters}
        missing = [k for k in self.hyperparameters if k not in hyper]
        if missing:
            raise KeyError(f"optimizer state dict lacks hyperparameters {missing}")
        state = self._parse_state(
            {k: v for k, v in state_dict.items() if k not in self.hyperparameters}
        )
        previous = {name: getattr(self, name) for name in self.hyperparameters}
        try:
            self._configure(**hyper)
        except (TypeError, ValueError):
            self._configure(**previous)
            raise
        self.state = state

    def _parse_state(self, entries: Mapping) -> Dict[str, Dict[str, Any]]:
        state: Dict[str, Dict[str, Any]] = {name: {} for name in self.params}
        for key, value in entries.items():
            state_name, _, param_name = key.partition(".")
            if state_name not in self.state_names or param_name not in self.params:
                raise KeyError(f"unexpected key {key!r} in optimizer state dict")
            state[param_name][state_name] = self._state_value(key, value, self.params[param_name])
        for param_name, entry in state.items():
            if entry and set(entry) != set(self.state_names):
                lacking = sorted(set(self.state_names) - set(entry))
                raise KeyError(f"incomplete state for parameter {param_name!r}: lacks {lacking}")
        return state

    @staticmethod
    def _state_value(key: str, value, param: np.ndarray):
        if key.startswith("step."):
            return int(value)
        array = np.array(value, dtype=param.dtype)
        if array.shape != param.shape:
            raise ValueError(f"{key}: expected shape {param.shape}, got {array.shape}")
        return array

    def __repr__(self) -> str:
        hyper = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparameters)
        return f"{type(self).__name__}({hyper})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    state_names = ("momentum_buffer",)

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0, *,
                 num_threads: Optional[int] = None) -> None:
        super().__init__(params, num_threads)
        self._configure(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)

    def _configure(self, lr, momentum, dampening, weight_decay, nesterov) -> None:
        self.lr = _nonnegative("learning rate", lr)
        self.momentum = _nonnegative("momentum", momentum)
        self.dampening = float(dampening)
        self.weight_decay = _nonnegative("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def _update(self, param, grad, state) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)  # copy, even 0-d
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam with bias correction and L2 weight decay, as ``torch.optim.Adam`` (amsgrad off)."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    state_names = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, *,
                 num_threads: Optional[int] = None) -> None:
        super().__init__(params, num_threads)
        self._configure(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _configure(self, lr, betas, eps, weight_decay) -> None:
        self.lr = _nonnegative("learning rate", lr)
        self.eps = _nonnegative("eps", eps)
        self.weight_decay = _nonnegative("weight_decay", weight_decay)
        betas = tuple(float(b) for b in np.ravel(betas))
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid betas: {betas} (need two values in [0, 1))")
        self.betas = betas

    def _update(self, param, grad, state) -> None:
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        # torch's operations in its order and rounding, fused into one pass (csrc/pyrnn/adam.h)
        fused = param.dtype in _FUSED and all(
            a.flags.c_contiguous and a.dtype == param.dtype for a in (param, exp_avg, exp_avg_sq))
        if not fused:
            return _adam_numpy(param, grad, exp_avg, exp_avg_sq, beta1, beta2, self.eps,
                               self.lr, step)
        grad = np.asarray(grad)  # (a 0-d parameter with weight decay makes a NumPy scalar)
        grad = grad if grad.flags.c_contiguous else grad.copy(order="C")
        _core.adam_step(param, grad, exp_avg, exp_avg_sq, 1.0 - beta1,
                        beta2, 1.0 - beta2, math.sqrt(1.0 - beta2 ** step), self.eps,
                        self.lr / (1.0 - beta1 ** step),
                        self._num_threads or _core.max_threads())
