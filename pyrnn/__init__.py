"""pyrnn: fused LSTM, GRU and Elman-RNN kernels (C++/OpenMP) with backpropagation through
time, used from NumPy."""
from . import _core, functional

__version__ = "0.1.0"

__all__ = ["functional", "__version__"]
