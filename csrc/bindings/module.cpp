// The one extension module, pyrnn._core.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>

#include <Eigen/Core>

#include "array_pool.h"
#include "checks.h"
#include "dispatch.h"
#include "pyrnn/cache_info.h"
#include "pyrnn/parallel.h"
#include "pyrnn/thread_plan.h"

namespace py = pybind11;

namespace pyrnn {
namespace bind {
void register_kernels(py::module_& m);
void register_optim(py::module_& m);
void register_linear(py::module_& m);
void register_loss(py::module_& m);
void register_cells(py::module_& m);
void register_capi(py::module_& m);
#ifdef PYRNN_HAVE_CUDA
void register_cuda(py::module_& m);  // register_cuda.cpp, built with -DPYRNN_CUDA=ON
#endif
}
}  // namespace pyrnn

#define PYRNN_STR2(x) #x
#define PYRNN_STR(x) PYRNN_STR2(x)

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyrnn compiled kernels (raw bindings; use pyrnn.functional)";
  pyrnn::bind::kernels();  // picks the build now: a bad PYRNN_ISA fails the import, not a call
  pyrnn::bind::register_kernels(m);
  pyrnn::bind::register_optim(m);
  pyrnn::bind::register_linear(m);
  pyrnn::bind::register_loss(m);
  pyrnn::bind::register_cells(m);
  pyrnn::bind::register_capi(m);
#ifdef PYRNN_HAVE_CUDA
  pyrnn::bind::register_cuda(m);
#endif
  m.def("isa", [] { return pyrnn::bind::kernels().isa; },
        "Instruction-set build of the kernels in use.");
  m.def("available_isas", [] { return pyrnn::bind::available_isas(); });
  m.def("supported_isas", [] { return pyrnn::bind::supported_isas(); },
        "The compiled instruction-set builds this CPU and OS can run, best first.");
  m.def("set_flush_denormals", [](bool on) { pyrnn::bind::kernels().set_flush_denormals(on); },
        py::arg("enabled"),
        "Whether kernel threads flush subnormal floats to zero (FTZ/DAZ) during a call.");
  m.def("flush_denormals", [] { return pyrnn::bind::kernels().flush_denormals(); });
  m.def(
      "packed_product",
      [](const py::object& X, const py::object& W, int reps) {
        const auto shape = [](const py::object& o, const char* name) {
          if (!py::isinstance<py::array>(o) ||
              py::reinterpret_borrow<py::array>(o).ndim() != 2)
            throw py::type_error(std::string("argument '") + name + "': expected a 2-d array");
          auto a = py::reinterpret_borrow<py::array>(o);
          return std::vector<pyrnn::index_t>{a.shape(0), a.shape(1)};
        };
        const auto xs = shape(X, "X"), ws = shape(W, "W");
        const pyrnn::index_t M = xs[0], K = xs[1], N = ws[0];
        const float* x = pyrnn::bind::checked<float>(X, "X", {M, K});
        const float* w = pyrnn::bind::checked<float>(W, "W", {N, K});
        if (reps < 1) throw py::value_error("packed_product: reps must be >= 1");
        py::array_t<float> C({M, N});
        float* c = C.mutable_data();
        {
          py::gil_scoped_release release;
          pyrnn::bind::kernels().packed_product_f32(M, N, K, x, w, c, reps);
        }
        return C;
      },
      py::arg("X"), py::arg("W"), py::arg("reps") = 1,
      "C = X W^T (float32, X [M, K], W [N, K]) through the kernels' packed step product, "
      "repeated `reps` times on one thread after packing W once (bench/bench_gemm.py).");
  m.def("cache_sizes", [] {
    const auto& c = pyrnn::cache_sizes();
    py::dict d;
    d["l1d"] = static_cast<long long>(c.l1d);
    d["l2"] = static_cast<long long>(c.l2);
    d["l3"] = static_cast<long long>(c.l3);
    d["source"] = c.source;
    return d;
  }, "The data cache sizes (bytes) the kernels' tuning rules are derived from, and their source.");
  m.def("threads_backend", [] {
#ifdef _OPENMP
    return pyrnn::in_forked_child() ? "pyrnn threads (forked child: libgomp's pool is stale)"
                                    : "OpenMP";
#else
    return "none (serial build)";
#endif
  }, "Who runs the kernels' threads in this process: OpenMP, or in a child of fork() pyrnn's "
     "own team (GNU libgomp hangs there).");
  m.def("max_threads", [] { return pyrnn::max_threads(); },
        "OpenMP's default thread count (OMP_NUM_THREADS or the core count).");
  m.def(
      "forward_threads",
      [](int num_threads, pyrnn::index_t T, pyrnn::index_t B, pyrnn::index_t I, pyrnn::index_t H,
         pyrnn::index_t R, int G, pyrnn::index_t elem_bytes, bool batch_allowed) {
        if (num_threads < 1 || T < 0 || B < 0 || I < 0 || H < 0 || R < 0 || G < 1 ||
            elem_bytes < 1)
          throw py::value_error("forward_threads: sizes must be >= 0, num_threads, G and "
                                "elem_bytes >= 1");
        const auto plan = pyrnn::detail::thread_plan(num_threads, T, B, I, H, R, G, elem_bytes,
                                                     batch_allowed);
        return py::make_tuple(plan.threads, plan.batch);
      },
      py::arg("num_threads"), py::arg("T"), py::arg("B"), py::arg("I"), py::arg("H"),
      py::arg("R"), py::arg("G"), py::arg("elem_bytes"), py::arg("batch_allowed"),
      "(threads, batch_split) a forward kernel call of these sizes runs with: its thread count "
      "and whether the threads split batch rows (else hidden units).");
  m.def("array_pool", [] {
    auto& pool = pyrnn::bind::ArrayPool::instance();
    const auto kept = pool.kept();
    py::dict d;
    d["limit_bytes"] = pool.limit();
    d["kept_bytes"] = kept.first;
    d["kept_blocks"] = kept.second;
    return d;
  }, "The pool that keeps the memory of freed output arrays (PYRNN_ARRAY_POOL_MB).");
  m.def(
      "pooled_copy",
      [](const py::array& a) -> py::array {
        if (!(a.flags() & py::array::c_style))
          throw py::value_error("pooled_copy: the array must be C-contiguous");
        const std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
        auto copy = [&](auto tag) -> py::array {
          using T = decltype(tag);
          auto out = pyrnn::bind::pooled_empty<T>(shape);
          const T* src = static_cast<const T*>(a.data());
          T* dst = out.mutable_data();
          const size_t n = size_t(a.size());
          py::gil_scoped_release release;
          std::copy_n(src, n, dst);
          return out;
        };
        if (a.dtype().equal(py::dtype::of<float>())) return copy(float{});
        if (a.dtype().equal(py::dtype::of<double>())) return copy(double{});
        if (a.dtype().equal(py::dtype::of<std::int64_t>())) return copy(std::int64_t{});
        throw py::type_error("pooled_copy: expected float32, float64 or int64, got " +
                             std::string(py::str(a.dtype())));
      },
      py::arg("a"),
      "A C-contiguous copy of `a` in the array pool's memory (freed blocks of the same size are "
      "reused instead of faulting in fresh pages).");
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
