# cython: language_level=3
# pyrnn's C-level API for Cython code: `from pyrnn cimport capi`.
#
# Every function is `noexcept nogil`: call it with the GIL released, from any thread. A cell
# step allocates nothing and builds nothing (scratch comes from the caller, sized by
# cell_work_size); it runs on the calling thread. A sequence call runs the fused kernel on up to
# num_threads OpenMP threads. They return a status (PYRNN_OK or an error, see status_message)
# instead of raising. The same kernels and instruction-set build as the Python API run behind
# them (pyrnn._core's table, read once when pyrnn.capi is imported); a downstream module links
# against nothing of pyrnn's and needs only this file when it is compiled.
#
# Legend (DESIGN.md): T steps, B batch, I inputs, H units, G gates (LSTM 4, GRU 3, RNN 1);
# weights in PyTorch's layout: w_ih [G*H, I], w_hh [G*H, H], b_ih and b_hh [G*H] (both or NULL).
from libc.stdint cimport int64_t

cdef enum:
    PYRNN_OK = 0
    PYRNN_ERR_ARGUMENT = 1  # a size, stride, pointer or cell kind is invalid
    PYRNN_ERR_OVERLAP = 2   # an output overlaps an input
    PYRNN_ERR_MEMORY = 3    # a sequence call could not get its scratch memory
    PYRNN_ERR_INTERNAL = 4

cdef enum:
    PYRNN_CELL_LSTM = 0
    PYRNN_CELL_GRU = 1
    PYRNN_CELL_RNN_TANH = 2
    PYRNN_CELL_RNN_RELU = 3

# The kernels' instruction-set build ("avx512", "avx2", "baseline").
cdef const char* isa() noexcept nogil
cdef const char* status_message(int status) noexcept nogil

# Elements of scratch a cell step needs (in the step's dtype), or -1 for a bad argument.
cdef int64_t cell_work_size(int cell, int64_t B, int64_t H) noexcept nogil

# One step: h_out [B, H], c_out [B, H] <- cell(x [B, I], h [B, H], c [B, H]). Row b of each
# array starts ld* elements after row b-1. h, c may be NULL (zeros); c and c_out are for the
# LSTM only (NULL otherwise). Outputs must not overlap inputs (ping-pong two state buffers).
cdef int cell_step_f32(int cell, int64_t B, int64_t I, int64_t H,
                       const float* x, int64_t ldx, const float* h, int64_t ldh,
                       const float* c, int64_t ldc, const float* w_ih, const float* w_hh,
                       const float* b_ih, const float* b_hh, float* h_out, int64_t ldh_out,
                       float* c_out, int64_t ldc_out, float* work) noexcept nogil
cdef int cell_step_f64(int cell, int64_t B, int64_t I, int64_t H,
                       const double* x, int64_t ldx, const double* h, int64_t ldh,
                       const double* c, int64_t ldc, const double* w_ih, const double* w_hh,
                       const double* b_ih, const double* b_hh, double* h_out, int64_t ldh_out,
                       double* c_out, int64_t ldc_out, double* work) noexcept nogil

# A whole sequence (inference), C-contiguous: x [T, B, I] -> y [T, B, H], h_n [B, H],
# c_n [B, H] (LSTM only, else NULL); h0, c0 [B, H] or NULL (zeros); reverse != 0 runs time
# backwards.
cdef int sequence_f32(int cell, int64_t T, int64_t B, int64_t I, int64_t H, const float* x,
                      const float* w_ih, const float* w_hh, const float* b_ih,
                      const float* b_hh, const float* h0, const float* c0, int reverse,
                      int num_threads, float* y, float* h_n, float* c_n) noexcept nogil
cdef int sequence_f64(int cell, int64_t T, int64_t B, int64_t I, int64_t H, const double* x,
                      const double* w_ih, const double* w_hh, const double* b_ih,
                      const double* b_hh, const double* h0, const double* c0, int reverse,
                      int num_threads, double* y, double* h_n, double* c_n) noexcept nogil
