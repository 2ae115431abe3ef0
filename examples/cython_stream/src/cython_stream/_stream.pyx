# cython: language_level=3, boundscheck=False, wraparound=False
"""Streaming through pyrnn's C-level API: every loop below runs inside `with nogil:` and
allocates nothing per step (buffers are made once, before the loop)."""
import numpy as np

from libc.stdint cimport int64_t

from pyrnn cimport capi

ctypedef fused real:
    float
    double


def _check(int status):
    if status != capi.PYRNN_OK:
        raise RuntimeError(f"pyrnn C-API: {capi.status_message(status).decode()} (status {status})")


def run_cell(int cell, real[:, :, ::1] xs, real[:, ::1] w_ih, real[:, ::1] w_hh,
             real[::1] b_ih, real[::1] b_hh):
    """Step `cell` over xs [T, B, I] from a zero state, one C-API call per step.

    Returns (hs [T, B, H], c [B, H] or None): every step's state, and the LSTM's final c."""
    cdef int64_t T = xs.shape[0], B = xs.shape[1], I = xs.shape[2], H = w_hh.shape[1], t
    dtype = np.float32 if real is float else np.float64
    hs_arr = np.empty((T, B, H), dtype)
    cs_arr = np.zeros((2, B, H), dtype)  # ping-pong: a step's output must not be its input
    cdef int64_t work_size = capi.cell_work_size(cell, B, H)
    if work_size < 0:
        _check(capi.PYRNN_ERR_ARGUMENT)
    work_arr = np.empty(work_size, dtype)
    cdef real[:, :, ::1] hs = hs_arr
    cdef real[:, :, ::1] cs = cs_arr
    cdef real[::1] work = work_arr
    cdef bint lstm = cell == capi.PYRNN_CELL_LSTM
    cdef real* h
    cdef real* c
    cdef real* c_out
    cdef const real* bi = &b_ih[0] if b_ih is not None else NULL
    cdef const real* bh = &b_hh[0] if b_hh is not None else NULL
    cdef int status = capi.PYRNN_OK
    with nogil:
        for t in range(T):
            h = &hs[t - 1, 0, 0] if t > 0 else NULL
            c = &cs[(t + 1) % 2, 0, 0] if lstm and t > 0 else NULL
            c_out = &cs[t % 2, 0, 0] if lstm else NULL
            if real is float:
                status = capi.cell_step_f32(cell, B, I, H, &xs[t, 0, 0], I, h, H, c, H,
                                            &w_ih[0, 0], &w_hh[0, 0], bi, bh, &hs[t, 0, 0], H,
                                            c_out, H, &work[0])
            else:
                status = capi.cell_step_f64(cell, B, I, H, &xs[t, 0, 0], I, h, H, c, H,
                                            &w_ih[0, 0], &w_hh[0, 0], bi, bh, &hs[t, 0, 0], H,
                                            c_out, H, &work[0])
            if status != capi.PYRNN_OK:
                break
    _check(status)
    return hs_arr, (cs_arr[(T - 1) % 2].copy() if lstm else None)


def run_sequence(int cell, real[:, :, ::1] xs, real[:, ::1] w_ih, real[:, ::1] w_hh,
                 real[::1] b_ih, real[::1] b_hh, int num_threads=1):
    """The same over the whole sequence in one fused-kernel call. Returns (y, h_n, c_n)."""
    cdef int64_t T = xs.shape[0], B = xs.shape[1], I = xs.shape[2], H = w_hh.shape[1]
    dtype = np.float32 if real is float else np.float64
    cdef bint lstm = cell == capi.PYRNN_CELL_LSTM
    y_arr, h_arr = np.empty((T, B, H), dtype), np.empty((B, H), dtype)
    c_arr = np.empty((B, H), dtype) if lstm else None
    cdef real[:, :, ::1] y = y_arr
    cdef real[:, ::1] h_n = h_arr
    cdef real[:, ::1] c_view
    cdef real* c_n = NULL
    if lstm:
        c_view = c_arr
        c_n = &c_view[0, 0]
    cdef const real* bi = &b_ih[0] if b_ih is not None else NULL
    cdef const real* bh = &b_hh[0] if b_hh is not None else NULL
    cdef int status
    with nogil:
        if real is float:
            status = capi.sequence_f32(cell, T, B, I, H, &xs[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                       bi, bh, NULL, NULL, 0, num_threads, &y[0, 0, 0],
                                       &h_n[0, 0], c_n)
        else:
            status = capi.sequence_f64(cell, T, B, I, H, &xs[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                       bi, bh, NULL, NULL, 0, num_threads, &y[0, 0, 0],
                                       &h_n[0, 0], c_n)
    _check(status)
    return y_arr, h_arr, c_arr


def bad_call_status():
    """The statuses of two refused calls: H = 0, and an output that overlaps the input."""
    cdef float buf[64]
    cdef int zero_h, overlap
    with nogil:
        zero_h = capi.cell_step_f32(capi.PYRNN_CELL_RNN_TANH, 1, 1, 0, buf, 1, NULL, 0, NULL, 0,
                                    buf, buf, NULL, NULL, buf + 8, 0, NULL, 0, buf + 16)
        overlap = capi.cell_step_f32(capi.PYRNN_CELL_RNN_TANH, 1, 2, 2, buf, 2, NULL, 0, NULL,
                                     0, buf + 8, buf + 16, NULL, NULL, buf + 1, 2, NULL, 0,
                                     buf + 32)
    return {"zero_h": zero_h, "overlap": overlap,
            "argument_error": capi.PYRNN_ERR_ARGUMENT, "overlap_error": capi.PYRNN_ERR_OVERLAP}
