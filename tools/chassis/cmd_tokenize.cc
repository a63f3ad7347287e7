// `chassis tokenize MODEL --text T`: token ids of a text (works on vocab-only GGUF files).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "engine/model.h"
#include "io/read_file.h"
#include "store/resolve.h"
#include "tokenizer/hf/hf_tokenizer.h"

namespace chassis::cli {
namespace {

struct TokenizeOptions {
  std::string model, text, file, texts;
  bool no_bos = false, no_special = false, json = false;
};

int tokenize(const TokenizeOptions& o) {
  // A Hugging Face folder runs its tokenizer.json (add_special_tokens unless --no-bos,
  // split_special_tokens with --no-special); a GGUF file its embedded vocab.
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(int32_t)> piece;
  std::unique_ptr<Model> model;
  std::optional<hf::Tokenizer> hf_tok;
  const bool folder = std::filesystem::is_directory(o.model);
  if (folder && !std::filesystem::exists(std::filesystem::path(o.model) / "tokenizer.json")) {
    // only tokenizer.model (SentencePiece): the model's own tokenizer
    model = Model::load(o.model, /*vocab_only=*/true);
    encode = [&](const std::string& t) { return model->tokenizer().tokenize(t, !o.no_bos, !o.no_special); };
    piece = [&](int32_t id) { return model->tokenizer().token_to_piece(id); };
  } else if (folder) {
    hf_tok = hf::Tokenizer::from_file((std::filesystem::path(o.model) / "tokenizer.json").string());
    encode = [&](const std::string& t) { return hf_tok->encode(t, !o.no_bos, o.no_special); };
    piece = [&](int32_t id) { return hf_tok->token(id); };
  } else {
    model = Model::load(o.model, /*vocab_only=*/true);
    encode = [&](const std::string& t) { return model->vocab().tokenize(t, !o.no_bos, !o.no_special); };
    piece = [&](int32_t id) { return model->vocab().token_to_piece(id, true); };
  }
  if (!o.texts.empty()) {  // batch: a JSON array of texts in, a JSON array of id arrays out
    nlohmann::json texts;
    try {
      texts = nlohmann::json::parse(read_file(o.texts));
    } catch (const nlohmann::json::exception& e) {
      throw Error(o.texts + ": invalid JSON: " + e.what());
    }
    if (!texts.is_array()) throw Error(o.texts + ": expected a JSON array of strings");
    nlohmann::json all = nlohmann::json::array();
    for (const auto& t : texts) {
      if (!t.is_string()) throw Error(o.texts + ": expected a JSON array of strings");
      all.push_back(encode(t.get<std::string>()));
    }
    const std::string out = all.dump() + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  const std::vector<int32_t> ids = encode(o.file.empty() ? o.text : read_file(o.file));
  std::string out;
  if (o.json) {
    nlohmann::json j;
    j["ids"] = ids;
    auto& pieces = j["pieces"] = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(piece(id));
    out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
    out += "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

std::function<int()> add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("model", o->model, "GGUF model or vocab file, or a Hugging Face folder (tokenizer.json)")->required();
  auto* text = app.add_option("--text", o->text, "text to tokenize");
  auto* file = app.add_option("--file", o->file, "read the text from a file");
  auto* texts = app.add_option("--texts", o->texts, "tokenize each string of a JSON array; prints a JSON array of id arrays");
  text->excludes(file);
  texts->excludes(text);
  texts->excludes(file);
  app.add_flag("--no-bos", o->no_bos, "do not add BOS/EOS tokens");
  app.add_flag("--no-special", o->no_special, "treat special-token text as plain text");
  app.add_flag("--json", o->json, "print {\"ids\": [...], \"pieces\": [...]}");
  app.callback([text, file, texts] {
    if (text->count() == 0 && file->count() == 0 && texts->count() == 0) throw CLI::RequiredError("--text, --file or --texts");
  });
  return [o] {
    o->model = store::resolve_model_arg(o->model);  // a path, or a hub name from the cache / pulled
    return tokenize(*o);
  };
}

}  // namespace chassis::cli
