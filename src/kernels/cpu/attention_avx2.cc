#include "kernels/cpu/avx512_util.h"  // first: see there

#include "kernels/cpu/attention_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_steps.h"
#include "kernels/cpu/expf_libm.h"
#include "kernels/cpu/matmul_avx2.h"  // use_avx512_tiles
#include "kernels/ref/elementwise.h"

namespace chassis {
using namespace attention_steps;
namespace {

// The tiled kernel of kernels/ref/ops.cc (batches of 64+ queries), operation for operation: each
// key's score is the same sequential FMA chain over the head dimension, computed for 8 keys at once
// in the 8 lanes (rows transposed so lane l walks key l); V is accumulated element-wise, which is
// the same per-element FMA. The polynomial exp is the reference's own function.
CHASSIS_AVX2 bool attend_tiled_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin,
                                    int64_t kv_end, float* out, const AttentionParams& p) {
  const int d = p.head_dim;
  if (d % 8 != 0 || d > 1024) return false;
  constexpr int kTile = 64;
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  alignas(32) float acc[1024];
  std::fill(acc, acc + d, 0.0f);
  float S = 0, M = -INFINITY;
  alignas(32) float s[kTile];
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  for (int64_t t0 = kv_begin / kTile * kTile; t0 < kv_end; t0 += kTile) {
    for (int g = 0; g < kTile; g += 8) {
      const uint16_t* rows[8];
      bool any = false;
      for (int l = 0; l < 8; ++l) {
        const int64_t pos = t0 + g + l;
        rows[l] = nullptr;
        if (pos < kv_begin || pos >= kv_end) continue;
        rows[l] = kc.row();
        kc.next();
        any = true;
      }
      if (!any) {
        std::fill(s + g, s + g + 8, -INFINITY);
        continue;
      }
      __m256 dot = _mm256_setzero_ps();
      for (int i = 0; i < d; i += 8) {
        __m256 r[8];
        for (int l = 0; l < 8; ++l) r[l] = rows[l] ? load_h(rows[l] + i) : _mm256_setzero_ps();
        avx2::transpose8(r);
        for (int c = 0; c < 8; ++c) dot = _mm256_fmadd_ps(_mm256_set1_ps(q[i + c]), r[c], dot);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, _mm256_mul_ps(dot, _mm256_set1_ps(scale)));
      for (int l = 0; l < 8; ++l) {
        float x = lanes[l];
        if (p.softcap > 0) x = std::tanh(x) * p.softcap;
        s[g + l] = rows[l] ? x : -INFINITY;
      }
    }
    float tile_max = -INFINITY;
    for (int j = 0; j < kTile; ++j) tile_max = std::max(tile_max, s[j]);
    if (tile_max == -INFINITY) continue;
    const float m_new = std::fmax(M, tile_max);
    if (m_new > M) {
      const float ms = std::exp(M - m_new);
      const __m256 msv = _mm256_set1_ps(ms);
      for (int i = 0; i < d; i += 8) _mm256_store_ps(acc + i, _mm256_mul_ps(_mm256_load_ps(acc + i), msv));
      S *= ms;
    }
    M = m_new;
    S = float(double(S) + tile_exp_sum(s, kTile, m_new));
    for (int j = 0; j < kTile; ++j) {
      const int64_t pos = t0 + j;
      if (pos < kv_begin || pos >= kv_end) continue;  // probability 0: adds nothing
      const uint16_t* vr = vc.row();
      vc.next();
      const __m256 w = _mm256_set1_ps(s[j]);
      for (int i = 0; i < d; i += 8) _mm256_store_ps(acc + i, _mm256_fmadd_ps(load_h(vr + i), w, _mm256_load_ps(acc + i)));
    }
  }
  const float inv = S == 0 ? 0 : 1.0f / S;
  for (int i = 0; i < d; ++i) out[i] = acc[i] * inv;
  return true;
}

}  // namespace

