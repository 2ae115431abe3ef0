// Raw bindings of the fully connected layer's products (pyrnn/nn.py's Linear calls them on 2-D
// views; it validates shapes with friendlier messages first).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "checks.h"
#include "dispatch.h"

namespace pyrnn {
namespace bind {
namespace {

index_t rows_of(const py::object& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string("argument '") + name + "': expected a numpy array");
  const auto arr = py::reinterpret_borrow<py::array>(obj);
  if (arr.ndim() != 2)
    throw py::value_error(std::string("argument '") + name + "': expected a 2-D array");
  return index_t(arr.shape(0));
}

template <typename T>
py::array_t<T> forward(const py::object& x, const py::object& w, const py::object& b,
                       int threads) {
  const index_t M = rows_of(x, "x"), N = rows_of(w, "weight");
  const index_t K = index_t(py::reinterpret_borrow<py::array>(w).shape(1));
  const T* xp = checked<T>(x, "x", {M, K});
  const T* wp = checked<T>(w, "weight", {N, K});
  const T* bp = checked<T>(b, "bias", {N}, true);
  py::array_t<T> y = pooled_empty<T>({M, N});
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;  // (the result is returned with the GIL held)
    if constexpr (std::is_same<T, float>::value)
      kernels().linear_forward_f32(M, N, K, xp, wp, bp, yp, threads);
    else
      kernels().linear_forward_f64(M, N, K, xp, wp, bp, yp, threads);
  }
  return y;
}

template <typename T>
py::array_t<T> backward(const py::object& dy, const py::object& x, const py::object& w,
                        const py::object& dw, const py::object& db, int threads) {
  const index_t M = rows_of(dy, "dy"), N = rows_of(w, "weight");
  const index_t K = index_t(py::reinterpret_borrow<py::array>(w).shape(1));
  const T* dyp = checked<T>(dy, "dy", {M, N});
  const T* xp = checked<T>(x, "x", {M, K});
  const T* wp = checked<T>(w, "weight", {N, K});
  T* dwp = checked_writeable<T>(dw, "dw", {N, K});
  T* dbp = checked_writeable<T>(db, "db", {N}, true);
  py::array_t<T> dx = pooled_empty<T>({M, K});
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    if constexpr (std::is_same<T, float>::value)
      kernels().linear_backward_f32(M, N, K, dyp, xp, wp, dxp, dwp, dbp, threads);
    else
      kernels().linear_backward_f64(M, N, K, dyp, xp, wp, dxp, dwp, dbp, threads);
  }
  return dx;
}

bool is_dtype(const py::object& obj, const py::dtype& dt) {
  return py::isinstance<py::array>(obj) && py::reinterpret_borrow<py::array>(obj).dtype().equal(dt);
}

void check_threads(int threads) {
  if (threads < 1) throw py::value_error("argument 'num_threads': must be >= 1");
}

}  // namespace

void register_linear(py::module_& m) {
  m.def(
      "linear_forward",
      [](const py::object& x, const py::object& weight, const py::object& bias,
         int num_threads) -> py::object {
        check_threads(num_threads);
        if (is_dtype(weight, py::dtype::of<float>()))
          return forward<float>(x, weight, bias, num_threads);
        if (is_dtype(weight, py::dtype::of<double>()))
          return forward<double>(x, weight, bias, num_threads);
        throw py::type_error("argument 'weight': expected a float32 or float64 array");
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("num_threads"),
      "y[M, N] = x[M, K] weight[N, K]^T (+ bias[N]) on up to num_threads kernel threads.");
  m.def(
      "linear_backward",
      [](const py::object& dy, const py::object& x, const py::object& weight,
         const py::object& dw, const py::object& db, int num_threads) -> py::object {
        check_threads(num_threads);
        if (is_dtype(weight, py::dtype::of<float>()))
          return backward<float>(dy, x, weight, dw, db, num_threads);
        if (is_dtype(weight, py::dtype::of<double>()))
          return backward<double>(dy, x, weight, dw, db, num_threads);
        throw py::type_error("argument 'weight': expected a float32 or float64 array");
      },
      py::arg("dy"), py::arg("x"), py::arg("weight"), py::arg("dw"), py::arg("db"),
      py::arg("num_threads"),
      "dw[N, K] += dy[M, N]^T x[M, K]; db[N] += dy summed over rows (db may be None); returns "
      "dx[M, K] = dy weight.");
}

}  // namespace bind
}  // namespace pyrnn
