// Byte-level BPE (gpt2 vocab): regex pre-tokenization, each piece mapped byte-wise to printable code
// points, then the lowest-ranked merge applied repeatedly within the piece.
#include <queue>

#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace chassis {
namespace {

struct Symbol {
  int prev, next;
  size_t begin, len;
};

struct Merge {
  int left, right;
  int rank;
  std::string text;
  // Lowest rank first; ties go to the leftmost pair.
  bool operator<(const Merge& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
};

}  // namespace

void Vocab::tokenize_bpe(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& raw_word : splitter_->split(text)) {
    std::string word;
    for (char c : raw_word) word += byte_to_unicode(static_cast<uint8_t>(c));

    if (ignore_merges_) {
      if (auto id = find(word)) {
        out.push_back(*id);
        continue;
      }
    }
    std::vector<Symbol> sym;
    for (size_t off = 0; off < word.size();) {
      const size_t len = std::min(utf8_len(static_cast<uint8_t>(word[off])), word.size() - off);
      const int i = static_cast<int>(sym.size());
      sym.push_back({i - 1, off + len == word.size() ? -1 : i + 1, off, len});
      off += len;
    }
    std::priority_queue<Merge> queue;
    auto try_add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      std::string_view a(word.data() + sym[l].begin, sym[l].len), b(word.data() + sym[r].begin, sym[r].len);
      const int rank = bpe_rank(a, b);
      if (rank < 0) return;
      queue.push({l, r, rank, std::string(a) + std::string(b)});
    };
    for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
    while (!queue.empty()) {
      const Merge m = queue.top();
      queue.pop();
      Symbol& l = sym[m.left];
      Symbol& r = sym[m.right];
      if (l.len == 0 || r.len == 0) continue;
      if (word.compare(l.begin, l.len + r.len, m.text) != 0 || l.begin + l.len != r.begin) continue;  // stale
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = m.left;
      try_add(l.prev, m.left);
      try_add(m.left, l.next);
    }
    for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
      const std::string piece = word.substr(sym[i].begin, sym[i].len);
      if (auto id = find(piece)) {
        out.push_back(*id);
      } else {
        // Not a token (a vocab without every byte): emit whatever single bytes exist, as llama.cpp does.
        for (char c : piece)
          if (auto b = find(std::string(1, c))) out.push_back(*b);
      }
    }
  }
}

}  // namespace chassis
