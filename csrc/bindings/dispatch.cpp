#include "dispatch.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pyrnn {
#ifdef PYRNN_HAVE_AVX2
namespace isa_avx2 { const KernelTable& kernel_table(); }
#endif
namespace isa_baseline { const KernelTable& kernel_table(); }

namespace bind {
namespace {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const KernelTable& choose() {
  const char* env = std::getenv("PYRNN_ISA");
  const std::string want = env ? env : "auto";
  const KernelTable& base = isa_baseline::kernel_table();
  if (want == "baseline") return base;
#ifdef PYRNN_HAVE_AVX2
  const bool avx2_ok = cpu_has_avx2_fma();
  if (want == "avx2") {
    if (!avx2_ok) throw std::runtime_error("PYRNN_ISA=avx2, but this CPU lacks AVX2+FMA");
    return isa_avx2::kernel_table();
  }
  if (want == "auto" || want.empty()) return avx2_ok ? isa_avx2::kernel_table() : base;
#else
  if (want == "auto" || want.empty()) return base;
#endif
  throw std::runtime_error("PYRNN_ISA='" + want + "' is not one of: auto, " +
                           std::string(available_isas()));
}

}  // namespace

const KernelTable& kernels() {
  static const KernelTable& table = choose();
  return table;
}

const char* available_isas() {
#ifdef PYRNN_HAVE_AVX2
  return "avx2, baseline";
#else
  return "baseline";
#endif
}

}  // namespace bind
}  // namespace pyrnn
