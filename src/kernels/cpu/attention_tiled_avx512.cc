// The tiled batch attention's body (attention_tiled_body.h) for AVX-512: 16 lanes, four queries
// together (scores as 16 FMA chains: 4 queries x 4 blocks of 16 keys; V as 16 register
// accumulators: 4 queries x 64 columns).
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/expf_poly_avx2.h"
#include "kernels/cpu/target_pragma.h"

CHASSIS_TARGET_BEGIN("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")

namespace chassis {
namespace tiled_avx512 {

struct Lanes16 {
  using V = __m512;
  static constexpr int W = 16;
  static constexpr int kScoreQueries = 4, kGroup = 4, kCols = 4;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }  // a NaN a: b
  static float reduce_max(V x) { return _mm512_reduce_max_ps(x); }
};
using L = Lanes16;
#include "kernels/cpu/attention_tiled_body.h"

}  // namespace tiled_avx512

void run_tiled_batch_avx512(const TiledQuery* queries, int n_q, const KvRows& k, const KvRows& v, const AttentionParams& p,
                            float* scratch, int* active) {
  tiled_avx512::run_batch(queries, n_q, k, v, p, scratch, active);
}

}  // namespace chassis

CHASSIS_TARGET_END
