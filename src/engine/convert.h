// `chassis convert DIR -o OUT.gguf`: a Hugging Face folder rewritten as the GGUF file llama.cpp's
// convert_hf_to_gguf.py would write — its tensor names, q/k row order (llama: interleaved pairs;
// qwen2/qwen3: as stored), metadata keys, tokenizer (tokenizer.ggml.*) and chat template — then
// typed as a quantize preset chooses (F16 by default, as llama.cpp's converter).
#pragma once
#include <string>

#include "engine/quantize.h"
#include "io/gguf_writer.h"

namespace chassis {

struct ConvertOptions {
  std::string dir, out;
  QuantPreset preset;
  bool vocab_only = false;  // metadata and tokenizer only, no tensors (like llama.cpp's --vocab-only)
};

void convert_hf_folder(const ConvertOptions& o);

// The folder's tokenizer.json (and tokenizer_config.json) as GGUF tokenizer metadata: SentencePiece-
// style BPE (byte fallback, "▁" spaces) as tokenizer.ggml.model "llama" with scores in merge order;
// byte-level BPE as "gpt2" with its merges and the pre-tokenizer named as llama.cpp names it.
// Throws Error for what GGUF cannot express (WordPiece/Unigram here, an unknown pre-tokenizer).
void add_gguf_vocab(GgufWriter& w, const std::string& dir);

}  // namespace chassis
