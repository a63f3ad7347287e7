// Prefill attention for many queries of one kv head at once (attend_tiled_batch), each output
// bit-identical to the reference's tiled kernel.
//
// Why a batch kernel: one query at a time (attend_tiled_avx2), every query re-read and re-transposed
// each 64-key tile of K (8x8 transposes to give every key its own lane) and re-converted V from f16,
// and its V accumulator made a load and a store per key. At 2048 tokens of context that was 70 % of
// Qwen2.5-0.5B's prefill. Here a tile of K is transposed, and a tile of V converted, once for all the
// queries of a job (a GQA group's heads for several rows: Transformer::attention_batched), and the
// queries then run several at a time out of the f32 copies, their scores' FMA chains and V
// accumulators in registers. The body is attention_tiled_body.h, compiled for AVX-512 and for AVX2.
#include "kernels/cpu/attention_tiled.h"

#include <vector>

#include "kernels/cpu/dot_avx2.h"     // cpu_has_avx2
#include "kernels/cpu/matmul_avx2.h"  // use_avx512_tiles

namespace chassis {
namespace {

bool batch_shape_supported(const KvRows& k, const AttentionParams& p) {
  return p.tiled && !k.f32 && p.head_dim > 0 && p.head_dim % 16 == 0 && p.head_dim <= kTiledBatchMaxHeadDim;
}

bool run_batch(bool avx512, std::span<const TiledQuery> queries, const KvRows& k, const KvRows& v, const AttentionParams& p) {
  thread_local std::vector<float> scratch;
  thread_local std::vector<int> active;
  const int n_q = int(queries.size());
  scratch.resize(size_t(tiled_batch_scratch_floats(n_q, p.head_dim)));
  active.resize(size_t(n_q));
  (avx512 ? run_tiled_batch_avx512 : run_tiled_batch_avx2)(queries.data(), n_q, k, v, p, scratch.data(), active.data());
  return true;
}

}  // namespace

bool attend_tiled_batch_supported(const KvRows& k, const AttentionParams& p) {
  return batch_shape_supported(k, p) && cpu_has_avx2();
}

bool attend_tiled_batch(std::span<const TiledQuery> queries, const KvRows& k, const KvRows& v, const AttentionParams& p) {
  if (!attend_tiled_batch_supported(k, p)) return false;
  return run_batch(use_avx512_tiles(), queries, k, v, p);
}

bool attend_tiled_batch_avx2(std::span<const TiledQuery> queries, const KvRows& k, const KvRows& v, const AttentionParams& p) {
  if (!attend_tiled_batch_supported(k, p)) return false;
  return run_batch(false, queries, k, v, p);
}

}  // namespace chassis
