// Hugging Face folders as a second weight source for the same transformer: stories260K-hf (derived
// from stories260K.gguf, with q/k back in HF's rotate_half order) must give the reference's 256
// greedy tokens, and logits equal to the GGUF path's; hostile config.json / index files are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "models/hf_model.h"
#include "models/kv_cache.h"
#include "models/transformer.h"
#include "models/weights.h"
#include "test_util.h"

namespace chassis {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(HfModel, ConfigMatchesTheGgufOfTheSameModel) {
  const ModelConfig hf = config_from_hf(read(test::shared("models/stories260K-hf/config.json")), "config.json");
  MappedFile f(test::shared("models/stories260K/stories260K.gguf"));
  const ModelConfig gg = config_from_gguf(GgufFile::parse(f.data(), f.size(), f.path()));
  EXPECT_EQ(hf.arch, gg.arch);
  EXPECT_EQ(hf.n_embd, gg.n_embd);
  EXPECT_EQ(hf.n_layer, gg.n_layer);
  EXPECT_EQ(hf.n_ff, gg.n_ff);
  EXPECT_EQ(hf.n_head, gg.n_head);
  EXPECT_EQ(hf.n_head_kv, gg.n_head_kv);
  EXPECT_EQ(hf.head_dim, gg.head_dim);
  EXPECT_EQ(hf.rms_eps, gg.rms_eps);
  EXPECT_EQ(hf.rope.freq_base, gg.rope.freq_base);
  EXPECT_EQ(hf.rope.style, RopeStyle::NeoX);  // rotate_half layout
}

std::vector<int32_t> greedy(const ModelConfig& cfg, const ModelWeights& w, int n, std::vector<std::vector<float>>* logits_out) {
  ThreadPool pool(2);
  Transformer t(cfg, w, pool, 64);
  KvCache cache(cfg.n_layer, n + 1, cfg.n_head_kv, cfg.head_dim);
  std::vector<float> logits(static_cast<size_t>(cfg.n_vocab));
  std::vector<int32_t> out;
  int32_t token = 1;  // BOS
  for (int pos = 0; pos < n; ++pos) {
    t.forward(&token, 1, pos, cache, logits.data(), false);
    if (logits_out) logits_out->push_back(logits);
    token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (token == 1) break;
    out.push_back(token);
  }
  return out;
}

TEST(HfModel, Stories260KFolderReproducesTheReferenceAndTheGgufLogits) {
  const std::string dir = test::shared("models/stories260K-hf");
  ModelConfig hf_cfg = config_from_hf(read(dir + "/config.json"), "config.json");
  auto tensors = HfTensors::open(dir, Arch::Llama);
  const ModelWeights hf_w = load_weights(*tensors, hf_cfg);
  EXPECT_FALSE(hf_w.tied_output);

  MappedFile f(test::shared("models/stories260K/stories260K.gguf"));
  const GgufFile gguf = GgufFile::parse(f.data(), f.size(), f.path());
  ModelConfig gg_cfg = config_from_gguf(gguf);
  const ModelWeights gg_w = load_weights(gguf, gg_cfg);
  EXPECT_EQ(hf_w.n_params, gg_w.n_params);

  const auto expected = nlohmann::json::parse(read(test::shared("models/stories260K/expected_greedy_256.json")));
  std::vector<std::vector<float>> hf_logits, gg_logits;
  const auto tokens = greedy(hf_cfg, hf_w, 256, &hf_logits);
  EXPECT_EQ(tokens, expected["tokens"].get<std::vector<int32_t>>());
  greedy(gg_cfg, gg_w, 256, &gg_logits);
  ASSERT_EQ(hf_logits.size(), gg_logits.size());
  double worst = 0;
  for (size_t s = 0; s < hf_logits.size(); ++s)
    for (size_t i = 0; i < hf_logits[s].size(); ++i)
      worst = std::max(worst, std::abs(double(hf_logits[s][i]) - gg_logits[s][i]) / (1.0 + std::abs(gg_logits[s][i])));
  EXPECT_LT(worst, 1e-4);  // the same math, summed over the head dims in another order
}

TEST(HfModel, Llama3RopeScalingFollowsTransformersFormula) {
  const ModelConfig c = config_from_hf(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 256,
      "num_hidden_layers": 1, "intermediate_size": 512, "num_attention_heads": 2, "max_position_embeddings": 131072,
      "vocab_size": 10, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})",
                                       "config.json");
  ASSERT_EQ(c.rope_factors.size(), 64u);
  // transformers' _compute_llama3_parameters, in double precision.
  for (int i = 0; i < 64; ++i) {
    const double inv_freq = 1.0 / std::pow(500000.0, 2.0 * i / 128), wavelen = 2 * M_PI / inv_freq;
    const double low_wavelen = 8192 / 1.0, high_wavelen = 8192 / 4.0;
    double scaled = wavelen > low_wavelen ? inv_freq / 32 : inv_freq;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
      const double smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0);
      scaled = (1 - smooth) * scaled / 32 + smooth * scaled;
    }
    EXPECT_NEAR(inv_freq / c.rope_factors[i], scaled, 1e-5 * scaled) << i;  // ours: a divisor of inv_freq
  }
}

