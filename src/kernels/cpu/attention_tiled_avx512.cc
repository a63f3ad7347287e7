// Prefill attention for many queries of one kv head at once, each bit-identical to the reference's
// tiled kernel (attend_tiled in kernels/ref/ops.cc; see attention_avx2.h).
//
// Why a batch kernel: one query at a time (attend_tiled_avx2), every query re-read and re-transposed
// each 64-key tile of K (8x8 transposes to give every key its own lane) and re-converted V from f16,
// and its V accumulator made a load and a store per key. At 2048 tokens of context that kernel was
// 70 % of Qwen2.5-0.5B's prefill. Here a tile of K is transposed, and a tile of V converted, once for
// all the queries of a job (the GQA group's heads for up to eight tokens), and the queries then run
// four at a time out of the f32 copies: scores as 16 FMA chains (4 queries x 4 blocks of 16 keys),
// V as 16 register accumulators (4 queries x 64 columns).
//
// Order of operations, as the reference (so every output is bit for bit its own):
//   score_j  = fma(q[d-1], k_j[d-1], ... fma(q[0], k_j[0], 0))  one sequential chain per key (a lane)
//              * scale, then softcap's tanh; keys outside the query's range -inf
//   tile max, m_new = fmax(M, max), acc and S rescaled by exp(M - m_new) when m_new > M
//   s_j = expf_poly(score_j - m_new); S = float(S + tile's sum, in double; groups of 8 as tile_exp_sum)
//   acc[i] = fma(v_j[i], s_j, acc[i])  key by key, in key order, skipping keys outside the range
//   out = acc * (1 / S)
// The tile max is reduced across lanes in another order than the reference's left-to-right scan;
// max is order-free except for the sign of a zero maximum, which no later step can show (it only
// ever enters as the subtrahend of s - m or M - m, and exp(+0) = exp(-0) = 1 in both exps).
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_avx2.h"
#include "kernels/cpu/expf_poly_avx2.h"
#include "kernels/cpu/matmul_avx2.h"  // use_avx512_tiles

namespace chassis {
namespace {

constexpr int kTile = 64;       // keys a tile (the reference's)
constexpr int kMaxHeadDim = 256;
constexpr int kGroup = 4;       // queries run together

// One job's per-thread scratch: the tile's keys transposed (kt[c * 64 + j] = K_j[c]), its values
// converted (vt[j * d + c] = V_j[c]), and every query's running state.
struct TileScratch {
  std::vector<float> kt, vt, acc, scores;
  std::vector<float> M, S;
  void reserve(int n_q, int d) {
    kt.resize(size_t(kTile * d));
    vt.resize(size_t(kTile * d));
    acc.assign(size_t(n_q) * size_t(d), 0.0f);
    scores.resize(size_t(n_q) * kTile);
    M.assign(size_t(n_q), -INFINITY);
    S.assign(size_t(n_q), 0.0f);
  }
};

// Row of position pos (any order: the cursor is for walks).
inline const uint16_t* kv_row(const KvRows& r, int64_t pos) {
  return r.base + r.table[pos / r.block] * r.block_stride + (pos % r.block) * r.stride;
}

// Keys [lo, hi) of the tile at t0 into kt (transposed) and vt; the tile's other keys' kt columns 0.
CHASSIS_AVX512 void load_tile(const KvRows& k, const KvRows& v, int64_t t0, int lo, int hi, int d, float* kt, float* vt) {
  for (int g = 0; g < kTile; g += 8) {
    if (g + 8 <= lo || g >= hi) {
      for (int c = 0; c < d; ++c) _mm256_storeu_ps(kt + c * kTile + g, _mm256_setzero_ps());
      continue;
    }
    const uint16_t* rows[8];
    for (int l = 0; l < 8; ++l) rows[l] = g + l >= lo && g + l < hi ? kv_row(k, t0 + g + l) : nullptr;
    for (int c = 0; c < d; c += 8) {
      __m256 r[8];
      for (int l = 0; l < 8; ++l)
        r[l] = rows[l] ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[l] + c))) : _mm256_setzero_ps();
      avx2::transpose8(r);
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(kt + (c + l) * kTile + g, r[l]);
    }
  }
  for (int j = lo; j < hi; ++j) {
    const uint16_t* row = kv_row(v, t0 + j);
    for (int c = 0; c < d; c += 16)
      _mm512_storeu_ps(vt + j * d + c, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c))));
  }
}

