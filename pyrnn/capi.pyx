# cython: language_level=3
"""pyrnn's C-level API (see capi.pxd): ``from pyrnn cimport capi`` in Cython code.

This module reads pyrnn._core's table of C functions (csrc/capi/pyrnn_capi.h) from its capsule
once, at import, and exports the functions of capi.pxd, which forward to it.
"""
from cpython.pycapsule cimport PyCapsule_Import
from libc.stdint cimport int64_t

cdef extern from "capi/pyrnn_capi.h":
    int C_VERSION "PYRNN_CAPI_VERSION"
    const char* C_CAPSULE "PYRNN_CAPI_CAPSULE"
    int C_OK "PYRNN_OK"
    int C_ERR_ARGUMENT "PYRNN_ERR_ARGUMENT"
    int C_ERR_OVERLAP "PYRNN_ERR_OVERLAP"
    int C_ERR_MEMORY "PYRNN_ERR_MEMORY"
    int C_ERR_INTERNAL "PYRNN_ERR_INTERNAL"
    int C_CELL_LSTM "PYRNN_CELL_LSTM"
    int C_CELL_GRU "PYRNN_CELL_GRU"
    int C_CELL_RNN_TANH "PYRNN_CELL_RNN_TANH"
    int C_CELL_RNN_RELU "PYRNN_CELL_RNN_RELU"

    ctypedef struct pyrnn_capi:
        int version
        const char* (*isa)() noexcept nogil
        const char* (*status_message)(int) noexcept nogil
        int64_t (*cell_work_size)(int, int64_t, int64_t) noexcept nogil
        int (*cell_step_f32)(int, int64_t, int64_t, int64_t, const float*, int64_t,
                             const float*, int64_t, const float*, int64_t, const float*,
                             const float*, const float*, const float*, float*, int64_t, float*,
                             int64_t, float*) noexcept nogil
        int (*cell_step_f64)(int, int64_t, int64_t, int64_t, const double*, int64_t,
                             const double*, int64_t, const double*, int64_t, const double*,
                             const double*, const double*, const double*, double*, int64_t,
                             double*, int64_t, double*) noexcept nogil
        int (*sequence_f32)(int, int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                            const float*, const float*, const float*, const float*,
                            const float*, int, int, float*, float*, float*) noexcept nogil
        int (*sequence_f64)(int, int64_t, int64_t, int64_t, int64_t, const double*,
                            const double*, const double*, const double*, const double*,
                            const double*, const double*, int, int, double*, double*,
                            double*) noexcept nogil

# capi.pxd's constants are what cimporting modules compile against: they must be the header's.
if (PYRNN_OK, PYRNN_ERR_ARGUMENT, PYRNN_ERR_OVERLAP, PYRNN_ERR_MEMORY, PYRNN_ERR_INTERNAL,
        PYRNN_CELL_LSTM, PYRNN_CELL_GRU, PYRNN_CELL_RNN_TANH, PYRNN_CELL_RNN_RELU) != (
        C_OK, C_ERR_ARGUMENT, C_ERR_OVERLAP, C_ERR_MEMORY, C_ERR_INTERNAL, C_CELL_LSTM,
        C_CELL_GRU, C_CELL_RNN_TANH, C_CELL_RNN_RELU):
    raise ImportError("pyrnn.capi: capi.pxd's constants differ from csrc/capi/pyrnn_capi.h")

# PyCapsule_Import imports pyrnn._core (and so chooses the kernels' build) if need be.
cdef const pyrnn_capi* _api = <const pyrnn_capi*> PyCapsule_Import(C_CAPSULE, 0)
if _api.version != C_VERSION:
    raise ImportError(f"pyrnn.capi: pyrnn._core publishes C-API version {_api.version}, "
                      f"this module was built for {C_VERSION}: reinstall pyrnn")

VERSION = C_VERSION
STATUS = {"OK": PYRNN_OK, "ERR_ARGUMENT": PYRNN_ERR_ARGUMENT, "ERR_OVERLAP": PYRNN_ERR_OVERLAP,
          "ERR_MEMORY": PYRNN_ERR_MEMORY, "ERR_INTERNAL": PYRNN_ERR_INTERNAL}
CELL = {"lstm": PYRNN_CELL_LSTM, "gru": PYRNN_CELL_GRU, "rnn_tanh": PYRNN_CELL_RNN_TANH,
        "rnn_relu": PYRNN_CELL_RNN_RELU}


def isa_name():
    """The instruction-set build the C-API's kernels run (the same as pyrnn._core.isa())."""
    return isa().decode()


def message(int status):
    """What a status means."""
    return status_message(status).decode()


cdef const char* isa() noexcept nogil:
    return _api.isa()


cdef const char* status_message(int status) noexcept nogil:
    return _api.status_message(status)


cdef int64_t cell_work_size(int cell, int64_t B, int64_t H) noexcept nogil:
    return _api.cell_work_size(cell, B, H)


cdef int cell_step_f32(int cell, int64_t B, int64_t I, int64_t H,
                       const float* x, int64_t ldx, const float* h, int64_t ldh,
                       const float* c, int64_t ldc, const float* w_ih, const float* w_hh,
                       const float* b_ih, const float* b_hh, float* h_out, int64_t ldh_out,
                       float* c_out, int64_t ldc_out, float* work) noexcept nogil:
    return _api.cell_step_f32(cell, B, I, H, x, ldx, h, ldh, c, ldc, w_ih, w_hh, b_ih, b_hh,
                              h_out, ldh_out, c_out, ldc_out, work)


cdef int cell_step_f64(int cell, int64_t B, int64_t I, int64_t H,
                       const double* x, int64_t ldx, const double* h, int64_t ldh,
                       const double* c, int64_t ldc, const double* w_ih, const double* w_hh,
                       const double* b_ih, const double* b_hh, double* h_out, int64_t ldh_out,
                       double* c_out, int64_t ldc_out, double* work) noexcept nogil:
    return _api.cell_step_f64(cell, B, I, H, x, ldx, h, ldh, c, ldc, w_ih, w_hh, b_ih, b_hh,
                              h_out, ldh_out, c_out, ldc_out, work)


cdef int sequence_f32(int cell, int64_t T, int64_t B, int64_t I, int64_t H, const float* x,
                      const float* w_ih, const float* w_hh, const float* b_ih,
                      const float* b_hh, const float* h0, const float* c0, int reverse,
                      int num_threads, float* y, float* h_n, float* c_n) noexcept nogil:
    return _api.sequence_f32(cell, T, B, I, H, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse,
                             num_threads, y, h_n, c_n)


cdef int sequence_f64(int cell, int64_t T, int64_t B, int64_t I, int64_t H, const double* x,
                      const double* w_ih, const double* w_hh, const double* b_ih,
                      const double* b_hh, const double* h0, const double* c0, int reverse,
                      int num_threads, double* y, double* h_n, double* c_n) noexcept nogil:
    return _api.sequence_f64(cell, T, B, I, H, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse,
                             num_threads, y, h_n, c_n)
