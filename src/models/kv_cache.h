// The key/value cache of one sequence, stored in f16 like the reference (halves the memory and
// reproduces its rounding). Sized from the context length asked for, not the model's maximum.
#pragma once
#include <cstdint>
#include <vector>

namespace chassis {

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t row() const { return n_embd_kv_; }  // halfs per position (all kv heads)
  // k (n_layer, n_ctx, n_head_kv, head_dim), v likewise
  uint16_t* k(int64_t layer, int64_t pos) { return k_.data() + (layer * n_ctx_ + pos) * n_embd_kv_; }
  uint16_t* v(int64_t layer, int64_t pos) { return v_.data() + (layer * n_ctx_ + pos) * n_embd_kv_; }
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

 private:
  int64_t n_layer_, n_ctx_, n_embd_kv_;
  std::vector<uint16_t> k_, v_;
};

}  // namespace chassis
