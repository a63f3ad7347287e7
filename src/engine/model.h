// A loaded model: the mmapped GGUF file, its parsed header, tokenizer, typed config and weight views.
// This is the engine's public entry for everything that reads a model (CLI, later the server).
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "models/config.h"
#include "models/weights.h"
#include "tokenizer/vocab.h"

namespace chassis {

class Model {
 public:
  // vocab_only: read only what the tokenizer needs (works on vocab-only and truncated files).
  static std::unique_ptr<Model> load(const std::string& path, bool vocab_only = false);

  const std::string& path() const { return file_->path(); }
  uint64_t file_size() const { return file_->size(); }
  const GgufFile& gguf() const { return gguf_; }
  const Vocab& vocab() const { return *vocab_; }
  bool has_weights() const { return weights_.has_value(); }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return *weights_; }
  std::optional<std::string> chat_template() const { return gguf_.get_string("tokenizer.chat_template"); }

 private:
  Model() = default;
  std::unique_ptr<MappedFile> file_;
  GgufFile gguf_;
  std::optional<Vocab> vocab_;
  ModelConfig config_;
  std::optional<ModelWeights> weights_;
};

}  // namespace chassis
