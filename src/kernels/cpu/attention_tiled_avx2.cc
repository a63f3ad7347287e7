// The tiled batch attention's body (attention_tiled_body.h) for AVX2: 8 lanes in 16 registers, so
// scores one query at a time (8 FMA chains: 8 blocks of 8 keys) and V two at a time (8 register
// accumulators: 2 queries x 32 columns).
#include "kernels/cpu/avx2_util.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/expf_poly_avx2.h"
#include "kernels/cpu/target_pragma.h"

CHASSIS_TARGET_BEGIN("avx2,fma,f16c")

namespace chassis {
namespace tiled_avx2 {

struct Lanes8 {
  using V = __m256;
  static constexpr int W = 8;
  static constexpr int kScoreQueries = 1, kGroup = 2, kCols = 4;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // a NaN a: b
  static float reduce_max(V x) {
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
};
using L = Lanes8;
#include "kernels/cpu/attention_tiled_body.h"

}  // namespace tiled_avx2

void run_tiled_batch_avx2(const TiledQuery* queries, int n_q, const KvRows& k, const KvRows& v, const AttentionParams& p,
                          float* scratch, int* active) {
  tiled_avx2::run_batch(queries, n_q, k, v, p, scratch, active);
}

}  // namespace chassis

CHASSIS_TARGET_END
