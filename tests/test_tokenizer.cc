// Tokenizers against llama.cpp's own test vectors (ggml-vocab/*.inp/.out: SentencePiece, byte-level
// BPE with six pre-tokenizers, WordPiece), detokenization round trips, and UTF-8 safe streaming.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

#include "engine/generate.h"
#include "engine/model.h"
#include "test_util.h"
#include "tokenizer/string_ids.h"

namespace chassis {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    const size_t at = s.find(sep, pos);
    if (at == std::string::npos) {
      out.push_back(s.substr(pos));
      return out;
    }
    out.push_back(s.substr(pos, at - pos));
    pos = at + sep.size();
  }
}

class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, IdsMatchLlamaCpp) {
  const std::string base = test::shared("models/ggml-vocab/ggml-vocab-" + GetParam() + ".gguf");
  auto m = Model::load(base, /*vocab_only=*/true);
  const auto inputs = split(read_all(base + ".inp"), "\n__ggml_vocab_test__\n");
  const auto outputs = split(read_all(base + ".out"), "\n");
  ASSERT_EQ(inputs.size(), outputs.size());
  int checked = 0;
  for (size_t i = 0; i + 1 < inputs.size(); ++i) {  // the last piece is the empty tail after the final separator
    std::vector<int32_t> want;
    std::istringstream is(outputs[i]);
    for (int32_t id; is >> id;) want.push_back(id);
    const auto got = m->vocab().tokenize(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(got, want) << GetParam() << " input #" << i << ": \"" << inputs[i] << "\"";
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

INSTANTIATE_TEST_SUITE_P(GgmlVocab, VocabVectors,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon",
                                           "starcoder", "bert-bge"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) if (c == '-') c = '_';
                           return n;
                         });

// The vocabulary's and the merges' lookup table against std::unordered_map on 200k random strings
// (duplicates, the empty string, long ones), through several growths of the table.
TEST(Tokenizer, StringIdsAgreeWithAMap) {
  std::mt19937 rng(5);
  std::vector<std::string> strings;
  for (int i = 0; i < 200000; ++i) {
    const size_t len = rng() % 7 == 0 ? rng() % 40 : rng() % 5;
    std::string s;
    for (size_t k = 0; k < len; ++k) s += char('a' + rng() % 6);
    strings.push_back(s);
  }
  StringIds ids;
  std::unordered_map<std::string, int32_t> map;
  for (size_t i = 0; i < strings.size(); ++i) {
    ids.add(strings[i]);
    map.emplace(strings[i], int32_t(i));  // first id wins
  }
  ASSERT_EQ(ids.ids(), strings.size());
  for (const auto& [s, id] : map) ASSERT_EQ(ids.find(s), id) << s;
  EXPECT_EQ(ids.find("zzz"), -1);  // 'z' never occurs
  // Pairs: "left right" without building it; a space inside left is part of left.
  StringIds merges;
  merges.add("a b");
  merges.add("ab c");
  merges.add("a b c");
  EXPECT_EQ(merges.find_pair("a", "b"), 0);
  EXPECT_EQ(merges.find_pair("ab", "c"), 1);
  EXPECT_EQ(merges.find_pair("a b", "c"), 2);
  EXPECT_EQ(merges.find_pair("a", "b c"), 2);  // the same text: the caller splits, the table matches text
  EXPECT_EQ(merges.find_pair("a", "bc"), -1);
  EXPECT_EQ(merges.find_pair("ab", ""), -1);
}

TEST(Tokenizer, BpeDetokenizesBackToTheInput) {
  for (const char* f : {"gpt-2", "falcon", "starcoder", "deepseek-llm"}) {
    auto m = Model::load(test::shared(std::string("models/ggml-vocab/ggml-vocab-") + f + ".gguf"), true);
    for (const std::string text : {"Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "  tabs\tand\nnewlines ",
                                   "нещо на Български", "🚀 (normal) 😶‍🌫️"}) {
      const auto ids = m->vocab().tokenize(text, false, false);
      EXPECT_EQ(m->vocab().detokenize(ids), text) << f;
    }
  }
}

TEST(Tokenizer, SpmDetokenizesWithTheSpacePrefix) {
  auto m = Model::load(test::shared("models/ggml-vocab/ggml-vocab-llama-spm.gguf"), true);
  const std::string text = "Hello world, this is 🦙.cpp\n\tindented";
  const auto ids = m->vocab().tokenize(text, false, false);
  EXPECT_EQ(m->vocab().detokenize(ids), " " + text);
}

TEST(Tokenizer, SpecialTokensParsedOnlyWhenAsked) {
  auto m = Model::load(test::shared("models/ggml-vocab/ggml-vocab-llama-spm.gguf"), true);
  const auto& v = m->vocab();
  const auto with = v.tokenize("a</s>b", true, true);
  ASSERT_GE(with.size(), 3u);
  EXPECT_EQ(with.front(), v.bos());
  EXPECT_NE(std::find(with.begin(), with.end(), v.eos()), with.end());
  const auto without = v.tokenize("a</s>b", false, false);
  EXPECT_EQ(std::find(without.begin(), without.end(), v.eos()), without.end());
}

TEST(Tokenizer, BertAddsClsAndSep) {
  auto m = Model::load(test::shared("models/ggml-vocab/ggml-vocab-bert-bge.gguf"), true);
  const auto ids = m->vocab().tokenize("hello world", true, false);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 101);  // [CLS]
  EXPECT_EQ(ids.back(), 102);   // [SEP]
}

TEST(Tokenizer, HostileTextNeverBreaksTheTokenizers) {
  std::string junk;
  for (int i = 0; i < 2000; ++i) junk += char((i * 7919) % 256);
  for (const char* f : {"llama-spm", "gpt-2", "deepseek-coder", "bert-bge"}) {
    auto m = Model::load(test::shared(std::string("models/ggml-vocab/ggml-vocab-") + f + ".gguf"), true);
    const auto ids = m->vocab().tokenize(junk, true, true);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < m->vocab().size()) << f;
  }
}

TEST(Utf8Stream, HoldsBackSplitCharacters) {
  Utf8Stream s;
  const std::string snowman = "\xE2\x98\x83";
  EXPECT_EQ(s.push("a" + snowman.substr(0, 1)), "a");
  EXPECT_EQ(s.push(snowman.substr(1, 1)), "");
  EXPECT_EQ(s.push(snowman.substr(2) + "b"), snowman + "b");
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");  // an unfinished character becomes U+FFFD, never raw bytes
  EXPECT_EQ(s.push("\xFF" "ok"), "\xEF\xBF\xBD" "ok");
}

}  // namespace
}  // namespace chassis
