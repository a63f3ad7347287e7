// tokenizer.json loading and the encode/decode pipeline around the stages: added tokens (matched on
// the raw text, or on the normalized text when `normalized`), normalizer, pre-tokenizer, model,
// post-processor.
#include "tokenizer/hf/hf_tokenizer.h"

#include <fstream>
#include <iterator>

#include "io/read_file.h"
#include "tokenizer/hf/hf_json.h"
#include "tokenizer/jinja/value.h"
#include "tokenizer/unicode.h"

namespace chassis::hf {
namespace {

bool is_word_char(uint32_t cp) {
  const CodepointFlags f = codepoint_flags(cp);
  return f.letter || f.number || f.mark || cp == '_';
}

// A match of an added token in `text`: [begin, end) after lstrip/rstrip widening.
struct Match {
  size_t begin, end;
  int32_t id;
};

// Leftmost-longest search for added tokens (tokenizers uses an Aho-Corasick automaton with that
// rule), honouring single_word, lstrip and rstrip.
std::vector<Match> find_added(const std::string& text, const std::vector<const AddedToken*>& tokens) {
  std::vector<Match> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* best = nullptr;
    size_t best_at = std::string::npos;
    for (const AddedToken* t : tokens) {
      if (t->match.empty()) continue;
      for (size_t at = text.find(t->match, pos); at != std::string::npos && at <= best_at; at = text.find(t->match, at + 1)) {
        if (t->single_word) {
          const std::vector<uint32_t> before = utf8_decode(std::string_view(text).substr(0, at));
          const std::vector<uint32_t> after = utf8_decode(std::string_view(text).substr(at + t->match.size()));
          if ((!before.empty() && is_word_char(before.back())) || (!after.empty() && is_word_char(after.front()))) continue;
        }
        if (at < best_at || (at == best_at && t->match.size() > best->match.size())) {
          best = t;
          best_at = at;
        }
        break;
      }
    }
    if (!best) break;
    size_t begin = best_at, end = best_at + best->match.size();
    if (best->lstrip)
      while (begin > pos && (text[begin - 1] == ' ' || text[begin - 1] == '\t' || text[begin - 1] == '\n' || text[begin - 1] == '\r')) --begin;
    if (best->rstrip)
      while (end < text.size() && (text[end] == ' ' || text[end] == '\t' || text[end] == '\n' || text[end] == '\r')) ++end;
    out.push_back({begin, end, best->id});
    pos = end;
  }
  return out;
}

std::vector<int32_t> special_ids(const JsonRef& processor, const std::string& name) {
  const JsonRef specials = processor.child("special_tokens");
  if (!specials.j.is_object() || !specials.j.contains(name)) processor.fail("special token '" + name + "' is not defined");
  const auto& entry = specials.j[name];
  if (!entry.is_object() || !entry.contains("ids") || !entry["ids"].is_array())
    processor.fail("special token '" + name + "' has no ids");
  std::vector<int32_t> out;
  for (const auto& id : entry["ids"]) {
    if (!id.is_number_integer()) processor.fail("special token '" + name + "' has a non-integer id");
    out.push_back(id.get<int32_t>());
  }
  return out;
}

// The special tokens a post-processor puts around a single sequence.
void read_post_processor(const JsonRef& j, const std::unordered_map<std::string, int32_t>& vocab, PostProcessor& post) {
  const std::string type = j.type();
  auto id_of = [&](const JsonRef& pair) {  // ["<s>", 1]
    if (!pair.j.is_array() || pair.j.size() != 2 || !pair.j[1].is_number_integer()) pair.fail("expected [token, id]");
    return pair.j[1].get<int32_t>();
  };
  if (type == "TemplateProcessing") {
    const JsonRef single = j.child("single");
    if (!single.j.is_array()) j.fail("\"single\" must be an array");
    bool seen_sequence = false;
    for (size_t i = 0; i < single.j.size(); ++i) {
      const JsonRef piece = single.item(i);
      if (piece.has("Sequence")) {
        seen_sequence = true;
      } else if (piece.has("SpecialToken")) {
        const std::string name = piece.child("SpecialToken").str("id");
        std::vector<int32_t> ids = special_ids(j, name);
        auto& dst = seen_sequence ? post.suffix : post.prefix;
        dst.insert(dst.end(), ids.begin(), ids.end());
      } else {
        piece.fail("expected {\"Sequence\"} or {\"SpecialToken\"}");
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    post.prefix = {id_of(j.child("cls"))};
    post.suffix = {id_of(j.child("sep"))};
  } else if (type == "ByteLevel") {
    // Only adjusts offsets.
  } else if (type == "Sequence") {
    const JsonRef list = j.child("processors");
    for (size_t i = 0; i < list.j.size(); ++i) {
      PostProcessor inner;
      read_post_processor(list.item(i), vocab, inner);
      post.prefix.insert(post.prefix.end(), inner.prefix.begin(), inner.prefix.end());
      post.suffix.insert(post.suffix.begin(), inner.suffix.begin(), inner.suffix.end());
    }
  } else {
    j.fail("post-processor type '" + type + "' is not supported");
  }
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  const std::string text = read_file(path);
  return from_json(text, path);
}

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& label) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(label + ": invalid JSON: " + e.what());
  }
  const JsonRef r{root, label};
  if (!root.is_object()) r.fail("expected a JSON object");
  if (!r.has("model")) r.fail("no \"model\"");
  Tokenizer t;
  t.model_ = make_model(r.child("model"), t.id_to_token_, t.token_to_id_);
  if (r.has("added_tokens")) {
    const JsonRef list = r.child("added_tokens");
    if (!list.j.is_array()) list.fail("must be an array");
    for (size_t i = 0; i < list.j.size(); ++i) {
      const JsonRef a = list.item(i);
      AddedToken tok;
      tok.id = static_cast<int32_t>(a.integer("id", -1));
      tok.content = a.str("content");
      if (tok.id < 0 || tok.id > 2'000'000 || tok.content.empty()) a.fail("needs an id and a non-empty content");
      tok.single_word = a.flag("single_word", false);
      tok.lstrip = a.flag("lstrip", false);
      tok.rstrip = a.flag("rstrip", false);
      tok.normalized = a.flag("normalized", false);
      tok.special = a.flag("special", false);
      if (static_cast<size_t>(tok.id) >= t.id_to_token_.size()) t.id_to_token_.resize(static_cast<size_t>(tok.id) + 1);
      t.id_to_token_[static_cast<size_t>(tok.id)] = tok.content;
      t.token_to_id_[tok.content] = tok.id;
      t.added_.push_back(tok);
    }
  }
  if (r.has("normalizer")) t.normalizer_ = make_normalizer(r.child("normalizer"));
  // A `normalized` added token is looked for in normalized text, so it is normalized too (with
  // Llama 2's Prepend("▁") normalizer, "<s>" is found as "▁<s>"), as tokenizers does.
  for (auto& a : t.added_) a.match = a.normalized && t.normalizer_ ? t.normalizer_->normalize(a.content) : a.content;
  if (r.has("pre_tokenizer")) t.pre_tokenizer_ = make_pre_tokenizer(r.child("pre_tokenizer"));
  if (r.has("post_processor")) read_post_processor(r.child("post_processor"), t.token_to_id_, t.post_);
  if (r.has("decoder")) {
    t.decoder_ = make_decoder(r.child("decoder"));
    const std::string d = root["decoder"].dump();
    t.byte_level_ = d.find("\"ByteLevel\"") != std::string::npos;
  }
  return t;
}

