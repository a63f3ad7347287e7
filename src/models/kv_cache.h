// Keys and values, stored in f16 like the reference (halves the memory and reproduces its
// rounding), in blocks of positions. Within a block each kv head's rows are contiguous (head-major),
// so attention reads one head's keys as one linear stream. (Position-major rows interleaved the
// heads: a head's 128-byte rows at a 1 KiB stride (Llama-3.2-1B) fell into 1/16 of the cache sets
// and evicted each other before the next query head of the group reread them: decode attention took
// 16.5 instead of 11 ns a key and head, and Llama-3.2-1B decoded 10 % slower after a 512-token
// prompt.) A KvPool holds the blocks; a KvCache is one sequence's view: its block table. A single
// session owns a pool of one block sized to its context (contiguous, as before); the batch engine
// shares one pool among all its sequences, so memory follows the tokens actually held and sequences
// with a common prefix share its blocks.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/page_buffer.h"
#include "kernels/ops.h"

namespace chassis {

class KvPool {
 public:
  // f32: store keys/values as floats (exact, twice the memory) instead of f16.
  KvPool(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, int64_t block_size, int64_t n_blocks, bool f32 = false);
  int64_t n_layer() const { return n_layer_; }
  bool f32() const { return f32_; }
  int64_t row() const { return n_head_kv_ * head_row(); }            // halfs per position (all kv heads)
  int64_t head_row() const { return head_dim_ * (f32_ ? 2 : 1); }     // halfs per position of one kv head
  int64_t head_stride() const { return block_size_ * head_row(); }   // halfs from one kv head to the next in a block
  int64_t block_size() const { return block_size_; }
  int64_t n_blocks() const { return n_blocks_; }
  uint64_t bytes() const { return k_.size() + v_.size(); }
  // k (n_layer, n_blocks, n_head_kv, block_size, head_dim), v likewise
  uint16_t* k_block(int64_t layer, int64_t block) { return halfs(k_) + (layer * n_blocks_ + block) * block_size_ * row(); }
  uint16_t* v_block(int64_t layer, int64_t block) { return halfs(v_) + (layer * n_blocks_ + block) * block_size_ * row(); }
  const uint16_t* k_layer(int64_t layer) const { return halfs(k_) + layer * n_blocks_ * block_size_ * row(); }
  const uint16_t* v_layer(int64_t layer) const { return halfs(v_) + layer * n_blocks_ * block_size_ * row(); }

 private:
  int64_t n_layer_, n_head_kv_, head_dim_, block_size_, n_blocks_;
  bool f32_;
  static uint16_t* halfs(const PageBuffer& b) { return reinterpret_cast<uint16_t*>(b.data()); }
  // f16 values, or the two halves of each f32. Anonymous pages, not vectors: zero without a pass
  // that touches them all (a 4096-token cache's memset was 128 MiB before the first token), and
  // resident only as far as positions are written.
  PageBuffer k_, v_;
};

class KvCache {
 public:
  // A standalone cache for one sequence of n_ctx positions (one contiguous block).
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, bool f32 = false);
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

  // Where kv head h's key (value) at a position is stored: head_dim halfs, or floats.
  uint16_t* k(int64_t layer, int64_t pos, int64_t h) { return slot(pool_->k_block(layer, 0), pos, h); }
  uint16_t* v(int64_t layer, int64_t pos, int64_t h) { return slot(pool_->v_block(layer, 0), pos, h); }
  // Kv head h's rows, as attention reads them.
  KvRows k_rows(int64_t layer, int64_t h) const { return rows(pool_->k_layer(layer) + h * pool_->head_stride()); }
  KvRows v_rows(int64_t layer, int64_t h) const { return rows(pool_->v_layer(layer) + h * pool_->head_stride()); }

 private:
  uint16_t* slot(uint16_t* layer_base, int64_t pos, int64_t h) {
    const int64_t b = pos / pool_->block_size();
    return layer_base + int64_t(blocks_[size_t(b)]) * pool_->block_size() * pool_->row() + h * pool_->head_stride() +
           pos % pool_->block_size() * pool_->head_row();
  }
  KvRows rows(const uint16_t* base) const {
    return KvRows{base, blocks_.data(), pool_->block_size(), pool_->block_size() * pool_->row(), pool_->head_row(), pool_->f32()};
  }
  std::unique_ptr<KvPool> own_;
  KvPool* pool_;
  int64_t n_ctx_;
  std::vector<int32_t> blocks_;
};

}  // namespace chassis