// online_softmax_steps for a block of at most eight keys on AVX-512, where expf8 is the library's expf
// (use_libm_expf8): the running maximum before each key by a prefix-max scan over the lanes, then all
// the block's exps at once. Each key gets the scalar steps' very values: raised = s > M (strict; a
// NaN score never raises M), and the exp of the same difference (M - s or s - M, rounded alike).
CHASSIS_AVX512 inline __m256 lanes_up(__m256 v, int k) {  // lane j <- lane j - k; lanes below k: -inf
  const __m256i from = _mm256_and_si256(_mm256_sub_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(k)),
                                        _mm256_set1_epi32(7));
  return _mm256_mask_permutexvar_ps(_mm256_set1_ps(-INFINITY), __mmask8(0xff << k), from, v);
}
// exp of the live lanes of arg (dead lanes 0): expf8, and the library's expf where it leaves a lane.
CHASSIS_AVX512 inline __m256 exp_lanes(__m256 arg) {
  unsigned scalar = 0;
  const __m256 e = expf8(arg, scalar);
  return with_scalar_exps(e, arg, scalar);
}
CHASSIS_AVX512 inline unsigned online_softmax_block8(const float* scores, int nk, float& M, float* ms, float* vs) {
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY), one = _mm256_set1_ps(1.0f);
  const __mmask8 live = __mmask8((1u << nk) - 1);
  const __m256 s = _mm256_mask_loadu_ps(minus_inf, live, scores);
  const __m256 m = _mm256_set1_ps(M);
  // Most blocks raise nothing (past the first few keys the running max seldom moves): then M before
  // every key is M itself, each weight is exp(s - M) and each factor 1, what the scan below gives too
  // (every prefix max is <= M; a NaN score raises nothing either way). BM_AttentionGroup, 512 keys:
  // 7 heads of 64 22.2 -> 18.3 us, 4 heads 12.4 -> 10.0; Qwen2.5-0.5B Q4_0 decode at depth 4096 +4 %.
  if ((_mm256_cmp_ps_mask(s, m, _CMP_GT_OQ) & live) == 0) {
    _mm256_storeu_ps(ms, one);
    _mm256_storeu_ps(vs, exp_lanes(_mm256_maskz_sub_ps(live, s, m)));
    return 0;
  }
  // The scan's inputs: NaN scores as -inf (max_ps would pass a NaN on).
  __m256 p = _mm256_mask_blend_ps(_mm256_cmp_ps_mask(s, s, _CMP_ORD_Q), minus_inf, s);
  for (int k = 1; k < 8; k *= 2) p = _mm256_max_ps(p, lanes_up(p, k));  // p_j = max(s_0..s_j)
  const __m256 prev = _mm256_max_ps(lanes_up(p, 1), m);                  // M before key j
  const __mmask8 raised = _mm256_cmp_ps_mask(s, prev, _CMP_GT_OQ) & live;
  // exp(M_old - s) where s is the new maximum, else exp(s - M); dead lanes exp(0).
  const __m256 ev = exp_lanes(_mm256_maskz_mov_ps(live, _mm256_mask_sub_ps(_mm256_sub_ps(s, prev), raised, prev, s)));
  _mm256_storeu_ps(ms, _mm256_mask_blend_ps(raised, one, ev));
  _mm256_storeu_ps(vs, _mm256_mask_blend_ps(raised, ev, one));
  alignas(32) float top[8];
  _mm256_store_ps(top, p);
  M = std::max(M, top[7]);
  return raised;
}

CHASSIS_AVX512 inline __m512 load_h16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
CHASSIS_AVX512 inline __m512 round_h16(__m512 x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, kRound)); }

