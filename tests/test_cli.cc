// The chassis binary as a user runs it: stdout carries only the asked-for output, --json has the
// documented fields, errors are one line with a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace chassis {
namespace {

struct Output {
  int code;
  std::string out;
};

Output run(const std::string& args) {
  const std::string cmd = std::string(CHASSIS_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kStories = test::shared("models/stories260K/stories260K.gguf");

TEST(Cli, RunStreamsOnlyTheGeneratedText) {
  const auto r = run("run " + kStories + " \"Once upon a time\" --temp 0 -n 8");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, ", there was a little girl");  // the golden story's first words, nothing else
}

TEST(Cli, RunJsonHasTheDocumentedFields) {
  const auto r = run("run " + kStories + " \"Once upon a time\" --temp 0 -n 4 --json --logprobs 3");
  ASSERT_EQ(r.code, 0);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_tokens"], nlohmann::json({1, 403, 407, 261, 378}));
  EXPECT_EQ(j["tokens"].size(), 4u);
  EXPECT_EQ(j["text"], ", there was a");
  ASSERT_EQ(j["top_logprobs"].size(), 4u);
  EXPECT_EQ(j["top_logprobs"][0].size(), 3u);
  EXPECT_EQ(j["top_logprobs"][0][0]["id"], 432);
  EXPECT_TRUE(j["timings"].contains("prompt_ms"));
  EXPECT_TRUE(j["timings"].contains("generate_tokens_per_s"));
}

TEST(Cli, PromptLongerThanTheContextIsAnError) {
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "time ";
  const auto r = run("run " + kStories + " \"" + long_prompt + "\" -c 32 -n 4");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
}

TEST(Cli, TokenizeWorksOnVocabOnlyFiles) {
  const auto r = run("tokenize " + test::shared("models/ggml-vocab/ggml-vocab-gpt-2.gguf") + " --text \"Hello world\"");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "15496 995\n");
  const auto s = run("tokenize " + kStories + " --text \"Once upon\" --json");
  const auto j = nlohmann::json::parse(s.out);
  EXPECT_EQ(j["ids"], nlohmann::json({1, 403, 407}));
  const auto nb = run("tokenize " + kStories + " --text \"Once upon\" --no-bos");
  EXPECT_EQ(nb.out, "403 407\n");
}

TEST(Cli, ShowDescribesTheModel) {
  const auto r = run("show " + test::shared("golden/models/tiny-qwen3-Q4_K_M.gguf"));
  EXPECT_EQ(r.code, 0);
  for (const char* want : {"architecture:   qwen3", "context length: 512", "Q4_K", "Q6_K", "byte-level BPE",
                           "chat template:  none", "tied to the token embedding"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
}

TEST(Cli, UsageErrorsExitNonZero) {
  EXPECT_NE(run("").code, 0);
  EXPECT_NE(run("run").code, 0);
  EXPECT_NE(run("tokenize " + kStories).code, 0);  // neither --text nor --file
}

}  // namespace
}  // namespace chassis

namespace chassis {
namespace {

TEST(Cli, BenchReportsTheDocumentedJsonFields) {
  const auto r = run("bench " + test::shared("golden/models/tiny-qwen3-Q8_0.gguf") + " -p 8 -n 4 -r 2 -t 2 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"model", "threads", "prefill_tok_s", "decode_tok_s", "bytes_per_token", "bandwidth_gb_s", "roofline_fraction"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_GT(j["decode_tok_s"]["median"].get<double>(), 0);
  EXPECT_LE(j["decode_tok_s"]["min"].get<double>(), j["decode_tok_s"]["max"].get<double>());
  EXPECT_GT(j["bandwidth_gb_s"].get<double>(), 0);
  // Tied embedding: every decoded token reads every weight byte of the file's tensors.
  EXPECT_EQ(j["bytes_per_token"], j["size_bytes"]);
  EXPECT_NE(run("bench --synthetic no-such-model").code, 0);
}

}  // namespace
}  // namespace chassis