const std::string& Tokenizer::token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) throw Error("token id " + std::to_string(id) + " is outside the vocab");
  return id_to_token_[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::find(const std::string& token) const {
  auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  for (const auto& a : added_)
    if (a.id == id) return a.special;
  return false;
}

void Tokenizer::encode_piece(const std::string& text, bool first, std::vector<int32_t>& out) const {
  std::vector<Piece> pieces = {{text, first}};
  if (pre_tokenizer_) pieces = pre_tokenizer_->split(std::move(pieces));
  model_->tokenize_section(pieces, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_special, bool split_special) const {
  const std::string text = utf8_sanitize(input);
  std::vector<const AddedToken*> raw_tokens, normalized_tokens;
  for (const auto& a : added_) {
    if (split_special && a.special) continue;
    (a.normalized && normalizer_ ? normalized_tokens : raw_tokens).push_back(&a);
  }
  std::vector<int32_t> out = add_special ? post_.prefix : std::vector<int32_t>{};
  // Added tokens on the raw text split it; each gap is normalized, searched again for the
  // normalized added tokens, and the remaining pieces go through pre-tokenizer and model.
  auto encode_gap = [&](const std::string& gap, bool first) {
    if (gap.empty()) return;
    const std::string normalized = normalizer_ ? normalizer_->normalize(gap) : gap;
    size_t at = 0;
    for (const Match& m : find_added(normalized, normalized_tokens)) {
      if (m.begin > at) encode_piece(normalized.substr(at, m.begin - at), first && at == 0, out);
      out.push_back(m.id);
      at = m.end;
    }
    if (at < normalized.size()) encode_piece(normalized.substr(at), first && at == 0, out);
  };
  size_t at = 0;
  for (const Match& m : find_added(text, raw_tokens)) {
    encode_gap(text.substr(at, m.begin - at), at == 0);
    out.push_back(m.id);
    at = m.end;
  }
  if (at < text.size()) encode_gap(text.substr(at), at == 0);
  if (add_special) out.insert(out.end(), post_.suffix.begin(), post_.suffix.end());
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const std::string& t = token(id);
  for (const auto& a : added_)
    if (a.id == id) return t;  // added tokens are their text
  if (byte_level_) {
    std::string bytes;
    for (uint32_t cp : utf8_decode(t)) {
      const int b = unicode_to_byte(cp);
      if (b >= 0) bytes += static_cast<char>(b);
      else utf8_append(bytes, cp);
    }
    return bytes;
  }
  if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
    const std::string hex = t.substr(3, 2);
    char* end = nullptr;
    const long v = std::strtol(hex.c_str(), &end, 16);
    if (end == hex.c_str() + 2) return std::string(1, static_cast<char>(v));
  }
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += t[i++];
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    tokens.push_back(token(id));
  }
  if (decoder_) tokens = decoder_->decode(std::move(tokens));
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace chassis::hf
