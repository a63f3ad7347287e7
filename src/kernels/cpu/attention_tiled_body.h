// The batch kernel of attention_tiled.cc, written once over a lane type L (Lanes16: AVX-512,
// Lanes8: AVX2) and compiled once per instruction set: attention_tiled_avx512.cc and
// attention_tiled_avx2.cc include it inside a CHASSIS_TARGET_BEGIN/END region (target_pragma.h),
// each in its own namespace.
// (No standard-library templates in here: an inline template instantiated under a wider target
// could be the copy the linker keeps for the whole program.)
//
// Order of operations, as the reference's tiled kernel (attend_tiled, kernels/ref/ops.cc), so every
// output is bit for bit its own:
//   score_j  = fma(q[d-1], k_j[d-1], ... fma(q[0], k_j[0], 0))  one sequential chain per key (a lane)
//              * scale, then softcap's tanh; keys outside the query's range -inf
//   tile max, m_new = fmax(M, max), acc and S rescaled by exp(M - m_new) when m_new > M
//   s_j = expf_poly(score_j - m_new); S = float(S + tile's sum, in double; groups of 8 as tile_exp_sum)
//   acc[i] = fma(v_j[i], s_j, acc[i])  key by key, in key order, skipping keys outside the range
//   out = acc * (1 / S)
// The tile max is reduced across lanes in another order than the reference's left-to-right scan;
// max is order-free except for the sign of a zero maximum, which no later step can show (it only
// ever enters as the subtrahend of s - m or M - m, and exp(+0) = exp(-0) = 1 in both exps).
// Included by a .cc that has included <immintrin.h>, <cmath>, attention_tiled.h and
// expf_poly_avx2.h before its target region, and defined its lane type L.

constexpr int kTile = kTiledBatchTile;

inline const uint16_t* kv_row(const KvRows& r, int64_t pos) {
  return r.base + r.table[pos / r.block] * r.block_stride + (pos % r.block) * r.stride;
}

// Keys [lo, hi) of the tile at t0 into kt (transposed: kt[c * 64 + j] = K_j[c]) and vt
// (vt[j * d + c] = V_j[c]); the tile's other keys' kt columns 0.
inline void load_tile(const KvRows& k, const KvRows& v, int64_t t0, int lo, int hi, int d, float* kt, float* vt) {
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
    for (int c = 0; c < d; c += 8)
      _mm256_storeu_ps(vt + j * d + c, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c))));
  }
}

// Scores of NQ queries against the tile's 64 keys: s[q][j] = (sequential FMA chain over c) * scale.
template <int NQ>
inline void tile_scores(const float* const* q, const float* kt, int d, float scale, float* const* s) {
  constexpr int KB = kTile / L::W;  // key vectors a query
  typename L::V acc[NQ][KB];
  for (auto& a : acc)
    for (auto& x : a) x = L::zero();
  for (int c = 0; c < d; ++c) {
    const float* row = kt + c * kTile;
    for (int i = 0; i < NQ; ++i) {
      const typename L::V b = L::set1(q[i][c]);
      for (int kb = 0; kb < KB; ++kb) acc[i][kb] = L::fma(b, L::load(row + kb * L::W), acc[i][kb]);
    }
  }
  const typename L::V sc = L::set1(scale);
  for (int i = 0; i < NQ; ++i)
    for (int kb = 0; kb < KB; ++kb) L::store(s[i] + kb * L::W, L::mul(acc[i][kb], sc));
}

