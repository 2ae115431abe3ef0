"""An example downstream package: Cython code that cimports pyrnn's C-level API and runs
recurrent cells and sequences on its own buffers with the GIL released (see _stream.pyx)."""
from ._stream import bad_call_status, run_cell, run_sequence

__all__ = ["run_cell", "run_sequence", "bad_call_status"]
