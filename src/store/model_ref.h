// A model named the way users know it on the Hugging Face hub:
//   org/repo                 the whole folder (safetensors, config, tokenizer files)
//   org/repo:FILE.gguf       one GGUF file of the repo
//   org/repo:Q4_K_M          the GGUF of that quantization type in the repo
// each optionally followed by @revision (a branch, tag or commit hash; default "main").
#pragma once
#include <optional>
#include <string>

namespace chassis::store {

struct ModelRef {
  std::string repo;      // "org/repo"
  std::string file;      // a path inside the repo ("" unless :FILE named one)
  std::string quant;     // "Q4_K_M" ("" unless :QUANT named one), upper-case
  std::string revision;  // "main" unless @revision
  bool revision_given = false;
  std::string text() const;  // as a user would write it
};

// Parses a hub name; nullopt when `text` is not one (a local path, an empty string, bad characters).
std::optional<ModelRef> parse_model_ref(const std::string& text);

// Whether a GGUF file name carries this quantization type ("model-q4_k_m.gguf" for Q4_K_M),
// matched as a whole token: Q4_K does not match Q4_K_M.
bool file_has_quant(const std::string& filename, const std::string& quant);

// The quantization type a GGUF file name carries ("Q4_K_M", "F16", ...), or "".
std::string quant_of_filename(const std::string& filename);

}  // namespace chassis::store
