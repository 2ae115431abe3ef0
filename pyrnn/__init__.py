"""pyrnn: fused LSTM, GRU and Elman-RNN kernels (C++/OpenMP) with backpropagation through
time, used from NumPy."""
from . import _core, cells, cuda, functional, layers, nn, optim, reference
from ._config import _apply_flush_env, flush_denormals, set_flush_denormals, show_config
from .cells import GRUCell, LSTMCell, RNNCell
from .clip import clip_grad_norm, clip_grad_value
from .layers import GRU, LSTM, RNN
from .module import Module
from .serialization import load, save

__version__ = "0.1.0"

_apply_flush_env()

__all__ = [
    "functional", "reference", "cuda", "layers", "LSTM", "GRU", "RNN", "cells", "LSTMCell",
    "GRUCell", "RNNCell", "nn", "optim", "Module",
    "clip_grad_norm", "clip_grad_value", "save", "load", "show_config",
    "set_flush_denormals", "flush_denormals", "__version__",
]
