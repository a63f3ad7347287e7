// Loading a model from a GGUF file or a Hugging Face folder into the same config, weights and
// tokenizer interface.
#include "engine/model.h"
#include "engine/sampling_defaults.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <thread>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_file.h"
#include "engine/sentencepiece_tokenizer.h"

namespace chassis {
namespace {

class GgufTokenizer : public TextTokenizer {
 public:
  explicit GgufTokenizer(const Vocab& v) : v_(v) {}
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    return v_.tokenize(text, add_special, parse_special);
  }
  std::string token_to_piece(int32_t id) const override { return v_.token_to_piece(id, true); }
  bool is_eog(int32_t id) const override { return v_.is_eog(id); }
  int32_t n_tokens() const override { return v_.size(); }

 private:
  const Vocab& v_;
};

class HfTextTokenizer : public TextTokenizer {
 public:
  HfTextTokenizer(hf::Tokenizer t, std::set<int32_t> eog) : t_(std::move(t)), eog_(std::move(eog)) {}
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    return t_.encode(text, add_special, /*split_special=*/!parse_special);
  }
  std::string token_to_piece(int32_t id) const override { return t_.token_bytes(id); }
  bool is_eog(int32_t id) const override { return eog_.count(id) != 0; }
  int32_t n_tokens() const override { return t_.vocab_size(); }

 private:
  hf::Tokenizer t_;
  std::set<int32_t> eog_;
};

// End-of-generation ids: eos_token_id of generation_config.json and config.json (an id or a list),
// and the text of tokenizer_config.json's eos_token.
std::set<int32_t> hf_eog_ids(const std::string& dir, const std::function<std::optional<int32_t>(const std::string&)>& find) {
  std::set<int32_t> eog;
  for (const char* file : {"generation_config.json", "config.json"}) {
    const nlohmann::json j = read_json_object(dir + "/" + file, IfMissing::kEmptyObject);
    if (!j.contains("eos_token_id")) continue;
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer()) eog.insert(e.get<int32_t>());
    else if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) eog.insert(x.get<int32_t>());
  }
  const nlohmann::json tc = read_json_object(dir + "/tokenizer_config.json", IfMissing::kEmptyObject);
  if (tc.contains("eos_token")) {
    const auto& e = tc["eos_token"];
    const std::string text = e.is_string() ? e.get<std::string>() : (e.is_object() ? e.value("content", "") : "");
    if (auto id = find(text)) eog.insert(*id);
  }
  return eog;
}

}  // namespace

uint64_t Model::file_size() const { return hf_tensors_ ? hf_tensors_->file_bytes() : file_->size(); }

const Vocab& Model::vocab() const {
  if (!vocab_) throw Error(path_ + ": a Hugging Face folder has no GGUF vocab (this needs a GGUF file)");
  return *vocab_;
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<Model> m = load_file(path, options.vocab_only);
  if (!m->weights_) return m;
  const int threads = options.threads > 0 ? options.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  if (options.quant) quantize_loaded_weights(*m->weights_, *options.quant, threads);
  if (options.pack) {
    pack_weights(*m->weights_, threads);
    // What parsing the header and building the vocabulary read of the mapping (~5 MiB for a
    // 150k-token vocabulary) would stay resident for the model's lifetime; nothing a pass needs is
    // left there but an unpacked embedding's rows, which come back a page at a time when read.
    if (m->file_) release_mapped_pages(m->file_->data(), m->file_->size());
  }
  return m;
}

std::unique_ptr<Model> Model::load_file(const std::string& path, bool vocab_only) {
  if (std::filesystem::is_directory(path)) return load_hf_folder(path, vocab_only);
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  m->file_ = std::make_unique<MappedFile>(path);
  m->gguf_ = GgufFile::parse(m->file_->data(), m->file_->size(), path);
  m->vocab_.emplace(Vocab::from_gguf(m->gguf_));
  m->tokenizer_ = std::make_unique<GgufTokenizer>(*m->vocab_);
  if (vocab_only) return m;
  if (m->gguf_.tensors().empty()) throw Error(path + ": the file holds no tensors (a vocab-only file cannot generate)");
  m->gguf_.check_all_tensor_bounds();
  m->config_ = config_from_gguf(m->gguf_);
  m->sampling_defaults_ = gguf_sampling(m->gguf_);
  m->weights_.emplace(load_weights(m->gguf_, m->config_));
  if (m->config_.n_vocab != m->vocab_->size())
    throw Error(path + ": the embedding has " + std::to_string(m->config_.n_vocab) + " rows but the tokenizer has " +
                std::to_string(m->vocab_->size()) + " tokens");
  return m;
}

std::unique_ptr<Model> Model::load_hf_folder(const std::string& dir, bool vocab_only) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = dir;
  const std::string tok_path = dir + "/tokenizer.json", spm_path = dir + "/tokenizer.model";
  if (std::filesystem::exists(tok_path)) {
    hf::Tokenizer tok = hf::Tokenizer::from_file(tok_path);
    std::set<int32_t> eog = hf_eog_ids(dir, [&](const std::string& t) { return tok.find(t); });
    m->tokenizer_ = std::make_unique<HfTextTokenizer>(std::move(tok), std::move(eog));
  } else if (std::filesystem::exists(spm_path)) {
    // Only a SentencePiece model: HF's slow LlamaTokenizer reads it, with tokenizer_config.json's flags.
    const nlohmann::json tc = read_json_object(dir + "/tokenizer_config.json", IfMissing::kEmptyObject);
    SentencePieceOptions so;
    if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) so.add_bos = tc["add_bos_token"].get<bool>();
    if (tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) so.add_eos = tc["add_eos_token"].get<bool>();
    // EOS ids named by text (tokenizer_config.json's eos_token) are looked up in the loaded model.
    m->tokenizer_ = load_sentencepiece_tokenizer(spm_path, so, [&](const TextTokenizer& tok) {
      return hf_eog_ids(dir, [&](const std::string& t) -> std::optional<int32_t> {
        const auto ids = tok.tokenize(t, /*add_special=*/false, /*parse_special=*/true);
        return ids.size() == 1 && tok.token_to_piece(ids[0]).empty() ? std::optional<int32_t>(ids[0]) : std::nullopt;
      });
    });  // throws naming the file
  } else {
    throw Error(dir + ": no tokenizer.json or tokenizer.model");
  }
  if (vocab_only) return m;
  const std::string config_path = dir + "/config.json";
  std::ifstream in(config_path, std::ios::binary);
  if (!in) throw Error(dir + ": no config.json");
  m->config_ = config_from_hf(std::string(std::istreambuf_iterator<char>(in), {}), config_path);
  m->sampling_defaults_ = read_generation_config_sampling(dir);
  m->hf_tensors_ = HfTensors::open(dir, m->config_.arch);
  const int64_t declared_vocab = m->config_.n_vocab;
  m->config_.n_vocab = 0;  // taken from the embedding matrix, then checked against config.json
  m->weights_.emplace(load_weights(*m->hf_tensors_, m->config_));
  if (m->config_.n_vocab != declared_vocab)
    throw Error(config_path + ": vocab_size " + std::to_string(declared_vocab) + " but the embedding has " +
                std::to_string(m->config_.n_vocab) + " rows");
  if (m->tokenizer_->n_tokens() > m->config_.n_vocab)
    throw Error(dir + ": tokenizer.json has " + std::to_string(m->tokenizer_->n_tokens()) + " tokens, more than the " +
                std::to_string(m->config_.n_vocab) + " rows of the embedding");
  return m;
}

}  // namespace chassis
