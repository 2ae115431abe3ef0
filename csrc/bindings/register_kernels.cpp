// Raw kernel bindings: `forward` and `backward` for every cell, float32 and float64.
// Validates every array, allocates outputs, releases the GIL around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "checks.h"
#include "dispatch.h"
#include "pyrnn/common.h"

namespace pyrnn {
namespace bind {
namespace {

CellKind cell_kind(int cell) {
  if (cell < 0 || cell >= kCellKindCount) throw py::value_error("argument 'cell': unknown cell kind " +
                                                  std::to_string(cell));
  return static_cast<CellKind>(cell);
}

int checked_threads(int num_threads) {
  if (num_threads < 1)
    throw py::value_error("argument 'num_threads': expected >= 1, got " +
                          std::to_string(num_threads));
  return num_threads;
}

void run(const ForwardArgs<float>& a, CellKind k) { kernels().forward_f32(k, a); }
void run(const ForwardArgs<double>& a, CellKind k) { kernels().forward_f64(k, a); }
void run(const BackwardArgs<float>& a, CellKind k) { kernels().backward_f32(k, a); }
void run(const BackwardArgs<double>& a, CellKind k) { kernels().backward_f64(k, a); }

template <typename T>
py::tuple forward_t(CellKind kind, const py::array& x_arr, const py::object& w_ih,
                    const py::object& w_hh, const py::object& b_ih, const py::object& b_hh,
                    const py::object& h0, const py::object& c0, const py::object& lengths,
                    bool reverse, bool training, int num_threads, const py::object& peephole) {
  if (x_arr.ndim() != 3)
    throw py::value_error("argument 'x': expected 3 dimensions [T, B, I], got " +
                          std::to_string(x_arr.ndim()));
  const index_t G = gate_count(kind), T_ = x_arr.shape(0), B = x_arr.shape(1),
                I = x_arr.shape(2);
  if (!w_hh.is_none() && py::isinstance<py::array>(w_hh) &&
      py::reinterpret_borrow<py::array>(w_hh).ndim() != 2)
    throw py::value_error("argument 'w_hh': expected 2 dimensions [G*H, H]");
  const index_t H = py::isinstance<py::array>(w_hh)
                        ? index_t(py::reinterpret_borrow<py::array>(w_hh).shape(1))
                        : 0;
  const bool lstm = has_cell_state(kind);
  const bool peep = kind == CellKind::LSTM_PEEPHOLE;
  if (peep == peephole.is_none())
    throw py::value_error(peep ? "argument 'peephole': required by the peephole LSTM"
                               : "argument 'peephole': only the peephole LSTM takes one");
  if ((b_ih.is_none()) != (b_hh.is_none()))
    throw py::value_error("arguments 'b_ih' and 'b_hh': give both or neither");

  ForwardArgs<T> a{};
  a.d = Dims{T_, B, I, H};
  a.x = checked<T>(x_arr, "x", {T_, B, I});
  a.w_ih = checked<T>(w_ih, "w_ih", {G * H, I});
  a.w_hh = checked<T>(w_hh, "w_hh", {G * H, H});
  a.b_ih = checked<T>(b_ih, "b_ih", {G * H}, true);
  a.b_hh = checked<T>(b_hh, "b_hh", {G * H}, true);
  a.h0 = checked<T>(h0, "h0", {B, H}, true);
  a.c0 = lstm ? checked<T>(c0, "c0", {B, H}, true) : nullptr;
  a.lengths = checked_lengths(lengths, B, T_);
  a.reverse = reverse;
  a.num_threads = checked_threads(num_threads);
  a.peephole = peep ? checked<T>(peephole, "peephole", {3, H}) : nullptr;

  auto y = empty<T>({T_, B, H});
  auto h_n = empty<T>({B, H});
  py::array_t<T> c_n, gates, h_prev, aux;
  a.y = ptr(y);
  a.h_n = ptr(h_n);
  if (lstm) {
    c_n = empty<T>({B, H});
    a.c_n = ptr(c_n);
  }
  if (training) {
    gates = empty<T>({T_, B, G * H});
    h_prev = empty<T>({T_, B, H});
    a.gates = ptr(gates);
    a.h_prev = ptr(h_prev);
    if (has_aux(kind)) {
      aux = empty<T>({T_, B, H});
      a.aux = ptr(aux);
    }
  }
  {
    py::gil_scoped_release release;
    run(a, kind);
  }
  py::object saves = py::none();
  if (training)
    saves = py::make_tuple(gates, h_prev, a.aux ? py::object(aux) : py::object(py::none()));
  return py::make_tuple(y, h_n, lstm ? py::object(c_n) : py::object(py::none()), saves);
}

template <typename T>
py::tuple backward_t(CellKind kind, const py::array& x_arr, const py::object& w_ih,
                     const py::object& w_hh, bool has_bias, const py::object& lengths,
                     bool reverse, const py::object& gates, const py::object& h_prev,
                     const py::object& aux, const py::object& dy, const py::object& dh_n,
                     const py::object& dc_n, int num_threads, const py::object& peephole) {
  if (x_arr.ndim() != 3)
    throw py::value_error("argument 'x': expected 3 dimensions [T, B, I]");
  if (!py::isinstance<py::array>(w_hh) || py::reinterpret_borrow<py::array>(w_hh).ndim() != 2)
    throw py::value_error("argument 'w_hh': expected a 2-dimensional array [G*H, H]");
  const index_t G = gate_count(kind), T_ = x_arr.shape(0), B = x_arr.shape(1),
                I = x_arr.shape(2), H = py::reinterpret_borrow<py::array>(w_hh).shape(1);
  const bool lstm = has_cell_state(kind);
  const bool with_aux = has_aux(kind);
  const bool peep = kind == CellKind::LSTM_PEEPHOLE;
  if (peep == peephole.is_none())
    throw py::value_error(peep ? "argument 'peephole': required by the peephole LSTM"
                               : "argument 'peephole': only the peephole LSTM takes one");

  BackwardArgs<T> a{};
  a.d = Dims{T_, B, I, H};
  a.x = checked<T>(x_arr, "x", {T_, B, I});
  a.w_ih = checked<T>(w_ih, "w_ih", {G * H, I});
  a.w_hh = checked<T>(w_hh, "w_hh", {G * H, H});
  a.lengths = checked_lengths(lengths, B, T_);
  a.reverse = reverse;
  a.num_threads = checked_threads(num_threads);
  a.gates = checked<T>(gates, "gates", {T_, B, G * H});
  a.h_prev = checked<T>(h_prev, "h_prev", {T_, B, H});
  a.aux = with_aux ? checked<T>(aux, "aux", {T_, B, H}) : nullptr;
  a.dy = checked<T>(dy, "dy", {T_, B, H}, true);
  a.dh_n = checked<T>(dh_n, "dh_n", {B, H}, true);
  a.dc_n = lstm ? checked<T>(dc_n, "dc_n", {B, H}, true) : nullptr;
  a.peephole = peep ? checked<T>(peephole, "peephole", {3, H}) : nullptr;

  auto dx = empty<T>({T_, B, I});
  auto dh0 = empty<T>({B, H});
  auto dw_ih = empty<T>({G * H, I});
  auto dw_hh = empty<T>({G * H, H});
  py::array_t<T> dc0, db_ih, db_hh, dpeep;
  a.dx = ptr(dx);
  a.dh0 = ptr(dh0);
  a.dw_ih = ptr(dw_ih);
  a.dw_hh = ptr(dw_hh);
  if (lstm) {
    dc0 = empty<T>({B, H});
    a.dc0 = ptr(dc0);
  }
  if (peep) {
    dpeep = empty<T>({3, H});
    a.dpeephole = ptr(dpeep);
  }
  if (has_bias) {
    db_ih = empty<T>({G * H});
    db_hh = empty<T>({G * H});
    a.db_ih = ptr(db_ih);
    a.db_hh = ptr(db_hh);
  }
  {
    py::gil_scoped_release release;
    run(a, kind);
  }
  auto opt = [](bool present, const py::array& arr) {
    return present ? py::object(arr) : py::object(py::none());
  };
  if (peep)  // the peephole LSTM appends d(w_ci, w_cf, w_co) [3, H]
    return py::make_tuple(dx, dh0, dc0, dw_ih, dw_hh, opt(has_bias, db_ih),
                          opt(has_bias, db_hh), dpeep);
  return py::make_tuple(dx, dh0, opt(lstm, dc0), dw_ih, dw_hh, opt(has_bias, db_ih),
                        opt(has_bias, db_hh));
}

bool is_dtype(const py::array& x, const py::dtype& d) { return x.dtype().is(d); }

[[noreturn]] void bad_dtype(const py::array& x) {
  throw py::type_error("argument 'x': expected dtype float32 or float64, got " +
                       std::string(py::str(x.dtype())));
}

}  // namespace

void register_kernels(py::module_& m) {
  m.def(
      "forward",
      [](int cell, const py::array& x, const py::object& w_ih, const py::object& w_hh,
         const py::object& b_ih, const py::object& b_hh, const py::object& h0,
         const py::object& c0, const py::object& lengths, bool reverse, bool training,
         int num_threads, const py::object& peephole) {
        const CellKind k = cell_kind(cell);
        if (is_dtype(x, py::dtype::of<float>()))
          return forward_t<float>(k, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse,
                                  training, num_threads, peephole);
        if (is_dtype(x, py::dtype::of<double>()))
          return forward_t<double>(k, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse,
                                   training, num_threads, peephole);
        bad_dtype(x);
      },
      py::arg("cell"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("h0"), py::arg("c0"), py::arg("lengths"), py::arg("reverse"),
      py::arg("training"), py::arg("num_threads"), py::arg("peephole") = py::none(),
      "Raw fused forward. Returns (y, h_n, c_n | None, saves | None). 'peephole' [3, H] "
      "(w_ci, w_cf, w_co) is required by, and only taken by, the peephole LSTM (cell 5).");
  m.def(
      "backward",
      [](int cell, const py::array& x, const py::object& w_ih, const py::object& w_hh,
         bool has_bias, const py::object& lengths, bool reverse, const py::object& gates,
         const py::object& h_prev, const py::object& aux, const py::object& dy,
         const py::object& dh_n, const py::object& dc_n, int num_threads,
         const py::object& peephole) {
        const CellKind k = cell_kind(cell);
        if (is_dtype(x, py::dtype::of<float>()))
          return backward_t<float>(k, x, w_ih, w_hh, has_bias, lengths, reverse, gates, h_prev,
                                   aux, dy, dh_n, dc_n, num_threads, peephole);
        if (is_dtype(x, py::dtype::of<double>()))
          return backward_t<double>(k, x, w_ih, w_hh, has_bias, lengths, reverse, gates,
                                    h_prev, aux, dy, dh_n, dc_n, num_threads, peephole);
        bad_dtype(x);
      },
      py::arg("cell"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("has_bias"),
      py::arg("lengths"), py::arg("reverse"), py::arg("gates"), py::arg("h_prev"),
      py::arg("aux"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("num_threads"),
      py::arg("peephole") = py::none(),
      "Raw fused backward through time. Returns (dx, dh0, dc0 | None, dw_ih, dw_hh, db_ih | "
      "None, db_hh | None), and for the peephole LSTM also d(w_ci, w_cf, w_co) [3, H].");
}

}  // namespace bind
}  // namespace pyrnn
