// Decode attention for several query heads of one kv head on 256-bit registers: the AVX2 twin of
// attend_heads_avx512 (attention_avx2.cc), for CPUs without AVX-512 (and CHASSIS_NO_AVX512=1).
// Each head's output is bit-identical to attend_one (kernels/ref/ops.cc), as the one-head AVX2
// body's is: the same scores, softmax steps and f16-rounded accumulation, key by key.
// Against a head at a time (attend_one_avx2), AVX-512 and VNNI off: BM_AttentionGroup 7 heads of 64
// 48.1 -> 30.3 us, 4 heads 27.7 -> 16.9, 4 heads of 128 37.1 -> 32.9; decode at depth 4096 (bench
// -p 4096 -n 32, two alternations) Qwen2.5-0.5B Q4_0 41.0 / 42.0 -> 55.0 / 56.7 tok/s, Llama-3.2-1B
// Q4_0 23.1 / 25.7 -> 30.3 / 30.1.
#include "kernels/cpu/attention_steps.h"

#include <algorithm>
#include <cmath>

namespace chassis {
namespace {
using namespace attention_steps;

// V-pass registers a head per chunk (see below). BM_AttentionGroup with AVX-512 off (512 keys, two
// alternations): four a head for two or more heads beat two for four heads (7 heads of 64 in chunks
// of 4 + 3: 33.1 -> 30.3 us; 4 heads 19.4 -> 16.9) though 16 accumulators then spill, and eight for
// two heads measured the same as four.
constexpr int v_chunk(int H, int NV) { return std::min(NV, H <= 1 ? 8 : 4); }

// Eight keys' scores from their c vectors (c[j]: key j's (a0 + a2) + (a1 + a3)), each summed as the
// one-key reduction sums it, ((x0 + x4) + (x1 + x5)) + ((x2 + x6) + (x3 + x7)), the 128-bit halves
// added and then two hadds, but eight keys at once; times scale, in key order.
CHASSIS_AVX2 inline void sums_of_block(const float (&c)[8][8], float scale, float* s) {
  __m256 u[4];  // u[p]: key 2p's four half sums, then key 2p + 1's
  for (int p = 0; p < 4; ++p) {
    const __m256 a = _mm256_load_ps(c[2 * p]), b = _mm256_load_ps(c[2 * p + 1]);
    u[p] = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
  }
  // hadd pairs within 128-bit lanes: keys 0, 2 | 1, 3 and 4, 6 | 5, 7, then all eight:
  // lanes 0..3 keys 0, 2, 4, 6 and lanes 4..7 keys 1, 3, 5, 7.
  const __m256 w = _mm256_hadd_ps(_mm256_hadd_ps(u[0], u[1]), _mm256_hadd_ps(u[2], u[3]));
  const __m256 ordered = _mm256_permutevar8x32_ps(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_store_ps(s, _mm256_mul_ps(ordered, _mm256_set1_ps(scale)));
}
// Which head counts take sums_of_block: two or more (BM_AttentionGroup, AVX-512 off, three
// alternations: 7 heads of 64 30.5-35.6 -> 28.3-28.5 us, 4 heads 17.6-21.2 -> 16.2-16.4, 2 heads of
// 128 in each chunk 33.0-34.0 -> 31.4-31.7); one head's one-key sums overlap its next key's products
// and the block was no faster (d 64: 5.5-5.7 us either way; d 128: 8.9-9.4 -> 9.1-9.8).
template <int H>
inline constexpr bool kBlockSums = H >= 2;

// H query heads that share one kv head, NV 8-float registers a head (head size 8 * NV), in blocks of
// eight keys: the block's scores (each key's row widened once for all heads, each head's dot in
// ggml_vec_dot_f16's order: four 8-lane FMA chains over steps of 32, (0+2)+(1+3), the hadd tree),
// its running maxima and exps (eight at a time where the library's expf is vectorised, else the
// scalar steps), then V. The accumulators of all heads do not fit 16 registers (two heads of 64 are
// 16), so the V pass walks the head in chunks of C registers and, per chunk, the block's keys in
// order: each element's f16 chain still takes the keys one by one, the H * C chains of a chunk
// interleave to hide each other's latency (an FMA and the f16 round trip a key), and a chunk's
// accumulators go to memory only between blocks.
template <int H, int NV>
CHASSIS_AVX2 void attend_heads_avx2_t(const float* q, int64_t q_stride, const KvRows& k, const KvRows& v,
                                       int64_t kv_begin, int64_t kv_end, float* out, int64_t out_stride,
                                       const AttentionParams& p) {
  static_assert(NV % 4 == 0);
  constexpr int C = v_chunk(H, NV);
  static_assert(NV % C == 0);
  alignas(32) float qr[H][NV * 8];   // q rounded to f16, as the one-head kernel keeps it
  alignas(32) float acc[H][NV * 8];  // the f16-valued accumulators between blocks
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < NV; ++i) {
      _mm256_store_ps(qr[h] + 8 * i, round_h(_mm256_loadu_ps(q + h * q_stride + 8 * i)));
      _mm256_store_ps(acc[h] + 8 * i, _mm256_setzero_ps());
    }
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float S[H], M[H];
  for (int h = 0; h < H; ++h) S[h] = 0, M[h] = -INFINITY;
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  const bool vector_exp = H >= 2 && use_libm_expf8_avx2();
  constexpr int kKeys = 8;
  for (int64_t j0 = kv_begin; j0 < kv_end; j0 += kKeys) {
    const int nk = int(std::min<int64_t>(kKeys, kv_end - j0));
    alignas(32) float s[H][kKeys];
    alignas(32) float ms[H][kKeys], vs[H][kKeys];
    unsigned raised[H];  // bit jj: key jj raised the head's running max
    const uint16_t* vrows[kKeys];
    alignas(32) float cs[kBlockSums<H> ? H : 1][kKeys][8];  // each key's c, for sums_of_block
    for (int jj = 0; jj < nk; ++jj, kc.next(), vc.next()) {
      const uint16_t* kr = kc.row();
      vrows[jj] = vc.row();
      __m256 a[H][4];
      for (auto& head : a)
        for (auto& x : head) x = _mm256_setzero_ps();
      for (int i = 0; i < NV; ++i) {
        const __m256 kv = load_h(kr + 8 * i);
        for (int h = 0; h < H; ++h) a[h][i % 4] = _mm256_fmadd_ps(kv, _mm256_load_ps(qr[h] + 8 * i), a[h][i % 4]);
      }
      for (int h = 0; h < H; ++h) {
        const __m256 c = _mm256_add_ps(_mm256_add_ps(a[h][0], a[h][2]), _mm256_add_ps(a[h][1], a[h][3]));
        if constexpr (kBlockSums<H>) {
          _mm256_store_ps(cs[h][jj], c);
        } else {
          const __m128 t = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
          const __m128 t1 = _mm_hadd_ps(t, t);
          s[h][jj] = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) * scale;
        }
      }
    }
    for (int h = 0; h < H; ++h) {
      if constexpr (kBlockSums<H>) {
        for (int jj = nk; jj < kKeys; ++jj) _mm256_store_ps(cs[h][jj], _mm256_setzero_ps());
        sums_of_block(cs[h], scale, s[h]);
      }
      if (p.softcap > 0)
        for (int jj = 0; jj < nk; ++jj) s[h][jj] = p.softcap * std::tanh(s[h][jj]);
    }
    for (int h = 0; h < H; ++h)
      raised[h] = vector_exp ? online_softmax_block8_avx2(s[h], nk, M[h], ms[h], vs[h])
                             : online_softmax_steps(s[h], nk, M[h], ms[h], vs[h]);
    for (int i0 = 0; i0 < NV; i0 += C) {
      __m256 x[H][C];
      for (int h = 0; h < H; ++h)
        for (int c = 0; c < C; ++c) x[h][c] = _mm256_load_ps(acc[h] + 8 * (i0 + c));
      for (int jj = 0; jj < nk; ++jj) {
        for (int h = 0; h < H; ++h)
          if (raised[h] >> jj & 1) {
            const __m256 msv = _mm256_set1_ps(ms[h][jj]);
            for (int c = 0; c < C; ++c) x[h][c] = round_h(_mm256_mul_ps(x[h][c], msv));
          }
        for (int c = 0; c < C; ++c) {
          const __m256 vrow = load_h(vrows[jj] + 8 * (i0 + c));
          for (int h = 0; h < H; ++h) x[h][c] = round_h(_mm256_fmadd_ps(vrow, _mm256_set1_ps(vs[h][jj]), x[h][c]));
        }
      }
      for (int h = 0; h < H; ++h)
        for (int c = 0; c < C; ++c) _mm256_store_ps(acc[h] + 8 * (i0 + c), x[h][c]);
    }
    for (int h = 0; h < H; ++h)
      for (int jj = 0; jj < nk; ++jj) S[h] = std::fma(S[h], ms[h][jj], vs[h][jj]);
  }
  for (int h = 0; h < H; ++h) {
    const __m256 inv = _mm256_set1_ps(S[h] == 0 ? 0.0f : 1.0f / S[h]);
    for (int i = 0; i < NV; ++i) _mm256_storeu_ps(out + h * out_stride + 8 * i, _mm256_mul_ps(_mm256_load_ps(acc[h] + 8 * i), inv));
  }
}

template <int NV>
bool attend_heads_nv(int n_q, const float* q, int64_t q_stride, const KvRows& k, const KvRows& v, int64_t kv_begin,
                     int64_t kv_end, float* out, int64_t out_stride, const AttentionParams& p) {
  switch (n_q) {
    case 1: attend_heads_avx2_t<1, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p); return true;
    case 2: attend_heads_avx2_t<2, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p); return true;
    case 3: attend_heads_avx2_t<3, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p); return true;
    case 4: attend_heads_avx2_t<4, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p); return true;
  }
  return false;
}

}  // namespace

bool attend_heads_avx2_body(int n_q, const float* q, int64_t q_stride, const KvRows& k, const KvRows& v,
                            int64_t kv_begin, int64_t kv_end, float* out, int64_t out_stride, const AttentionParams& p) {
  switch (p.head_dim) {
    case 32: return attend_heads_nv<4>(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
    case 64: return attend_heads_nv<8>(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
    case 128: return attend_heads_nv<16>(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
  }
  return false;
}

}  // namespace chassis
