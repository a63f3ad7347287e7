// AVX2 (and AVX-512) attention for one query head over the f16 KV cache: the key-by-key kernel (batches under 64
// queries, i.e. every decode step) and the tiled kernel (prefill batches of 64+), both bit-identical
// to attend_one in kernels/ref/ops.cc.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>

#include "kernels/ops.h"

namespace chassis {

// Returns false (and does nothing) when it has no kernel for these parameters: an f32 cache, or a
// head size that is not a multiple of 32 (key-by-key) or of 8 (tiled). Only call when cpu_has_avx2().
bool attend_one_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end, float* out,
                     const AttentionParams& p);

// Decode attention for n_q query heads that read the same kv head (part of a GQA group): head h's
// query at q + h * q_stride, its output at out + h * out_stride, each bit-identical to attend_one.
// One pass over the keys for all of them (their f16 accumulator chains interleave; see the .cc).
// Returns false (and does nothing) unless 1 <= n_q <= attend_heads_max(k, p).
bool attend_heads_avx2(int n_q, const float* q, int64_t q_stride, const KvRows& k, const KvRows& v, int64_t kv_begin,
                       int64_t kv_end, float* out, int64_t out_stride, const AttentionParams& p);
// The most query heads attend_heads_avx2 takes at once for this cache and these parameters; 0 when it
// has no kernel for them (an f32 cache, a prefill tile, a head size other than 32/64/128). With AVX-512
// off (or absent) a 256-bit body of the same kernel runs (attention_heads_avx2.cc).
int attend_heads_max(const KvRows& k, const AttentionParams& p);

// Tiled attention (prefill; every row of a row-invariant pass) for a batch of queries that read the
// same kv head, each with its own key range [kv_begin, kv_end) and each output bit-identical to
// attend_one's tiled kernel. One pass over the keys' tiles for all of them (attention_tiled.cc): a
// tile of K and V is unpacked once a batch instead of once a query. Returns false (and does
// nothing) unless attend_tiled_batch_supported(k, p).
struct TiledQuery {
  const float* q;  // head_dim floats
  float* out;      // head_dim floats
  int64_t kv_begin, kv_end;
};
bool attend_tiled_batch(std::span<const TiledQuery> queries, const KvRows& k, const KvRows& v, const AttentionParams& p);
// A tiled pass (p.tiled), an f16 cache, a head size that is a multiple of 16 up to 256, AVX2.
bool attend_tiled_batch_supported(const KvRows& k, const AttentionParams& p);
// attend_tiled_batch through its AVX2 body even where AVX-512 is used (for tests and benchmarks).
bool attend_tiled_batch_avx2(std::span<const TiledQuery> queries, const KvRows& k, const KvRows& v, const AttentionParams& p);

// A GQA group of `heads` query heads cut into near-equal chunks of at most `most` heads (most <= 0:
// one head a chunk), for attend_heads_avx2: chunk c holds heads [first(c), end(c)) of the group.
struct HeadChunks {
  int64_t heads, count;
  HeadChunks(int64_t heads, int most) : heads(heads), count((heads + std::max(most, 1) - 1) / std::max(most, 1)) {}
  int64_t first(int64_t c) const { return c * heads / count; }
  int64_t end(int64_t c) const { return (c + 1) * heads / count; }
};

}  // namespace chassis