// s[j] = expf_poly(s[j] - m) in place for the 64 keys; returns the tile's sum as tile_exp_sum forms
// it (per 8 lanes: l + (l+4), then (0+2) + (1+3); the groups added in double, in order).
inline double tile_probabilities(float* s, float m) {
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
// columns NB vectors at a time (held in registers across the keys).
template <int NQ, int NB>
inline void accumulate_columns(float* const* acc, const float* const* w, const float* vt, int d, int c0, int j0, int j1) {
  typename L::V a[NQ][NB];
  for (int i = 0; i < NQ; ++i)
    for (int b = 0; b < NB; ++b) a[i][b] = L::load(acc[i] + c0 + b * L::W);
  for (int j = j0; j < j1; ++j) {
    const float* row = vt + j * d + c0;
    typename L::V x[NB];
    for (int b = 0; b < NB; ++b) x[b] = L::load(row + b * L::W);
    for (int i = 0; i < NQ; ++i) {
      const typename L::V wi = L::set1(w[i][j]);
      for (int b = 0; b < NB; ++b) a[i][b] = L::fma(x[b], wi, a[i][b]);
    }
  }
  for (int i = 0; i < NQ; ++i)
    for (int b = 0; b < NB; ++b) L::store(acc[i] + c0 + b * L::W, a[i][b]);
}
template <int NQ>
inline void accumulate(float* const* acc, const float* const* w, const float* vt, int d, int j0, int j1) {
  if (j0 >= j1) return;
  constexpr int kChunk = L::kCols * L::W;
  int c = 0;
  for (; c + kChunk <= d; c += kChunk) accumulate_columns<NQ, L::kCols>(acc, w, vt, d, c, j0, j1);
  switch ((d - c) / L::W) {  // d is a multiple of 16: at most kCols - 1 vectors left
    case 3: return accumulate_columns<NQ, 3>(acc, w, vt, d, c, j0, j1);
    case 2: return accumulate_columns<NQ, 2>(acc, w, vt, d, c, j0, j1);
    case 1: return accumulate_columns<NQ, 1>(acc, w, vt, d, c, j0, j1);
    default: return;
  }
}
inline void accumulate_group(int n, float* const* acc, const float* const* w, const float* vt, int d, int j0, int j1) {
  static_assert(L::kGroup <= 4);
  switch (n) {
    case 4: if constexpr (L::kGroup >= 4) return accumulate<4>(acc, w, vt, d, j0, j1); return;
    case 3: if constexpr (L::kGroup >= 3) return accumulate<3>(acc, w, vt, d, j0, j1); return;
    case 2: if constexpr (L::kGroup >= 2) return accumulate<2>(acc, w, vt, d, j0, j1); return;
    case 1: return accumulate<1>(acc, w, vt, d, j0, j1);
    default: return;
  }
}
// The scores of a group's n queries, L::kScoreQueries at a time.
inline void group_scores(int n, const float* const* q, const float* kt, int d, float scale, float* const* s) {
  constexpr int G = L::kScoreQueries;
  int i = 0;
  for (; i + G <= n; i += G) tile_scores<G>(q + i, kt, d, scale, s + i);
  for (; i < n; ++i) tile_scores<1>(q + i, kt, d, scale, s + i);
}

// The batch: see attend_tiled_batch. scratch: TiledBatchScratch::floats(n_q, d) floats;
// active: n_q ints.
inline void run_batch(const TiledQuery* queries, int n_q, const KvRows& k, const KvRows& v, const AttentionParams& p,
                      float* scratch, int* active) {
  const int d = p.head_dim;
  float scale = p.scale;
  if (p.softcap > 0) scale /= p.softcap;
  float* kt = scratch;
  float* vt = kt + kTile * d;
  float* accs_all = vt + kTile * d;                       // n_q x d
  float* scores = accs_all + int64_t(n_q) * d;            // n_q x 64
  float* Ms = scores + int64_t(n_q) * kTile;              // n_q
  float* Ss = Ms + n_q;                                   // n_q
  for (int64_t i = 0; i < int64_t(n_q) * d; ++i) accs_all[i] = 0.0f;
  for (int i = 0; i < n_q; ++i) {
    Ms[i] = -INFINITY;
    Ss[i] = 0.0f;
  }
  int64_t first = INT64_MAX, last = 0;  // the union of the queries' ranges
  for (int i = 0; i < n_q; ++i)
    if (queries[i].kv_begin < queries[i].kv_end) {
      if (queries[i].kv_begin < first) first = queries[i].kv_begin;
      if (queries[i].kv_end > last) last = queries[i].kv_end;
    }
  for (int64_t t0 = first == INT64_MAX ? last : first / kTile * kTile; t0 < last; t0 += kTile) {
    // The queries whose range meets this tile, and the keys any of them reads.
    int n_active = 0, lo = kTile, hi = 0;
    for (int i = 0; i < n_q; ++i) {
      const TiledQuery& q = queries[i];
      if (q.kv_begin >= q.kv_end || q.kv_end <= t0 || q.kv_begin >= t0 + kTile) continue;
      active[n_active++] = i;
      const int a = q.kv_begin > t0 ? int(q.kv_begin - t0) : 0, b = q.kv_end < t0 + kTile ? int(q.kv_end - t0) : kTile;
      if (a < lo) lo = a;
      if (b > hi) hi = b;
    }
    if (n_active == 0) continue;
    load_tile(k, v, t0, lo, hi, d, kt, vt);
    for (int g0 = 0; g0 < n_active; g0 += L::kGroup) {
      const int n = n_active - g0 < L::kGroup ? n_active - g0 : L::kGroup;
      const float* qs[L::kGroup];
      float* s[L::kGroup];
      for (int i = 0; i < n; ++i) {
        qs[i] = queries[active[g0 + i]].q;
        s[i] = scores + int64_t(active[g0 + i]) * kTile;
      }
      group_scores(n, qs, kt, d, scale, s);
      // Each query's softmax step; those with a tile of -inf scores skip it, as the reference does.
      float* accs[L::kGroup];
      const float* ws[L::kGroup];
      int from[L::kGroup], to[L::kGroup], live = 0;
      for (int i = 0; i < n; ++i) {
        const int qi = active[g0 + i];
        const TiledQuery& q = queries[qi];
        const int a = q.kv_begin > t0 ? int(q.kv_begin - t0) : 0, b = q.kv_end < t0 + kTile ? int(q.kv_end - t0) : kTile;
        float* si = s[i];
        if (p.softcap > 0)
          for (int j = a; j < b; ++j) si[j] = std::tanh(si[j]) * p.softcap;
        for (int j = 0; j < a; ++j) si[j] = -INFINITY;
        for (int j = b; j < kTile; ++j) si[j] = -INFINITY;
        typename L::V mx = L::set1(-INFINITY);
        for (int j = 0; j < kTile; j += L::W) mx = L::max(L::load(si + j), mx);  // a NaN score: skipped
        const float tile_max = L::reduce_max(mx);
        if (tile_max == -INFINITY) continue;
        float* acc = accs_all + int64_t(qi) * d;
        const float m_new = std::fmax(Ms[qi], tile_max);
        if (m_new > Ms[qi]) {
          const float ms = std::exp(Ms[qi] - m_new);
          const typename L::V msv = L::set1(ms);
          for (int c = 0; c < d; c += L::W) L::store(acc + c, L::mul(L::load(acc + c), msv));
          Ss[qi] *= ms;
        }
        Ms[qi] = m_new;
        Ss[qi] = float(double(Ss[qi]) + tile_probabilities(si, m_new));
        accs[live] = acc;
        ws[live] = si;
        from[live] = a;
        to[live] = b;
        ++live;
      }
      // V: the keys every live query reads, all of them at once; the others query by query, before
      // and after, so that each accumulator still takes its keys in order.
      int common_from = 0, common_to = kTile;
      for (int i = 0; i < live; ++i) {
        if (from[i] > common_from) common_from = from[i];
        if (to[i] < common_to) common_to = to[i];
      }
      if (live > 1 && common_from < common_to) {
        for (int i = 0; i < live; ++i) accumulate<1>(&accs[i], &ws[i], vt, d, from[i], common_from);
        accumulate_group(live, accs, ws, vt, d, common_from, common_to);
        for (int i = 0; i < live; ++i) accumulate<1>(&accs[i], &ws[i], vt, d, common_to, to[i]);
      } else {
        for (int i = 0; i < live; ++i) accumulate<1>(&accs[i], &ws[i], vt, d, from[i], to[i]);
      }
    }
  }
  for (int i = 0; i < n_q; ++i) {
    const float S = Ss[i];
    const typename L::V inv = L::set1(S == 0 ? 0 : 1.0f / S);
    const float* acc = accs_all + int64_t(i) * d;
    for (int c = 0; c < d; c += L::W) L::store(queries[i].out + c, L::mul(L::load(acc + c), inv));
  }
}
