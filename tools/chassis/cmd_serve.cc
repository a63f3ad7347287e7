// `chassis serve [MODEL ...]`: the OpenAI-compatible server. A MODEL is a GGUF file or Hugging Face
// folder, served under its file/folder name, or NAME=PATH to choose the name.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pthread.h>
#include <thread>

#include "commands.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/quantize.h"
#include "server/server.h"
#include "store/model_ref.h"
#include "store/resolve.h"

namespace chassis::cli {
namespace {

struct ServeOptions {
  std::vector<std::string> models;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  int parallel = 4;
  int64_t ctx = 0;
  int64_t kv_tokens = 0;
  std::string kv_type = "f16";
  std::string quant;
  bool no_pack = false;
  std::string memory_budget = "0";
  std::string keep_alive = "0";
  std::vector<std::string> cors;
  std::string chat_template;
  int threads = 0;
  std::string max_body = "16M";
  int http_threads = 128;
  int queue = 64;
  std::string grace = "10s";
  bool quiet = false;
};

// "512M", "4G", "1.5G", "1000000" -> bytes.
uint64_t parse_size(const std::string& s, const char* what) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(std::string(what) + ": '" + s + "' is not a size (like 512M or 4G)");
  }
  std::string unit = s.substr(used);
  double mult = 1;
  if (unit == "" || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KiB") mult = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else throw Error(std::string(what) + ": unknown unit in '" + s + "' (use K, M or G)");
  if (v < 0) throw Error(std::string(what) + ": '" + s + "' is negative");
  return uint64_t(v * mult);
}

// "30s", "5m", "1h", "0", "250ms" -> milliseconds.
std::chrono::milliseconds parse_duration(const std::string& s, const char* what) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(std::string(what) + ": '" + s + "' is not a duration (like 30s, 5m, 1h)");
  }
  const std::string unit = s.substr(used);
  double ms;
  if (unit == "ms") ms = v;
  else if (unit == "" || unit == "s") ms = v * 1000;
  else if (unit == "m") ms = v * 60'000;
  else if (unit == "h") ms = v * 3'600'000;
  else throw Error(std::string(what) + ": unknown unit in '" + s + "' (use ms, s, m or h)");
  if (ms < 0) throw Error(std::string(what) + ": '" + s + "' is negative");
  return std::chrono::milliseconds(int64_t(ms));
}

std::string default_id(const std::string& path) {
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "dir/"
  std::string name = p.filename().string();
  if (p.extension() == ".gguf") name = p.stem().string();
  return name;
}

