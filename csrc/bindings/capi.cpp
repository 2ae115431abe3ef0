// The C-level API's functions (csrc/capi/pyrnn_capi.h) and the capsule that publishes them.
// Each checks its arguments, runs the dispatched kernels and turns every failure into a status.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <new>

#include "capi/pyrnn_capi.h"
#include "dispatch.h"
#include "pyrnn/common.h"

namespace py = pybind11;

namespace pyrnn {
namespace bind {
namespace {

bool plain_cell(int cell) {
  return cell >= 0 && cell < kCellKindCount && is_plain_cell(static_cast<CellKind>(cell));
}

// The bytes a [rows, width] array with row stride ld spans, from p.
template <typename T>
struct Span {
  const char* begin = nullptr;
  const char* end = nullptr;
  Span() = default;
  Span(const T* p, int64_t rows, int64_t width, int64_t ld)
      : begin(reinterpret_cast<const char*>(p)),
        end(p ? reinterpret_cast<const char*>(p + (rows - 1) * ld + width) : nullptr) {}
  bool overlaps(const Span& o) const {
    return begin && o.begin && begin < o.end && o.begin < end;
  }
};

// A row stride is valid when rows do not overlap each other.
bool stride_ok(int64_t B, int64_t width, int64_t ld) { return B == 1 || ld >= width; }

const char* isa() { return kernels().isa; }

const char* status_message(int status) {
  switch (status) {
    case PYRNN_OK: return "ok";
    case PYRNN_ERR_ARGUMENT: return "invalid argument (a size, stride, pointer or cell kind)";
    case PYRNN_ERR_OVERLAP: return "an output array overlaps an input array";
    case PYRNN_ERR_MEMORY: return "out of memory";
    case PYRNN_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
  }
}

int64_t cell_work_size(int cell, int64_t B, int64_t H) {
  if (!plain_cell(cell) || B < 1 || H < 1) return -1;
  return cell_step_work(B, gate_count(static_cast<CellKind>(cell)), H);
}

void run_cell(CellKind k, const CellStepArgs<float>& a) { kernels().cell_step_f32(k, a); }
void run_cell(CellKind k, const CellStepArgs<double>& a) { kernels().cell_step_f64(k, a); }
void run_sequence(CellKind k, const ForwardArgs<float>& a) { kernels().forward_f32(k, a); }
void run_sequence(CellKind k, const ForwardArgs<double>& a) { kernels().forward_f64(k, a); }

template <typename T>
int cell_step(int cell, int64_t B, int64_t I, int64_t H, const T* x, int64_t ldx, const T* h,
              int64_t ldh, const T* c, int64_t ldc, const T* w_ih, const T* w_hh,
              const T* b_ih, const T* b_hh, T* h_out, int64_t ldh_out, T* c_out,
              int64_t ldc_out, T* work) noexcept {
  if (!plain_cell(cell) || B < 1 || I < 1 || H < 1) return PYRNN_ERR_ARGUMENT;
  const bool lstm = cell == PYRNN_CELL_LSTM;
  if (!x || !w_ih || !w_hh || !h_out || !work || (!b_ih != !b_hh) || (lstm != (c_out != nullptr)) ||
      (!lstm && c))
    return PYRNN_ERR_ARGUMENT;
  if (!stride_ok(B, I, ldx) || (h && !stride_ok(B, H, ldh)) || (c && !stride_ok(B, H, ldc)) ||
      !stride_ok(B, H, ldh_out) || (c_out && !stride_ok(B, H, ldc_out)))
    return PYRNN_ERR_ARGUMENT;
  const Span<T> outs[] = {Span<T>(h_out, B, H, ldh_out),
                          c_out ? Span<T>(c_out, B, H, ldc_out) : Span<T>()};
  const Span<T> ins[] = {Span<T>(x, B, I, ldx), h ? Span<T>(h, B, H, ldh) : Span<T>(),
                         c ? Span<T>(c, B, H, ldc) : Span<T>()};
  if (outs[0].overlaps(outs[1])) return PYRNN_ERR_OVERLAP;
  for (const auto& o : outs)
    for (const auto& i : ins)
      if (o.overlaps(i)) return PYRNN_ERR_OVERLAP;
  CellStepArgs<T> a{};
  a.B = B, a.I = I, a.H = H;
  a.ldx = ldx, a.ldh = ldh, a.ldc = ldc, a.ldh_out = ldh_out, a.ldc_out = ldc_out;
  a.x = x, a.h = h, a.c = c, a.w_ih = w_ih, a.w_hh = w_hh, a.b_ih = b_ih, a.b_hh = b_hh;
  a.h_out = h_out, a.c_out = c_out, a.work = work;
  try {
    run_cell(static_cast<CellKind>(cell), a);
  } catch (...) {
    return PYRNN_ERR_INTERNAL;
  }
  return PYRNN_OK;
}

template <typename T>
int sequence(int cell, int64_t T_, int64_t B, int64_t I, int64_t H, const T* x, const T* w_ih,
             const T* w_hh, const T* b_ih, const T* b_hh, const T* h0, const T* c0,
             int reverse, int num_threads, T* y, T* h_n, T* c_n) noexcept {
  if (!plain_cell(cell) || T_ < 1 || B < 1 || I < 1 || H < 1 || num_threads < 1)
    return PYRNN_ERR_ARGUMENT;
  const bool lstm = cell == PYRNN_CELL_LSTM;
  if (!x || !w_ih || !w_hh || !y || !h_n || (!b_ih != !b_hh) || (lstm != (c_n != nullptr)) ||
      (!lstm && c0))
    return PYRNN_ERR_ARGUMENT;
  const Span<T> outs[] = {Span<T>(y, T_ * B, H, H), Span<T>(h_n, B, H, H),
                          c_n ? Span<T>(c_n, B, H, H) : Span<T>()};
  const Span<T> ins[] = {Span<T>(x, T_ * B, I, I), h0 ? Span<T>(h0, B, H, H) : Span<T>(),
                         c0 ? Span<T>(c0, B, H, H) : Span<T>()};
  for (int i = 0; i < 3; ++i) {
    for (int j = i + 1; j < 3; ++j)
      if (outs[i].overlaps(outs[j])) return PYRNN_ERR_OVERLAP;
    for (const auto& in : ins)
      if (outs[i].overlaps(in)) return PYRNN_ERR_OVERLAP;
  }
  ForwardArgs<T> a{};
  a.d = Dims{T_, B, I, H};
  a.x = x, a.w_ih = w_ih, a.w_hh = w_hh, a.b_ih = b_ih, a.b_hh = b_hh, a.h0 = h0, a.c0 = c0;
  a.reverse = reverse != 0;
  a.num_threads = num_threads;
  a.y = y, a.h_n = h_n, a.c_n = c_n;
  try {
    run_sequence(static_cast<CellKind>(cell), a);
  } catch (const std::bad_alloc&) {
    return PYRNN_ERR_MEMORY;
  } catch (...) {
    return PYRNN_ERR_INTERNAL;
  }
  return PYRNN_OK;
}

const pyrnn_capi table = {
    PYRNN_CAPI_VERSION, &isa, &status_message, &cell_work_size, &cell_step<float>,
    &cell_step<double>, &sequence<float>, &sequence<double>,
};

}  // namespace

// Publishes the table as pyrnn._core._C_API (read by pyrnn/capi.pyx).
void register_capi(py::module_& m) {
  m.attr("_C_API") = py::capsule(static_cast<const void*>(&table), PYRNN_CAPI_CAPSULE);
}

}  // namespace bind
}  // namespace pyrnn
