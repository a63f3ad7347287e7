// Loading the vocabulary from GGUF metadata, special-token partitioning and the tokenize() entry.
// The three tokenizer models live in spm.cc, bpe.cc and wpm.cc.
#include "tokenizer/vocab.h"

#include <algorithm>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/pretokenize.h"

namespace chassis {

Vocab::Vocab() = default;
Vocab::Vocab(Vocab&&) noexcept = default;
Vocab& Vocab::operator=(Vocab&&) noexcept = default;
Vocab::~Vocab() = default;

const char* Vocab::kind_name() const {
  switch (kind_) {
    case VocabKind::SPM: return "SentencePiece (llama)";
    case VocabKind::BPE: return "byte-level BPE (gpt2)";
    case VocabKind::WPM: return "WordPiece (bert)";
  }
  return "?";
}

std::optional<int32_t> Vocab::find(std::string_view text) const {
  const int32_t id = token_to_id_.find(text);
  if (id < 0) return std::nullopt;
  return id;
}

Vocab Vocab::from_gguf(const GgufFile& f) {
  Vocab v;
  const std::string& L = f.label();
  const std::string model = f.require_string("tokenizer.ggml.model");
  if (model == "llama") v.kind_ = VocabKind::SPM;
  else if (model == "gpt2") v.kind_ = VocabKind::BPE;
  else if (model == "bert") v.kind_ = VocabKind::WPM;
  else throw Error(L + ": unsupported tokenizer model '" + model + "' (tokenizer.ggml.model)");

  const GgufValue* toks = f.find("tokenizer.ggml.tokens");
  if (!toks) throw Error(L + ": missing required key 'tokenizer.ggml.tokens'");
  if (toks->type != GgufType::Array || toks->as_array().elem_type != GgufType::String)
    throw Error(L + ": tokenizer.ggml.tokens must be an array of strings");
  const GgufArray& items = toks->as_array();
  if (items.size() == 0) throw Error(L + ": tokenizer.ggml.tokens is empty");
  if (items.size() > (1u << 30)) throw Error(L + ": tokenizer.ggml.tokens is absurdly large");
  const size_t n = items.size();

  auto numeric_array = [&](const char* key) -> const GgufArray* {
    const GgufValue* a = f.find(key);
    if (!a) return nullptr;
    if (a->type != GgufType::Array) throw Error(L + ": " + key + " must be an array");
    const auto& arr = a->as_array();
    if (arr.size() != n)
      throw Error(L + ": " + key + " has " + std::to_string(arr.size()) + " entries for " + std::to_string(n) + " tokens");
    if (!arr.elem_is_number()) throw Error(L + ": " + key + " must hold numbers");
    return &arr;
  };
  const auto* scores = numeric_array("tokenizer.ggml.scores");
  const auto* types = numeric_array("tokenizer.ggml.token_type");

  v.tokens_.resize(n);
  v.token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = v.tokens_[i];
    t.text = std::string(items.string_at(i));
    if (scores) t.score = static_cast<float>(scores->number_at(i));
    if (types) {
      const int64_t ty = static_cast<int64_t>(types->number_at(i));
      t.type = (ty >= 0 && ty <= 6) ? static_cast<TokenType>(ty) : TokenType::Normal;
    }
    v.token_to_id_.add(t.text);  // id i (the first id wins for duplicate texts)
    v.max_token_len_ = std::max(v.max_token_len_, t.text.size());
  }

