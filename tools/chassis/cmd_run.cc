// `chassis run MODEL [PROMPT]`: stream a completion to stdout (or one JSON object with --json).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <iostream>
#include <random>
#include <thread>
#include <unistd.h>

#include "commands.h"
#include "core/error.h"
#include "core/memory_stats.h"
#include "core/log.h"
#include "engine/chat.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "models/trace.h"
#include "store/resolve.h"

namespace chassis::cli {
namespace {

struct RunOptions {
  std::string model, prompt, prompt_file, dump_dir, system;
  int n_predict = 128;
  SamplingChoices sampling;  // only what was given on the command line
  int repeat_last_n = 64;
  int64_t seed = -1;
  int threads = 0;
  int64_t ctx = 0;
  bool raw = false, json = false, verbose = false;
  int logprobs = 0;
  std::string kv_type = "f16";
  std::string quant;
  bool no_pack = false;
};

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 16u));
}

int run(const RunOptions& o) {
  if (o.verbose) set_log_level(LogLevel::Info);
  Model::LoadOptions load_options;
  if (!o.quant.empty()) load_options.quant = load_quant_preset(o.quant);
  load_options.pack = !o.no_pack;
  auto model = Model::load(o.model, load_options);
  const ModelConfig& cfg = model->config();

  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) throw Error(o.prompt_file + ": cannot read the prompt file");
    prompt.assign(std::istreambuf_iterator<char>(in), {});
  }
  // A prompt goes through the model's chat template unless --raw (or the model has none, like base
  // models): rendered as transformers renders it, then tokenized without adding BOS/EOS, because
  // the template writes them (transformers' apply_chat_template does the same).
  std::optional<ChatTemplate> chat;
  if (!o.raw) chat = model->is_hf_folder() ? chat_template_of_folder(o.model) : chat_template_of(*model);
  if (!o.system.empty() && !chat)
    throw Error(o.raw ? "--system needs the chat template, which --raw turns off"
                      : o.model + ": --system needs a chat template and the model has none (use a raw prompt)");
  const bool interactive = chat && prompt.empty() && isatty(STDIN_FILENO);

  GenerateRequest req;
  req.n_predict = o.n_predict;
  req.n_logprobs = o.logprobs;
  // Built-in defaults (llama.cpp's), then the model's recommendation, then the command line.
  model->sampling_defaults().apply_to(req.sampling);
  o.sampling.apply_to(req.sampling);
  req.sampling.repeat_last_n = o.repeat_last_n;
  req.sampling.seed = o.seed >= 0 ? uint64_t(o.seed) : std::random_device{}();

  const int64_t n_ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(cfg.n_ctx_train, 4096);
  if (o.ctx > cfg.n_ctx_train) log_warn("context " + std::to_string(o.ctx) + " exceeds the model's trained context " + std::to_string(cfg.n_ctx_train));
  const int threads = o.threads > 0 ? o.threads : default_threads();
  if (o.kv_type != "f16" && o.kv_type != "f32") throw Error("--kv-type must be f16 or f32");
  Session session(*model, n_ctx, threads, o.kv_type == "f32");
  std::unique_ptr<DumpTracer> tracer;
  if (!o.dump_dir.empty()) {
    tracer = std::make_unique<DumpTracer>(o.dump_dir);
    session.set_tracer(tracer.get());
  }
  log_info("model: " + cfg.arch_name + ", " + std::to_string(model->weights().n_params) + " params, ctx " +
           std::to_string(n_ctx) + ", KV cache " + std::to_string(session.kv_bytes() >> 20) + " MiB, " +
           std::to_string(threads) + " threads, seed " + std::to_string(req.sampling.seed) +
           (chat ? ", chat template" : ", raw prompt"));

  jinja::List conversation;
  auto add_turn = [&](const char* role, const std::string& content) {
    jinja::Dict m;
    m.set("role", jinja::Value(role));
    m.set("content", jinja::Value(content));
    conversation.push_back(jinja::Value::dict(std::move(m)));
  };
  if (!o.system.empty()) add_turn("system", o.system);
  auto tokenize_turns = [&] {
    ChatRequest r;
    r.messages = jinja::Value::list(conversation);
    return model->tokenizer().tokenize(chat->apply(r), /*add_special=*/false, /*parse_special=*/true);
  };
  auto on_token = [&](const TokenEvent& ev) {
    if (!o.json && !ev.text.empty()) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };

  if (interactive) {
    // A conversation on the terminal: each turn re-renders the whole chat and reuses the KV cache
    // of the part the model has already seen.
    if (o.json) throw Error("--json needs a prompt (interactive chat streams text)");
    std::fprintf(stderr, "chat with %s — an empty line is ignored, Ctrl-D ends\n", o.model.c_str());
    req.reuse_cached_prefix = true;
    std::string line;
    while (true) {
      std::fputs("> ", stderr);
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      add_turn("user", line);
      req.prompt = tokenize_turns();
      if (int64_t(req.prompt.size()) >= n_ctx) {
        conversation.pop_back();
        log_warn("the conversation no longer fits the context of " + std::to_string(n_ctx) + " tokens (raise it with -c)");
        continue;
      }
      GenerateResult res = session.generate(req, on_token);
      std::fputc('\n', stdout);
      std::fflush(stdout);
      log_info("turn: prompt " + std::to_string(req.prompt.size()) + " tokens (" +
               std::to_string(res.prompt_tokens_reused) + " reused from the previous turn), generated " +
               std::to_string(res.tokens.size()) + ", stop: " + res.stop_reason);
      add_turn("assistant", res.text);
      ++req.sampling.seed;  // a fresh draw each turn, still reproducible from --seed
    }
    std::fputc('\n', stderr);
    return 0;
  }

  if (chat) {
    add_turn("user", prompt);
    req.prompt = tokenize_turns();
  } else {
    // Tokenized the way llama.cpp's server tokenizes a /completion prompt.
    req.prompt = model->tokenizer().tokenize(prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  GenerateResult res = session.generate(req, on_token);

  const double pp_tps = res.prompt_ms > 0 ? 1000.0 * double(req.prompt.size()) / res.prompt_ms : 0;
  const double tg_tps = res.generate_ms > 0 ? 1000.0 * double(res.tokens.size()) / res.generate_ms : 0;
  if (o.json) {
    nlohmann::json j;
    j["prompt_tokens"] = req.prompt;
    j["tokens"] = res.tokens;
    j["text"] = res.text;
    j["stop_reason"] = res.stop_reason;
    j["seed"] = req.sampling.seed;
    j["chat_template"] = chat.has_value();
    if (o.logprobs > 0) {
      auto& tl = j["top_logprobs"] = nlohmann::json::array();
      for (const auto& ev : res.events) {
        if (ev.id < 0) continue;
        auto step = nlohmann::json::array();
        for (const auto& [id, lp] : ev.top) step.push_back({{"id", id}, {"logprob", lp}});
        tl.push_back(step);
      }
    }
    j["timings"] = {{"prompt_ms", res.prompt_ms}, {"prompt_tokens_per_s", pp_tps},
                    {"generate_ms", res.generate_ms}, {"generate_tokens_per_s", tg_tps}};
    const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    std::fflush(stdout);
  }
  if (res.stop_reason == "context") log_warn("generation stopped: the context of " + std::to_string(n_ctx) + " tokens is full");
  std::fprintf(stderr, "\n[prompt: %zu tokens, %.1f tok/s | generated: %zu tokens, %.1f tok/s | stop: %s]\n",
               req.prompt.size(), pp_tps, res.tokens.size(), tg_tps, res.stop_reason.c_str());
  const auto mib = [](uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
  const uint64_t owned = model->weights().owned_bytes();
  log_info("memory: weights " + mib(model->weights().n_bytes) + " (" + mib(model->weights().n_bytes - std::min(owned, model->weights().n_bytes)) +
           " mmapped, " + mib(owned) + (o.quant.empty() ? " packed" : " quantized or packed") + " at load)" +
           ", KV cache " + mib(session.kv_bytes()) +
           ", scratch " + mib(session.scratch_bytes()) + "; peak resident " + mib(peak_resident_bytes()));
  return 0;
}

}  // namespace

std::function<int()> add_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  app.add_option("model", o->model, "GGUF model file or Hugging Face folder")->required();
  app.add_option("prompt", o->prompt,
                 "prompt (through the model's chat template unless --raw; none, on a terminal: interactive chat; "
                 "none for a model without a template: start from BOS)");
  app.add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  app.add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until end of text or context)");
  // Unset sampling options take the model's recommendation (generation_config.json or GGUF
  // general.sampling.*), else llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05.
  app.add_option("--temp", o->sampling.temperature, "temperature (0: greedy)");
  app.add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens (0: off)");
  app.add_option("--top-p", o->sampling.top_p, "nucleus sampling threshold (1: off)");
  app.add_option("--min-p", o->sampling.min_p, "drop tokens below min-p times the best one's probability (0: off)");
  app.add_option("--repeat-penalty", o->sampling.repeat_penalty, "penalty for recently seen tokens (1: off)");
  app.add_option("--repeat-last-n", o->repeat_last_n, "how many recent tokens the penalty looks at");
  app.add_option("-s,--seed", o->seed, "random seed (-1: random)");
  app.add_option("-t,--threads", o->threads, "threads (default: all cores)");
  app.add_option("-c,--ctx-size", o->ctx, "context size in tokens (default: model's, at most 4096)");
  app.add_flag("--raw", o->raw, "feed the prompt as plain text (no chat template)");
  app.add_option("--system", o->system, "system message for the chat template");
  app.add_flag("--json", o->json, "print one JSON object instead of streaming text");
  app.add_option("--logprobs", o->logprobs, "with --json: report the K most likely tokens at each step")->check(CLI::Range(0, 100));
  app.add_option("--kv-type", o->kv_type, "KV cache type: f16 (default, as llama.cpp) or f32 (exact, twice the memory)");
  app.add_option("--quant", o->quant, "quantize F32/F16/BF16 weights at load: q8_0, q4_0, q4_k, q6_k, ... (as `quantize`)");
  app.add_flag("--no-pack", o->no_pack,
               "read the weights in place from the mapped file instead of packing them into huge-page memory: they then stay shared with other processes reading the same file, and loading is faster, but decode is slower (see bench --no-pack)");
  app.add_option("--dump", o->dump_dir, "write every named intermediate tensor to this directory (debugging)");
  app.add_flag("-v,--verbose", o->verbose, "log model and memory details to stderr");
  return [o] {
    o->model = store::resolve_model_arg(o->model);  // a path, or a hub name from the cache / pulled
    return run(*o);
  };
}

}  // namespace chassis::cli
