#include "engine/synthetic.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "engine/quantize.h"
#include "io/gguf_writer.h"
#include "kernels/quants.h"
#include "models/config.h"
#include "tokenizer/unicode.h"

namespace chassis {

const std::vector<SyntheticShape>& synthetic_shapes() {
  // Shapes as published in the models' config.json files. The 7B/8B ones are what most people run
  // locally: every matrix 3584+ wide, untied output (Q4_0 files 4.1-4.3 GiB, Q8_0 7.9 GiB).
  static const std::vector<SyntheticShape> kShapes = {
      // name            arch     vocab   embd  layers heads kv ff     ctx     rope base   eps   bias  freqs tied
      {"qwen2.5-0.5b", "qwen2", 151936, 896, 24, 14, 2, 4864, 32768, 1000000.0f, 1e-6f, true, false, true},
      {"qwen2.5-1.5b", "qwen2", 151936, 1536, 28, 12, 2, 8960, 32768, 1000000.0f, 1e-6f, true, false, true},
      {"qwen2.5-7b", "qwen2", 152064, 3584, 28, 28, 4, 18944, 32768, 1000000.0f, 1e-6f, true, false, false},
      {"llama-3.2-1b", "llama", 128256, 2048, 16, 32, 8, 8192, 131072, 500000.0f, 1e-5f, false, true, true},
      {"llama-3.2-3b", "llama", 128256, 3072, 28, 24, 8, 8192, 131072, 500000.0f, 1e-5f, false, true, true},
      {"llama-3.1-8b", "llama", 128256, 4096, 32, 32, 8, 14336, 131072, 500000.0f, 1e-5f, false, true, false},
  };
  return kShapes;
}

namespace {

// A cheap deterministic generator: weights only need the right size and a sane scale.
struct Xorshift {
  uint64_t s;
  float uniform() {  // in [-1, 1)
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return float(int64_t(s >> 40) - (int64_t(1) << 23)) / float(1 << 23);
  }
};

GgufWriter::Fill random_matrix(DType type, int64_t n_in, int64_t n_out, uint64_t seed) {
  return [=](std::vector<uint8_t>& out) {
    const int64_t rb = row_bytes(type, n_in);
    out.resize(size_t(rb * n_out));
    Xorshift rng{seed * 0x9E3779B97F4A7C15ull + 1};
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_out; ++r) {
      for (auto& x : row) x = 0.035f * rng.uniform();  // std ~0.02, like initialised weights
      if (type == DType::Q6_K) {
        auto* blocks = reinterpret_cast<BlockQ6_K*>(out.data() + r * rb);
        for (int64_t b = 0; b < n_in / QK_K; ++b) quantize_block_q6_k(row.data() + b * QK_K, blocks + b);
      } else {
        quantize_row(type, row.data(), out.data() + r * rb, n_in);
      }
    }
  };
}

GgufWriter::Fill constant_vector(int64_t n, float value) {
  return [=](std::vector<uint8_t>& out) {
    std::vector<float> v(static_cast<size_t>(n), value);
    out.resize(size_t(n) * 4);
    std::memcpy(out.data(), v.data(), out.size());
  };
}

}  // namespace

std::string ensure_synthetic_model(const std::string& name, const std::string& type_name, const std::string& dir) {
  for (const auto& s : synthetic_shapes())
    if (s.name == name) return ensure_synthetic_model(s, type_name, dir);
  std::string known;
  for (const auto& s : synthetic_shapes()) known += (known.empty() ? "" : ", ") + s.name;
  throw Error("unknown synthetic model '" + name + "' (known: " + known + ")");
}

