// V::sums (all lanes of 8 or 16 vectors reduced at once, csrc/pyrnn/simd.h) must give exactly
// V::sum's bits for every vector: the dot tiles switched to it without changing any result.
// Built by tests/test_simd_sums.py once per instruction set; exits non-zero on a mismatch.
#include <cstdio>
#include <cstring>
#include <random>

#include "pyrnn/simd.h"

int main() {
  using V = pyrnn::simd::F32;
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-1e3f, 1e3f);
  int bad = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    float in[V::lanes][V::lanes], want[V::lanes], got[V::lanes];
    V::reg v[V::lanes];
    for (int q = 0; q < V::lanes; ++q) {
      // mixed magnitudes, so that a different order of additions changes the rounding
      for (int l = 0; l < V::lanes; ++l) in[q][l] = dist(gen) * (l % 3 ? 1e-4f : 1.0f);
      v[q] = V::loadu(in[q]);
      want[q] = V::sum(V::loadu(in[q]));
    }
    V::sums(v, got);
    bad += std::memcmp(want, got, sizeof(want)) != 0;
  }
  std::printf("%d lanes: %d of 20000 trials differ\n", V::lanes, bad);
  return bad != 0;
}
