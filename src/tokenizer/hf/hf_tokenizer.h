// A Hugging Face tokenizer.json, run as the `tokenizers` library runs it: added tokens split out
// first, then normalizer -> pre-tokenizer -> model (BPE, WordPiece, WordLevel) on each remaining
// piece, then the post-processor's special tokens; decoders for the way back. One stage per class,
// as in huggingface/tokenizers, so each can be compared with its reference on its own.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace chassis::hf {

// One split of the input: text, and whether it is the first piece of the original input (some
// pre-tokenizers, e.g. Metaspace with prepend_scheme "first", treat it differently).
struct Piece {
  std::string text;
  bool first = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual std::vector<Piece> split(std::vector<Piece> pieces) const = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual void tokenize(const std::string& word, std::vector<int32_t>& out) const = 0;
  // The pre-tokenized words of one section of text (between added tokens), in order. By default each
  // word is encoded alone; Unigram fuses unknown runs across words, as transformers.js does.
  virtual void tokenize_section(const std::vector<Piece>& words, std::vector<int32_t>& out) const {
    for (const Piece& w : words) tokenize(w.text, out);
  }
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> decode(std::vector<std::string> tokens) const = 0;
};

struct AddedToken {
  int32_t id;
  std::string content;
  std::string match;  // what is searched for: content, normalized itself when `normalized`
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// The post-processor's special tokens around a single sequence (TemplateProcessing, Bert/Roberta).
struct PostProcessor {
  std::vector<int32_t> prefix, suffix;
};

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json; throws Error naming the file and the unsupported or malformed part.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(std::string_view json, const std::string& label);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special: what the post-processor adds (HF add_special_tokens). split_special: special added
  // tokens in the text are plain text (HF split_special_tokens).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool split_special = false) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // The bytes one token stands for when streamed on its own (byte-level tokens mapped back to
  // bytes, <0xAB> byte-fallback tokens as that byte, the Metaspace "▁" as a space).
  std::string token_bytes(int32_t id) const;

  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  const std::string& token(int32_t id) const;
  std::optional<int32_t> find(const std::string& token) const;
  bool is_special(int32_t id) const;

 private:
  Tokenizer();
  void encode_piece(const std::string& text, bool first, std::vector<int32_t>& out) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Decoder> decoder_;
  PostProcessor post_;
  std::vector<AddedToken> added_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  bool byte_level_ = false;  // the decoder maps GPT-2 byte characters back to bytes
};

// Stage factories from their tokenizer.json objects (nlohmann::json kept out of this header).
struct JsonRef;
std::unique_ptr<Normalizer> make_normalizer(const JsonRef& j);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonRef& j);
std::unique_ptr<Decoder> make_decoder(const JsonRef& j);
std::unique_ptr<Model> make_model(const JsonRef& j, std::vector<std::string>& id_to_token,
                                  std::unordered_map<std::string, int32_t>& token_to_id);

}  // namespace chassis::hf
