// The chassis binary as a user runs it: stdout carries only the asked-for output, --json has the
// documented fields, errors are one line with a non-zero exit.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/ab_switch.h"
#include "engine/bench.h"
#include "engine/model.h"
#include "engine/synthetic.h"
#include "test_util.h"
#include "tiny_model.h"

namespace chassis {
namespace {

struct Output {
  int code;
  std::string out;
};

// stdout only, or stdout and stderr together (with_stderr: for the error messages).
Output run(const std::string& args, bool with_stderr = false) {
  const std::string cmd = std::string(CHASSIS_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
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

// --no-pack reads the weights in place from the mapped file: the same tokens as the packed default.
TEST(Cli, RunWithoutPackingGivesTheSameTokens) {
  const auto packed = run("run " + kStories + " \"Once upon a time\" --temp 0 -n 24 --json");
  const auto mapped = run("run " + kStories + " \"Once upon a time\" --temp 0 -n 24 --json --no-pack");
  ASSERT_EQ(packed.code, 0);
  ASSERT_EQ(mapped.code, 0);
  EXPECT_EQ(nlohmann::json::parse(packed.out)["tokens"], nlohmann::json::parse(mapped.out)["tokens"]);
}

TEST(Cli, HuggingFaceFolderRunsLikeItsGguf) {
  const std::string folder = test::shared("models/stories260K-hf");
  const auto hf = run("run " + folder + " \"Once upon a time\" --temp 0 -n 24 --json");
  const auto gg = run("run " + kStories + " \"Once upon a time\" --temp 0 -n 24 --json");
  ASSERT_EQ(hf.code, 0);
  ASSERT_EQ(gg.code, 0);
  const auto a = nlohmann::json::parse(hf.out), b = nlohmann::json::parse(gg.out);
  EXPECT_EQ(a["prompt_tokens"], b["prompt_tokens"]);  // tokenizer.json and the GGUF vocab agree
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_EQ(a["text"], b["text"]);
  const auto show = run("show " + folder);
  EXPECT_EQ(show.code, 0);
  EXPECT_NE(show.out.find("292.80K parameters"), std::string::npos) << show.out;
  // --metadata: the folder's JSON files' keys, as a GGUF's keys
  const auto meta = run("show --metadata " + folder);
  EXPECT_EQ(meta.code, 0);
  EXPECT_NE(meta.out.find("  config.json: hidden_size = 64\n"), std::string::npos) << meta.out;
  EXPECT_NE(meta.out.find("  tokenizer_config.json: tokenizer_class = \"LlamaTokenizer\"\n"), std::string::npos) << meta.out;
  EXPECT_EQ(run("show " + test::shared("models/llama-2-tokenizer")).code, 1);  // tokenizer only: no config.json
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

TEST(Cli, RunAppliesTheChatTemplateAndRawSkipsIt) {
  test::TinyModelSpec spec;
  spec.chat_template =
      "{{ bos_token }}[{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}"
      "{% if add_generation_prompt %}assistant:{% endif %}]";
  const std::string path = test::temp_path("chat.gguf");
  test::write_file(path, test::build_tiny_model(spec));
  auto model = Model::load(path, /*vocab_only=*/true);
  const Vocab& v = model->vocab();

  auto chat = run("run " + path + " \"ab\" --system \"b a\" --temp 0 -n 2 --json");
  ASSERT_EQ(chat.code, 0);
  EXPECT_EQ(nlohmann::json::parse(chat.out)["prompt_tokens"],
            nlohmann::json(v.tokenize("<s>[system:b a;user:ab;assistant:]", false, true)));

  auto raw = run("run " + path + " \"ab\" --raw --temp 0 -n 2 --json");
  ASSERT_EQ(raw.code, 0);
  EXPECT_EQ(nlohmann::json::parse(raw.out)["prompt_tokens"], nlohmann::json(v.tokenize("ab", true, true)));

  EXPECT_EQ(run("run " + path + " \"ab\" --raw --system x -n 1").code, 1);
  EXPECT_EQ(run("run " + kStories + " \"ab\" --system x -n 1").code, 1);  // no template to put it in
  std::remove(path.c_str());
}

// The interactive chat needs a terminal: run it on a pseudo-terminal, two turns, then Ctrl-D.
TEST(Cli, InteractiveChatKeepsTheConversation) {
  test::TinyModelSpec spec;
  spec.chat_template = "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}assistant:";
  const std::string path = test::temp_path("interactive.gguf");
  test::write_file(path, test::build_tiny_model(spec));
  int fd = -1;
  const pid_t pid = forkpty(&fd, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(CHASSIS_BINARY, CHASSIS_BINARY, "run", path.c_str(), "-n", "3", "--temp", "0", "-c", "64", "-v",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string out;
  auto read_until = [&](const std::string& needle, int count) {
    for (int waited = 0; waited < 200; ++waited) {  // up to 20 s
      size_t n = 0;
      for (size_t at = out.find(needle); at != std::string::npos; at = out.find(needle, at + 1)) ++n;
      if (static_cast<int>(n) >= count) return true;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char buf[4096];
        const ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0) return false;
        out.append(buf, static_cast<size_t>(got));
      }
    }
    return false;
  };
  ASSERT_TRUE(read_until("> ", 1)) << out;
  ASSERT_EQ(write(fd, "ab\n", 3), 3);
  ASSERT_TRUE(read_until("> ", 2)) << out;
  ASSERT_EQ(write(fd, "b\n", 2), 2);
  ASSERT_TRUE(read_until("> ", 3)) << out;
  ASSERT_EQ(write(fd, "\x04", 1), 1);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fd);
  std::remove(path.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  // The second turn re-renders the whole chat and reuses the first turn's KV entries.
  EXPECT_NE(out.find("(0 reused"), std::string::npos) << out;
  const size_t second = out.find("reused", out.find("(0 reused") + 1);
  ASSERT_NE(second, std::string::npos) << out;
  EXPECT_EQ(out.find("(0 reused", out.find("(0 reused") + 1), std::string::npos) << out;
}

TEST(Cli, TemplateCommandRendersExactly) {
  const std::string messages = test::temp_path("messages.json");
  const std::string json = R"([{"role": "user", "content": "Hi"}])";
  test::write_file(messages, std::vector<uint8_t>(json.begin(), json.end()));
  const auto r = run("template " + test::shared("models/llama-3.2-instruct-tokenizer") + " --messages " + messages +
                     " --var 'date_string=\"1 Jan 2026\"'");
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 1 Jan 2026\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(run("template " + kStories + " --messages " + messages).code, 1);  // no template
  EXPECT_EQ(run("template " + test::shared("models/llama-3.2-instruct-tokenizer") + " --messages " + messages +
                " --var nojson").code, 1);
  std::remove(messages.c_str());
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
  const auto nothing = run("bench " + test::shared("golden/models/tiny-qwen3-Q8_0.gguf") + " -p 0 -n 0", true);
  EXPECT_NE(nothing.code, 0);
  EXPECT_NE(nothing.out.find("nothing to measure"), std::string::npos) << nothing.out;
}

// Synthetic shapes with an untied output (the 7B/8B ones) write output.weight as llama-quantize types
// it (Q6_K in a Q4_0 file, Q6_K in Q4_K_M, the file's type otherwise) beside a token embedding of
// the file's type, and bench counts one embedding row a token, not the whole matrix.
TEST(Cli, SyntheticUntiedShapesHaveTheirOwnOutputMatrix) {
  const std::string dir = test::temp_path("synthetic");
  for (const bool tied : {false, true}) {
    const SyntheticShape shape{tied ? "tiny-tied" : "tiny-untied", "llama", 1000, 256, 2, 4, 2, 512, 256,
                               10000.0f, 1e-5f, false, false, tied};
    for (const auto& [type, embd, output] : {std::tuple{"q4_0", DType::Q4_0, DType::Q6_K},
                                             std::tuple{"q8_0", DType::Q8_0, DType::Q8_0},
                                             std::tuple{"q4_k_m", DType::Q4_K, DType::Q6_K}}) {
      SCOPED_TRACE(std::string(type) + (tied ? " tied" : " untied"));
      auto m = Model::load(ensure_synthetic_model(shape, type, dir));
      const ModelWeights& w = m->weights();
      EXPECT_EQ(w.tied_output, tied);
      EXPECT_EQ(w.output.type, output);
      EXPECT_EQ(w.token_embd.type, tied ? output : embd);
      BenchOptions opt;
      opt.n_prompt = 2;
      opt.n_gen = 1;
      opt.threads = 1;
      opt.repetitions = 1;
      const BenchResult r = run_bench(*m, opt);
      const uint64_t unread = tied ? 0 : uint64_t(w.token_embd.row_stride() * (w.token_embd.n_out - 1));
      EXPECT_EQ(r.bytes_per_token, w.n_bytes - unread);
    }
  }
  std::filesystem::remove_all(dir);
}

// --ab: side B runs with the trial switch on, in the order A B B A, and the switch is off afterwards.
TEST(Cli, BenchAbAlternatesTheTrialSwitch) {
  const std::string model = test::shared("golden/models/tiny-qwen3-Q8_0.gguf");
  const auto r = run("bench " + model + " -p 4 -n 2 -r 4 -t 1 --ab --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("ab")) << r.out;
  EXPECT_EQ(j["ab"]["sides"], "ABBAABBA");
  for (const char* k : {"prefill_ratio", "decode_ratio"}) EXPECT_GT(j["ab"][k].get<double>(), 0) << k;
  EXPECT_GT(j["ab"]["decode_tok_s"]["median"].get<double>(), 0);
  EXPECT_FALSE(run("bench " + model + " -p 4 -n 2 -r 1 -t 1 --json").out.find("\"ab\"") != std::string::npos);

  // In process: the switch as each repetition saw it, and off when the bench returns.
  auto m = Model::load(model);
  BenchOptions opt;
  opt.n_prompt = 2;
  opt.n_gen = 1;
  opt.threads = 1;
  opt.repetitions = 3;
  opt.ab = true;
  const BenchResult br = run_bench(*m, opt);
  ASSERT_TRUE(br.ab.has_value());
  EXPECT_EQ(br.ab->sides, "ABBAAB");
  EXPECT_FALSE(ab_switch_on());
  EXPECT_GT(br.decode_tok_s.median, 0);
}

}  // namespace
}  // namespace chassis
