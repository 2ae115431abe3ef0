// Raw kernel bindings: `forward` and `backward` for every cell, float32 and float64.
// Validates every array, allocates outputs, releases the GIL around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "checks.h"
#include "dispatch.h"
#include "pyrnn/common.h"
#include "pyrnn/parallel.h"

namespace pyrnn {
namespace bind {
namespace {

// forward_group's parallel region runs in this library: it must know of forks too.
[[maybe_unused]] const bool kWatchingForFork = watch_for_fork();

CellKind cell_kind(int cell) {
  if (cell < 0 || cell >= kCellKindCount) throw py::value_error("argument 'cell': unknown cell kind " +
                                                  std::to_string(cell));
  return static_cast<CellKind>(cell);
}

// The projection size P of an LSTM with w_hr [P, H], or 0 without one; also fixes H.
index_t projection_size(CellKind kind, const py::object& w_hr, index_t& H) {
  if (w_hr.is_none()) return 0;
  if (!has_cell_state(kind))
    throw py::value_error("argument 'w_hr': only the LSTM cells take a projection");
  if (!py::isinstance<py::array>(w_hr) || py::reinterpret_borrow<py::array>(w_hr).ndim() != 2)
    throw py::value_error("argument 'w_hr': expected a 2-dimensional array [P, H]");
  const auto arr = py::reinterpret_borrow<py::array>(w_hr);
  if (arr.shape(0) < 1 || arr.shape(1) < 1)
    throw py::value_error("argument 'w_hr': expected P >= 1 and H >= 1, got shape " +
                          shape_str({index_t(arr.shape(0)), index_t(arr.shape(1))}));
  H = arr.shape(1);
  return arr.shape(0);
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

// A validated forward call: its kernel arguments (pointing into the caller's arrays, which
// must stay alive until it has run) and its output arrays.
template <typename T>
struct ForwardCall {
  CellKind kind;
  ForwardArgs<T> a;
  bool training, lstm;
  py::array_t<T> y, h_n, c_n, gates, h_prev, aux, proj_in;

  // (y, h_n, c_n | None, saves | None), as the `forward` binding returns.
  py::tuple result() const {
    py::object saves = py::none();
    if (training && a.P)  // a projection adds m = o*tanh(c) [T, B, H]
      saves = py::make_tuple(gates, h_prev, aux, proj_in);
    else if (training)
      saves = py::make_tuple(gates, h_prev, a.aux ? py::object(aux) : py::object(py::none()));
    return py::make_tuple(y, h_n, lstm ? py::object(c_n) : py::object(py::none()), saves);
  }
};

template <typename T>
ForwardCall<T> prepare_forward(CellKind kind, const py::array& x_arr, const py::object& w_ih,
                               const py::object& w_hh, const py::object& b_ih,
                               const py::object& b_hh, const py::object& h0,
                               const py::object& c0, const py::object& lengths, bool reverse,
                               bool training, int num_threads, const py::object& peephole,
                               const py::object& w_hr) {
  if (x_arr.ndim() != 3)
    throw py::value_error("argument 'x': expected 3 dimensions [T, B, I], got " +
                          std::to_string(x_arr.ndim()));
  const index_t G = gate_count(kind), T_ = x_arr.shape(0), B = x_arr.shape(1),
                I = x_arr.shape(2);
  if (!w_hh.is_none() && py::isinstance<py::array>(w_hh) &&
      py::reinterpret_borrow<py::array>(w_hh).ndim() != 2)
    throw py::value_error("argument 'w_hh': expected 2 dimensions [G*H, H]");
  index_t H = py::isinstance<py::array>(w_hh)
                  ? index_t(py::reinterpret_borrow<py::array>(w_hh).shape(1))
                  : 0;
  const index_t P = projection_size(kind, w_hr, H);
  const index_t R = P ? P : H;  // width of h
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
  a.w_hh = checked<T>(w_hh, "w_hh", {G * H, R});
  a.b_ih = checked<T>(b_ih, "b_ih", {G * H}, true);
  a.b_hh = checked<T>(b_hh, "b_hh", {G * H}, true);
  a.h0 = checked<T>(h0, "h0", {B, R}, true);
  a.c0 = lstm ? checked<T>(c0, "c0", {B, H}, true) : nullptr;
  a.lengths = checked_lengths(lengths, B, T_);
  a.reverse = reverse;
  a.num_threads = checked_threads(num_threads);
  a.peephole = peep ? checked<T>(peephole, "peephole", {3, H}) : nullptr;
  a.w_hr = P ? checked<T>(w_hr, "w_hr", {P, H}) : nullptr;
  a.P = P;

  auto y = empty<T>({T_, B, R});
  auto h_n = empty<T>({B, R});
  py::array_t<T> c_n, gates, h_prev, aux, proj_in;
  a.y = ptr(y);
  a.h_n = ptr(h_n);
  if (lstm) {
    c_n = empty<T>({B, H});
    a.c_n = ptr(c_n);
  }
  if (training) {
    gates = empty<T>({T_, B, G * H});
    h_prev = empty<T>({T_, B, R});
    a.gates = ptr(gates);
    a.h_prev = ptr(h_prev);
    if (has_aux(kind)) {
      aux = empty<T>({T_, B, H});
      a.aux = ptr(aux);
    }
    if (P) {
      proj_in = empty<T>({T_, B, H});
      a.proj_in = ptr(proj_in);
    }
  }
  return ForwardCall<T>{kind, a, training, lstm, std::move(y), std::move(h_n), std::move(c_n),
                        std::move(gates), std::move(h_prev), std::move(aux), std::move(proj_in)};
}

template <typename T>
py::tuple forward_t(CellKind kind, const py::array& x_arr, const py::object& w_ih,
                    const py::object& w_hh, const py::object& b_ih, const py::object& b_hh,
                    const py::object& h0, const py::object& c0, const py::object& lengths,
                    bool reverse, bool training, int num_threads, const py::object& peephole,
                    const py::object& w_hr) {
  ForwardCall<T> call = prepare_forward<T>(kind, x_arr, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths,
                                           reverse, training, num_threads, peephole, w_hr);
  {
    py::gil_scoped_release release;
    run(call.a, call.kind);
  }
  return call.result();
}

// Points a call's y at columns [col, col + R) of `out` [T, B, W] instead of its own array (the
// two directions of a bidirectional layer fill one output; the call's own y is left unused).
template <typename T>
void write_into(ForwardCall<T>& call, const py::object& out_obj, const py::object& col_obj) {
  const index_t T_ = call.a.d.T, B = call.a.d.B, R = call.a.P ? call.a.P : call.a.d.H;
  if (!py::isinstance<py::array>(out_obj))
    throw py::type_error("forward_group: 'out' must be a numpy array");
  auto out = py::reinterpret_borrow<py::array>(out_obj);
  const index_t col = col_obj.cast<index_t>();
  if (out.ndim() != 3 || out.shape(0) != T_ || out.shape(1) != B || col < 0 ||
      out.shape(2) < col + R)
    throw py::value_error("forward_group: 'out' must be [T, B, W] with W >= column + R");
  if (!out.dtype().equal(py::dtype::of<T>()) || !(out.flags() & py::array::c_style) ||
      !out.writeable())
    throw py::value_error("forward_group: 'out' must be a writeable C-contiguous array of the "
                          "calls' dtype");
  call.a.y = static_cast<T*>(out.mutable_data()) + col;
  call.a.ldy = out.shape(2);
}

// Several eval-mode calls of one dtype, run at once by an OpenMP team: each on one thread (its
// num_threads is set to 1), at most `num_threads` together, so the workers are the same
// threads every other kernel call uses (the layers' wavefront over stacked layers).
template <typename T>
py::list forward_group_t(const py::list& calls, int num_threads) {
  std::vector<ForwardCall<T>> prepared;
  prepared.reserve(calls.size());
  for (const py::handle& item : calls) {
    const auto t = py::reinterpret_borrow<py::tuple>(item);
    const CellKind k = cell_kind(t[0].cast<int>());
    if (t[10].cast<bool>())
      throw py::value_error("forward_group: calls run in eval mode (training=False) only");
    prepared.push_back(prepare_forward<T>(k, t[1].cast<py::array>(), t[2], t[3], t[4], t[5],
                                          t[6], t[7], t[8], t[9].cast<bool>(), false, 1, t[12],
                                          t[13]));
    prepared.back().a.num_threads = 1;
    if (t.size() == 16 && !t[14].is_none()) write_into<T>(prepared.back(), t[14], t[15]);
  }
  // An exception (a failed workspace allocation) must not leave the OpenMP region: kept per
  // call and rethrown with the GIL held.
  std::vector<std::exception_ptr> errors(prepared.size());
  {
    py::gil_scoped_release release;
    const long count = long(prepared.size());
    const int team = int(std::min<long>(num_threads, count));
    // static, 1: a stage's calls are ordered by layer, so a layer mostly stays on one core
    // (its weights in that core's L2); dynamic scheduling moved layers between cores and lost.
    // (parallel_region: OpenMP's threads, or the fork-safe team in a forked child.)
    parallel_region(team, [&](int tid, int nthreads, StepBarrier&) {
      for (long i = tid; i < count; i += nthreads) {
        try {
          run(prepared[size_t(i)].a, prepared[size_t(i)].kind);
        } catch (...) {
          errors[size_t(i)] = std::current_exception();
        }
      }
    });
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  py::list out;
  for (const auto& call : prepared) out.append(call.result());
  return out;
}

template <typename T>
py::tuple backward_t(CellKind kind, const py::array& x_arr, const py::object& w_ih,
                     const py::object& w_hh, bool has_bias, const py::object& lengths,
                     bool reverse, const py::object& gates, const py::object& h_prev,
                     const py::object& aux, const py::object& dy, const py::object& dh_n,
                     const py::object& dc_n, int num_threads, const py::object& peephole,
                     const py::object& w_hr, const py::object& proj_in) {
  if (x_arr.ndim() != 3)
    throw py::value_error("argument 'x': expected 3 dimensions [T, B, I]");
  if (!py::isinstance<py::array>(w_hh) || py::reinterpret_borrow<py::array>(w_hh).ndim() != 2)
    throw py::value_error("argument 'w_hh': expected a 2-dimensional array [G*H, H]");
  const index_t G = gate_count(kind), T_ = x_arr.shape(0), B = x_arr.shape(1),
                I = x_arr.shape(2);
  index_t H = py::reinterpret_borrow<py::array>(w_hh).shape(1);
  const index_t P = projection_size(kind, w_hr, H);
  const index_t R = P ? P : H;  // width of h
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
  a.w_hh = checked<T>(w_hh, "w_hh", {G * H, R});
  a.lengths = checked_lengths(lengths, B, T_);
  a.reverse = reverse;
  a.num_threads = checked_threads(num_threads);
  a.gates = checked<T>(gates, "gates", {T_, B, G * H});
  a.h_prev = checked<T>(h_prev, "h_prev", {T_, B, R});
  a.aux = with_aux ? checked<T>(aux, "aux", {T_, B, H}) : nullptr;
  a.dy = checked<T>(dy, "dy", {T_, B, R}, true);
  a.dh_n = checked<T>(dh_n, "dh_n", {B, R}, true);
  a.dc_n = lstm ? checked<T>(dc_n, "dc_n", {B, H}, true) : nullptr;
  a.peephole = peep ? checked<T>(peephole, "peephole", {3, H}) : nullptr;
  if (P) {
    a.w_hr = checked<T>(w_hr, "w_hr", {P, H});
    a.P = P;
    a.proj_in = checked<T>(proj_in, "proj_in", {T_, B, H});
  } else if (!proj_in.is_none()) {
    throw py::value_error("argument 'proj_in': only a projection (w_hr) takes one");
  }

  auto dx = empty<T>({T_, B, I});
  auto dh0 = empty<T>({B, R});
  auto dw_ih = empty<T>({G * H, I});
  auto dw_hh = empty<T>({G * H, R});
  py::array_t<T> dc0, db_ih, db_hh, dpeep, dw_hr;
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
  if (P) {
    dw_hr = empty<T>({P, H});
    a.dw_hr = ptr(dw_hr);
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
  py::list out;
  for (py::object o : {py::object(dx), py::object(dh0), opt(lstm, dc0), py::object(dw_ih),
                       py::object(dw_hh), opt(has_bias, db_ih), opt(has_bias, db_hh)})
    out.append(o);
  if (peep) out.append(dpeep);  // the peephole LSTM appends d(w_ci, w_cf, w_co) [3, H]
  if (P) out.append(dw_hr);     // a projection appends dW_hr [P, H], last
  return py::tuple(out);
}

bool is_dtype(const py::array& x, const py::dtype& d) { return x.dtype().equal(d); }

[[noreturn]] void bad_dtype(const py::array& x) {
  throw py::type_error("argument 'x': expected dtype float32 or float64, got " +
                       std::string(py::str(x.dtype())));
}

}  // namespace

void register_kernels(py::module_& m) {
  m.def(
      "forward_group",
      [](const py::list& calls, int num_threads) {
        checked_threads(num_threads);
        if (calls.empty()) return py::list();
        for (const py::handle& item : calls)
          if (!py::isinstance<py::tuple>(item) || (py::len(item) != 14 && py::len(item) != 16) ||
              !py::isinstance<py::array>(py::reinterpret_borrow<py::tuple>(item)[1]))
            throw py::value_error("forward_group: every call must be a tuple of the 14 "
                                  "arguments of forward(), x an array, optionally followed by "
                                  "(out, column)");
        const auto x0 = py::reinterpret_borrow<py::tuple>(calls[0])[1].cast<py::array>();
        for (const py::handle& item : calls)
          if (!py::reinterpret_borrow<py::tuple>(item)[1].cast<py::array>().dtype().equal(
                  x0.dtype()))
            throw py::value_error("forward_group: every call's x must have the same dtype");
        if (is_dtype(x0, py::dtype::of<float>()))
          return forward_group_t<float>(calls, num_threads);
        if (is_dtype(x0, py::dtype::of<double>()))
          return forward_group_t<double>(calls, num_threads);
        bad_dtype(x0);
      },
      py::arg("calls"), py::arg("num_threads"),
      "Runs several eval-mode forward calls, each a tuple of forward()'s 14 arguments (its "
      "num_threads ignored) and optionally (out, column): y written into out[:, :, column:] "
      "instead, at once on one thread each, at most num_threads together. "
      "Returns the list of their results, in order.");
  m.def(
      "forward",
      [](int cell, const py::array& x, const py::object& w_ih, const py::object& w_hh,
         const py::object& b_ih, const py::object& b_hh, const py::object& h0,
         const py::object& c0, const py::object& lengths, bool reverse, bool training,
         int num_threads, const py::object& peephole, const py::object& w_hr) {
        const CellKind k = cell_kind(cell);
        if (is_dtype(x, py::dtype::of<float>()))
          return forward_t<float>(k, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse,
                                  training, num_threads, peephole, w_hr);
        if (is_dtype(x, py::dtype::of<double>()))
          return forward_t<double>(k, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse,
                                   training, num_threads, peephole, w_hr);
        bad_dtype(x);
      },
      py::arg("cell"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("h0"), py::arg("c0"), py::arg("lengths"), py::arg("reverse"),
      py::arg("training"), py::arg("num_threads"), py::arg("peephole") = py::none(),
      py::arg("w_hr") = py::none(),
      "Raw fused forward. Returns (y, h_n, c_n | None, saves | None). 'peephole' [3, H] "
      "(w_ci, w_cf, w_co) is required by, and only taken by, the peephole LSTM (cell 5). "
      "'w_hr' [P, H]: LSTM projection; then w_hh is [G*H, P], h0/y/h_n have P columns and "
      "saves gain o*tanh(c) [T, B, H] as a fourth entry.");
  m.def(
      "backward",
      [](int cell, const py::array& x, const py::object& w_ih, const py::object& w_hh,
         bool has_bias, const py::object& lengths, bool reverse, const py::object& gates,
         const py::object& h_prev, const py::object& aux, const py::object& dy,
         const py::object& dh_n, const py::object& dc_n, int num_threads,
         const py::object& peephole, const py::object& w_hr, const py::object& proj_in) {
        const CellKind k = cell_kind(cell);
        if (is_dtype(x, py::dtype::of<float>()))
          return backward_t<float>(k, x, w_ih, w_hh, has_bias, lengths, reverse, gates, h_prev,
                                   aux, dy, dh_n, dc_n, num_threads, peephole, w_hr, proj_in);
        if (is_dtype(x, py::dtype::of<double>()))
          return backward_t<double>(k, x, w_ih, w_hh, has_bias, lengths, reverse, gates,
                                    h_prev, aux, dy, dh_n, dc_n, num_threads, peephole, w_hr,
                                    proj_in);
        bad_dtype(x);
      },
      py::arg("cell"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("has_bias"),
      py::arg("lengths"), py::arg("reverse"), py::arg("gates"), py::arg("h_prev"),
      py::arg("aux"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("num_threads"),
      py::arg("peephole") = py::none(), py::arg("w_hr") = py::none(),
      py::arg("proj_in") = py::none(),
      "Raw fused backward through time. Returns (dx, dh0, dc0 | None, dw_ih, dw_hh, db_ih | "
      "None, db_hh | None), then for the peephole LSTM d(w_ci, w_cf, w_co) [3, H], then with a "
      "projection dW_hr [P, H].");
}

}  // namespace bind
}  // namespace pyrnn