// Scores of NQ queries against the tile's 64 keys: s[q][j] = (sequential FMA chain over c) * scale.
template <int NQ>
CHASSIS_AVX512 void tile_scores(const float* const* q, const float* kt, int d, float scale, float* const* s) {
  __m512 acc[NQ][4];
  for (auto& a : acc)
    for (auto& x : a) x = _mm512_setzero_ps();
  for (int c = 0; c < d; ++c) {
    const float* row = kt + c * kTile;
    const __m512 k0 = _mm512_loadu_ps(row), k1 = _mm512_loadu_ps(row + 16), k2 = _mm512_loadu_ps(row + 32),
                 k3 = _mm512_loadu_ps(row + 48);
    for (int i = 0; i < NQ; ++i) {
      const __m512 b = _mm512_set1_ps(q[i][c]);
      acc[i][0] = _mm512_fmadd_ps(b, k0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(b, k1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(b, k2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(b, k3, acc[i][3]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < NQ; ++i)
    for (int b = 0; b < 4; ++b) _mm512_storeu_ps(s[i] + 16 * b, _mm512_mul_ps(acc[i][b], sc));
}

// s[j] = expf_poly(s[j] - m) in place for the 64 keys; returns the tile's sum as tile_exp_sum forms
// it (per 8 lanes: l + (l+4), then (0+2) + (1+3); the groups added in double, in order).
CHASSIS_AVX512 double tile_probabilities(float* s, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  double sum = 0;
  for (int g = 0; g < kTile; g += 8) {
    const __m256 e = expf_poly8(_mm256_sub_ps(_mm256_loadu_ps(s + g), mv));
    _mm256_storeu_ps(s + g, e);
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(e, 1), _mm256_castps256_ps128(e));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    sum += double(_mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r))));
  }
  return sum;
}

// acc_i[c] = fma(vt[j][c], w_i[j], acc_i[c]) for keys j in [j0, j1), in order, for NQ queries, the
// columns 16 * NB at a time (NB vectors a query in registers).
template <int NQ, int NB>
CHASSIS_AVX512 void accumulate_columns(float* const* acc, const float* const* w, const float* vt, int d, int c0, int j0, int j1) {
  __m512 a[NQ][NB];
  for (int i = 0; i < NQ; ++i)
    for (int b = 0; b < NB; ++b) a[i][b] = _mm512_loadu_ps(acc[i] + c0 + 16 * b);
  for (int j = j0; j < j1; ++j) {
    const float* row = vt + j * d + c0;
    __m512 x[NB];
    for (int b = 0; b < NB; ++b) x[b] = _mm512_loadu_ps(row + 16 * b);
    for (int i = 0; i < NQ; ++i) {
      const __m512 wi = _mm512_set1_ps(w[i][j]);
      for (int b = 0; b < NB; ++b) a[i][b] = _mm512_fmadd_ps(x[b], wi, a[i][b]);
    }
  }
  for (int i = 0; i < NQ; ++i)
    for (int b = 0; b < NB; ++b) _mm512_storeu_ps(acc[i] + c0 + 16 * b, a[i][b]);
}
template <int NQ>
CHASSIS_AVX512 void accumulate(float* const* acc, const float* const* w, const float* vt, int d, int j0, int j1) {
  if (j0 >= j1) return;
  int c = 0;
  for (; c + 64 <= d; c += 64) accumulate_columns<NQ, 4>(acc, w, vt, d, c, j0, j1);
  switch ((d - c) / 16) {
    case 3: return accumulate_columns<NQ, 3>(acc, w, vt, d, c, j0, j1);
    case 2: return accumulate_columns<NQ, 2>(acc, w, vt, d, c, j0, j1);
    case 1: return accumulate_columns<NQ, 1>(acc, w, vt, d, c, j0, j1);
    default: return;
  }
}
CHASSIS_AVX512 void accumulate_any(int n, float* const* acc, const float* const* w, const float* vt, int d, int j0, int j1) {
  switch (n) {
    case 4: return accumulate<4>(acc, w, vt, d, j0, j1);
    case 3: return accumulate<3>(acc, w, vt, d, j0, j1);
    case 2: return accumulate<2>(acc, w, vt, d, j0, j1);
    case 1: return accumulate<1>(acc, w, vt, d, j0, j1);
    default: return;
  }
}

}  // namespace

bool attend_tiled_batch_supported(const KvRows& k, const AttentionParams& p) {
  return p.tiled && !k.f32 && p.head_dim % 16 == 0 && p.head_dim <= kMaxHeadDim && use_avx512_tiles();
}

