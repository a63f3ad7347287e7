// A Hugging Face folder's SentencePiece model (tokenizer.model), for folders without tokenizer.json.
//
// Why a library and not our own code: the file is a protobuf written by SentencePiece, whose
// unigram/BPE search, normaliser rules and byte fallback live in that library; Debian ships it
// (libsentencepiece), and re-implementing it would only add ways to differ from the model's training.
#pragma once
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "engine/tokenizer.h"

namespace chassis {

struct SentencePieceOptions {
  bool add_bos = true;   // tokenizer_config.json add_bos_token (Llama-family default)
  bool add_eos = false;  // tokenizer_config.json add_eos_token
  std::set<int32_t> eog; // end-of-generation ids besides the model's </s>
};

// Throws Error naming the path when it is not a SentencePiece model. extra_eog, when given, is asked
// for more end-of-generation ids once the model is loaded (ids found by looking up token text).
std::unique_ptr<TextTokenizer> load_sentencepiece_tokenizer(
    const std::string& path, const SentencePieceOptions& options,
    const std::function<std::set<int32_t>(const TextTokenizer&)>& extra_eog = {});

// The two settings of a SentencePiece model that libsentencepiece does not expose: the trainer's
// model type (1 unigram, 2 BPE, 3 word, 4 char) and the normalizer's add_dummy_prefix. A malformed
// protobuf is an Error naming `label`.
struct SentencePieceSpec {
  int model_type = 1;
  bool add_dummy_prefix = true;
};
SentencePieceSpec read_sentencepiece_spec(const std::string& bytes, const std::string& label);

}  // namespace chassis
