// Locating chat templates and the special-token variables transformers gives them.
#include "engine/chat.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_file.h"
#include "engine/model.h"
#include "io/read_file.h"

namespace chassis {
namespace {


}  // namespace

namespace {

jinja::Dict special_tokens_of_gguf(const Model& model) {
  jinja::Dict special;
  const Vocab& v = model.vocab();
  if (v.bos() != kNoToken) special.set("bos_token", jinja::Value(v.token(v.bos()).text));
  if (v.eos() != kNoToken) special.set("eos_token", jinja::Value(v.token(v.eos()).text));
  if (v.unk() != kNoToken) special.set("unk_token", jinja::Value(v.token(v.unk()).text));
  return special;
}

}  // namespace

std::optional<ChatTemplate> chat_template_of(const Model& model) {
  if (model.is_hf_folder()) return chat_template_of_folder(model.path());
  std::optional<std::string> source = model.chat_template();
  if (!source) return std::nullopt;
  return ChatTemplate(*source, special_tokens_of_gguf(model), model.path());
}

namespace {

nlohmann::ordered_json tokenizer_config_of(const std::string& dir) {
  return read_ordered_json_object((std::filesystem::path(dir) / "tokenizer_config.json").string(), IfMissing::kEmptyObject);
}

// transformers' special_tokens_map: each named special token as its text.
jinja::Dict special_tokens_of_folder(const std::string& dir, const nlohmann::ordered_json& config) {
  const std::string config_path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  jinja::Dict special;
  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    auto it = config.find(name);
    if (it == config.end() || it->is_null()) continue;
    if (it->is_string()) special.set(name, jinja::Value(it->get<std::string>()));
    else if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      special.set(name, jinja::Value((*it)["content"].get<std::string>()));
    else throw Error(config_path + ": " + name + " must be a string or an object with \"content\"");
  }
  if (auto it = config.find("additional_special_tokens"); it != config.end() && it->is_array()) {
    jinja::List extra;
    for (const auto& t : *it) {
      if (t.is_string()) extra.emplace_back(t.get<std::string>());
      else if (t.is_object() && t.contains("content") && t["content"].is_string())
        extra.emplace_back(t["content"].get<std::string>());
    }
    special.set("additional_special_tokens", jinja::Value::list(std::move(extra)));
  }
  return special;
}

}  // namespace

std::optional<ChatTemplate> chat_template_of_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  const nlohmann::ordered_json config = tokenizer_config_of(dir);
  jinja::Dict special = special_tokens_of_folder(dir, config);
  // A chat_template.jinja file beside the config takes precedence, as in recent transformers.
  const std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::exists(jinja_path)) return ChatTemplate(read_file(jinja_path), std::move(special), jinja_path);
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return ChatTemplate(it->get<std::string>(), std::move(special), config_path);
  if (it->is_array()) {
    for (const auto& entry : *it)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        return ChatTemplate(entry["template"].get<std::string>(), std::move(special), config_path);
    throw Error(config_path + ": chat_template is a list without a template named \"default\"");
  }
  throw Error(config_path + ": chat_template must be a string or a list of {name, template}");
}

ChatTemplate chat_template_from_file(const std::string& path) { return ChatTemplate(read_file(path), {}, path); }

ChatTemplate chat_template_from_file(const std::string& path, const Model& model) {
  jinja::Dict special = model.is_hf_folder() ? special_tokens_of_folder(model.path(), tokenizer_config_of(model.path()))
                                             : special_tokens_of_gguf(model);
  return ChatTemplate(read_file(path), std::move(special), path);
}

}  // namespace chassis