std::string config_error(const std::string& json) {
  try {
    config_from_hf(json, "bad/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfModel, HostileConfigsNameTheField) {
  const std::string base = R"("architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
      "intermediate_size": 128, "num_attention_heads": 4, "max_position_embeddings": 512, "vocab_size": 100)";
  EXPECT_EQ(config_error("{" + base + "}"), "");
  struct Case {
    std::string json, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"[", "invalid JSON"},
           {"[]", "expected a JSON object"},
           {"{}", "missing \"architectures\""},
           {R"({"architectures": ["GPTNeoXForCausalLM"]})", "'GPTNeoXForCausalLM' is not supported"},
           {R"({"architectures": ["LlamaForCausalLM"]})", "missing required field \"hidden_size\""},
           {"{" + base + R"(, "num_key_value_heads": 3})", "not a multiple"},
           {"{" + base + R"(, "num_key_value_heads": 8})", "out of range"},
           {"{" + base + R"(, "hidden_size": -1})", "out of range"},
           {"{" + base + R"(, "hidden_size": "64"})", "must be an integer"},
           {"{" + base + R"(, "rms_norm_eps": "small"})", "must be a number"},
           {"{" + base + R"(, "rope_scaling": {"rope_type": "dynamic", "factor": 4.0}})", "'dynamic' is not supported"},
           {"{" + base + R"(, "rope_scaling": {"rope_type": "yarn"}})", "needs a factor"},
           {"{" + base + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 0.5}})", "at least 1"},
           {"{" + base + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "mscale": 0.7, "mscale_all_dim": 0.7}})", "mscale"},
           {"{" + base + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "beta_fast": "x"}})", "beta_fast must be a number"},
           {"{" + base + R"(, "rope_scaling": 3})", "must be an object or null"},
           {"{" + base + R"(, "architectures": ["MixtralForCausalLM"]})", "missing required field \"num_local_experts\""},
           {"{" + base + R"(, "architectures": ["MixtralForCausalLM"], "num_local_experts": 8, "num_experts_per_tok": 9})",
            "\"num_experts_per_tok\" = 9 is out of range"},
           {"{" + base + R"(, "architectures": ["Qwen3MoeForCausalLM"], "num_experts": 8, "num_experts_per_tok": 2})",
            "missing required field \"moe_intermediate_size\""},
           {"{" + base + R"(, "architectures": ["Qwen3MoeForCausalLM"], "num_experts": 8, "num_experts_per_tok": 2,
               "moe_intermediate_size": 32, "decoder_sparse_step": 2})", "decoder_sparse_step"},
           {"{" + base + R"(, "architectures": ["Qwen3MoeForCausalLM"], "num_experts": 8, "num_experts_per_tok": 2,
               "moe_intermediate_size": 32, "mlp_only_layers": [0]})", "mlp_only_layers"},
           {"{" + base + R"(, "architectures": ["Qwen3MoeForCausalLM"], "num_experts": 8, "num_experts_per_tok": 2,
               "moe_intermediate_size": 32, "norm_topk_prob": 1})", "norm_topk_prob"},
           {"{" + base + R"(, "architectures": ["Gemma2ForCausalLM"], "hidden_activation": "relu"})", "'relu' is not supported for Gemma 2"},
           {"{" + base + R"(, "architectures": ["Gemma2ForCausalLM"], "query_pre_attn_scalar": 0})", "query_pre_attn_scalar"},
       }) {
    const std::string e = config_error(c.json);
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.json << " -> " << e;
    EXPECT_EQ(e.rfind("bad/config.json", 0), 0u) << e;
  }
}

TEST(HfModel, ShardIndexMustNameFilesInTheFolder) {
  namespace fs = std::filesystem;
  const std::string dir = test::temp_path("hf-index");
  fs::create_directories(dir);
  auto index_error = [&](const std::string& json) {
    std::ofstream(dir + "/model.safetensors.index.json") << json;
    try {
      HfTensors::open(dir, Arch::Llama);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(index_error("{").find("invalid JSON"), std::string::npos);
  EXPECT_NE(index_error(R"({"weight_map": {}})").find("empty"), std::string::npos);
  EXPECT_NE(index_error(R"({"weight_map": {"a": "../../etc/passwd"}})").find("plain file name"), std::string::npos);
  EXPECT_NE(index_error(R"({"weight_map": {"a": "missing.safetensors"}})").find("missing.safetensors"), std::string::npos);
  fs::remove_all(dir);
  EXPECT_THROW(HfTensors::open(test::temp_path("no-such-folder"), Arch::Llama), Error);
}

// Every JSON file of a folder is read one way: the error names the file and what is wrong with it.
TEST(HfModel, FolderJsonFilesFailNamingTheFile) {
  const std::string path = test::temp_path("folder-config.json");
  auto error_of = [&](const std::string* text, IfMissing if_missing) {
    std::filesystem::remove(path);
    if (text) std::ofstream(path) << *text;
    try {
      read_json_object(path, if_missing);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string bad = "{\"a\": ", list = "[1]", good = R"({"b": 1, "a": 2})";
  EXPECT_EQ(error_of(nullptr, IfMissing::kFail).rfind(path + ": cannot read", 0), 0u);
  EXPECT_EQ(error_of(nullptr, IfMissing::kEmptyObject), "");
  EXPECT_TRUE(read_json_object(path, IfMissing::kEmptyObject).empty());
  EXPECT_EQ(error_of(&bad, IfMissing::kEmptyObject).rfind(path + ": invalid JSON", 0), 0u);
  EXPECT_EQ(error_of(&list, IfMissing::kFail), path + ": expected a JSON object");
  EXPECT_EQ(error_of(&good, IfMissing::kFail), "");
  EXPECT_EQ(read_ordered_json_object(path, IfMissing::kFail).begin().key(), "b");  // the file's order
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace chassis
