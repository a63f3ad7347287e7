// AVX2 (and AVX-512) attention for one query head over the f16 KV cache: the key-by-key kernel (batches under 64
// queries, i.e. every decode step) and the tiled kernel (prefill batches of 64+), both bit-identical
// to attend_one in kernels/ref/ops.cc.
#pragma once
#include <cstdint>

#include "kernels/ops.h"

namespace chassis {

// Returns false (and does nothing) when it has no kernel for these parameters: an f32 cache, or a
// head size that is not a multiple of 32 (key-by-key) or of 8 (tiled). Only call when cpu_has_avx2().
bool attend_one_avx2(const float* q, const KvRows& k, const KvRows& v, int64_t kv_begin, int64_t kv_end, float* out,
                     const AttentionParams& p);

}  // namespace chassis
