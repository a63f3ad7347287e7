// tokenizer.json: ids are checked against transformers.js by tests/tokenizer/compare_hf_tokenizers.py;
// here, the properties that need no oracle: lossless tokenizers decode what they encoded, and
// malformed or hostile files are errors naming the file and the part at fault.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer/hf/hf_tokenizer.h"

namespace chassis {
namespace {

std::vector<std::string> corpus() {
  std::ifstream in(std::string(CHASSIS_SOURCE_DIR) + "/tests/tokenizer/corpus.json");
  return nlohmann::json::parse(in).get<std::vector<std::string>>();
}

TEST(HfTokenizer, LosslessTokenizersDecodeWhatTheyEncoded) {
  // Byte-level BPE (Llama 3) and byte-fallback BPE (Llama 2 family) can spell every byte sequence.
  for (const char* dir : {"models/llama-3.2-instruct-tokenizer", "models/stories260K-hf", "models/tinyllama-1.1b-chat-v1.0"}) {
    auto t = hf::Tokenizer::from_file(test::shared(std::string(dir) + "/tokenizer.json"));
    for (const std::string& text : corpus()) {
      const auto ids = t.encode(text, /*add_special=*/false, /*split_special=*/true);
      EXPECT_EQ(t.decode(ids), text) << dir << ": " << text;
    }
  }
}

TEST(HfTokenizer, SpecialTokensMatchUnlessSplit) {
  auto t = hf::Tokenizer::from_file(test::shared("models/llama-3.2-instruct-tokenizer/tokenizer.json"));
  const int32_t eot = *t.find("<|eot_id|>");
  auto with = t.encode("hi<|eot_id|>", false, false);
  EXPECT_EQ(with.back(), eot);
  auto without = t.encode("hi<|eot_id|>", false, true);
  EXPECT_EQ(std::count(without.begin(), without.end(), eot), 0);
  EXPECT_EQ(t.decode(with, /*skip_special=*/true), "hi");
}

std::string error_of(const std::string& json) {
  try {
    hf::Tokenizer::from_json(json, "bad/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfTokenizer, MalformedFilesNameTheFault) {
  const std::string bpe = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  EXPECT_EQ(error_of("{" + bpe + "}"), "");
  struct Case {
    std::string json, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"{", "invalid JSON"},
           {"[]", "expected a JSON object"},
           {"{}", "no \"model\""},
           {R"({"model": {"type": "Unigram", "vocab": []}})", "model type 'Unigram' is not supported"},
           {R"({"model": {"type": "BPE", "vocab": [], "merges": []}})", "\"vocab\" must be an object"},
           {R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})", "must be an integer"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})", "used twice"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": 5}})", "\"merges\" must be an array"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}})", "has no space"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}})", "unk_token '<unk>'"},
           {"{" + bpe + R"(, "normalizer": {"type": "Frobnicate"}})", "normalizer type 'Frobnicate' is not supported"},
           {"{" + bpe + R"(, "normalizer": {"type": "Replace", "pattern": {"Regex": "("}, "content": ""}})", "does not compile"},
           {"{" + bpe + R"(, "pre_tokenizer": {"type": "Split", "pattern": {}, "behavior": "Isolated"}})", "pattern must be"},
           {"{" + bpe + R"(, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}})", "unknown split behavior"},
           {"{" + bpe + R"(, "pre_tokenizer": {"type": "Metaspace", "prepend_scheme": "sometimes"}})", "prepend_scheme"},
           {"{" + bpe + R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}})", "'<s>' is not defined"},
           {"{" + bpe + R"(, "decoder": {"type": "Sequence"}})", "needs a \"decoders\" array"},
           {"{" + bpe + R"(, "added_tokens": [{"id": 9}]})", "needs an id and a non-empty content"},
           {"{" + bpe + R"(, "normalizer": "NFC"})", "expected an object with a \"type\""},
       }) {
    const std::string e = error_of(c.json);
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.json << " -> " << e;
    EXPECT_EQ(e.rfind("bad/tokenizer.json", 0), 0u) << e;
  }
}

TEST(HfTokenizer, TextOutsideTheVocabWithoutUnkIsAnError) {
  auto t = hf::Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})", "t.json");
  EXPECT_EQ(t.encode("aa", false), (std::vector<int32_t>{0, 0}));
  EXPECT_THROW(t.encode("ab", false), Error);
}

}  // namespace
}  // namespace chassis
