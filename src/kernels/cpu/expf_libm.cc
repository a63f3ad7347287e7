#include "kernels/cpu/expf_libm.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/dot_avx2.h"     // cpu_has_avx2
#include "kernels/cpu/matmul_avx2.h"  // use_avx512_tiles

namespace chassis {

namespace {
// The lanes of x[0..n) that expf8 (or expf8_avx2) computes whose bits differ from expf's.
CHASSIS_AVX512 __m256 expf8_of(const float* x, unsigned& scalar) { return expf8(_mm256_loadu_ps(x), scalar); }
CHASSIS_AVX2 __m256 expf8_avx2_of(const float* x, unsigned& scalar) { return expf8_avx2(_mm256_loadu_ps(x), scalar); }
CHASSIS_AVX2 int lane_mismatches(float (&x)[8], int n, ExpfLanes lanes) {
  for (int l = n; l < 8; ++l) x[l] = 0;
  alignas(32) float y[8];
  unsigned scalar = 0;
  _mm256_store_ps(y, lanes == ExpfLanes::kAvx512 ? expf8_of(x, scalar) : expf8_avx2_of(x, scalar));
  int bad = 0;
  for (int l = 0; l < n; ++l) {
    const float want = std::exp(x[l]);
    if (!(scalar >> l & 1) && std::memcmp(&want, &y[l], sizeof(float)) != 0) ++bad;
  }
  return bad;
}
}  // namespace

int64_t expf8_mismatches(uint32_t first_bits, uint32_t last_bits, uint32_t stride, ExpfLanes lanes) {
  int64_t bad = 0;
  float x[8];
  int n = 0;
  for (uint64_t b = first_bits; b <= last_bits; b += stride) {
    const uint32_t bits = uint32_t(b);
    std::memcpy(&x[n++], &bits, sizeof(float));
    if (n == 8) bad += lane_mismatches(x, n, lanes), n = 0;
  }
  if (n > 0) bad += lane_mismatches(x, n, lanes);
  return bad;
}

namespace {
// Negative arguments (what attention takes) down to the library's slow path and past it, the
// positive ones up to it, and -inf: ~34k values, a fraction of a millisecond once a process.
// (A different expf, e.g. another C library's, differs on some of them; every float has been
// compared with glibc 2.36's by hand, and the tests compare a denser sweep.)
bool matches_libm(ExpfLanes lanes) {
  return expf8_mismatches(0x80000000u, 0xc2d00000u, 65537, lanes) == 0 &&
         expf8_mismatches(0u, 0x42b80000u, 65537, lanes) == 0 && expf8_mismatches(0xff800000u, 0xff800000u, 1, lanes) == 0;
}
}  // namespace

bool use_libm_expf8() {
  // The check once a process; the switch (tests, CHASSIS_NO_AVX512) on every call.
  static const bool ok = cpu_has_avx512bw() && matches_libm(ExpfLanes::kAvx512);
  return ok && use_avx512_tiles();
}

bool use_libm_expf8_avx2() {
  static const bool ok = cpu_has_avx2() && matches_libm(ExpfLanes::kAvx2);
  return ok;
}

}  // namespace chassis
