#include "engine/model.h"

#include "core/error.h"

namespace chassis {

std::unique_ptr<Model> Model::load(const std::string& path, bool vocab_only) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::make_unique<MappedFile>(path);
  m->gguf_ = GgufFile::parse(m->file_->data(), m->file_->size(), path);
  m->vocab_.emplace(Vocab::from_gguf(m->gguf_));
  if (vocab_only) return m;
  if (m->gguf_.tensors().empty()) throw Error(path + ": the file holds no tensors (a vocab-only file cannot generate)");
  m->gguf_.check_all_tensor_bounds();
  m->config_ = config_from_gguf(m->gguf_);
  m->weights_.emplace(load_weights(m->gguf_, m->config_));
  if (m->config_.n_vocab != m->vocab_->size())
    throw Error(path + ": the embedding has " + std::to_string(m->config_.n_vocab) + " rows but the tokenizer has " +
                std::to_string(m->vocab_->size()) + " tokens");
  return m;
}

}  // namespace chassis
