// `chassis template MODEL|FILE.jinja --messages M.json`: print a conversation rendered through the
// model's chat template, byte for byte (no newline added), to compare with Hugging Face's rendering.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "engine/chat.h"
#include "engine/model.h"
#include "store/resolve.h"
#include "tokenizer/jinja/json_value.h"

namespace chassis::cli {
namespace {

struct TemplateOptions {
  std::string model, messages, tools;
  std::vector<std::string> vars;
  bool no_generation_prompt = false;
};

nlohmann::ordered_json read_json(const std::string& path, const char* what) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot read " + what);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON in " + what + ": " + e.what());
  }
}

ChatTemplate find_template(const std::string& model) {
  namespace fs = std::filesystem;
  if (fs::is_directory(model)) {
    auto t = chat_template_of_folder(model);
    if (!t) throw Error(model + ": the folder has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json)");
    return *t;
  }
  if (model.size() > 6 && model.compare(model.size() - 6, 6, ".jinja") == 0) return chat_template_from_file(model);
  auto m = Model::load(model, /*vocab_only=*/true);
  auto t = chat_template_of(*m);
  if (!t) throw Error(model + ": the model has no chat template (tokenizer.chat_template)");
  return *t;
}

int render(const TemplateOptions& o) {
  ChatTemplate chat = find_template(o.model);
  ChatRequest request;
  nlohmann::ordered_json messages = read_json(o.messages, "messages");
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  if (!messages.is_array()) throw Error(o.messages + ": messages must be a JSON array of message objects");
  request.messages = jinja::from_json(messages);
  if (!o.tools.empty()) {
    nlohmann::ordered_json tools = read_json(o.tools, "tools");
    if (!tools.is_array()) throw Error(o.tools + ": tools must be a JSON array");
    request.tools = jinja::from_json(tools);
  }
  request.add_generation_prompt = !o.no_generation_prompt;
  for (const std::string& var : o.vars) {
    size_t eq = var.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--var " + var + ": expected NAME=JSON");
    nlohmann::ordered_json value;
    try {
      value = nlohmann::ordered_json::parse(var.substr(eq + 1));
    } catch (const nlohmann::json::exception&) {
      throw Error("--var " + var + ": the value is not valid JSON (write strings with quotes: NAME='\"text\"')");
    }
    request.extra.set(var.substr(0, eq), jinja::from_json(value));
  }
  std::string out = chat.apply(request);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

std::function<int()> add_template(CLI::App& app) {
  auto o = std::make_shared<TemplateOptions>();
  app.add_option("model", o->model, "GGUF model, Hugging Face folder, or a .jinja template file")->required();
  app.add_option("--messages", o->messages, "JSON file with the messages array ('-' for stdin)")->required();
  app.add_option("--tools", o->tools, "JSON file with the tool definitions");
  app.add_flag("--no-generation-prompt", o->no_generation_prompt, "do not open an assistant turn at the end");
  app.add_option("--var", o->vars, "extra template variable NAME=JSON (repeatable), e.g. enable_thinking=false");
  return [o] {
    o->model = store::resolve_model_arg(o->model);  // a path, or a hub name from the cache / pulled
    return render(*o);
  };
}

}  // namespace chassis::cli
