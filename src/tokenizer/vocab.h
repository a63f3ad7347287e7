// The tokenizer of a GGUF model, built from its tokenizer.ggml.* metadata: SentencePiece-style
// (llama), byte-level BPE (gpt2) with a regex pre-tokenizer, or WordPiece (bert). Tokenization
// follows llama.cpp's, so prompts become the same ids the reference evaluates.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/string_ids.h"

namespace chassis {

class GgufFile;
class RegexSplitter;

enum class VocabKind { SPM, BPE, WPM };
// As in tokenizer.ggml.token_type.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct TokenData {
  std::string text;
  float score = 0;
  TokenType type = TokenType::Normal;
};

constexpr int32_t kNoToken = -1;

class Vocab {
 public:
  static Vocab from_gguf(const GgufFile& f);
  Vocab(Vocab&&) noexcept;
  Vocab& operator=(Vocab&&) noexcept;
  ~Vocab();

  // add_special: add BOS/EOS (CLS/SEP) as the metadata says. parse_special: text of control tokens
  // becomes those tokens (user-defined tokens are always matched).
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // Bytes of one token. Control tokens render as their text when `special`, else as nothing.
  std::string token_to_piece(int32_t id, bool special = true) const;
  std::string detokenize(const std::vector<int32_t>& ids, bool special = true) const;

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  const TokenData& token(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  std::optional<int32_t> find(std::string_view text) const;

  VocabKind kind() const { return kind_; }
  const char* kind_name() const;
  const std::string& pre_name() const { return pre_; }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool is_eog(int32_t id) const { return eog_.count(id) != 0; }
  const std::set<int32_t>& eog_ids() const { return eog_; }

 private:
  Vocab();
  struct Fragment {
    int32_t token;          // kNoToken for raw text
    std::string_view text;  // raw text when token == kNoToken
  };
  std::vector<Fragment> partition_special(std::string_view text, bool parse_special) const;
  void tokenize_spm(std::string_view text, std::vector<int32_t>& out) const;
  void tokenize_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void tokenize_wpm(std::string_view text, std::vector<int32_t>& out) const;
  int32_t byte_token(uint8_t byte) const;
  int bpe_rank(std::string_view left, std::string_view right) const;

  VocabKind kind_ = VocabKind::SPM;
  std::string pre_;
  std::vector<TokenData> tokens_;
  StringIds token_to_id_;  // token text -> id (the first id of a duplicated text)
  StringIds bpe_ranks_;    // "left right" -> merge rank
  std::vector<int32_t> special_tokens_;            // control/user-defined/unknown, longest text first
  std::unique_ptr<RegexSplitter> splitter_;
  size_t max_token_len_ = 0;

  int32_t bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken, unk_ = kNoToken, sep_ = kNoToken,
          pad_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false, ignore_merges_ = false;
  std::set<int32_t> eog_;
};

}  // namespace chassis
