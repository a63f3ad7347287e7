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
           {R"({"model": {"type": "Frob", "vocab": []}})", "model type 'Frob' is not supported"},
           {R"({"model": {"type": "Unigram", "vocab": []}})", "must be a non-empty array of [piece, score]"},
           {R"({"model": {"type": "Unigram", "vocab": [["a", "x"]]}})", "vocab[0] must be [piece, score]"},
           {R"({"model": {"type": "Unigram", "vocab": [["a", -1.0], ["b"]]}})", "vocab[1] must be [piece, score]"},
           {R"({"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 3}})", "unk_id 3 is outside the vocab"},
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
  auto u = hf::Tokenizer::from_json(R"({"model": {"type": "Unigram", "vocab": [["a", -1.0]]}})", "u.json");
  EXPECT_EQ(u.encode("aa", false), (std::vector<int32_t>{0, 0}));
  EXPECT_THROW(u.encode("ab", false), Error);
}

// The Unigram lattice by hand: the best-scoring segmentation wins over the longest match, a tie goes
// to the last piece that starts first, and unknown characters become one unknown token per run.
TEST(HfTokenizer, UnigramPicksTheBestSegmentation) {
  auto t = hf::Tokenizer::from_json(R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [
      ["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["c", -1.0], ["ab", -3.0], ["bc", -1.5], ["abc", -4.0]]}})", "u.json");
  // "abc": a+bc = -2.5 beats abc = -4, ab+c = -4, a+b+c = -3.
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{1, 5}));
  // "ab": ab = -3 loses to a+b = -2.
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{1, 2}));
  // Unknown characters (score min - 10 each) fuse into one unknown token per run.
  EXPECT_EQ(t.encode("xyaz", false), (std::vector<int32_t>{0, 1, 0}));
  auto tie = hf::Tokenizer::from_json(R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [
      ["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["c", -1.0], ["ab", -2.0], ["bc", -2.0]]}})", "t.json");
  // ab+c and a+bc tie at -3: of the last pieces, bc starts first, so a+bc (as transformers.js's lattice).
  EXPECT_EQ(tie.encode("abc", false), (std::vector<int32_t>{1, 5}));
  // Within "ab" (a+b and ab tie at -2) the same rule keeps ab.
  EXPECT_EQ(tie.encode("ab", false), (std::vector<int32_t>{4}));
}

}  // namespace
}  // namespace chassis
