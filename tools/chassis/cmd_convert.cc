// `chassis convert DIR -o OUT.gguf [--type f16] [--vocab-only]`: a Hugging Face folder (or hub
// name) as the GGUF file llama.cpp would write, in any `chassis quantize` preset.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "core/error.h"
#include "engine/convert.h"
#include "store/resolve.h"

namespace chassis::cli {
namespace {

struct ConvertCliOptions {
  std::string model, out, type = "f16";
  bool vocab_only = false;
};

int convert(const ConvertCliOptions& o) {
  const auto preset = quant_preset(o.type);
  if (!preset) throw Error("unknown type '" + o.type + "' (one of: " + quant_preset_names() + ")");
  ConvertOptions c;
  c.dir = store::resolve_model_arg(o.model);
  c.out = o.out;
  c.preset = *preset;
  c.vocab_only = o.vocab_only;
  convert_hf_folder(c);
  std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

std::function<int()> add_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertCliOptions>();
  app.add_option("model", o->model, "Hugging Face model folder, or a hub name (org/repo)")->required();
  app.add_option("-o,--out", o->out, "the GGUF file to write")->required();
  app.add_option("--type", o->type, "tensor types, as a quantize preset (default f16)");
  app.add_flag("--vocab-only", o->vocab_only, "write the metadata and tokenizer only");
  return [o] { return convert(*o); };
}

}  // namespace chassis::cli