namespace {

// Eight keys' scores from their 16 partial sums x[j] (a01 + a23), each summed in the order of the
// one-key reduction (256-bit halves, 128-bit halves, then hadd twice: ((c0 + c4) + (c1 + c5)) +
// ((c2 + c6) + (c3 + c7)) with c_l = x_l + x_l+8), but eight keys in the lanes at once; times scale.
CHASSIS_AVX512 inline void scores_of_block(const float (&x)[8][16], float scale, float* s) {
  __m512 c[4];  // c[p]: keys 2p and 2p + 1, eight lanes each
  for (int p = 0; p < 4; ++p) {
    const __m512 a = _mm512_load_ps(x[2 * p]), b = _mm512_load_ps(x[2 * p + 1]);
    c[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  __m512 t[2];  // t[q]: keys 4q..4q + 3, four lanes each
  for (int q = 0; q < 2; ++q)
    t[q] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * q], c[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c[2 * q], c[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int q = 0; q < 2; ++q) {
    const __m512 pairs = _mm512_add_ps(t[q], _mm512_permute_ps(t[q], _MM_SHUFFLE(2, 3, 0, 1)));  // t0 + t1, t2 + t3
    t[q] = _mm512_add_ps(pairs, _mm512_permute_ps(pairs, _MM_SHUFFLE(1, 0, 3, 2)));        // lane 4k: key k's sum
  }
  const __m512i lane0s = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4, 0);
  const __m512 sums = _mm512_permutex2var_ps(t[0], lane0s, t[1]);
  _mm256_store_ps(s, _mm256_mul_ps(_mm512_castps512_ps256(sums), _mm256_set1_ps(scale)));
}

// Key-by-key (every decode step) for H query heads that share one kv head, NV 16-dim registers a
// head, in blocks of kKeys keys: the block's scores first (independent dot products, so the core
// overlaps them), then its running maxima and exps (each exp depends only on its score and the
// running max, not on the previous exp), then the f16 accumulation of V in key order. Each key's
// arithmetic is exactly the reference's; only independent work is reordered.
// (bench_kernels BM_Attention, 512 keys of head size 64: key by key 8.5 us, in blocks 7.1 us, the
// AVX-512 body 5.9 us: half the conversions to and from f16 of the 256-bit one. Register r of a
// 32-dim step holds the 256-bit kernel's accumulators 2r and 2r + 1 side by side, so (a0 + a2) +
// (a1 + a3) is the sum of the two registers' halves.)
// Several heads (H > 1, a GQA group or part of one): each head's f16-rounded accumulator is a chain
// through every key (fma, then the round trip through f16) that one head's registers cannot hide; H
// heads' chains interleave, and each K and V row is widened once for all of them (BM_AttentionGroup:
// 7 heads of 64, 10.5 -> 8.0 ns a key and head). H * NV <= 16 keeps the accumulators in registers.
template <int H, int NV>
CHASSIS_AVX512 void attend_heads_avx512(const float* q, int64_t q_stride, const KvRows& k, const KvRows& v,
                                        int64_t kv_begin, int64_t kv_end, float* out, int64_t out_stride,
                                        const AttentionParams& p) {
  static_assert(NV % 2 == 0 && H * NV <= 16);
  alignas(64) float qr[H][NV * 16];  // q rounded to f16, as the single-head kernel keeps it
  __m512 acc[H][NV];
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < NV; ++i) {
      _mm512_store_ps(qr[h] + 16 * i, round_h16(_mm512_loadu_ps(q + h * q_stride + 16 * i)));
      acc[h][i] = _mm512_setzero_ps();
    }
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float S[H], M[H];
  for (int h = 0; h < H; ++h) S[h] = 0, M[h] = -INFINITY;
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  // The block's exps eight at a time where two or more heads interleave (BM_AttentionGroup, 512
  // keys: 7 heads of 64 25.1 -> 20.4 us, 4 heads 14.0 -> 11.3; once online_softmax_block8 skipped
  // the scan for blocks that raise nothing, also 2 heads of 128: 24.8 -> 22.7). With one head the
  // f16 accumulator chains leave the core idle between keys, and the scalar exps fill that time while
  // the vector block's latency delays the chains (one head of 64: 5.35 -> 7.4 us even with the skip).
  // Decode of 1024 tokens (--ab): Qwen2.5-0.5B Q4_0 +3.4 %, Llama-3.2-1B Q4_0 +1.8 %; more as the
  // context grows.
  const bool vector_exp = H >= 2 && use_libm_expf8();
  constexpr int kKeys = 8;
  for (int64_t j0 = kv_begin; j0 < kv_end; j0 += kKeys) {
    const int nk = int(std::min<int64_t>(kKeys, kv_end - j0));
    alignas(64) float s[H][kKeys];
    float ms[H][kKeys], vs[H][kKeys];
    // Three or more heads: each key's 16 partial sums are kept and reduced eight keys at a time
    // (scores_of_block: 7 heads of 64, 7.9 -> 7.1 ns a key and head). With one or two heads the
    // one-key reduction overlaps the next keys' products and the block reduction was slower.
    alignas(64) float xs[H >= 3 ? H : 1][kKeys][16];
    unsigned raised[H];  // bit jj: key jj raised the head's running max
    const uint16_t* vrows[kKeys];
    for (int jj = 0; jj < nk; ++jj, kc.next(), vc.next()) {
      const uint16_t* kr = kc.row();
      vrows[jj] = vc.row();
      __m512 kv[NV];
      for (int i = 0; i < NV; ++i) kv[i] = load_h16(kr + 16 * i);
      for (int h = 0; h < H; ++h) {
        __m512 a01 = _mm512_setzero_ps(), a23 = _mm512_setzero_ps();
        for (int i = 0; i < NV; i += 2) {
          a01 = _mm512_fmadd_ps(kv[i], _mm512_load_ps(qr[h] + 16 * i), a01);
          a23 = _mm512_fmadd_ps(kv[i + 1], _mm512_load_ps(qr[h] + 16 * (i + 1)), a23);
        }
        const __m512 x = _mm512_add_ps(a01, a23);
        if constexpr (H >= 3) {
          _mm512_store_ps(xs[h][jj], x);
        } else {
          const __m256 c = _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
          const __m128 t = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
          const __m128 t1 = _mm_hadd_ps(t, t);
          s[h][jj] = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) * scale;
        }
      }
    }
    for (int h = 0; h < H; ++h) {
      if constexpr (H >= 3) {
        for (int jj = nk; jj < kKeys; ++jj) _mm512_store_ps(xs[h][jj], _mm512_setzero_ps());
        scores_of_block(xs[h], scale, s[h]);
      }
      if (p.softcap > 0)
        for (int jj = 0; jj < nk; ++jj) s[h][jj] = p.softcap * std::tanh(s[h][jj]);
    }
    for (int h = 0; h < H; ++h) {
      raised[h] = vector_exp ? online_softmax_block8(s[h], nk, M[h], ms[h], vs[h])
                             : online_softmax_steps(s[h], nk, M[h], ms[h], vs[h]);
    }
    for (int jj = 0; jj < nk; ++jj) {
      for (int h = 0; h < H; ++h)
        if (raised[h] >> jj & 1) {
          const __m512 msv = _mm512_set1_ps(ms[h][jj]);
          for (int i = 0; i < NV; ++i) acc[h][i] = round_h16(_mm512_mul_ps(acc[h][i], msv));
        }
      __m512 vsv[H];
      for (int h = 0; h < H; ++h) vsv[h] = _mm512_set1_ps(vs[h][jj]);
      for (int i = 0; i < NV; ++i) {
        const __m512 vrow = load_h16(vrows[jj] + 16 * i);
        for (int h = 0; h < H; ++h) acc[h][i] = round_h16(_mm512_fmadd_ps(vrow, vsv[h], acc[h][i]));
      }
      for (int h = 0; h < H; ++h) S[h] = std::fma(S[h], ms[h][jj], vs[h][jj]);
    }
  }
  for (int h = 0; h < H; ++h) {
    const __m512 inv = _mm512_set1_ps(S[h] == 0 ? 0.0f : 1.0f / S[h]);
    for (int i = 0; i < NV; ++i) _mm512_storeu_ps(out + h * out_stride + 16 * i, _mm512_mul_ps(acc[h][i], inv));
  }
}

