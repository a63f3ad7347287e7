// tokenizer.json (or, without one, tokenizer.model) -> GGUF tokenizer metadata, as llama.cpp's
// convert_hf_to_gguf.py writes it.
#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_file.h"
#include "engine/chat.h"
#include "engine/convert.h"
#include "engine/sentencepiece_tokenizer.h"
#include "io/read_file.h"

namespace chassis {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Json read_json(const fs::path& p, bool required) {
  return read_json_object(p.string(), required ? IfMissing::kFail : IfMissing::kEmptyObject);
}

// Whether any object in the tree has "type": type.
bool has_type(const Json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"] == type) return true;
    for (const auto& [k, v] : j.items()) if (has_type(v, type)) return true;
  } else if (j.is_array()) {
    for (const auto& v : j) if (has_type(v, type)) return true;
  }
  return false;
}

// The Split pre-tokenizer's regex, if there is one.
std::string split_regex(const Json& j) {
  if (j.is_object()) {
    if (j.value("type", "") == "Split" && j.contains("pattern") && j["pattern"].contains("Regex"))
      return j["pattern"]["Regex"].get<std::string>();
    for (const auto& [k, v] : j.items())
      if (auto r = split_regex(v); !r.empty()) return r;
  } else if (j.is_array()) {
    for (const auto& v : j)
      if (auto r = split_regex(v); !r.empty()) return r;
  }
  return "";
}

// llama.cpp names pre-tokenizers; these are the tokenizer.json regexes of the ones chassis knows.
std::string pre_name_of(const Json& tok) {
  const std::string re = split_regex(tok["pre_tokenizer"]);
  static const std::map<std::string, std::string> known = {
      {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
       "llama-bpe"},
      {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
       "qwen2"},
      {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", "gpt-2"},
  };
  if (re.empty()) return "gpt-2";  // ByteLevel's own (GPT-2) regex
  auto it = known.find(re);
  if (it == known.end())
    throw Error("the tokenizer's pre-tokenizer regex is not one chassis can name for GGUF: " + re);
  return it->second;
}

std::string token_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
         std::isxdigit(static_cast<unsigned char>(t[4]));
}

// Special-token ids by their text in tokenizer_config.json, whether BOS/EOS are added, and the chat
// template: the part of the vocab metadata every tokenizer kind shares.
void add_specials_and_template(GgufWriter& w, const std::string& dir, const Json& cfg,
                               const std::vector<std::string>& tokens, const std::string& unk, bool add_bos,
                               bool add_eos) {
  auto id_of = [&](const std::string& text) -> int64_t {
    if (text.empty()) return -1;
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] == text) return int64_t(i);
    return -1;
  };
  const std::pair<const char*, const char*> specials[] = {{"bos_token", "tokenizer.ggml.bos_token_id"},
                                                          {"eos_token", "tokenizer.ggml.eos_token_id"},
                                                          {"unk_token", "tokenizer.ggml.unknown_token_id"},
                                                          {"pad_token", "tokenizer.ggml.padding_token_id"}};
  for (const auto& [name, key] : specials) {
    std::string text = cfg.contains(name) ? token_text(cfg[name]) : "";
    if (text.empty() && std::string(name) == "unk_token") text = unk;
    if (const int64_t id = id_of(text); id >= 0) w.add_u32(key, uint32_t(id));
  }
  w.add_bool("tokenizer.ggml.add_bos_token", add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", add_eos);
  if (auto chat = chat_template_of_folder(dir)) w.add_string("tokenizer.chat_template", chat->source());
}

