// The data cache sizes of this machine, read once per process: the tuning rules that depend on
// cache capacity (thread_plan.h, recurrent.h, gemm.h) are expressed in these, not in one CPU's
// constants. Sources in order: Linux sysfs (cpu0's caches), glibc's sysconf, then fallbacks
// typical of a current x86-64 server core. PYRNN_CACHE_L2 (bytes, or with a K/M suffix)
// overrides the L2 size, so that the rules can be tried as on another machine.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__linux__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pyrnn {

struct CacheSizes {
  double l1d = 0, l2 = 0, l3 = 0;  // bytes: one core's L1d and L2, the L3 cpu0 shares
  const char* source = "fallback";
};

namespace detail {

// "2048K", "260M", "49152" -> bytes; 0 if unreadable.
inline double parse_cache_size(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || v <= 0) return 0;
  switch (*end) {
    case 'K': case 'k': return v * 1024.0;
    case 'M': case 'm': return v * 1048576.0;
    case 'G': case 'g': return v * 1073741824.0;
    default: return v;
  }
}

inline std::string read_line(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return "";
  char buf[64] = {0};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!ok) return "";
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

inline bool read_sysfs(CacheSizes& c) {
  bool any = false;
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_line(dir + "level"), type = read_line(dir + "type");
    if (level.empty()) break;
    const double size = parse_cache_size(read_line(dir + "size").c_str());
    if (size <= 0 || type == "Instruction") continue;
    if (level == "1") c.l1d = size;
    if (level == "2") c.l2 = size;
    if (level == "3") c.l3 = size;
    any = true;
  }
  return any && c.l2 > 0;
}

inline void read_sysconf(CacheSizes& c) {
#if defined(_SC_LEVEL2_CACHE_SIZE)
  auto get = [](int name) { const long v = sysconf(name); return v > 0 ? double(v) : 0.0; };
  if (c.l1d <= 0) c.l1d = get(_SC_LEVEL1_DCACHE_SIZE);
  if (c.l2 <= 0) c.l2 = get(_SC_LEVEL2_CACHE_SIZE);
  if (c.l3 <= 0) c.l3 = get(_SC_LEVEL3_CACHE_SIZE);
#else
  (void)c;
#endif
}

inline CacheSizes read_cache_sizes() {
  CacheSizes c;
  if (read_sysfs(c)) {
    c.source = "sysfs";
  } else {
    read_sysconf(c);
    if (c.l2 > 0) c.source = "sysconf";
  }
  if (c.l1d <= 0) c.l1d = 32768.0;
  if (c.l2 <= 0) c.l2 = 1048576.0;
  if (c.l3 <= 0) c.l3 = 16.0 * 1048576.0;
  if (const char* env = std::getenv("PYRNN_CACHE_L2")) {
    const double v = parse_cache_size(env);
    if (v >= 65536.0) {  // smaller values are taken for typos, not caches
      c.l2 = v;
      c.source = "PYRNN_CACHE_L2";
    }
  }
  return c;
}

}  // namespace detail

inline const CacheSizes& cache_sizes() {
  static const CacheSizes c = detail::read_cache_sizes();
  return c;
}

}  // namespace pyrnn