CHASSIS_AVX512 bool attend_tiled_batch(std::span<const TiledQuery> queries, const KvRows& k, const KvRows& v,
                                       const AttentionParams& p) {
  if (!attend_tiled_batch_supported(k, p)) return false;
  const int d = p.head_dim, n_q = int(queries.size());
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  thread_local TileScratch scratch;
  scratch.reserve(n_q, d);
  int64_t first = INT64_MAX, last = 0;  // the union of the queries' ranges
  for (const TiledQuery& q : queries)
    if (q.kv_begin < q.kv_end) {
      first = std::min(first, q.kv_begin);
      last = std::max(last, q.kv_end);
    }
  std::vector<int> active;
  active.reserve(size_t(n_q));
  for (int64_t t0 = first == INT64_MAX ? last : first / kTile * kTile; t0 < last; t0 += kTile) {
    // The queries whose range meets this tile, and the keys any of them reads.
    active.clear();
    int lo = kTile, hi = 0;
    for (int i = 0; i < n_q; ++i) {
      const TiledQuery& q = queries[size_t(i)];
      if (q.kv_begin >= q.kv_end || q.kv_end <= t0 || q.kv_begin >= t0 + kTile) continue;
      active.push_back(i);
      lo = std::min<int>(lo, int(std::max<int64_t>(q.kv_begin - t0, 0)));
      hi = std::max<int>(hi, int(std::min<int64_t>(q.kv_end - t0, kTile)));
    }
    if (active.empty()) continue;
    load_tile(k, v, t0, lo, hi, d, scratch.kt.data(), scratch.vt.data());
    for (size_t g0 = 0; g0 < active.size(); g0 += kGroup) {
      const int n = int(std::min<size_t>(kGroup, active.size() - g0));
      const float* qs[kGroup];
      float* s[kGroup];
      for (int i = 0; i < n; ++i) {
        qs[i] = queries[size_t(active[g0 + size_t(i)])].q;
        s[i] = scratch.scores.data() + size_t(active[g0 + size_t(i)]) * kTile;
      }
      switch (n) {
        case 4: tile_scores<4>(qs, scratch.kt.data(), d, scale, s); break;
        case 3: tile_scores<3>(qs, scratch.kt.data(), d, scale, s); break;
        case 2: tile_scores<2>(qs, scratch.kt.data(), d, scale, s); break;
        default: tile_scores<1>(qs, scratch.kt.data(), d, scale, s); break;
      }
      // Each query's softmax step; those with a tile of -inf scores skip it, as the reference does.
      float* accs[kGroup];
      const float* ws[kGroup];
      int from[kGroup], to[kGroup], live = 0;
      for (int i = 0; i < n; ++i) {
        const int qi = active[g0 + size_t(i)];
        const TiledQuery& q = queries[size_t(qi)];
        const int a = int(std::max<int64_t>(q.kv_begin - t0, 0)), b = int(std::min<int64_t>(q.kv_end - t0, kTile));
        float* si = s[i];
        for (int j = a; j < b; ++j)
          if (p.softcap > 0) si[j] = std::tanh(si[j]) * p.softcap;
        for (int j = 0; j < a; ++j) si[j] = -INFINITY;
        for (int j = b; j < kTile; ++j) si[j] = -INFINITY;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < kTile; j += 16) mx = _mm512_max_ps(_mm512_loadu_ps(si + j), mx);  // a NaN score: skipped
        const float tile_max = _mm512_reduce_max_ps(mx);
        if (tile_max == -INFINITY) continue;
        float* acc = scratch.acc.data() + size_t(qi) * size_t(d);
        float& M = scratch.M[size_t(qi)];
        float& S = scratch.S[size_t(qi)];
        const float m_new = std::fmax(M, tile_max);
        if (m_new > M) {
          const float ms = std::exp(M - m_new);
          const __m512 msv = _mm512_set1_ps(ms);
          for (int c = 0; c < d; c += 16) _mm512_storeu_ps(acc + c, _mm512_mul_ps(_mm512_loadu_ps(acc + c), msv));
          S *= ms;
        }
        M = m_new;
        S = float(double(S) + tile_probabilities(si, m_new));
        accs[live] = acc;
        ws[live] = si;
        from[live] = a;
        to[live] = b;
        ++live;
      }
      // V: the keys every live query reads, all of them at once; the others query by query, before
      // and after, so that each accumulator still takes its keys in order.
      const int common_from = live ? *std::max_element(from, from + live) : 0;
      const int common_to = live ? *std::min_element(to, to + live) : 0;
      if (common_from < common_to) {
        for (int i = 0; i < live; ++i) accumulate<1>(&accs[i], &ws[i], scratch.vt.data(), d, from[i], common_from);
        accumulate_any(live, accs, ws, scratch.vt.data(), d, common_from, common_to);
        for (int i = 0; i < live; ++i) accumulate<1>(&accs[i], &ws[i], scratch.vt.data(), d, common_to, to[i]);
      } else {
        for (int i = 0; i < live; ++i) accumulate<1>(&accs[i], &ws[i], scratch.vt.data(), d, from[i], to[i]);
      }
    }
  }
  for (int i = 0; i < n_q; ++i) {
    const float S = scratch.S[size_t(i)];
    const float inv = S == 0 ? 0 : 1.0f / S;
    const float* acc = scratch.acc.data() + size_t(i) * size_t(d);
    float* out = queries[size_t(i)].out;
    for (int c = 0; c < d; c += 16) _mm512_storeu_ps(out + c, _mm512_mul_ps(_mm512_loadu_ps(acc + c), _mm512_set1_ps(inv)));
  }
  return true;
}

}  // namespace chassis
