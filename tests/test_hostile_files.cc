// Hostile and broken model files: each must fail with an Error naming the file and the problem —
// never a crash, a hang or a huge allocation — and the CLI must print one line and exit non-zero.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "engine/model.h"
#include "test_util.h"
#include "tiny_model.h"

namespace chassis {
namespace {

using test::GgufBuilder;
using test::TinyModelSpec;

struct Case {
  std::string name;
  std::vector<uint8_t> bytes;
  std::string expected;  // a phrase the message must contain
};

std::vector<Case> hostile_cases() {
  std::vector<Case> cs;
  const auto good = test::build_tiny_model();
  cs.push_back({"empty", {}, "truncated"});
  cs.push_back({"bad-magic", {'G', 'G', 'M', 'L', 3, 0, 0, 0}, "bad magic"});
  {
    auto b = good;
    b.resize(200);
    cs.push_back({"truncated-header", b, "truncated"});
  }
  {
    GgufBuilder g(1);
    g.u32(0).u32(0);
    cs.push_back({"version-1", g.bytes, "version 1"});
  }
  {
    GgufBuilder g(7);
    g.u64(0).u64(0);
    cs.push_back({"version-7", g.bytes, "unsupported GGUF version"});
  }
  {
    GgufBuilder g;
    g.u64(1ull << 60).u64(0);
    cs.push_back({"absurd-tensor-count", g.bytes, "tensor count"});
  }
  {
    GgufBuilder g;
    g.u64(0).u64(1ull << 62);
    cs.push_back({"absurd-kv-count", g.bytes, "metadata count"});
  }
  {
    GgufBuilder g;
    g.u64(0).u64(1).u64(1ull << 50);  // key string length
    g.raw(std::string(64, '\0').data(), 64);
    cs.push_back({"absurd-string-length", g.bytes, "string length"});
  }
  {
    GgufBuilder g;
    g.u64(0).u64(1).str("k").u32(9).u32(4).u64(1ull << 40);
    cs.push_back({"absurd-array-length", g.bytes, "array length"});
  }
  {
    GgufBuilder g;
    g.u64(0).u64(1).str("k").u32(9);
    for (int i = 0; i < 40; ++i) g.u32(9).u64(1);  // an array of an array of ... 40 deep
    g.raw(std::string(64, '\0').data(), 64);
    cs.push_back({"deep-nesting", g.bytes, "nested deeper"});
  }
  {
    GgufBuilder g;
    g.u64(1).u64(0).tensor_info("t", {1ull << 62, 1ull << 62}, 0, 0);
    cs.push_back({"absurd-dimension", g.bytes, "absurd dimension"});
  }
  {
    GgufBuilder g;
    g.u64(1).u64(0).tensor_info("t", {4, 4, 4, 4, 4}, 0, 0);
    cs.push_back({"too-many-dims", g.bytes, "dimensions"});
  }
  {
    TinyModelSpec s;
    s.oversize_tensor = "blk.0.ffn_down.weight";
    cs.push_back({"tensor-past-end", test::build_tiny_model(s), "tensor 'blk.0.ffn_down.weight' data"});
  }
  {
    GgufBuilder g;
    g.u64(0).u64(1).str("k").u32(77).u32(0);
    cs.push_back({"unknown-value-type", g.bytes, "unknown metadata value type"});
  }
  {
    TinyModelSpec s;
    s.tensor_type_override = 99;
    cs.push_back({"unknown-tensor-type", test::build_tiny_model(s), "unknown or unsupported type 99"});
  }
  {
    TinyModelSpec s;
    s.truncate_data = true;
    cs.push_back({"truncated-data", test::build_tiny_model(s), "runs past the end"});
  }
  {
    TinyModelSpec s;
    s.omit_embedding_length = true;
    cs.push_back({"missing-key", test::build_tiny_model(s), "missing required key 'llama.embedding_length'"});
  }
  {
    TinyModelSpec s;
    s.wrong_shape_tensor = "blk.0.attn_k.weight";
    cs.push_back({"wrong-shape", test::build_tiny_model(s), "tensor 'blk.0.attn_k.weight' has shape [32, 8], expected [32, 16]"});
  }
  {
    TinyModelSpec s;
    s.arch = "mamba";
    cs.push_back({"unsupported-arch", test::build_tiny_model(s), "unsupported architecture 'mamba'"});
  }
  {
    TinyModelSpec s;
    s.arch = "qwen3moe";
    cs.push_back({"moe-without-experts", test::build_tiny_model(s), "qwen3moe.expert_count is missing"});
  }
  return cs;
}

TEST(HostileFiles, EachFailsWithAClearErrorNamingTheFile) {
  for (const auto& c : hostile_cases()) {
    const std::string path = test::temp_path(c.name + ".gguf");
    test::write_file(path, c.bytes);
    try {
      Model::load(path);
      ADD_FAILURE() << c.name << ": loaded without error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expected), std::string::npos) << c.name << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name << ": " << msg;
    }
    std::remove(path.c_str());
  }
}

// Every prefix of a valid file is a truncated file: all must be rejected cleanly. (Prefixes that
// keep the whole header still yield the tokenizer, which is the point of lazy tensor checks.)
TEST(HostileFiles, EveryTruncationIsRejected) {
  const auto good = test::build_tiny_model();
  const std::string path = test::temp_path("trunc.gguf");
  size_t header_ok = 0;
  for (size_t n = 0; n < good.size(); n += (n < 6000 ? 1 : 997)) {
    test::write_file(path, std::vector<uint8_t>(good.begin(), good.begin() + long(n)));
    EXPECT_THROW(Model::load(path), Error) << "prefix " << n;
    try {
      Model::load(path, /*vocab_only=*/true);
      ++header_ok;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(header_ok, 0u);
  std::remove(path.c_str());
}

// Random byte flips in a valid file: whatever happens, only Error may come out.
TEST(HostileFiles, RandomCorruptionsNeverCrash) {
  const auto good = test::build_tiny_model();
  const std::string path = test::temp_path("flip.gguf");
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    auto b = good;
    for (int k = 0; k < 4; ++k) b[rng() % 9000] = uint8_t(rng());
    test::write_file(path, b);
    try {
      auto m = Model::load(path);
      (void)m->vocab().tokenize("ab a", true, true);
    } catch (const Error&) {
    }
  }
  std::remove(path.c_str());
}

struct CliResult {
  int code;
  std::string err;
};

CliResult run_cli(const std::string& args) {
  const std::string err_path = test::temp_path("stderr.txt");
  const std::string cmd = std::string(CHASSIS_BINARY) + " " + args + " >/dev/null 2>" + err_path;
  const int status = std::system(cmd.c_str());
  std::ifstream f(err_path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::remove(err_path.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ss.str()};
}

TEST(HostileFiles, CliPrintsOneLineAndExitsNonZero) {
  for (const auto& c : hostile_cases()) {
    const std::string path = test::temp_path(c.name + ".gguf");
    test::write_file(path, c.bytes);
    for (const char* cmd : {"show", "run"}) {
      const auto r = run_cli(std::string(cmd) + " " + path + (std::string(cmd) == "run" ? " hello -n 2" : ""));
      EXPECT_EQ(r.code, 1) << c.name << " " << cmd << ": " << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.name << " " << cmd << ": " << r.err;
      EXPECT_NE(r.err.find(path), std::string::npos) << c.name << " " << cmd << ": " << r.err;
    }
    std::remove(path.c_str());
  }
  const auto missing = run_cli("run /nonexistent/model.gguf hi");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/model.gguf: no such file or folder, and not a hub name"), std::string::npos)
      << missing.err;
}

}  // namespace
}  // namespace chassis
