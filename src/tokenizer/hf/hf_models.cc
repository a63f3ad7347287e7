// tokenizer.json models: BPE (merges by rank, byte_fallback, ignore_merges, unk fusing, subword
// prefix/suffix), Unigram (Viterbi over piece scores), WordPiece (greedy longest match) and WordLevel.
#include <algorithm>
#include <cmath>
#include <queue>
#include <unordered_map>

#include "tokenizer/hf/hf_json.h"
#include "tokenizer/hf/hf_tokenizer.h"
#include "tokenizer/unicode.h"

namespace chassis::hf {
namespace {

void read_vocab(const JsonRef& j, std::vector<std::string>& id_to_token, std::unordered_map<std::string, int32_t>& token_to_id) {
  const JsonRef vocab = j.child("vocab");
  if (!vocab.j.is_object()) j.fail("\"vocab\" must be an object of token -> id");
  for (const auto& [token, id] : vocab.j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > 2'000'000)
      j.fail("vocab id of '" + token + "' must be an integer in [0, 2M]");
    const auto i = static_cast<size_t>(id.get<int64_t>());
    if (i >= id_to_token.size()) id_to_token.resize(i + 1);
    if (!id_to_token[i].empty()) j.fail("vocab id " + std::to_string(i) + " is used twice");
    id_to_token[i] = token;
    token_to_id[token] = static_cast<int32_t>(i);
  }
}

std::optional<int32_t> lookup(const std::unordered_map<std::string, int32_t>& m, const std::string& s) {
  auto it = m.find(s);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

class Bpe : public Model {
 public:
  Bpe(const JsonRef& j, std::vector<std::string>& id_to_token, std::unordered_map<std::string, int32_t>& token_to_id)
  {
    read_vocab(j, id_to_token, token_to_id);
    vocab_ = token_to_id;
    byte_fallback_ = j.flag("byte_fallback", false);
    ignore_merges_ = j.flag("ignore_merges", false);
    fuse_unk_ = j.flag("fuse_unk", false);
    prefix_ = j.str("continuing_subword_prefix", "");
    suffix_ = j.str("end_of_word_suffix", "");
    if (j.has("unk_token")) {
      auto u = lookup(token_to_id, j.str("unk_token"));
      if (!u) j.fail("unk_token '" + j.str("unk_token") + "' is not in the vocab");
      unk_ = *u;
    }
    const JsonRef merges = j.child("merges");
    if (!merges.j.is_array()) j.fail("\"merges\" must be an array");
    size_t unusable = 0;
    for (size_t rank = 0; rank < merges.j.size(); ++rank) {
      const auto& m = merges.j[rank];
      std::string a, b;
      if (m.is_string()) {  // "left right", split at the first space as tokenizers does
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) j.fail("merge " + std::to_string(rank) + " '" + s + "' has no space");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["left", "right"]
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        j.fail("merge " + std::to_string(rank) + " must be \"a b\" or [\"a\", \"b\"]");
      }
      auto ia = lookup(token_to_id, a), ib = lookup(token_to_id, b);
      std::string merged = a + (prefix_.empty() || b.compare(0, prefix_.size(), prefix_) != 0 ? b : b.substr(prefix_.size()));
      auto im = lookup(token_to_id, merged);
      if (!ia || !ib || !im) {
        // The legacy "a b" format cannot spell tokens containing spaces (Llama 2's vocab has a few);
        // such merges can never apply after a normalizer that replaces spaces, and transformers.js
        // ignores them too. A file where many merges are broken is refused.
        if (++unusable > 16 && unusable * 100 > merges.j.size()) j.fail("merge '" + a + " " + b + "' uses a token missing from the vocab");
        continue;
      }
      merges_.emplace(key(*ia, *ib), std::make_pair(static_cast<int32_t>(rank), *im));
    }
  }

  void tokenize(const std::string& word, std::vector<int32_t>& out) const override {
    if (word.empty()) return;
    if (ignore_merges_)
      if (auto id = lookup(vocab_, word)) {
        out.push_back(*id);
        return;
      }
    // Initial symbols: one per character (with the subword prefix/suffix where configured).
    std::vector<int32_t> sym;
    std::vector<size_t> starts;
    for (size_t i = 0; i < word.size();) starts.push_back(i), i += std::min(utf8_len(static_cast<uint8_t>(word[i])), word.size() - i);
    bool last_unk = false;
    for (size_t k = 0; k < starts.size(); ++k) {
      const size_t end = k + 1 < starts.size() ? starts[k + 1] : word.size();
      std::string ch = word.substr(starts[k], end - starts[k]);
      if (k > 0) ch = prefix_ + ch;
      if (k + 1 == starts.size()) ch += suffix_;
      if (auto id = lookup(vocab_, ch)) {
        sym.push_back(*id);
        last_unk = false;
        continue;
      }
      if (byte_fallback_) {
        std::vector<int32_t> bytes;
        for (size_t b = starts[k]; b < end; ++b) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", static_cast<uint8_t>(word[b]));
          if (auto id = lookup(vocab_, name)) bytes.push_back(*id);
          else { bytes.clear(); break; }
        }
        if (!bytes.empty()) {
          sym.insert(sym.end(), bytes.begin(), bytes.end());
          last_unk = false;
          continue;
        }
      }
      if (unk_ < 0) throw Error("tokenizer.json: character '" + word.substr(starts[k], end - starts[k]) + "' is not in the vocab and the model has no unk_token");
      if (!(fuse_unk_ && last_unk)) sym.push_back(unk_);
      last_unk = true;
    }
    merge(sym);
    out.insert(out.end(), sym.begin(), sym.end());
  }