// n_q heads through the instance for it; false if there is none (n_q * NV > 16).
template <int NV>
bool attend_heads_nv(int n_q, const float* q, int64_t q_stride, const KvRows& k, const KvRows& v, int64_t kv_begin,
                     int64_t kv_end, float* out, int64_t out_stride, const AttentionParams& p) {
  switch (n_q) {
    case 1: attend_heads_avx512<1, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p); return true;
    case 2: attend_heads_avx512<2, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p); return true;
    case 3:
      if constexpr (3 * NV <= 16) {
        attend_heads_avx512<3, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
        return true;
      }
      return false;
    case 4:
      if constexpr (4 * NV <= 16) {
        attend_heads_avx512<4, NV>(q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
        return true;
      }
      return false;
  }
  return false;
}

// One head of any size attend_one_avx2 takes (a multiple of 32 up to 256).
void attend_one_head_avx512(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end,
                            float* out, const AttentionParams& p) {
  switch (p.head_dim / 16) {
    case 2: return attend_heads_avx512<1, 2>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 4: return attend_heads_avx512<1, 4>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 6: return attend_heads_avx512<1, 6>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 8: return attend_heads_avx512<1, 8>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 10: return attend_heads_avx512<1, 10>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 12: return attend_heads_avx512<1, 12>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 14: return attend_heads_avx512<1, 14>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
    case 16: return attend_heads_avx512<1, 16>(q, 0, k, v, kv_begin, kv_end, out, 0, p);
  }
}

}  // namespace

int attend_heads_max(const KvRows& k, const AttentionParams& p) {
  if (k.f32 || p.tiled) return 0;
  switch (p.head_dim) {
    case 32: case 64: return 4;
    case 128: return 2;
    default: return 0;
  }
}

