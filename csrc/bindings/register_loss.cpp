// Raw binding of the fused softmax cross-entropy (pyrnn/nn.py's softmax_cross_entropy calls it
// on a 2-D view after its own checks of targets, mask and ignore_index).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checks.h"
#include "dispatch.h"

namespace pyrnn {
namespace bind {
namespace {

template <typename T>
py::tuple softmax_xent(const py::array& logits, const py::object& target, double scale,
                       int threads) {
  if (logits.ndim() != 2)
    throw py::value_error("argument 'logits': expected a 2-D array");
  const index_t M = index_t(logits.shape(0)), C = index_t(logits.shape(1));
  const T* xp = checked<T>(logits, "logits", {M, C});
  const std::int64_t* tp = checked<std::int64_t>(target, "target", {M});
  for (index_t m = 0; m < M; ++m)  // the kernel reads x[m, target[m]]
    if (tp[m] >= C)
      throw py::value_error("argument 'target': entry " + std::to_string(m) + " is " +
                            std::to_string(tp[m]) + ", expected < " + std::to_string(C) +
                            " (negative: not counted)");
  py::array_t<T> grad = empty<T>({M, C});
  T* gp = ptr(grad);
  std::vector<double> nll(static_cast<size_t>(M));  // [M]
  double total = 0.0;
  {
    py::gil_scoped_release release;
    if constexpr (std::is_same<T, float>::value)
      kernels().softmax_xent_f32(M, C, xp, tp, T(scale), gp, nll.data(), threads);
    else
      kernels().softmax_xent_f64(M, C, xp, tp, T(scale), gp, nll.data(), threads);
    for (double v : nll) total += v;  // in row order: the same sum on any thread count
  }
  return py::make_tuple(total, grad);
}

}  // namespace

void register_loss(py::module_& m) {
  m.def(
      "softmax_xent",
      [](const py::object& logits, const py::object& target, double scale,
         int num_threads) -> py::tuple {
        if (num_threads < 1) throw py::value_error("argument 'num_threads': must be >= 1");
        if (!py::isinstance<py::array>(logits))
          throw py::type_error("argument 'logits': expected a numpy array");
        const auto arr = py::reinterpret_borrow<py::array>(logits);
        if (arr.dtype().equal(py::dtype::of<float>()))
          return softmax_xent<float>(arr, target, scale, num_threads);
        if (arr.dtype().equal(py::dtype::of<double>()))
          return softmax_xent<double>(arr, target, scale, num_threads);
        throw py::type_error("argument 'logits': expected a float32 or float64 array");
      },
      py::arg("logits"), py::arg("target"), py::arg("scale"), py::arg("num_threads"),
      "Softmax cross-entropy of logits[M, C] against int64 target[M] (negative: not counted): "
      "returns (the sum of the counted rows' losses, scale * its gradient [M, C]).");
}

}  // namespace bind
}  // namespace pyrnn
