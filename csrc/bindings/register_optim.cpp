// Raw bindings of the optimizers' fused updates (pyrnn/optim.py calls them).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "checks.h"
#include "dispatch.h"
#include "pyrnn/adam.h"
#include "pyrnn/parallel.h"

namespace pyrnn {
namespace bind {
namespace {

template <typename T>
void adam_step(const py::array& param, const py::object& grad, const py::object& exp_avg,
               const py::object& exp_avg_sq, const AdamStep& s, int num_threads) {
  const std::vector<index_t> shape(param.shape(), param.shape() + param.ndim());
  T* p = checked_writeable<T>(param, "param", shape);
  const T* g = checked<T>(grad, "grad", shape);
  T* m = checked_writeable<T>(exp_avg, "exp_avg", shape);
  T* v = checked_writeable<T>(exp_avg_sq, "exp_avg_sq", shape);
  const index_t n = index_t(param.size());
  py::gil_scoped_release release;
  if constexpr (std::is_same<T, float>::value)
    kernels().adam_f32(n, p, g, m, v, s, num_threads);
  else
    kernels().adam_f64(n, p, g, m, v, s, num_threads);
}

template <typename T>
double sum_squares(const py::array& x, int num_threads) {
  const std::vector<index_t> shape(x.shape(), x.shape() + x.ndim());
  const T* p = checked<T>(x, "x", shape);
  const index_t n = index_t(x.size());
  py::gil_scoped_release release;
  if constexpr (std::is_same<T, float>::value)
    return kernels().sum_squares_f32(n, p, num_threads);
  else
    return kernels().sum_squares_f64(n, p, num_threads);
}

}  // namespace

void register_optim(py::module_& m) {
  m.def(
      "sum_squares",
      [](const py::object& x, int num_threads) -> double {
        if (!py::isinstance<py::array>(x))
          throw py::type_error("argument 'x': expected a numpy array");
        const auto arr = py::reinterpret_borrow<py::array>(x);
        if (num_threads < 1) throw py::value_error("argument 'num_threads': must be >= 1");
        if (arr.dtype().equal(py::dtype::of<float>())) return sum_squares<float>(arr, num_threads);
        if (arr.dtype().equal(py::dtype::of<double>()))
          return sum_squares<double>(arr, num_threads);
        throw py::type_error("argument 'x': expected dtype float32 or float64, got " +
                             std::string(py::str(arr.dtype())));
      },
      py::arg("x"), py::arg("num_threads"),
      "The sum of the squares of a C-contiguous float32/float64 array, in double (the same sum "
      "on any thread count).");
  m.def(
      "adam_step",
      [](const py::object& param, const py::object& grad, const py::object& exp_avg,
         const py::object& exp_avg_sq, double one_minus_beta1, double beta2,
         double one_minus_beta2, double correction2, double eps, double step_size,
         int num_threads) {
        if (!py::isinstance<py::array>(param))
          throw py::type_error("argument 'param': expected a numpy array");
        const auto arr = py::reinterpret_borrow<py::array>(param);
        if (num_threads < 1) throw py::value_error("argument 'num_threads': must be >= 1");
        const AdamStep s{one_minus_beta1, beta2, one_minus_beta2, correction2, eps, step_size};
        if (arr.dtype().equal(py::dtype::of<float>()))
          return adam_step<float>(arr, grad, exp_avg, exp_avg_sq, s, num_threads);
        if (arr.dtype().equal(py::dtype::of<double>()))
          return adam_step<double>(arr, grad, exp_avg, exp_avg_sq, s, num_threads);
        throw py::type_error("argument 'param': expected dtype float32 or float64, got " +
                             std::string(py::str(arr.dtype())));
      },
      py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("one_minus_beta1"), py::arg("beta2"), py::arg("one_minus_beta2"),
      py::arg("correction2"), py::arg("eps"), py::arg("step_size"), py::arg("num_threads"),
      "One Adam step in place (torch.optim.Adam's operations and rounding), fused: "
      "exp_avg += (1-b1)(grad-exp_avg); exp_avg_sq = exp_avg_sq*b2 + ((1-b2)grad)grad; "
      "param -= step_size * exp_avg / (sqrt(exp_avg_sq)/correction2 + eps).");
}

}  // namespace bind
}  // namespace pyrnn
