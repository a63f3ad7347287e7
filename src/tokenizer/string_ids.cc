#include "tokenizer/string_ids.h"

#include <stdexcept>

namespace chassis {
namespace {

// FNV-1a, 64-bit: byte at a time, so a pair's hash is the hash of its concatenation without building it.
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;
uint64_t fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * kFnvPrime;
  return h;
}

}  // namespace

void StringIds::reserve(size_t n) {
  offsets_.reserve(n + 1);
  size_t want = 16;
  while (want < 2 * n) want *= 2;
  if (want > slots_.size()) {
    while (slots_.size() < want) grow();
  }
}

template <class Equal>
int32_t StringIds::probe(uint64_t hash, const Equal& equal) const {
  if (slots_.empty()) return -1;
  const size_t mask = slots_.size() - 1;
  for (size_t i = size_t(hash) & mask;; i = (i + 1) & mask) {
    const int32_t id = slots_[i];
    if (id < 0) return -1;
    if (equal(text(id))) return id;
  }
}

void StringIds::grow() {
  std::vector<int32_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : old.size() * 2, -1);
  const size_t mask = slots_.size() - 1;
  for (int32_t id : old) {
    if (id < 0) continue;
    size_t i = size_t(fnv(kFnvOffset, text(id))) & mask;
    while (slots_[i] >= 0) i = (i + 1) & mask;
    slots_[i] = id;
  }
}

void StringIds::add(std::string_view s) {
  if (offsets_.empty()) offsets_.push_back(0);
  if (arena_.size() + s.size() > UINT32_MAX || ids() >= size_t(INT32_MAX))
    throw std::length_error("StringIds: more than 4 GiB of strings or 2^31 ids");
  const int32_t id = int32_t(ids());
  arena_.append(s);
  offsets_.push_back(uint32_t(arena_.size()));
  const uint64_t hash = fnv(kFnvOffset, s);
  if (probe(hash, [&](std::string_view t) { return t == s; }) >= 0) return;  // the first id stays
  if (2 * (ids() + 1) > slots_.size()) grow();
  const size_t mask = slots_.size() - 1;
  size_t i = size_t(hash) & mask;
  while (slots_[i] >= 0) i = (i + 1) & mask;
  slots_[i] = id;
}

int32_t StringIds::find(std::string_view s) const {
  return probe(fnv(kFnvOffset, s), [&](std::string_view t) { return t == s; });
}

int32_t StringIds::find_pair(std::string_view left, std::string_view right) const {
  const uint64_t hash = fnv(fnv(fnv(kFnvOffset, left), " "), right);
  return probe(hash, [&](std::string_view t) {
    return t.size() == left.size() + 1 + right.size() && t.substr(0, left.size()) == left && t[left.size()] == ' ' &&
           t.substr(left.size() + 1) == right;
  });
}

}  // namespace chassis
