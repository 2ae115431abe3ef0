// The one extension module, pyrnn._core.
#include <pybind11/pybind11.h>

#include <Eigen/Core>

#include "array_pool.h"
#include "dispatch.h"
#include "pyrnn/parallel.h"

namespace py = pybind11;

namespace pyrnn {
namespace bind {
void register_kernels(py::module_& m);
#ifdef PYRNN_HAVE_CUDA
void register_cuda(py::module_& m);  // register_cuda.cpp, built with -DPYRNN_CUDA=ON
#endif
}
}  // namespace pyrnn

#define PYRNN_STR2(x) #x
#define PYRNN_STR(x) PYRNN_STR2(x)

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyrnn compiled kernels (raw bindings; use pyrnn.functional)";
  pyrnn::bind::register_kernels(m);
#ifdef PYRNN_HAVE_CUDA
  pyrnn::bind::register_cuda(m);
#endif
  m.def("isa", [] { return pyrnn::bind::kernels().isa; },
        "Instruction-set build of the kernels in use.");
  m.def("available_isas", [] { return pyrnn::bind::available_isas(); });
  m.def("max_threads", [] { return pyrnn::max_threads(); },
        "OpenMP's default thread count (OMP_NUM_THREADS or the core count).");
  m.def("array_pool", [] {
    auto& pool = pyrnn::bind::ArrayPool::instance();
    const auto kept = pool.kept();
    py::dict d;
    d["limit_bytes"] = pool.limit();
    d["kept_bytes"] = kept.first;
    d["kept_blocks"] = kept.second;
    return d;
  }, "The pool that keeps the memory of freed output arrays (PYRNN_ARRAY_POOL_MB).");
  m.def("array_pool_clear", [] { pyrnn::bind::ArrayPool::instance().clear(); },
        "Free the memory the array pool keeps.");
  m.def("build_info", [] {
    py::dict d;
    d["compiler"] = PYRNN_COMPILER;
#ifdef _OPENMP
    d["openmp"] = PYRNN_STR(_OPENMP);
#else
    d["openmp"] = py::none();
#endif
    d["eigen_version"] = std::to_string(EIGEN_WORLD_VERSION) + "." +
                         std::to_string(EIGEN_MAJOR_VERSION) + "." +
                         std::to_string(EIGEN_MINOR_VERSION);
    d["eigen_simd"] = pyrnn::bind::kernels().eigen_simd();
    d["isa"] = pyrnn::bind::kernels().isa;
    d["available_isas"] = pyrnn::bind::available_isas();
#ifdef PYRNN_HAVE_CUDA
    d["cuda"] = true;
#else
    d["cuda"] = false;
#endif
    return d;
  });
}
