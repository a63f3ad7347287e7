// Internals of the tiled batch attention (attend_tiled_batch in attention_avx2.h): one body
// (attention_tiled_body.h) compiled for AVX-512 and for AVX2.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention_avx2.h"

namespace chassis {

constexpr int kTiledBatchTile = 64;  // keys a tile, as the reference's tiled kernel
constexpr int kTiledBatchMaxHeadDim = 256;

// Floats of scratch a batch of n_q queries of head size d needs: a tile of K transposed and one of
// V converted (64 x d each), the queries' accumulators (n_q x d), scores (n_q x 64), M and S (n_q each).
inline int64_t tiled_batch_scratch_floats(int n_q, int d) {
  return 2 * int64_t(kTiledBatchTile) * d + int64_t(n_q) * (d + kTiledBatchTile + 2);
}

// The batch through each body; `active` holds n_q ints. Only call the AVX-512 one after
// use_avx512_tiles(), the AVX2 one after cpu_has_avx2().
void run_tiled_batch_avx512(const TiledQuery* queries, int n_q, const KvRows& k, const KvRows& v, const AttentionParams& p,
                            float* scratch, int* active);
void run_tiled_batch_avx2(const TiledQuery* queries, int n_q, const KvRows& k, const KvRows& v, const AttentionParams& p,
                          float* scratch, int* active);

}  // namespace chassis
