// Finding a model's chat template: in a GGUF file (tokenizer.chat_template), a Hugging Face folder
// (chat_template.jinja or tokenizer_config.json's chat_template) or a plain .jinja file.
#pragma once
#include <optional>
#include <string>

#include "tokenizer/chat_template.h"

namespace chassis {

class Model;

// The template of a loaded model (GGUF: with its BOS/EOS token texts; folder: as
// chat_template_of_folder); nullopt if it has none.
std::optional<ChatTemplate> chat_template_of(const Model& model);

// The template of a Hugging Face model folder with the special tokens of its tokenizer_config.json
// (named template "default" when chat_template is a list); nullopt if it has none.
std::optional<ChatTemplate> chat_template_of_folder(const std::string& dir);

// A template file on its own (no special tokens).
ChatTemplate chat_template_from_file(const std::string& path);
// A template file used for a model: with that model's special tokens (bos_token, eos_token, ...).
ChatTemplate chat_template_from_file(const std::string& path, const Model& model);

}  // namespace chassis