std::string ensure_synthetic_model(const SyntheticShape& shape, const std::string& type_name, const std::string& dir) {
  const std::string& name = shape.name;
  if (type_name == "q4_k_m" || type_name == "q5_k_m" || type_name == "q6_k") {
    // K-quant mixtures: the f16 model quantized with llama-quantize's per-tensor rules (for
    // Qwen2.5-0.5B's 896-wide rows that means Q5_0/Q8_0 fallbacks, as in llama.cpp's own file).
    const std::string path = dir + "/" + name + "-" + type_name + ".gguf";
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return path;
    const std::string f16 = ensure_synthetic_model(shape, "f16", dir);
    log_info("quantizing " + f16 + " to " + type_name);
    quantize_gguf(f16, path, *quant_preset(type_name));
    return path;
  }
  DType wt, output_type;
  if (type_name == "f16") wt = output_type = DType::F16;
  else if (type_name == "bf16") wt = output_type = DType::BF16;
  else if (type_name == "q8_0") wt = output_type = DType::Q8_0;
  else if (type_name == "q4_0") {
    // llama-quantize keeps the output matrix (tied or not) in Q6_K, or Q8_0 where rows are not a
    // multiple of 256; an untied token embedding gets the file's type
    wt = DType::Q4_0;
    output_type = shape.n_embd % QK_K == 0 ? DType::Q6_K : DType::Q8_0;
  }
  else throw Error("synthetic models come in f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m and q6_k, not '" + type_name + "'");

  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name + "-" + type_name + ".gguf";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return path;
  log_info("writing synthetic model " + path);

  const SyntheticShape& s = shape;
  const std::string a = s.arch;
  const int64_t D = s.n_embd / s.n_head, Q = s.n_head * D, KV = s.n_head_kv * D;
  GgufWriter w;
  ModelConfig c;
  c.arch = a == "qwen2" ? Arch::Qwen2 : Arch::Llama;
  c.n_vocab = s.n_vocab;
  c.n_ctx_train = s.n_ctx;
  c.n_embd = s.n_embd;
  c.n_layer = s.n_layer;
  c.n_ff = s.n_ff;
  c.n_head = s.n_head;
  c.n_head_kv = s.n_head_kv;
  c.head_dim = D;
  c.rms_eps = s.rms_eps;
  c.rope.freq_base = s.rope_base;
  c.rope.n_rot = int(D);
  add_config_to_gguf(w, c, a, s.name + " (synthetic, random weights)");
  w.add_u32("general.file_type", wt == DType::F16 ? 1 : wt == DType::BF16 ? 32 : wt == DType::Q8_0 ? 7 : 2);
  // A byte-level BPE vocabulary of the right size: the 256 byte tokens, filler tokens, no merges.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  tokens.reserve(size_t(s.n_vocab));
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_to_unicode(uint8_t(b)));
    types.push_back(1);
  }
  while (int64_t(tokens.size()) < s.n_vocab - 1) {
    tokens.push_back("<filler_" + std::to_string(tokens.size()) + ">");
    types.push_back(1);
  }
  tokens.push_back("<|endoftext|>");
  types.push_back(3);
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", a == "qwen2" ? "qwen2" : "llama-bpe");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_strings("tokenizer.ggml.merges", {});
  w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(s.n_vocab - 1));
  w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(s.n_vocab - 1));

  uint64_t seed = 1;
  const DType embd_type = s.tied_embeddings ? output_type : wt;
  w.add_tensor("token_embd.weight", embd_type, {s.n_embd, s.n_vocab}, random_matrix(embd_type, s.n_embd, s.n_vocab, seed++));
  w.add_tensor("output_norm.weight", DType::F32, {s.n_embd}, constant_vector(s.n_embd, 1.0f));
  if (!s.tied_embeddings)
    w.add_tensor("output.weight", output_type, {s.n_embd, s.n_vocab}, random_matrix(output_type, s.n_embd, s.n_vocab, seed++));
  if (s.rope_freqs) w.add_tensor("rope_freqs.weight", DType::F32, {D / 2}, constant_vector(D / 2, 1.0f));
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    w.add_tensor(p + "attn_norm.weight", DType::F32, {s.n_embd}, constant_vector(s.n_embd, 1.0f));
    w.add_tensor(p + "attn_q.weight", wt, {s.n_embd, Q}, random_matrix(wt, s.n_embd, Q, seed++));
    w.add_tensor(p + "attn_k.weight", wt, {s.n_embd, KV}, random_matrix(wt, s.n_embd, KV, seed++));
    w.add_tensor(p + "attn_v.weight", wt, {s.n_embd, KV}, random_matrix(wt, s.n_embd, KV, seed++));
    if (s.qkv_bias) {
      w.add_tensor(p + "attn_q.bias", DType::F32, {Q}, constant_vector(Q, 0.0f));
      w.add_tensor(p + "attn_k.bias", DType::F32, {KV}, constant_vector(KV, 0.0f));
      w.add_tensor(p + "attn_v.bias", DType::F32, {KV}, constant_vector(KV, 0.0f));
    }
    w.add_tensor(p + "attn_output.weight", wt, {Q, s.n_embd}, random_matrix(wt, Q, s.n_embd, seed++));
    w.add_tensor(p + "ffn_norm.weight", DType::F32, {s.n_embd}, constant_vector(s.n_embd, 1.0f));
    w.add_tensor(p + "ffn_gate.weight", wt, {s.n_embd, s.n_ff}, random_matrix(wt, s.n_embd, s.n_ff, seed++));
    w.add_tensor(p + "ffn_up.weight", wt, {s.n_embd, s.n_ff}, random_matrix(wt, s.n_embd, s.n_ff, seed++));
    w.add_tensor(p + "ffn_down.weight", wt, {s.n_ff, s.n_embd}, random_matrix(wt, s.n_ff, s.n_embd, seed++));
  }
  w.write(path);
  return path;
}

}  // namespace chassis
