// `cell_step`: one step of torch.nn.LSTMCell / GRUCell / RNNCell on the calling thread, for the
// cells of pyrnn/cells.py. Validation is done here, once, in C++: at batch 1 and 32 units the
// step itself costs well under a microsecond, so a Python-side check would dominate it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "checks.h"
#include "dispatch.h"
#include "pyrnn/common.h"

namespace pyrnn {
namespace bind {
namespace {

CellKind plain_cell(int cell) {
  const auto k = static_cast<CellKind>(cell);
  if (!is_plain_cell(k))
    throw py::value_error("argument 'cell': expected a plain LSTM, GRU or RNN cell kind, got " +
                          std::to_string(cell));
  return k;
}

void run(CellKind k, const CellStepArgs<float>& a) { kernels().cell_step_f32(k, a); }
void run(CellKind k, const CellStepArgs<double>& a) { kernels().cell_step_f64(k, a); }

// Scratch kept per calling thread: a step allocates nothing once it has grown.
template <typename T>
T* scratch(index_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < static_cast<size_t>(n)) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

template <typename T>
py::tuple step(CellKind kind, const py::array& x, const py::object& h, const py::object& c,
               const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
               const py::object& b_hh) {
  const int G = gate_count(kind);
  const bool lstm = kind == CellKind::LSTM;
  if (x.ndim() != 2)
    throw py::value_error("argument 'x': expected 2 dimensions [B, I], got " +
                          std::to_string(x.ndim()));
  if (w_hh.ndim() != 2 || w_hh.shape(0) != G * w_hh.shape(1))
    throw py::value_error("argument 'w_hh': expected shape [" + std::to_string(G) +
                          "*H, H], got " +
                          shape_str(std::vector<index_t>(w_hh.shape(), w_hh.shape() + w_hh.ndim())));
  CellStepArgs<T> a{};
  a.B = x.shape(0);
  a.I = x.shape(1);
  a.H = w_hh.shape(1);
  a.ldx = a.I;
  a.ldh = a.ldc = a.ldh_out = a.ldc_out = a.H;
  const index_t GH = G * a.H;
  if (a.B < 1 || a.I < 1 || a.H < 1)
    throw py::value_error("cell_step: expected B, I, H >= 1, got x " +
                          shape_str({a.B, a.I}) + " and H = " + std::to_string(a.H));
  a.x = checked<T>(x, "x", {a.B, a.I});
  a.w_ih = checked<T>(w_ih, "w_ih", {GH, a.I});
  a.w_hh = checked<T>(w_hh, "w_hh", {GH, a.H});
  a.b_ih = checked<T>(b_ih, "b_ih", {GH}, true);
  a.b_hh = checked<T>(b_hh, "b_hh", {GH}, true);
  if (!a.b_ih != !a.b_hh)
    throw py::value_error("arguments 'b_ih', 'b_hh': give both biases or neither");
  a.h = checked<T>(h, "h", {a.B, a.H}, true);
  if (lstm) {
    a.c = checked<T>(c, "c", {a.B, a.H}, true);
  } else if (!c.is_none()) {
    throw py::value_error("argument 'c': only the LSTM cell has a cell state");
  }
  auto h_out = empty<T>({a.B, a.H});
  a.h_out = ptr(h_out);
  py::object c_obj = py::none();
  if (lstm) {
    auto c_out = empty<T>({a.B, a.H});
    a.c_out = ptr(c_out);
    c_obj = c_out;
  }
  a.work = scratch<T>(cell_step_work(a.B, G, a.H));
  // No GIL release: at these sizes handing the GIL over costs more than the step (callers
  // that want parallel streams use the C-API, pyrnn/capi.pxd, with the GIL released).
  run(kind, a);
  return py::make_tuple(h_out, c_obj);
}

}  // namespace

void register_cells(py::module_& m) {
  m.def(
      "cell_step",
      [](int cell, const py::array& x, const py::object& h, const py::object& c,
         const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
         const py::object& b_hh) {
        const CellKind kind = plain_cell(cell);
        if (x.dtype().equal(py::dtype::of<float>()))
          return step<float>(kind, x, h, c, w_ih, w_hh, b_ih, b_hh);
        if (x.dtype().equal(py::dtype::of<double>()))
          return step<double>(kind, x, h, c, w_ih, w_hh, b_ih, b_hh);
        throw py::type_error("argument 'x': expected dtype float32 or float64, got " +
                             std::string(py::str(x.dtype())));
      },
      py::arg("cell"), py::arg("x"), py::arg("h"), py::arg("c"), py::arg("w_ih"),
      py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      "One step of a plain cell (0 LSTM, 1 GRU, 2 RNN tanh, 3 RNN relu) on the calling "
      "thread: x [B, I], h and c [B, H] or None (zeros), w_ih [G*H, I], w_hh [G*H, H], "
      "biases [G*H] or None. Returns (h', c' or None).");
}

}  // namespace bind
}  // namespace pyrnn
