// A tiny but complete llama-architecture GGUF built in memory (F32 weights, byte-fallback
// SentencePiece vocab), with switches that break it in one precise way each.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "test_util.h"

namespace chassis::test {

struct TinyModelSpec {
  std::string arch = "llama";
  uint32_t version = 3;
  bool omit_embedding_length = false;
  std::string wrong_shape_tensor;        // this tensor gets its second dimension halved
  uint32_t tensor_type_override = 0;     // if non-zero: type id written for blk.0.attn_q.weight
  bool truncate_data = false;            // drop the last tensor's bytes
  std::string oversize_tensor;           // this tensor claims 2^20 times more rows than the file holds
  bool always_eos = false;               // weights chosen so that greedy decoding picks </s> at once
  std::string chat_template;             // if set: tokenizer.chat_template
  int n_expert = 0;                      // > 0: a mixture-of-experts FFN (Mixtral-style, stacked experts)
  int n_expert_used = 2;
};

inline std::vector<uint8_t> build_tiny_model(const TinyModelSpec& s = {}) {
  const uint64_t E = 32, H = 2, HKV = 1, D = 16, F = 64;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
    types.push_back(6);
  }
  for (const char* t : {"\xE2\x96\x81", "\xE2\x96\x81" "a", "b", "ab"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  const uint64_t V = tokens.size();
  std::vector<float> scores(V, 0.0f);
  for (size_t i = 259; i < V; ++i) scores[i] = -float(i - 259);

  struct T { std::string name; std::vector<uint64_t> ne; };
  std::vector<T> ts = {{"token_embd.weight", {E, V}}, {"output_norm.weight", {E}}, {"output.weight", {E, V}},
                       {"blk.0.attn_norm.weight", {E}}, {"blk.0.attn_q.weight", {E, H * D}},
                       {"blk.0.attn_k.weight", {E, HKV * D}}, {"blk.0.attn_v.weight", {E, HKV * D}},
                       {"blk.0.attn_output.weight", {H * D, E}}, {"blk.0.ffn_norm.weight", {E}},
                       {"blk.0.ffn_gate.weight", {E, F}}, {"blk.0.ffn_up.weight", {E, F}},
                       {"blk.0.ffn_down.weight", {F, E}}};
  if (s.n_expert > 0) {  // the dense FFN becomes a router and stacked experts
    const uint64_t X = uint64_t(s.n_expert);
    ts.resize(ts.size() - 3);
    ts.push_back({"blk.0.ffn_gate_inp.weight", {E, X}});
    ts.push_back({"blk.0.ffn_gate_exps.weight", {E, F, X}});
    ts.push_back({"blk.0.ffn_up_exps.weight", {E, F, X}});
    ts.push_back({"blk.0.ffn_down_exps.weight", {F, E, X}});
  }
  for (auto& t : ts)
    if (t.name == s.wrong_shape_tensor) t.ne.back() /= 2;

  GgufBuilder g(s.version);
  g.u64(ts.size());
  const uint64_t n_kv = 17 - (s.omit_embedding_length ? 1 : 0) + (s.chat_template.empty() ? 0 : 1) + (s.n_expert > 0 ? 2 : 0);
  g.u64(n_kv);
  const std::string a = s.arch;
  g.kv_str("general.architecture", a);
  g.kv_str("general.name", "tiny-test");
  g.kv_u32(a + ".context_length", 64);
  if (!s.omit_embedding_length) g.kv_u32(a + ".embedding_length", E);
  g.kv_u32(a + ".block_count", 1);
  g.kv_u32(a + ".feed_forward_length", F);
  g.kv_u32(a + ".attention.head_count", H);
  g.kv_u32(a + ".attention.head_count_kv", HKV);
  g.kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  g.kv_f32(a + ".rope.freq_base", 10000.0f);
  g.kv_str("tokenizer.ggml.model", "llama");
  g.kv_strs("tokenizer.ggml.tokens", tokens);
  g.kv_f32s("tokenizer.ggml.scores", scores);
  g.kv_i32s("tokenizer.ggml.token_type", types);
  g.kv_u32("tokenizer.ggml.bos_token_id", 1);
  g.kv_u32("tokenizer.ggml.eos_token_id", 2);
  g.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  if (!s.chat_template.empty()) g.kv_str("tokenizer.chat_template", s.chat_template);
  if (s.n_expert > 0) {
    g.kv_u32(a + ".expert_count", uint32_t(s.n_expert));
    g.kv_u32(a + ".expert_used_count", uint32_t(s.n_expert_used));
  }

  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : ts) {
    uint64_t n = 1;
    for (auto d : t.ne) n *= d;
    const uint32_t type = (t.name == "blk.0.attn_q.weight" && s.tensor_type_override) ? s.tensor_type_override : 0;
    auto ne = t.ne;
    if (t.name == s.oversize_tensor) ne.back() <<= 20;
    g.tensor_info(t.name, ne, type, offset);
    sizes.push_back(n * 4);
    offset += (n * 4 + 31) / 32 * 32;
  }
  g.align(32);
  uint32_t seed = 1;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (s.truncate_data && i + 1 == ts.size()) break;
    const bool is_norm = ts[i].ne.size() == 1;
    auto v = random_floats(sizes[i] / 4, seed++, is_norm ? 0.0f : 0.2f);
    if (is_norm) for (auto& x : v) x = 1.0f;
    if (s.always_eos && !is_norm) {
      // every embedding is all ones, the blocks add nothing, and only output row 2 (</s>) sees it
      for (auto& x : v) x = ts[i].name == "token_embd.weight" ? 1.0f : 0.0f;
      if (ts[i].name == "output.weight")
        for (uint64_t j = 0; j < E; ++j) v[2 * E + j] = 1.0f;
    }
    g.raw(v.data(), v.size() * 4);
    g.align(32);
  }
  return g.bytes;
}

}  // namespace chassis::test
