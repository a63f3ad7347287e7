// Keys and values, stored in f16 like the reference (halves the memory and reproduces its
// rounding), in blocks of positions. A KvPool holds the blocks; a KvCache is one sequence's view:
// its block table. A single session owns a pool of one block sized to its context (contiguous, as
// before); the batch engine shares one pool among all its sequences, so memory follows the tokens
// actually held and sequences with a common prefix share its blocks.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/ops.h"

namespace chassis {

class KvPool {
 public:
  // f32: store keys/values as floats (exact, twice the memory) instead of f16.
  KvPool(int64_t n_layer, int64_t n_embd_kv, int64_t block_size, int64_t n_blocks, bool f32 = false);
  int64_t n_layer() const { return n_layer_; }
  bool f32() const { return f32_; }
  int64_t row() const { return n_embd_kv_ * (f32_ ? 2 : 1); }  // halfs per position (all kv heads)
  int64_t block_size() const { return block_size_; }
  int64_t n_blocks() const { return n_blocks_; }
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }
  // k (n_layer, n_blocks, block_size, n_head_kv, head_dim), v likewise
  uint16_t* k_block(int64_t layer, int64_t block) { return k_.data() + (layer * n_blocks_ + block) * block_size_ * row(); }
  uint16_t* v_block(int64_t layer, int64_t block) { return v_.data() + (layer * n_blocks_ + block) * block_size_ * row(); }
  const uint16_t* k_layer(int64_t layer) const { return k_.data() + layer * n_blocks_ * block_size_ * row(); }
  const uint16_t* v_layer(int64_t layer) const { return v_.data() + layer * n_blocks_ * block_size_ * row(); }

 private:
  int64_t n_layer_, n_embd_kv_, block_size_, n_blocks_;
  bool f32_;
  std::vector<uint16_t> k_, v_;  // f16 values, or the two halves of each f32
};

class KvCache {
 public:
  // A standalone cache for one sequence of n_ctx positions (one contiguous block).
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv, bool f32 = false);
  // A sequence in a shared pool, at most n_ctx positions; its owner assigns blocks().
  KvCache(KvPool& pool, int64_t n_ctx);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t row() const { return pool_->row(); }
  bool f32() const { return pool_->f32(); }
  // Positions that have a block to be written to.
  int64_t capacity() const { return int64_t(blocks_.size()) * pool_->block_size(); }
  uint64_t bytes() const { return own_ ? own_->bytes() : uint64_t(capacity()) * uint64_t(row()) * 4; }  // k + v
  std::vector<int32_t>& blocks() { return blocks_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }

  uint16_t* k(int64_t layer, int64_t pos) { return slot(pool_->k_block(layer, 0), pos); }
  uint16_t* v(int64_t layer, int64_t pos) { return slot(pool_->v_block(layer, 0), pos); }
  // The rows of the kv head whose values start `head_offset` elements into a position's row.
  KvRows k_rows(int64_t layer, int64_t head_offset) const { return rows(pool_->k_layer(layer) + head_offset * (f32() ? 2 : 1)); }
  KvRows v_rows(int64_t layer, int64_t head_offset) const { return rows(pool_->v_layer(layer) + head_offset * (f32() ? 2 : 1)); }

 private:
  uint16_t* slot(uint16_t* layer_base, int64_t pos) {
    const int64_t b = pos / pool_->block_size();
    return layer_base + (int64_t(blocks_[size_t(b)]) * pool_->block_size() + pos % pool_->block_size()) * pool_->row();
  }
  KvRows rows(const uint16_t* base) const {
    return KvRows{base, blocks_.data(), pool_->block_size(), pool_->block_size() * pool_->row(), pool_->row(), pool_->f32()};
  }
  std::unique_ptr<KvPool> own_;
  KvPool* pool_;
  int64_t n_ctx_;
  std::vector<int32_t> blocks_;
};

}  // namespace chassis