// A folder with only tokenizer.model: its pieces, scores and kinds as llama.cpp's converter takes
// them from SentencePiece ("llama" vocab); tokenizer_config.json's added tokens past the model's end.
void add_spm_vocab(GgufWriter& w, const std::string& dir) {
  const std::string path = (fs::path(dir) / "tokenizer.model").string();
  const std::string bytes = read_file(path);
  const SentencePieceSpec spec = read_sentencepiece_spec(bytes, path);
  if (spec.model_type != 2)
    throw Error(path + ": a SentencePiece " + std::string(spec.model_type == 1 ? "unigram" : "word/char") +
                " model converts to llama.cpp's t5 vocab, which chassis does not write yet (only BPE models convert)");
  sentencepiece::SentencePieceProcessor sp;
  if (!sp.LoadFromSerializedProto(bytes).ok()) throw Error(path + ": not a SentencePiece model");
  const Json cfg = read_json(fs::path(dir) / "tokenizer_config.json", false);
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    tokens.push_back(sp.IdToPiece(i));
    scores.push_back(sp.GetScore(i));
    types.push_back(sp.IsUnknown(i) ? 2 : sp.IsControl(i) ? 3 : sp.IsUnused(i) ? 5 : sp.IsByte(i) ? 6 : 1);
  }
  if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
    for (const auto& [key, t] : cfg["added_tokens_decoder"].items()) {
      const int64_t id = std::strtoll(key.c_str(), nullptr, 10);
      const std::string text = token_text(t);
      if (id < int64_t(tokens.size()) || id > (1 << 24) || text.empty()) continue;  // the model's own pieces stay
      tokens.resize(size_t(id) + 1);
      scores.resize(size_t(id) + 1, 0.0f);
      types.resize(size_t(id) + 1, 5);
      tokens[size_t(id)] = text;
      scores[size_t(id)] = -1000.0f;
      types[size_t(id)] = t.is_object() && t.value("special", false) ? 3 : 4;
    }
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].empty()) tokens[i] = "[PAD" + std::to_string(i) + "]";
  }
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string("tokenizer.ggml.pre", "default");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_f32s("tokenizer.ggml.scores", scores);
  w.add_i32s("tokenizer.ggml.token_type", types);
  if (!spec.add_dummy_prefix) w.add_bool("tokenizer.ggml.add_space_prefix", false);
  const std::string unk = sp.unk_id() >= 0 ? sp.IdToPiece(sp.unk_id()) : "";
  Json named = cfg;  // SentencePiece's own BOS/EOS/UNK/PAD where tokenizer_config.json names none
  const std::pair<const char*, int> own[] = {{"bos_token", sp.bos_id()}, {"eos_token", sp.eos_id()},
                                             {"unk_token", sp.unk_id()}, {"pad_token", sp.pad_id()}};
  for (const auto& [name, id] : own)
    if (!named.contains(name) && id >= 0) named[name] = sp.IdToPiece(id);
  add_specials_and_template(w, dir, named, tokens, unk, cfg.value("add_bos_token", true), cfg.value("add_eos_token", false));
}

}  // namespace

static void add_gguf_vocab_files(GgufWriter& w, const std::string& dir);

void add_gguf_vocab(GgufWriter& w, const std::string& dir) {
  // The tokenizer files are read with nlohmann's checked accessors; a field of the wrong JSON type
  // (a null where a flag belongs, an added token without an id) is reported naming the folder.
  try {
    add_gguf_vocab_files(w, dir);
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + ": a tokenizer file has a field of an unexpected type: " + e.what());
  }
}

