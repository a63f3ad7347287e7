#include "models/kv_cache.h"

#include <cstddef>

#include "core/error.h"

namespace chassis {

namespace {
// Bytes of one of the pool's two buffers (k or v), after checking the dimensions.
size_t checked_bytes(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, int64_t block_size, int64_t n_blocks, bool f32) {
  if (n_layer <= 0 || n_head_kv <= 0 || head_dim <= 0 || block_size <= 0 || n_blocks <= 0)
    throw Error("KV pool: empty dimensions");
  return size_t(n_layer) * size_t(n_blocks) * size_t(block_size) * size_t(n_head_kv) * size_t(head_dim) * (f32 ? 4 : 2);
}
}  // namespace

KvPool::KvPool(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, int64_t block_size, int64_t n_blocks, bool f32)
    : n_layer_(n_layer), n_head_kv_(n_head_kv), head_dim_(head_dim), block_size_(block_size), n_blocks_(n_blocks), f32_(f32),
      k_(checked_bytes(n_layer, n_head_kv, head_dim, block_size, n_blocks, f32), "the KV cache"),
      v_(k_.size(), "the KV cache") {}

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, bool f32)
    : own_(std::make_unique<KvPool>(n_layer, n_head_kv, head_dim, n_ctx, 1, f32)), pool_(own_.get()), n_ctx_(n_ctx), blocks_{0} {}

KvCache::KvCache(KvPool& pool, int64_t n_ctx) : pool_(&pool), n_ctx_(n_ctx) {}

}  // namespace chassis