int serve(const ServeOptions& o) {
  if (!o.quiet) set_log_level(LogLevel::Info);
  if (o.models.empty()) throw Error("name at least one model to serve (a GGUF file or Hugging Face folder)");
  std::vector<server::ModelSpec> specs;
  for (const auto& m : o.models) {
    const size_t eq = m.find('=');
    server::ModelSpec s;
    if (eq != std::string::npos && !std::filesystem::exists(m)) {
      s.id = m.substr(0, eq);
      s.path = m.substr(eq + 1);
    } else {
      s.path = m;
      // A hub name is served under that name; a path under its file or folder name.
      s.id = std::filesystem::exists(m) || !store::parse_model_ref(m) ? default_id(m) : m;
    }
    s.path = store::resolve_model_arg(s.path);
    specs.push_back(s);
  }
  server::RegistryOptions ro;
  ro.engine.n_slots = o.parallel;
  ro.engine.n_ctx = o.ctx;
  ro.engine.kv_tokens = o.kv_tokens;
  if (o.kv_type != "f16" && o.kv_type != "f32") throw Error("--kv-type must be f16 or f32");
  ro.engine.kv_f32 = o.kv_type == "f32";
  if (!o.quant.empty()) ro.quant = load_quant_preset(o.quant);
  ro.pack = !o.no_pack;
  const unsigned hw = std::thread::hardware_concurrency();
  ro.engine.n_threads = o.threads > 0 ? o.threads : int(hw == 0 ? 1 : std::min(hw, 16u));
  ro.engine.max_queue = size_t(o.queue);
  ro.memory_budget = parse_size(o.memory_budget, "--memory-budget");
  ro.keep_alive = std::chrono::duration_cast<std::chrono::seconds>(parse_duration(o.keep_alive, "--keep-alive"));
  ro.chat_template_file = o.chat_template;

  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_keys = o.api_keys;
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    if (!in) throw Error(o.api_key_file + ": cannot read the API key file");
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') so.api_keys.push_back(line);
    }
    if (so.api_keys.empty()) throw Error(o.api_key_file + ": holds no API key");
  }
  so.cors_origins = o.cors;
  so.max_body_bytes = parse_size(o.max_body, "--max-body");
  so.http_threads = o.http_threads;
  so.log_requests = !o.quiet;
  const auto grace = parse_duration(o.grace, "--grace");

  // SIGTERM/SIGINT are taken by one thread (blocked everywhere else, so every thread created after
  // this inherits the mask) and start a graceful drain.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  server::ModelRegistry registry(specs, ro);
  server::Server srv(registry, so);
  srv.bind();
  std::thread([&srv, sigs, grace] {
    int sig = 0;
    sigwait(&sigs, &sig);
    log_info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": finishing running requests");
    srv.shutdown(grace);
  }).detach();
  std::string names;
  for (const auto& s : specs) names += (names.empty() ? "" : ", ") + s.id;
  std::fprintf(stderr, "chassis: serving %s on http://%s:%d%s\n", names.c_str(), o.host.c_str(), srv.port(),
               so.api_keys.empty() ? "" : " (API key required)");
  std::fflush(stderr);
  if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1" && so.api_keys.empty())
    log_warn("listening on " + o.host + " without an API key: anyone who can reach this port can use it");
  srv.run();
  log_info("stopped");
  return 0;
}

}  // namespace

std::function<int()> add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  app.add_option("models", o->models, "models to serve: PATH (GGUF file or Hugging Face folder) or NAME=PATH")
      ->required();
  app.add_option("--host", o->host, "address to listen on (default 127.0.0.1: this machine only)");
  app.add_option("--port", o->port, "port (0: any free one, printed at start)")->check(CLI::Range(0, 65535));
  app.add_option("--api-key", o->api_keys, "require 'Authorization: Bearer KEY' on /v1 routes (repeatable)");
  app.add_option("--api-key-file", o->api_key_file, "read API keys from a file, one per line");
  app.add_option("--parallel", o->parallel, "sequences evaluated together per model")->check(CLI::Range(1, 256));
  app.add_option("-c,--ctx-size", o->ctx, "context per sequence (default: the model's, at most 4096)");
  app.add_option("--kv-tokens", o->kv_tokens,
                 "positions in each model's shared KV pool (default: --parallel × context)");
  app.add_option("--kv-type", o->kv_type, "KV cache type: f16 (default, as llama.cpp) or f32 (exact, twice the memory)");
  app.add_option("--quant", o->quant, "quantize F32/F16/BF16 weights at load: q8_0, q4_0, q4_k, ... (as `quantize`)");
  app.add_flag("--no-pack", o->no_pack,
               "read the weights in place from the mapped file instead of packing them into huge-page memory: they then stay shared with other processes reading the same file, and loading is faster, but decode is slower (see bench --no-pack)");
  app.add_option("--memory-budget", o->memory_budget, "most memory for loaded models, like 8G (0: no limit)");
  app.add_option("--keep-alive", o->keep_alive, "unload a model idle this long, like 5m (0: never)");
  app.add_option("--cors", o->cors, "allow browser requests from this origin ('*': any; repeatable)");
  app.add_option("--chat-template", o->chat_template, "Jinja chat template file used for every model");
  app.add_option("-t,--threads", o->threads, "threads per model (default: all cores)");
  app.add_option("--max-body", o->max_body, "largest request body, like 16M");
  app.add_option("--http-threads", o->http_threads, "connections served at once")->check(CLI::Range(4, 4096));
  app.add_option("--queue", o->queue, "requests waiting per model before 429")->check(CLI::Range(0, 100000));
  app.add_option("--grace", o->grace, "on SIGTERM, how long running requests may finish, like 10s");
  app.add_flag("-q,--quiet", o->quiet, "no request log");
  return [o] { return serve(*o); };
}

}  // namespace chassis::cli
