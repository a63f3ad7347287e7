// `chassis bench MODEL` (or `--synthetic NAME --type T`): prefill and decode throughput, bytes read per
// token and the fraction of the measured memory bandwidth, as a llama-bench-style table or JSON.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "core/error.h"
#include "engine/bench.h"
#include "engine/model.h"
#include "engine/synthetic.h"
#include "store/resolve.h"

namespace chassis::cli {
namespace {

struct BenchCliOptions {
  std::string model, synthetic, type = "q8_0", cache_dir, quant;
  BenchOptions bench;
  bool json = false;
  bool no_pack = false;
};

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/chassis/synthetic";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/chassis/synthetic";
  return ".chassis-synthetic";
}

int bench(BenchCliOptions o) {
  if (o.model.empty() == o.synthetic.empty()) throw Error("bench needs a MODEL or --synthetic NAME (one of them)");
  if (o.bench.n_prompt == 0 && o.bench.n_gen == 0) throw Error("bench: -p and -n are both 0, nothing to measure");
  if (!o.synthetic.empty())
    o.model = ensure_synthetic_model(o.synthetic, o.type, o.cache_dir.empty() ? default_cache_dir() : o.cache_dir);
  Model::LoadOptions load_options;
  if (!o.quant.empty()) load_options.quant = load_quant_preset(o.quant);
  load_options.pack = !o.no_pack;
  load_options.threads = o.bench.threads;
  auto model = Model::load(o.model, load_options);
  const BenchResult r = run_bench(*model, o.bench);
  const double size_mib = double(model->weights().n_bytes) / (1 << 20);
  const double params_m = double(model->weights().n_params) / 1e6;
  if (o.json) {
    auto spread = [](const Spread& s) { return nlohmann::json{{"median", s.median}, {"min", s.min}, {"max", s.max}}; };
    nlohmann::json j{{"model", o.model},
                     {"architecture", model->config().arch_name},
                     {"size_bytes", model->weights().n_bytes},
                     {"params", model->weights().n_params},
                     {"threads", o.bench.threads},
                     {"n_prompt", o.bench.n_prompt},
                     {"n_gen", o.bench.n_gen},
                     {"repetitions", o.bench.repetitions},
                     {"packed_weights", !o.no_pack},
                     {"prefill_tok_s", spread(r.prefill_tok_s)},
                     {"decode_tok_s", spread(r.decode_tok_s)},
                     {"bytes_per_token", r.bytes_per_token},
                     {"bandwidth_gb_s", r.bandwidth_gb_s},
                     {"roofline_fraction", r.roofline_fraction},
                     {"memory", {{"weights_bytes", r.weights_bytes},
                                 {"kv_cache_bytes", r.kv_bytes},
                                 {"scratch_bytes", r.scratch_bytes},
                                 {"rss_bytes", r.rss_bytes}}}};
    if (r.ab)  // the fields above are side A
      j["ab"] = {{"prefill_tok_s", spread(r.ab->prefill_tok_s)}, {"decode_tok_s", spread(r.ab->decode_tok_s)},
                 {"prefill_ratio", r.ab->prefill_ratio},         {"decode_ratio", r.ab->decode_ratio},
                 {"roofline_fraction", r.ab->roofline_fraction}, {"sides", r.ab->sides}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("| model | size | params | threads | test | t/s (median) | min .. max |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  auto row = [&](const char* test, int64_t n, const Spread& s) {
    std::printf("| %s | %.2f MiB | %.2f M | %d | %s%lld | %.2f | %.2f .. %.2f |\n", model->config().arch_name.c_str(),
                size_mib, params_m, o.bench.threads, test, (long long)n, s.median, s.min, s.max);
  };
  if (o.bench.n_prompt > 0) row(r.ab ? "A pp" : "pp", o.bench.n_prompt, r.prefill_tok_s);
  if (r.ab && o.bench.n_prompt > 0) row("B pp", o.bench.n_prompt, r.ab->prefill_tok_s);
  if (o.bench.n_gen > 0) row(r.ab ? "A tg" : "tg", o.bench.n_gen, r.decode_tok_s);
  if (r.ab && o.bench.n_gen > 0) row("B tg", o.bench.n_gen, r.ab->decode_tok_s);
  if (r.ab) {
    std::printf("\nA/B in one process (A: switch off, B: on; order %s): B/A, median of paired repetitions:",
                r.ab->sides.c_str());
    if (o.bench.n_prompt > 0) std::printf(" prefill %.3f", r.ab->prefill_ratio);
    if (o.bench.n_gen > 0) std::printf(" decode %.3f", r.ab->decode_ratio);
    std::printf("\n");
  }
  std::printf("\nmodel file: %s\nbytes read per decoded token: %.1f MiB | measured read bandwidth: %.2f GB/s | "
              "decode at %.1f %% of the bandwidth roofline%s\n",
              o.model.c_str(), double(r.bytes_per_token) / (1 << 20), r.bandwidth_gb_s, 100 * r.roofline_fraction,
              r.ab ? " (side A)" : "");
  const double mib = 1 << 20;
  const double planned = double(r.weights_bytes + r.kv_bytes + r.scratch_bytes);
  std::printf("memory: weights %.1f MiB + KV cache %.1f MiB + scratch %.1f MiB = %.1f MiB planned | "
              "resident after the runs %.1f MiB (%.0f %% of weights + KV cache)\n",
              double(r.weights_bytes) / mib, double(r.kv_bytes) / mib, double(r.scratch_bytes) / mib, planned / mib,
              double(r.rss_bytes) / mib, 100.0 * double(r.rss_bytes) / double(r.weights_bytes + r.kv_bytes));
  return 0;
}

}  // namespace

std::function<int()> add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchCliOptions>();
  const unsigned hc = std::thread::hardware_concurrency();
  o->bench.threads = hc == 0 ? 1 : int(std::min(hc, 16u));
  app.add_option("model", o->model, "GGUF model file");
  app.add_option("-p,--n-prompt", o->bench.n_prompt, "prompt tokens per prefill measurement")->check(CLI::Range(0, 1 << 20));
  app.add_option("-n,--n-gen", o->bench.n_gen, "tokens per decode measurement")->check(CLI::Range(0, 1 << 20));
  app.add_option("-t,--threads", o->bench.threads, "threads")->check(CLI::Range(1, 1024));
  app.add_option("--quant", o->quant, "quantize F32/F16/BF16 weights at load (see run --quant)");
  app.add_option("-r,--repetitions", o->bench.repetitions, "repetitions (median and spread are reported)")->check(CLI::Range(1, 1000));
  app.add_option("--synthetic", o->synthetic, "benchmark a random-weight model of this shape (qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b, llama-3.2-1b, llama-3.2-3b, llama-3.1-8b)");
  app.add_option("--type", o->type, "weight type of the synthetic model: f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k");
  app.add_option("--cache-dir", o->cache_dir, "where synthetic models are written (default ~/.cache/chassis/synthetic)");
  app.add_flag("--json", o->json, "print one JSON object");
  app.add_flag("--ab", o->bench.ab,
               "in-process A/B: -r repetitions with the trial switch off (A) and as many on (B), A B B A ..., "
               "and B/A per pair (see src/core/ab_switch.h; for measuring a change under trial)");
  app.add_flag("--no-pack,--no-interleave", o->no_pack,
               "read the weights in place from the mapped file, in its order (by default they are packed into "
               "huge-page memory, interleaved for the Q4_0/Q4_K/Q5_0/Q8_0 kernels; same results, to measure the difference)");
  return [o] {
    if (!o->model.empty()) o->model = store::resolve_model_arg(o->model);
    return bench(*o);
  };
}

}  // namespace chassis::cli
