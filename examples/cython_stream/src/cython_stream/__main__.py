"""python -m cython_stream: run the Cython streaming loops against pyrnn's Python cells.

Exits non-zero on any mismatch. Prints the time per step of each way of stepping."""
import sys
import time

import numpy as np
import pyrnn

from . import bad_call_status, run_cell, run_sequence

STEPS = 10_000


def python_loop(cell, xs):
    """Every step's h (and the last c) through pyrnn's Python cell."""
    hs, state = np.empty((len(xs),) + (xs.shape[1], cell.hidden_size), cell.dtype), None
    for t, x in enumerate(xs):
        state = cell(x, state)
        hs[t] = state[0] if isinstance(cell, pyrnn.LSTMCell) else state
    return hs, (state[1] if isinstance(cell, pyrnn.LSTMCell) else None)


def weights(cell):
    p = cell.params
    return p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]


def check(name, got, want, tol):
    err = float(np.max(np.abs(got - want)))
    ok = err <= tol
    print(f"  {name}: max |difference| {err:.2e} (tolerance {tol:.0e}) {'ok' if ok else 'MISMATCH'}")
    return ok


def main() -> int:
    rng = np.random.default_rng(0)
    ok = True
    print(f"pyrnn {pyrnn.__version__}, kernels {pyrnn._core.isa()}")

    # An LSTM cell, float32, batch 1, streamed for STEPS steps without the GIL.
    lstm = pyrnn.LSTMCell(16, 32, seed=0)
    xs = rng.standard_normal((STEPS, 1, 16)).astype(np.float32)
    start = time.perf_counter()
    hs, c = run_cell(0, xs, *weights(lstm))
    cython_s = time.perf_counter() - start
    start = time.perf_counter()
    want_hs, want_c = python_loop(lstm, xs)
    python_s = time.perf_counter() - start
    print(f"LSTM cell I=16 H=32 B=1 float32, {STEPS} steps:")
    ok &= check("h at every step", hs, want_hs, 1e-6)
    ok &= check("final c", c, want_c, 1e-6)
    print(f"  time per step: Cython nogil loop {cython_s / STEPS * 1e6:.2f} us, "
          f"pyrnn.LSTMCell from Python {python_s / STEPS * 1e6:.2f} us")

    # A GRU cell, float64, batch 3, with row strides of a contiguous batch.
    gru = pyrnn.GRUCell(5, 7, dtype=np.float64, seed=1)
    xs64 = rng.standard_normal((500, 3, 5))
    print("GRU cell I=5 H=7 B=3 float64, 500 steps:")
    ok &= check("h at every step", run_cell(1, xs64, *weights(gru))[0],
                python_loop(gru, xs64)[0], 1e-12)

    # The whole sequence in one fused-kernel call against the step-by-step loop.
    y, h_n, c_n = run_sequence(0, xs[:300], *weights(lstm))
    print("LSTM sequence call (fused kernel), 300 steps:")
    ok &= check("y", y, want_hs[:300], 1e-5)
    ok &= check("c_n", c_n, python_loop(lstm, xs[:300])[1], 1e-5)

    bad = bad_call_status()
    refused = bad["zero_h"] == bad["argument_error"] and bad["overlap"] == bad["overlap_error"]
    print(f"refused calls: H=0 -> status {bad['zero_h']}, overlapping output -> status "
          f"{bad['overlap']} {'ok' if refused else 'MISMATCH'}")
    ok &= refused
    print("all checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
