// A Hugging Face model folder as a model source: config.json mapped to the same typed ModelConfig
// the GGUF path fills, and the safetensors shards as a TensorSource under GGUF tensor names, so one
// architecture implementation runs both. HF checkpoints keep q/k in rotate_half order, which is
// RoPE's NeoX layout, so no weight is permuted or copied: the weights stay mmapped.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "models/config.h"

namespace chassis {

// Maps config.json (text) of the families in kHfFamilies (Llama, Mistral, Qwen2, Qwen3, Phi-3,
// Gemma 2, ...); anything else, or a malformed/out-of-range field, is an Error naming `label`.
ModelConfig config_from_hf(const std::string& config_json, const std::string& label);

class HfTensors : public TensorSource {
 public:
  // Opens DIR/model.safetensors, or every shard named by DIR/model.safetensors.index.json.
  // Tensor names are translated for `arch` (config_from_hf's result).
  static std::unique_ptr<HfTensors> open(const std::string& dir, Arch arch);
  const std::string& label() const override { return label_; }
  std::optional<TensorRef> find(const std::string& gguf_name) const override;
  uint64_t file_bytes() const;
  // Every tensor the engine uses, by GGUF name, sorted.
  std::vector<std::string> names() const;

 private:
  std::string label_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::vector<SafetensorsFile> parsed_;
  std::map<std::string, TensorRef> by_gguf_name_;
};

// The GGUF name of a Hugging Face tensor name ("model.layers.3.mlp.up_proj.weight" ->
// "blk.3.ffn_up.weight"); empty for tensors the engine does not use (e.g. rotary_emb.inv_freq).
std::string gguf_tensor_name(const std::string& hf_name, Arch arch);

}  // namespace chassis
