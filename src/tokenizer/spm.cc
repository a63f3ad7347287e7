// SentencePiece-style tokenization (llama vocab): start from UTF-8 characters and repeatedly merge
// the adjacent pair whose concatenation is the highest-scoring token; characters left that are not
// tokens fall back to <0xXX> byte tokens.
#include <queue>
#include <unordered_map>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace chassis {
namespace {

struct Symbol {
  int prev, next;
  size_t begin, len;  // bytes of the text
};

struct Bigram {
  int left, right;
  float score;
  size_t len;
  // Highest score first; on ties the leftmost pair.
  bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
};

}  // namespace

void Vocab::tokenize_spm(std::string_view raw, std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() + 8);
  for (char c : raw) {
    if (c == ' ') text += "\xE2\x96\x81";  // U+2581 '▁' stands for a space in SentencePiece vocabularies
    else text += c;
  }
  std::vector<Symbol> sym;
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
    const int i = static_cast<int>(sym.size());
    sym.push_back({i - 1, off + len == text.size() ? -1 : i + 1, off, len});
    off += len;
  }
  std::priority_queue<Bigram> queue;
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string s = text.substr(sym[l].begin, sym[l].len + sym[r].len);
    auto id = find(s);
    if (!id) return;
    queue.push({l, r, tokens_[*id].score, s.size()});
    rev_merge[s] = {l, r};
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;  // stale: one side already merged
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  // Emit each final symbol; one that is not a token is split back along its merges, or into bytes.
  std::vector<std::pair<size_t, size_t>> stack;
  for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
    stack.push_back({sym[i].begin, sym[i].len});
    while (!stack.empty()) {
      auto [begin, len] = stack.back();
      stack.pop_back();
      const std::string s = text.substr(begin, len);
      if (auto id = find(s)) {
        out.push_back(*id);
        continue;
      }
      auto it = rev_merge.find(s);
      if (it == rev_merge.end()) {
        for (char c : s) {
          const int32_t id = byte_token(static_cast<uint8_t>(c));
          if (id != kNoToken) out.push_back(id);
        }
        continue;
      }
      // The right symbol's start offset never changes, so it marks where the merge joined.
      const size_t split = sym[it->second.second].begin - begin;
      stack.push_back({begin + split, len - split});
      stack.push_back({begin, split});
    }
  }
}

}  // namespace chassis
