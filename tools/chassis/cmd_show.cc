// `chassis show MODEL`: what a GGUF file (or a Hugging Face folder) holds.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "io/json_file.h"
#include "engine/chat.h"
#include "engine/model.h"
#include "store/resolve.h"

namespace chassis::cli {
namespace {

struct ShowOptions {
  std::string model;
  bool metadata = false;
};

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1000ull) std::snprintf(buf, sizeof buf, "%.2fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
  return buf;
}

void describe_config(std::ostringstream& os, const Model& m) {
  const ModelConfig& c = m.config();
  os << "context length: " << c.n_ctx_train << "\n";
  os << "layers:         " << c.n_layer << ", embedding " << c.n_embd << ", FFN " << (c.is_moe() ? c.n_ff_exp : c.n_ff) << "\n";
  if (c.is_moe())
    os << "experts:        " << c.n_expert << " per layer, " << c.n_expert_used << " used per token"
       << (c.expert_weights_norm ? " (weights renormalized)" : "") << "\n";
  os << "attention:      " << c.n_head << " heads, " << c.n_head_kv << " KV heads, head size " << c.head_dim;
  if (c.sliding_window) os << ", sliding window " << c.sliding_window;
  os << "\n";
  os << "KV cache:       " << (2 * c.n_layer * c.n_embd_kv() * 2) << " bytes per token (f16)\n";
  os << "output:         " << (m.weights().tied_output ? "tied to the token embedding" : "separate matrix") << "\n";
  const SamplingChoices& sd = m.sampling_defaults();
  if (!sd.empty()) {  // the model's recommendation, used where run/serve are not told otherwise
    os << "sampling:      ";
    if (sd.temperature) os << " temp " << *sd.temperature;
    if (sd.top_k) os << " top-k " << *sd.top_k;
    if (sd.top_p) os << " top-p " << *sd.top_p;
    if (sd.min_p) os << " min-p " << *sd.min_p;
    if (sd.repeat_penalty) os << " repeat-penalty " << *sd.repeat_penalty;
    os << "\n";
  }
}

// A folder's metadata is its JSON files' top-level keys (as GGUF keys are a file's): each value as
// compact JSON, long ones (a chat template, a token list) shortened with their length.
void list_folder_metadata(std::ostringstream& os, const std::string& dir) {
  os << "metadata:\n";
  for (const char* file : {"config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    const std::string path = dir + "/" + file;
    if (!std::filesystem::exists(path)) continue;
    const nlohmann::json j = read_json_object(path, IfMissing::kFail);
    for (const auto& [key, value] : j.items()) {
      std::string v = value.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
      if (v.size() > 160) v = v.substr(0, 120) + "… (" + std::to_string(v.size()) + " characters)";
      os << "  " << file << ": " << key << " = " << v << "\n";
    }
  }
}

// A Hugging Face folder: its typed config, weights and tokenizer, as the engine reads them.
int show_folder(const ShowOptions& o) {
  auto m = Model::load(o.model);
  std::ostringstream os;
  os << "folder:         " << o.model << " (Hugging Face; " << m->file_size() << " bytes of safetensors)\n";
  os << "architecture:   " << m->config().arch_name << "\n";
  os << "weights:        " << human_count(m->weights().n_params) << " parameters, " << m->weights().n_bytes << " bytes\n";
  describe_config(os, *m);
  os << "tokenizer:      tokenizer.json, " << m->tokenizer().n_tokens() << " tokens\n";
  os << "chat template:  " << (chat_template_of_folder(o.model) ? "present" : "none") << "\n";
  if (o.metadata) list_folder_metadata(os, o.model);
  const std::string s = os.str();
  std::fwrite(s.data(), 1, s.size(), stdout);
  return 0;
}

int show(const ShowOptions& o) {
  if (std::filesystem::is_directory(o.model)) return show_folder(o);
  auto vm = Model::load(o.model, /*vocab_only=*/true);
  const GgufFile& g = vm->gguf();
  std::ostringstream os;
  const std::string arch = g.get_string("general.architecture").value_or("(none)");
  os << "file:           " << o.model << " (" << vm->file_size() << " bytes, GGUF v" << g.version() << ")\n";
  if (auto name = g.get_string("general.name")) os << "name:           " << *name << "\n";
  os << "architecture:   " << arch << "\n";

  std::map<std::string, std::pair<int, uint64_t>> types;
  uint64_t params = 0;
  for (const auto& t : g.tensors()) {
    auto& e = types[std::string(dtype_name(t.type))];
    e.first++;
    e.second += t.n_bytes;
    params += uint64_t(t.n_elements());
  }
  os << "tensors:        " << g.tensors().size() << " (" << human_count(params) << " parameters)\n";
  for (const auto& [name, e] : types) os << "  " << name << ": " << e.first << " tensors, " << e.second << " bytes\n";

  if (!g.tensors().empty()) {
    {
      auto m = Model::load(o.model);  // a file with tensors must be runnable; errors go to the user
      describe_config(os, *m);
    }
  }
  const Vocab& v = vm->vocab();
  os << "tokenizer:      " << v.kind_name();
  if (!v.pre_name().empty()) os << ", pre-tokenizer '" << v.pre_name() << "'";
  os << ", " << v.size() << " tokens\n";
  auto tok = [&](int32_t id) { return id < 0 ? std::string("none") : std::to_string(id) + " '" + v.token(id).text + "'"; };
  os << "special:        BOS " << tok(v.bos()) << (v.add_bos() ? " (added)" : "") << ", EOS " << tok(v.eos()) << "\n";
  os << "chat template:  " << (vm->chat_template() ? "present" : "none") << "\n";
  if (o.metadata) {
    os << "metadata:\n";
    for (const auto& [k, val] : g.metadata()) os << "  " << k << " = " << val.to_display() << "\n";
  }
  const std::string s = os.str();
  std::fwrite(s.data(), 1, s.size(), stdout);
  return 0;
}

}  // namespace

std::function<int()> add_show(CLI::App& app) {
  auto o = std::make_shared<ShowOptions>();
  app.add_option("model", o->model, "GGUF model file or Hugging Face folder")->required();
  app.add_flag("--metadata", o->metadata, "also list every metadata key");
  return [o] {
    o->model = store::resolve_model_arg(o->model);  // a path, or a hub name from the cache / pulled
    return show(*o);
  };
}

}  // namespace chassis::cli
