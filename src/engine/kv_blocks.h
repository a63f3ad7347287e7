// Which blocks of a shared KvPool each sequence holds, and which full blocks hold which prefix.
//
// A block is free, in use (referenced by one or more sequences), or cached: unreferenced but
// still holding the keys/values of a known prefix, kept for reuse and evicted least recently used
// first when a fresh block is needed. Full blocks are published under their exact token prefix
// (the parent block's identity plus their own tokens), so a new sequence whose prompt starts with
// a prefix already computed — by a running sequence or a finished one — starts on those blocks.
// Blocks are immutable once full, so sharing needs no copy-on-write.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

namespace chassis {

class KvBlockManager {
 public:
  KvBlockManager(int64_t n_blocks, int64_t block_size);

  int64_t block_size() const { return block_size_; }
  int64_t n_blocks() const { return int64_t(blocks_.size()); }
  // Blocks that allocate() can hand out (free + cached).
  int64_t available() const { return int64_t(free_.size() + cached_.size()); }
  int64_t in_use() const { return n_blocks() - available(); }
  int64_t cached() const { return int64_t(cached_.size()); }

  // The published blocks holding the longest prefix of `tokens` in whole blocks, at most
  // max_tokens of them; each is referenced for the caller (release() gives them back).
  std::vector<int32_t> acquire_prefix(const std::vector<int32_t>& tokens, size_t max_tokens);
  // A block to write to, referenced once; -1 when every block is in use.
  int32_t allocate();
  // Block `index` of `table` is full with tokens[index*B, (index+1)*B): make it findable (unless the
  // same prefix is already published by another block).
  void publish(const std::vector<int32_t>& table, size_t index, const std::vector<int32_t>& tokens);
  void release(const std::vector<int32_t>& table);

 private:
  struct Key {
    int32_t parent;       // -1 for a first block
    uint32_t parent_gen;  // the parent's generation: a reused parent id never matches old children
    std::vector<int32_t> tokens;
    bool operator<(const Key& o) const {
      if (parent != o.parent) return parent < o.parent;
      if (parent_gen != o.parent_gen) return parent_gen < o.parent_gen;
      return tokens < o.tokens;
    }
  };
  struct Block {
    int32_t refs = 0;
    uint32_t gen = 0;
    uint64_t last_used = 0;
    bool published = false;
    std::map<Key, int32_t>::iterator key;
  };
  void unpublish(int32_t id);

  int64_t block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;
  std::set<std::pair<uint64_t, int32_t>> cached_;  // (last_used, id) of unreferenced published blocks
  std::map<Key, int32_t> index_;
  uint64_t clock_ = 0;
};

}  // namespace chassis
