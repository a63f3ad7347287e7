// `chassis tokenize MODEL --text T`: token ids of a text (works on vocab-only GGUF files).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "engine/model.h"

namespace chassis::cli {
namespace {

struct TokenizeOptions {
  std::string model, text, file;
  bool no_bos = false, no_special = false, json = false;
};

int tokenize(const TokenizeOptions& o) {
  auto model = Model::load(o.model, /*vocab_only=*/true);
  std::string text = o.text;
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) throw Error(o.file + ": cannot read");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const Vocab& v = model->vocab();
  const auto ids = v.tokenize(text, !o.no_bos, !o.no_special);
  std::string out;
  if (o.json) {
    nlohmann::json j;
    j["ids"] = ids;
    auto& pieces = j["pieces"] = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(v.token_to_piece(id, true));
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
  app.add_option("model", o->model, "GGUF model or vocab file")->required();
  auto* text = app.add_option("--text", o->text, "text to tokenize");
  auto* file = app.add_option("--file", o->file, "read the text from a file");
  text->excludes(file);
  app.add_flag("--no-bos", o->no_bos, "do not add BOS/EOS tokens");
  app.add_flag("--no-special", o->no_special, "treat special-token text as plain text");
  app.add_flag("--json", o->json, "print {\"ids\": [...], \"pieces\": [...]}");
  app.callback([text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::RequiredError("--text or --file");
  });
  return [o] { return tokenize(*o); };
}

}  // namespace chassis::cli