static void add_gguf_vocab_files(GgufWriter& w, const std::string& dir) {
  const fs::path tok_path = fs::path(dir) / "tokenizer.json";
  if (!fs::exists(tok_path) && fs::exists(fs::path(dir) / "tokenizer.model")) return add_spm_vocab(w, dir);
  const Json tok = read_json(tok_path, true);
  const Json cfg = read_json(fs::path(dir) / "tokenizer_config.json", false);
  const Json& model = tok["model"];
  if (!model.is_object() || model.value("type", "") != "BPE")
    throw Error(tok_path.string() + ": only BPE tokenizers convert to GGUF here (this one is " +
                (model.is_object() ? model.value("type", "?") : std::string("?")) + ")");

  // Tokens by id: the model's vocab, then added tokens (which may extend it).
  std::vector<std::string> tokens;
  auto put = [&](int64_t id, const std::string& text) {
    if (id < 0 || id > (1 << 24)) throw Error(tok_path.string() + ": token id " + std::to_string(id) + " out of range");
    if (size_t(id) >= tokens.size()) tokens.resize(size_t(id) + 1);
    tokens[size_t(id)] = text;
  };
  for (const auto& [text, id] : model["vocab"].items()) put(id.get<int64_t>(), text);
  std::map<int64_t, bool> added;  // id -> special
  for (const auto& a : tok.value("added_tokens", Json::array())) {
    put(a.at("id").get<int64_t>(), a.at("content").get<std::string>());
    added[a.at("id").get<int64_t>()] = a.value("special", false);
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i].empty()) tokens[i] = "[PAD" + std::to_string(i) + "]";  // llama.cpp's filler for gaps

  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& m : model.value("merges", Json::array())) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw Error(tok_path.string() + ": malformed merge '" + s + "'");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }

  const std::string unk = model.value("unk_token", Json()).is_string() ? model["unk_token"].get<std::string>() : "";
  const bool byte_level = has_type(tok["pre_tokenizer"], "ByteLevel") || has_type(tok["decoder"], "ByteLevel");
  const bool metaspace = has_type(tok["pre_tokenizer"], "Metaspace") || has_type(tok["normalizer"], "Prepend") ||
                         model.value("byte_fallback", false);
  std::vector<int32_t> types(tokens.size(), 1);  // normal
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto a = added.find(int64_t(i));
    if (!unk.empty() && tokens[i] == unk) types[i] = 2;          // unknown (also when it is an added token)
    else if (a != added.end()) types[i] = a->second ? 3 : 4;  // control / user-defined
    else if (!byte_level && is_byte_token(tokens[i])) types[i] = 6;
    else if (tokens[i].rfind("[PAD", 0) == 0) types[i] = 5;  // unused
  }

  if (byte_level) {
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", pre_name_of(tok));
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_i32s("tokenizer.ggml.token_type", types);
    std::vector<std::string> m;
    for (const auto& [a, b] : merges) m.push_back(a + " " + b);
    w.add_strings("tokenizer.ggml.merges", m);
  } else if (metaspace) {
    // SentencePiece BPE keeps pieces ordered by score; llama.cpp's SPM tokenizer merges the pair
    // whose result scores highest. Scoring each piece by minus the rank of the first merge that makes
    // it reproduces the BPE merge order exactly; pieces no merge makes come after all of them.
    std::map<std::string, size_t> rank;
    for (size_t r = 0; r < merges.size(); ++r) rank.emplace(merges[r].first + merges[r].second, r);
    std::vector<float> scores(tokens.size(), 0.0f);
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (types[i] != 1) continue;
      auto it = rank.find(tokens[i]);
      scores[i] = -float(it != rank.end() ? it->second : merges.size() + i);
    }
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_f32s("tokenizer.ggml.scores", scores);
    w.add_i32s("tokenizer.ggml.token_type", types);
    const bool prefix = has_type(tok["normalizer"], "Prepend") ||
                        (has_type(tok["pre_tokenizer"], "Metaspace") && tok["pre_tokenizer"].dump().find("\"never\"") == std::string::npos);
    w.add_bool("tokenizer.ggml.add_space_prefix", prefix);
  } else {
    throw Error(tok_path.string() + ": a BPE tokenizer that is neither byte-level nor SentencePiece-style");
  }

  // Whether BOS/EOS are added: what the post-processor adds (as HF does), else tokenizer_config.
  bool add_bos = cfg.value("add_bos_token", false), add_eos = cfg.value("add_eos_token", false);
  std::function<const Json*(const Json&)> find_template = [&](const Json& j) -> const Json* {
    if (!j.is_object()) return nullptr;
    if (j.value("type", "") == "TemplateProcessing") return &j;
    if (j.contains("processors"))
      for (const auto& p : j["processors"])
        if (const Json* t = find_template(p)) return t;
    return nullptr;
  };
  if (const Json* tp = find_template(tok["post_processor"]); tp && tp->contains("single")) {
    const Json& single = (*tp)["single"];
    add_bos = !single.empty() && single.front().contains("SpecialToken");
    add_eos = single.size() > 1 && single.back().contains("SpecialToken");
  }
  add_specials_and_template(w, dir, cfg, tokens, unk, add_bos, add_eos);
}

}  // namespace chassis
