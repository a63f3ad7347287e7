// Ids of strings, looked up by text: a vocabulary's token texts, a BPE tokenizer's merges.
//
// Why not std::unordered_map<std::string, int32_t>: it costs a node, a std::string and often a heap
// block per entry. Qwen2.5's 151,936 tokens and 151,387 merges took ~17 MiB that way, 7 % of what a
// Qwen2.5-0.5B Q4_0 run holds; here the strings sit end to end in one arena, with a 4-byte offset
// each and an open-addressing table of 4-byte ids (~5 MiB for the same two tables).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chassis {

class StringIds {
 public:
  void reserve(size_t n);
  // Adds s under the next id (ids count the calls: 0, 1, ...); a string already present keeps its
  // first id, and the call still uses up an id.
  void add(std::string_view s);
  // The id of s, or -1.
  int32_t find(std::string_view s) const;
  // The id of left + " " + right, or -1 (without building that string).
  int32_t find_pair(std::string_view left, std::string_view right) const;
  size_t ids() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }

 private:
  std::string_view text(int32_t id) const { return {arena_.data() + offsets_[size_t(id)], offsets_[size_t(id) + 1] - offsets_[size_t(id)]}; }
  template <class Equal>
  int32_t probe(uint64_t hash, const Equal& equal) const;
  void grow();

  std::string arena_;               // every added string, end to end
  std::vector<uint32_t> offsets_;   // id i is arena_[offsets_[i], offsets_[i + 1])
  std::vector<int32_t> slots_;      // ids by hash, -1 empty; at most half full
};

}  // namespace chassis
