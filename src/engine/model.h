// A loaded model: the mmapped GGUF file, its parsed header, tokenizer, typed config and weight views.
// This is the engine's public entry for everything that reads a model (CLI, later the server).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/quantize.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "models/config.h"
#include "models/hf_model.h"
#include "models/weights.h"
#include "tokenizer/hf/hf_tokenizer.h"
#include "tokenizer/vocab.h"

namespace chassis {

class Model {
 public:
  struct LoadOptions {
    // Read only what the tokenizer needs (works on vocab-only and truncated files).
    bool vocab_only = false;
    // Load-time quantization of F32/F16/BF16 weights (`--quant`), with llama-quantize's per-tensor
    // rules for the preset.
    std::optional<QuantPreset> quant;
    // Pack the weight matrices into huge-page memory, interleaved where the matmul kernels read them
    // faster (pack_weights in models/weights.h); the results are the same either way. Off (the
    // weights read in place from the mapped file) only to measure what it gains.
    bool pack = true;
    // Threads for quantizing and packing at load (0: every hardware thread).
    int threads = 0;
  };
  // A GGUF file, or a Hugging Face folder (config.json, safetensors, tokenizer.json).
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options);
  static std::unique_ptr<Model> load(const std::string& path, bool vocab_only = false) {
    LoadOptions o;
    o.vocab_only = vocab_only;
    return load(path, o);
  }

  const std::string& path() const { return path_; }
  bool is_hf_folder() const { return hf_tensors_ != nullptr; }
  uint64_t file_size() const;
  const GgufFile& gguf() const { return gguf_; }  // empty for a Hugging Face folder
  // The GGUF vocab; throws for a Hugging Face folder (use tokenizer()).
  const Vocab& vocab() const;
  const TextTokenizer& tokenizer() const { return *tokenizer_; }
  bool has_weights() const { return weights_.has_value(); }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return *weights_; }
  std::optional<std::string> chat_template() const { return gguf_.get_string("tokenizer.chat_template"); }
  // The model's recommended sampling (generation_config.json / general.sampling.*), possibly empty.
  const SamplingChoices& sampling_defaults() const { return sampling_defaults_; }

 private:
  Model() = default;
  static std::unique_ptr<Model> load_file(const std::string& path, bool vocab_only);
  static std::unique_ptr<Model> load_hf_folder(const std::string& dir, bool vocab_only);
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  GgufFile gguf_;
  std::optional<Vocab> vocab_;
  std::unique_ptr<HfTensors> hf_tensors_;
  std::unique_ptr<TextTokenizer> tokenizer_;
  ModelConfig config_;
  SamplingChoices sampling_defaults_;
  std::optional<ModelWeights> weights_;
};

}  // namespace chassis
