// What the row-major tiles (matmul_avx2.cc, matmul_k_rows_avx2.cc) share: rows of a problem, the R x
// T tiles' 8-lane accumulators, and the driver that cuts a problem into full and edge tiles.
#pragma once
#include <algorithm>

#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/tile_dispatch.h"

namespace chassis::row_tiles {
using namespace avx2;

template <typename B>
const B* blocks(const uint8_t* base, int64_t stride, int64_t i) {
  return reinterpret_cast<const B*>(base + i * stride);
}

// The R x T tiles' 8-lane accumulators: zeroed at the start, each reduced (hsum8) into y at the end.
template <int R, int T>
CHASSIS_AVX2 inline void zero(__m256 (&acc)[R][T]) {
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
}
template <int R, int T>
CHASSIS_AVX2 inline void store_hsums(const TileProblem& p, const __m256 (&acc)[R][T]) {
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) p.y[t * p.y_stride + r] = hsum8(acc[r][t]);
}

// ---- Driver: the problem cut into full tiles and edge tiles, each shape its own instantiation.
template <class K>
void run_tiles(const TileProblem& p) {
  // Rows outermost: a tile's weight rows stay in L1 while every token passes over them.
  for (int64_t r = 0; r < p.n_rows; r += K::kRows) {
    const int rows = int(std::min<int64_t>(K::kRows, p.n_rows - r));
    for (int64_t t = 0; t < p.n_tok; t += K::kToks) {
      const int toks = int(std::min<int64_t>(K::kToks, p.n_tok - t));
      TileProblem sub = p;
      sub.w = p.w + r * p.w_stride;
      sub.act = p.act + t * p.act_stride;
      if (p.act_sums) sub.act_sums = p.act_sums + t * p.act_sums_stride;
      sub.y = p.y + t * p.y_stride + r;
      with_constant<K::kRows>(rows, [&]<int R>() { with_constant<K::kToks>(toks, [&]<int T>() { K::template tile<R, T>(sub); }); });
    }
  }
}

}  // namespace chassis::row_tiles
