// `chassis quantize IN.gguf OUT.gguf TYPE`: the weights of a GGUF in another type, chosen per tensor
// as llama-quantize chooses them for that preset.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "core/error.h"
#include "engine/quantize.h"

namespace chassis::cli {
namespace {

struct QuantizeOptions {
  std::string in, out, type;
  int threads = 0;
};

int quantize(const QuantizeOptions& o) {
  const auto preset = quant_preset(o.type);
  if (!preset) throw Error("unknown type '" + o.type + "' (known: " + quant_preset_names() + ")");
  if (o.in == o.out) throw Error("the output must be a different file than the input");
  quantize_gguf(o.in, o.out, *preset, o.threads);
  std::fprintf(stderr, "wrote %s (%s)\n", o.out.c_str(), preset->name.c_str());
  return 0;
}

}  // namespace

std::function<int()> add_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  app.add_option("input", o->in, "GGUF with F32, F16 or BF16 weights")->required();
  app.add_option("output", o->out, "GGUF to write")->required();
  app.add_option("type", o->type, "f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q6_k q4_k_m q5_k_m")->required();
  app.add_option("-t,--threads", o->threads, "threads quantizing each tensor's rows (default: one per CPU)")
      ->check(CLI::NonNegativeNumber);
  return [o] { return quantize(*o); };
}

}  // namespace chassis::cli
