// Random-weight GGUF models with the exact shapes and metadata of real ones, for benchmarking without
// downloads (and so another engine can be run on the very same file).
#pragma once
#include <string>
#include <vector>

namespace chassis {

struct SyntheticShape {
  std::string name;  // e.g. "qwen2.5-0.5b"
  std::string arch;  // general.architecture
  int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
  float rope_base, rms_eps;
  bool qkv_bias;     // qwen2
  bool rope_freqs;   // llama-3 scaling factors tensor
  bool tied_embeddings;  // no output.weight: the output product reads token_embd
};

const std::vector<SyntheticShape>& synthetic_shapes();

// Writes (if not there yet) a random-weight model of the named shape and weight type ("f16", "q8_0",
// "q4_0", or the llama-quantize mixtures "q4_k_m", "q6_k") under `dir`, and returns its path. Throws Error for an unknown name or type.
std::string ensure_synthetic_model(const std::string& name, const std::string& type, const std::string& dir);
// The same for a shape of the caller's (the file is named after shape.name).
std::string ensure_synthetic_model(const SyntheticShape& shape, const std::string& type, const std::string& dir);

}  // namespace chassis
