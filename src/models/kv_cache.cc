#include "models/kv_cache.h"

#include <cstddef>

namespace chassis {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv)
    : n_layer_(n_layer), n_ctx_(n_ctx), n_embd_kv_(n_embd_kv),
      k_(size_t(n_layer * n_ctx * n_embd_kv)), v_(size_t(n_layer * n_ctx * n_embd_kv)) {}

}  // namespace chassis
