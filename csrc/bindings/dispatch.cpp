#include "dispatch.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace pyrnn {
#ifdef PYRNN_HAVE_AVX512
namespace isa_avx512 { const KernelTable& kernel_table(); }
#endif
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

// libgcc's checks include the OS's XSAVE support of the opmask and ZMM registers.
bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

// AMD Zen 4 (family 19h) runs 512-bit operations as two 256-bit halves: AVX-512 measured no
// faster there, so `auto` keeps the AVX2 build on it (PYRNN_ISA=avx512 still forces it).
bool avx512_split_in_halves() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned family = ((eax >> 8) & 0xf) + (((eax >> 8) & 0xf) == 0xf ? (eax >> 20) & 0xff : 0);
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") && family == 0x19;
#else
  return false;
#endif
}

[[noreturn]] void unsupported(const std::string& want, const char* lacks) {
  throw std::runtime_error("PYRNN_ISA=" + want + ", but this CPU lacks " + lacks);
}

const KernelTable& choose() {
  const char* env = std::getenv("PYRNN_ISA");
  const std::string want = env && *env ? env : "auto";
  const KernelTable& base = isa_baseline::kernel_table();
  if (want == "baseline") return base;
#ifdef PYRNN_HAVE_AVX512
  if (want == "avx512") {
    if (!cpu_has_avx512()) unsupported(want, "AVX-512 F/BW/DQ/VL (or the OS does not enable it)");
    return isa_avx512::kernel_table();
  }
  if (want == "auto" && cpu_has_avx512() && !avx512_split_in_halves())
    return isa_avx512::kernel_table();
#endif
#ifdef PYRNN_HAVE_AVX2
  if (want == "avx2") {
    if (!cpu_has_avx2_fma()) unsupported(want, "AVX2+FMA");
    return isa_avx2::kernel_table();
  }
  if (want == "auto") return cpu_has_avx2_fma() ? isa_avx2::kernel_table() : base;
#endif
  if (want == "auto") return base;
  throw std::runtime_error("PYRNN_ISA='" + want + "' is not one of: auto, " +
                           std::string(available_isas()));
}

}  // namespace

const KernelTable& kernels() {
  static const KernelTable& table = choose();
  return table;
}

const char* available_isas() {
#if defined(PYRNN_HAVE_AVX512)
  return "avx512, avx2, baseline";
#elif defined(PYRNN_HAVE_AVX2)
  return "avx2, baseline";
#else
  return "baseline";
#endif
}

std::string supported_isas() {
  std::string out;
#ifdef PYRNN_HAVE_AVX512
  if (cpu_has_avx512()) out += "avx512, ";
#endif
#ifdef PYRNN_HAVE_AVX2
  if (cpu_has_avx2_fma()) out += "avx2, ";
#endif
  return out + "baseline";
}

}  // namespace bind
}  // namespace pyrnn
