#include "engine/kv_blocks.h"

#include <algorithm>

#include "core/error.h"

namespace chassis {

KvBlockManager::KvBlockManager(int64_t n_blocks, int64_t block_size)
    : block_size_(block_size), blocks_(size_t(n_blocks)) {
  if (n_blocks <= 0 || block_size <= 0) throw Error("KV blocks: the pool is empty");
  for (int64_t i = n_blocks - 1; i >= 0; --i) free_.push_back(int32_t(i));
}

std::vector<int32_t> KvBlockManager::acquire_prefix(const std::vector<int32_t>& tokens, size_t max_tokens) {
  std::vector<int32_t> out;
  int32_t parent = -1;
  uint32_t parent_gen = 0;
  const size_t B = size_t(block_size_);
  for (size_t i = 0; (i + 1) * B <= std::min(max_tokens, tokens.size()); ++i) {
    Key key{parent, parent_gen, std::vector<int32_t>(tokens.begin() + long(i * B), tokens.begin() + long((i + 1) * B))};
    auto it = index_.find(key);
    if (it == index_.end()) break;
    const int32_t id = it->second;
    Block& b = blocks_[size_t(id)];
    if (b.refs == 0) cached_.erase({b.last_used, id});
    ++b.refs;
    out.push_back(id);
    parent = id;
    parent_gen = b.gen;
  }
  return out;
}

void KvBlockManager::unpublish(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (!b.published) return;
  index_.erase(b.key);
  b.published = false;
}

int32_t KvBlockManager::allocate() {
  int32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else if (!cached_.empty()) {
    id = cached_.begin()->second;  // least recently used
    cached_.erase(cached_.begin());
    unpublish(id);
  } else {
    return -1;
  }
  Block& b = blocks_[size_t(id)];
  ++b.gen;  // new contents: children published under the old ones can no longer be found
  b.refs = 1;
  return id;
}

void KvBlockManager::publish(const std::vector<int32_t>& table, size_t index, const std::vector<int32_t>& tokens) {
  const size_t B = size_t(block_size_);
  if (index >= table.size() || (index + 1) * B > tokens.size()) return;
  Block& b = blocks_[size_t(table[index])];
  if (b.published) return;
  const int32_t parent = index == 0 ? -1 : table[index - 1];
  Key key{parent, parent < 0 ? 0u : blocks_[size_t(parent)].gen,
          std::vector<int32_t>(tokens.begin() + long(index * B), tokens.begin() + long((index + 1) * B))};
  auto [it, inserted] = index_.emplace(std::move(key), table[index]);
  if (!inserted) return;  // the same prefix is already published (computed by another sequence)
  b.published = true;
  b.key = it;
}

void KvBlockManager::release(const std::vector<int32_t>& table) {
  // Last block first: parents become least recently used after their children, so eviction takes
  // the ends of cached prefixes before their beginnings.
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    const int32_t id = *it;
    Block& b = blocks_[size_t(id)];
    if (b.refs <= 0) throw Error("KV blocks: block " + std::to_string(id) + " released more often than taken");
    if (--b.refs > 0) continue;
    if (b.published) {
      b.last_used = ++clock_;
      cached_.insert({b.last_used, id});
    } else {
      free_.push_back(id);
    }
  }
}

}  // namespace chassis