 private:
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

  // Repeatedly merges the lowest-ranked adjacent pair (leftmost on ties), as tokenizers' Word::merge_all.
  void merge(std::vector<int32_t>& sym) const {
    struct Cand {
      int32_t rank;
      size_t pos;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    const size_t n = sym.size();
    std::vector<size_t> next(n), prev(n);
    std::vector<bool> alive(n, true);
    for (size_t i = 0; i < n; ++i) next[i] = i + 1, prev[i] = i == 0 ? SIZE_MAX : i - 1;
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    auto push = [&](size_t i) {
      if (i >= n || next[i] >= n) return;
      auto it = merges_.find(key(sym[i], sym[next[i]]));
      if (it != merges_.end()) queue.push({it->second.first, i});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(i);
    while (!queue.empty()) {
      Cand c = queue.top();
      queue.pop();
      const size_t i = c.pos;
      if (!alive[i] || next[i] >= n) continue;
      auto it = merges_.find(key(sym[i], sym[next[i]]));
      if (it == merges_.end() || it->second.first != c.rank) continue;  // stale entry
      const size_t j = next[i];
      sym[i] = it->second.second;
      alive[j] = false;
      next[i] = next[j];
      if (next[j] < n) prev[next[j]] = i;
      if (prev[i] != SIZE_MAX) push(prev[i]);
      push(i);
    }
    std::vector<int32_t> merged;
    for (size_t i = 0; i < n; ++i)
      if (alive[i]) merged.push_back(sym[i]);
    sym = std::move(merged);
  }

  std::unordered_map<std::string, int32_t> vocab_;  // the model's own vocab (added tokens are not in it)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left, right) -> (rank, merged id)
  bool byte_fallback_ = false, ignore_merges_ = false, fuse_unk_ = false;
  std::string prefix_, suffix_;
  int32_t unk_ = -1;
};

class WordPiece : public Model {
 public:
  WordPiece(const JsonRef& j, std::vector<std::string>& id_to_token, std::unordered_map<std::string, int32_t>& token_to_id)
  {
    read_vocab(j, id_to_token, token_to_id);
    vocab_ = token_to_id;
    prefix_ = j.str("continuing_subword_prefix", "##");
    max_chars_ = j.integer("max_input_chars_per_word", 100);
    auto u = lookup(token_to_id, j.str("unk_token", "[UNK]"));
    if (!u) j.fail("unk_token is not in the vocab");
    unk_ = *u;
  }
  void tokenize(const std::string& word, std::vector<int32_t>& out) const override {
    const std::vector<uint32_t> cps = utf8_decode(word);
    if (static_cast<int64_t>(cps.size()) > max_chars_) {
      out.push_back(unk_);
      return;
    }
    std::vector<size_t> offs;  // byte offset of each code point, plus the end
    for (size_t i = 0; i < word.size();) offs.push_back(i), i += std::min(utf8_len(static_cast<uint8_t>(word[i])), word.size() - i);
    offs.push_back(word.size());
    std::vector<int32_t> pieces;
    size_t start = 0;
    while (start + 1 < offs.size()) {
      size_t end = offs.size() - 1;
      std::optional<int32_t> found;
      while (end > start) {
        std::string sub = word.substr(offs[start], offs[end] - offs[start]);
        if (start > 0) sub = prefix_ + sub;
        if ((found = lookup(vocab_, sub))) break;
        --end;
      }
      if (!found) {
        out.push_back(unk_);
        return;
      }
      pieces.push_back(*found);
      start = end;
    }
    out.insert(out.end(), pieces.begin(), pieces.end());
  }

 private:
  std::unordered_map<std::string, int32_t> vocab_;  // the model's own vocab (added tokens are not in it)
  std::string prefix_;
  int64_t max_chars_;
  int32_t unk_;
};

class WordLevel : public Model {
 public:
  WordLevel(const JsonRef& j, std::vector<std::string>& id_to_token, std::unordered_map<std::string, int32_t>& token_to_id)
  {
    read_vocab(j, id_to_token, token_to_id);
    vocab_ = token_to_id;
    auto u = lookup(token_to_id, j.str("unk_token", "<unk>"));
    if (!u) j.fail("unk_token is not in the vocab");
    unk_ = *u;
  }
  void tokenize(const std::string& word, std::vector<int32_t>& out) const override {
    out.push_back(lookup(vocab_, word).value_or(unk_));
  }

 private:
  std::unordered_map<std::string, int32_t> vocab_;  // the model's own vocab (added tokens are not in it)
  int32_t unk_;
};

// Unigram (SentencePiece's unigram LM, as T5, ALBERT, XLM-R publish it): the segmentation of a word
// into vocab pieces with the highest sum of log-probability scores, found by Viterbi over code points.
// Follows transformers.js (our oracle) where implementations differ: a position that no one-character
// piece covers gets the unknown token at min_score - 10; a tie goes to the last piece starting earliest;
// a piece's id is the last vocab entry spelling it; runs of unknown tokens fuse into one across the
// words of a section; byte_fallback is not applied (Hugging Face's Rust tokenizers would emit <0xXX>).
class Unigram : public Model {
 public:
  Unigram(const JsonRef& j, std::vector<std::string>& id_to_token, std::unordered_map<std::string, int32_t>& token_to_id) {
    const JsonRef vocab = j.child("vocab");
    if (!vocab.j.is_array() || vocab.j.empty()) j.fail("\"vocab\" must be a non-empty array of [piece, score]");
    if (vocab.j.size() > 2'000'000) j.fail("\"vocab\" has more than 2M pieces");
    id_to_token.resize(vocab.j.size());
    scores_.resize(vocab.j.size());
    double min_score = 0;
    for (size_t i = 0; i < vocab.j.size(); ++i) {
      const auto& e = vocab.j[i];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
        j.fail("vocab[" + std::to_string(i) + "] must be [piece, score]");
      id_to_token[i] = e[0].get<std::string>();
      scores_[i] = e[1].get<double>();
      if (!std::isfinite(scores_[i])) j.fail("vocab[" + std::to_string(i) + "] has a non-finite score");
      min_score = i == 0 ? scores_[i] : std::min(min_score, scores_[i]);
      token_to_id[id_to_token[i]] = static_cast<int32_t>(i);  // the last entry spelling a piece wins
    }
    if (j.has("unk_id")) {
      const int64_t u = j.integer("unk_id", -1);
      if (u < 0 || u >= int64_t(vocab.j.size())) j.fail("unk_id " + std::to_string(u) + " is outside the vocab");
      unk_ = static_cast<int32_t>(u);
      unk_score_ = min_score - 10;
      scores_[size_t(unk_)] = unk_score_;
    }
    // The trie over code points: node 0 is the root; edges keyed by (node << 21 | code point).
    leaf_.push_back(-1);
    for (size_t i = 0; i < id_to_token.size(); ++i) {
      int32_t node = 0;
      for (uint32_t cp : utf8_decode(id_to_token[i])) {
        const uint64_t key = (uint64_t(node) << 21) | cp;
        auto it = edges_.find(key);
        if (it == edges_.end()) {
          it = edges_.emplace(key, int32_t(leaf_.size())).first;
          leaf_.push_back(-1);
        }
        node = it->second;
      }
      if (node != 0) leaf_[size_t(node)] = token_to_id[id_to_token[i]];
    }
  }

  void tokenize(const std::string& word, std::vector<int32_t>& out) const override { encode_word(word, out, out.size()); }

  void tokenize_section(const std::vector<Piece>& words, std::vector<int32_t>& out) const override {
    const size_t start = out.size();  // an unknown token before the section stays separate
    for (const Piece& w : words) encode_word(w.text, out, start);
  }

 private:
  // Appends the word's pieces; an unknown token directly after another one at or after out[fuse_from]
  // is dropped (the run reads as one unknown token).
  void encode_word(const std::string& word, std::vector<int32_t>& out, size_t fuse_from) const {
    const std::vector<uint32_t> cps = utf8_decode(word);
    const size_t n = cps.size();
    // best[e]: the best score of a segmentation of cps[0, e), reached by a last piece [from[e], e) with id[e].
    std::vector<double> best(n + 1, 0);
    std::vector<size_t> from(n + 1, 0);
    std::vector<int32_t> id(n + 1, -1);
    std::vector<uint8_t> reached(n + 1, 0);
    reached[0] = 1;
    auto offer = [&](size_t b, size_t e, int32_t piece, double score) {
      const double s = best[b] + score;
      if (!reached[e] || s > best[e]) {  // strict: the earliest-starting piece keeps a tie
        best[e] = s;
        from[e] = b;
        id[e] = piece;
        reached[e] = 1;
      }
    };
    for (size_t b = 0; b < n; ++b) {
      bool single = false;
      int32_t node = 0;
      for (size_t e = b; e < n; ++e) {
        auto it = edges_.find((uint64_t(node) << 21) | cps[e]);
        if (it == edges_.end()) break;
        node = it->second;
        const int32_t piece = leaf_[size_t(node)];
        if (piece < 0) continue;
        offer(b, e + 1, piece, scores_[size_t(piece)]);
        single |= e == b;
      }
      if (!single) {
        if (unk_ < 0) throw Error("tokenizer.json: text outside the Unigram vocab and no unk_id to stand for it");
        offer(b, b + 1, unk_, unk_score_);
      }
    }
    std::vector<int32_t> pieces;
    for (size_t e = n; e > 0; e = from[e]) pieces.push_back(id[e]);
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
      if (*it == unk_ && out.size() > fuse_from && out.back() == unk_) continue;
      out.push_back(*it);
    }
  }

  std::vector<double> scores_;
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> leaf_;  // per trie node: the id of the piece ending there, or -1
  int32_t unk_ = -1;
  double unk_score_ = 0;
};

}  // namespace

std::unique_ptr<Model> make_model(const JsonRef& j, std::vector<std::string>& id_to_token,
                                  std::unordered_map<std::string, int32_t>& token_to_id) {
  std::string type = j.has("type") ? j.type() : (j.has("merges") ? "BPE" : "");
  if (type == "BPE") return std::make_unique<Bpe>(j, id_to_token, token_to_id);
  if (type == "WordPiece") return std::make_unique<WordPiece>(j, id_to_token, token_to_id);
  if (type == "WordLevel") return std::make_unique<WordLevel>(j, id_to_token, token_to_id);
  if (type == "Unigram") return std::make_unique<Unigram>(j, id_to_token, token_to_id);
  j.fail("model type '" + type + "' is not supported yet (supported: BPE, Unigram, WordPiece, WordLevel)");
}

}  // namespace chassis::hf
