/* pyrnn's C-level API: plain C functions behind a table that pyrnn._core publishes in the
   capsule "pyrnn._core._C_API". They run the same kernels, through the same instruction-set
   dispatch, as the Python API; they take the GIL never, allocate nothing in a cell step,
   throw nothing, and report problems as a status. Cython code reaches them through
   pyrnn/capi.pxd (`from pyrnn cimport capi`), so a downstream wheel never links against
   pyrnn's libraries. Legend (DESIGN.md): T steps, B batch, I inputs, H units, G gates
   (LSTM 4, GRU 3, RNN 1); PyTorch's parameter layout and gate order. */
#ifndef PYRNN_CAPI_H
#define PYRNN_CAPI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PYRNN_CAPI_VERSION 1
#define PYRNN_CAPI_CAPSULE "pyrnn._core._C_API"

/* Statuses. */
#define PYRNN_OK 0
#define PYRNN_ERR_ARGUMENT 1 /* a size, stride, pointer or cell kind is invalid */
#define PYRNN_ERR_OVERLAP 2  /* an output overlaps an input */
#define PYRNN_ERR_MEMORY 3   /* a sequence call could not get its scratch memory */
#define PYRNN_ERR_INTERNAL 4 /* anything else (a bug: please report it) */

/* Cells (the plain ones, as torch.nn's). */
#define PYRNN_CELL_LSTM 0
#define PYRNN_CELL_GRU 1
#define PYRNN_CELL_RNN_TANH 2
#define PYRNN_CELL_RNN_RELU 3

typedef struct pyrnn_capi {
  int version; /* PYRNN_CAPI_VERSION of the pyrnn that made the table */
  const char* (*isa)(void);               /* the kernels' instruction-set build */
  const char* (*status_message)(int status);
  /* Elements of scratch (`work`) a cell step of this size needs, or -1 for a bad argument. */
  int64_t (*cell_work_size)(int cell, int64_t B, int64_t H);
  /* One step on the calling thread: h_out, c_out <- cell(x, h, c). Rows of each [B, *] array
     are ld* elements apart. h and c may be NULL (zeros); c, c_out are for the LSTM only (NULL
     otherwise); b_ih and b_hh both or neither. Outputs must not overlap inputs. */
  int (*cell_step_f32)(int cell, int64_t B, int64_t I, int64_t H, const float* x, int64_t ldx,
                       const float* h, int64_t ldh, const float* c, int64_t ldc,
                       const float* w_ih, const float* w_hh, const float* b_ih,
                       const float* b_hh, float* h_out, int64_t ldh_out, float* c_out,
                       int64_t ldc_out, float* work);
  int (*cell_step_f64)(int cell, int64_t B, int64_t I, int64_t H, const double* x, int64_t ldx,
                       const double* h, int64_t ldh, const double* c, int64_t ldc,
                       const double* w_ih, const double* w_hh, const double* b_ih,
                       const double* b_hh, double* h_out, int64_t ldh_out, double* c_out,
                       int64_t ldc_out, double* work);
  /* A whole sequence (inference), C-contiguous arrays: x [T, B, I] -> y [T, B, H],
     h_n [B, H], c_n [B, H] (LSTM only, else NULL); h0, c0 [B, H] or NULL (zeros); `reverse`
     runs time backwards; up to num_threads OpenMP threads. */
  int (*sequence_f32)(int cell, int64_t T, int64_t B, int64_t I, int64_t H, const float* x,
                      const float* w_ih, const float* w_hh, const float* b_ih,
                      const float* b_hh, const float* h0, const float* c0, int reverse,
                      int num_threads, float* y, float* h_n, float* c_n);
  int (*sequence_f64)(int cell, int64_t T, int64_t B, int64_t I, int64_t H, const double* x,
                      const double* w_ih, const double* w_hh, const double* b_ih,
                      const double* b_hh, const double* h0, const double* c0, int reverse,
                      int num_threads, double* y, double* h_n, double* c_n);
} pyrnn_capi;

#ifdef __cplusplus
}
#endif

#endif /* PYRNN_CAPI_H */