  if (v.kind_ == VocabKind::BPE) {
    const GgufValue* merges = f.find("tokenizer.ggml.merges");
    if (!merges) throw Error(L + ": missing required key 'tokenizer.ggml.merges' for a BPE tokenizer");
    if (merges->type != GgufType::Array || merges->as_array().elem_type != GgufType::String)
      throw Error(L + ": tokenizer.ggml.merges must be an array of strings");
    const GgufArray& arr = merges->as_array();
    v.bpe_ranks_.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string_view s = arr.string_at(i);
      // "left right"; a merge whose left part is itself a space-containing text splits at the first
      // space after position 0, as llama.cpp does.
      if (s.size() < 2 || s.find(' ', 1) == std::string_view::npos)
        throw Error(L + ": malformed BPE merge '" + std::string(s) + "' (no space)");
      v.bpe_ranks_.add(s);  // rank i (the first rank wins for a repeated merge)
    }
  }

  // Special ids: absent, -1 or out of range means none.
  auto id_key = [&](const char* key, int32_t dflt) {
    auto x = f.get_int(key);
    const int64_t id = x ? *x : dflt;
    return (id >= 0 && id < static_cast<int64_t>(n)) ? static_cast<int32_t>(id) : kNoToken;
  };
  const bool spm = v.kind_ == VocabKind::SPM;
  v.bos_ = id_key("tokenizer.ggml.bos_token_id", spm ? 1 : -1);
  v.eos_ = id_key("tokenizer.ggml.eos_token_id", spm ? 2 : -1);
  v.unk_ = id_key("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);
  v.sep_ = id_key("tokenizer.ggml.seperator_token_id", -1);
  v.pad_ = id_key("tokenizer.ggml.padding_token_id", -1);
  v.eot_ = id_key("tokenizer.ggml.eot_token_id", -1);
  v.eom_ = id_key("tokenizer.ggml.eom_token_id", -1);
  if (v.kind_ == VocabKind::WPM && v.bos_ == kNoToken) v.bos_ = id_key("tokenizer.ggml.cls_token_id", -1);

  v.pre_ = f.get_string("tokenizer.ggml.pre").value_or(v.kind_ == VocabKind::BPE ? "default" : "");
  v.add_bos_ = v.kind_ != VocabKind::BPE;
  v.add_eos_ = v.kind_ == VocabKind::WPM;
  v.add_space_prefix_ = spm;
  if (v.kind_ == VocabKind::BPE) {
    v.splitter_ = std::make_unique<RegexSplitter>(pretokenizer_regexes(v.pre_));
    if (v.pre_ == "llama3" || v.pre_ == "llama-v3" || v.pre_ == "llama-bpe" || v.pre_ == "falcon3") {
      v.ignore_merges_ = true;
      v.add_bos_ = true;
    }
  }
  if (auto b = f.get_bool("tokenizer.ggml.add_bos_token")) v.add_bos_ = *b;
  if (auto b = f.get_bool("tokenizer.ggml.add_eos_token")) v.add_eos_ = *b;
  if (auto b = f.get_bool("tokenizer.ggml.add_space_prefix")) v.add_space_prefix_ = *b;
  if (v.add_bos_ && v.bos_ == kNoToken) v.add_bos_ = false;
  if (v.add_eos_ && (v.kind_ == VocabKind::WPM ? v.sep_ : v.eos_) == kNoToken) v.add_eos_ = false;

  // End-of-generation: the metadata ids, plus control tokens whose text ends a turn in popular families.
  for (int32_t id : {v.eos_, v.eot_, v.eom_})
    if (id != kNoToken) v.eog_.insert(id);
  static const char* kEndTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                    "<EOT>", "<|end_of_text|>", "<｜end▁of▁sentence｜>", "<|eom_id|>"};
  for (const char* t : kEndTexts) {
    auto id = v.find(t);
    if (id && (v.tokens_[*id].type == TokenType::Control || v.tokens_[*id].type == TokenType::UserDefined))
      v.eog_.insert(*id);
  }

  for (size_t i = 0; i < n; ++i) {
    const auto ty = v.tokens_[i].type;
    if ((ty == TokenType::Control || ty == TokenType::UserDefined || ty == TokenType::Unknown) && !v.tokens_[i].text.empty())
      v.special_tokens_.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(v.special_tokens_.begin(), v.special_tokens_.end(), [&](int32_t a, int32_t b) {
    return v.tokens_[a].text.size() > v.tokens_[b].text.size();
  });
  return v;
}

std::vector<Vocab::Fragment> Vocab::partition_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({kNoToken, text});
  for (int32_t id : special_tokens_) {
    const TokenData& t = tokens_[id];
    if (!parse_special && t.type != TokenType::UserDefined) continue;
    std::vector<Fragment> next;
    for (const Fragment& fr : frags) {
      if (fr.token != kNoToken) {
        next.push_back(fr);
        continue;
      }
      std::string_view rest = fr.text;
      for (;;) {
        const size_t at = rest.find(t.text);
        if (at == std::string_view::npos) break;
        if (at > 0) next.push_back({kNoToken, rest.substr(0, at)});
        next.push_back({id, {}});
        rest = rest.substr(at + t.text.size());
      }
      if (!rest.empty()) next.push_back({kNoToken, rest});
    }
    frags = std::move(next);
  }
  return frags;
}

std::vector<int32_t> Vocab::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const auto frags = partition_special(text, parse_special);
  if (add_special && add_bos_) out.push_back(bos_);
  bool prev_special = true;  // SPM: a space is prepended to text at the start or after a special token
  for (const Fragment& fr : frags) {
    if (fr.token != kNoToken) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    switch (kind_) {
      case VocabKind::SPM: {
        std::string s;
        if (add_space_prefix_ && prev_special) s = " ";
        s.append(fr.text);
        tokenize_spm(s, out);
        break;
      }
      case VocabKind::BPE: tokenize_bpe(fr.text, out); break;
      case VocabKind::WPM: tokenize_wpm(fr.text, out); break;
    }
    prev_special = false;
  }
  if (add_special && add_eos_) out.push_back(kind_ == VocabKind::WPM ? sep_ : eos_);
  return out;
}

int Vocab::bpe_rank(std::string_view left, std::string_view right) const { return bpe_ranks_.find_pair(left, right); }

int32_t Vocab::byte_token(uint8_t byte) const {
  static const char* kHex = "0123456789ABCDEF";
  const std::string hex = std::string("<0x") + kHex[byte >> 4] + kHex[byte & 15] + ">";
  if (auto id = find(hex)) return *id;
  if (auto id = find(std::string(1, char(byte)))) return *id;
  return unk_;
}

}  // namespace chassis
