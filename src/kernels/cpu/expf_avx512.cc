#include "kernels/cpu/expf_avx512.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul_avx2.h"  // use_avx512_tiles

namespace chassis {

namespace {
// The lanes of x[0..n) that expf8 computes whose bits differ from expf's.
CHASSIS_AVX512 int lane_mismatches(float (&x)[8], int n) {
  for (int l = n; l < 8; ++l) x[l] = 0;
  alignas(32) float y[8];
  unsigned scalar = 0;
  _mm256_store_ps(y, expf8(_mm256_loadu_ps(x), scalar));
  int bad = 0;
  for (int l = 0; l < n; ++l) {
    const float want = std::exp(x[l]);
    if (!(scalar >> l & 1) && std::memcmp(&want, &y[l], sizeof(float)) != 0) ++bad;
  }
  return bad;
}
}  // namespace

int64_t expf8_mismatches(uint32_t first_bits, uint32_t last_bits, uint32_t stride) {
  int64_t bad = 0;
  float x[8];
  int n = 0;
  for (uint64_t b = first_bits; b <= last_bits; b += stride) {
    const uint32_t bits = uint32_t(b);
    std::memcpy(&x[n++], &bits, sizeof(float));
    if (n == 8) bad += lane_mismatches(x, n), n = 0;
  }
  if (n > 0) bad += lane_mismatches(x, n);
  return bad;
}

bool use_libm_expf8() {
  static const bool ok = [] {
    if (!use_avx512_tiles()) return false;
    // Negative arguments (what attention takes) down to the library's slow path and past it, the
    // positive ones up to it, and -inf: ~34k values, a fraction of a millisecond once a process.
    // (A different expf, e.g. another C library's, differs on some of them; every float has been
    // compared with glibc 2.36's by hand, and the tests compare a denser sweep.)
    return expf8_mismatches(0x80000000u, 0xc2d00000u, 65537) == 0 && expf8_mismatches(0u, 0x42b80000u, 65537) == 0 &&
           expf8_mismatches(0xff800000u, 0xff800000u, 1) == 0;
  }();
  return ok;
}

}  // namespace chassis