bool attend_heads_avx2(int n_q, const float* q, int64_t q_stride, const KvRows& k, const KvRows& v, int64_t kv_begin,
                       int64_t kv_end, float* out, int64_t out_stride, const AttentionParams& p) {
  if (n_q < 1 || n_q > attend_heads_max(k, p)) return false;
  if (!use_avx512_tiles()) return attend_heads_avx2_body(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
  switch (p.head_dim) {
    case 32: return attend_heads_nv<2>(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
    case 64: return attend_heads_nv<4>(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
    case 128: return attend_heads_nv<8>(n_q, q, q_stride, k, v, kv_begin, kv_end, out, out_stride, p);
  }
  return false;
}

namespace {

// The key-by-key body on 256-bit registers; NV > 0 fixes the head size (8 * NV) at compile time, NV = 0
// reads it from p. Why both: with the size fixed the compiler unrolls the head's loops, which paid off
// only at 128 (BM_AttentionGroup, grouped:0, 4 heads of 128 over 512 keys with CHASSIS_NO_AVX512=1:
// 39.1 -> 36.3 us, twice; an earlier probe of one head: 26.4 -> 18.2 ns a key); at 64 and 256 the
// fixed body was slower (13.5 -> 15.2, 35 -> 44 ns a key).
template <int NV>
CHASSIS_AVX2 void attend_one_avx2_body(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin,
                                       int64_t kv_end, float* out, const AttentionParams& p) {
  const int nv = NV > 0 ? NV : p.head_dim / 8;
  __m256 qv[32], acc[32];
  for (int i = 0; i < nv; ++i) {
    qv[i] = round_h(_mm256_loadu_ps(q + 8 * i));  // q is rounded to f16 for the f16 dot product
    acc[i] = _mm256_setzero_ps();
  }
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float S = 0, M = -INFINITY;
  KvRowCursor kc(k, kv_begin), vc(v, kv_begin);
  constexpr int kKeys = 8;
  for (int64_t j0 = kv_begin; j0 < kv_end; j0 += kKeys) {
    const int nk = int(std::min<int64_t>(kKeys, kv_end - j0));
    float s[kKeys], ms[kKeys], vs[kKeys];
    const uint16_t* vrows[kKeys];
    for (int jj = 0; jj < nk; ++jj, kc.next(), vc.next()) {
      const uint16_t* kr = kc.row();
      vrows[jj] = vc.row();
      // ggml_vec_dot_f16's order: four 8-lane FMA accumulators over steps of 32, (0+2)+(1+3), hadd tree.
      __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int i = 0; i < nv; i += 4)
        for (int r = 0; r < 4; ++r) a[r] = _mm256_fmadd_ps(load_h(kr + 8 * (i + r)), qv[i + r], a[r]);
      const __m256 c = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));
      const __m128 t = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
      const __m128 t1 = _mm_hadd_ps(t, t);
      s[jj] = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) * scale;
      if (p.softcap > 0) s[jj] = p.softcap * std::tanh(s[jj]);
    }
    const unsigned raised = online_softmax_steps(s, nk, M, ms, vs);
    for (int jj = 0; jj < nk; ++jj) {
      if (raised >> jj & 1) {
        const __m256 msv = _mm256_set1_ps(ms[jj]);
        for (int i = 0; i < nv; ++i) acc[i] = round_h(_mm256_mul_ps(acc[i], msv));
      }
      const __m256 vsv = _mm256_set1_ps(vs[jj]);
      for (int i = 0; i < nv; ++i) acc[i] = round_h(_mm256_fmadd_ps(load_h(vrows[jj] + 8 * i), vsv, acc[i]));
      S = std::fma(S, ms[jj], vs[jj]);
    }
  }
  const __m256 inv = _mm256_set1_ps(S == 0 ? 0.0f : 1.0f / S);
  for (int i = 0; i < nv; ++i) _mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(acc[i], inv));
}

}  // namespace

CHASSIS_AVX2 bool attend_one_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end,
                                  float* out, const AttentionParams& p) {
  if (k.f32) return false;
  if (p.tiled) return attend_tiled_avx2(q, k, v, kv_begin, kv_end, out, p);
  const int d = p.head_dim;
  if (d % 32 != 0 || d > 256) return false;
  if (use_avx512_tiles()) attend_one_head_avx512(q, k, v, kv_begin, kv_end, out, p);
  else if (d == 128) attend_one_avx2_body<16>(q, k, v, kv_begin, kv_end, out, p);
  else attend_one_avx2_body<0>(q, k, v, kv_begin, kv_end, out, p);
  return true;
}

}  // namespace chassis
