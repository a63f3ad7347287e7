// safetensors: the real file in ../shared (written by Hugging Face tooling) read back tensor for
// tensor against the GGUF it was derived from; our writer's output read by our reader; and every
// way a hostile header can lie, each an error naming the file and the fault.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace chassis {
namespace {

std::vector<uint8_t> file_with_header(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0x5a);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    SafetensorsFile::parse(bytes.data(), bytes.size(), "bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RealFileMatchesTheGgufItWasDerivedFrom) {
  MappedFile st_file(test::shared("models/stories260K-hf/model.safetensors"));
  MappedFile gg_file(test::shared("models/stories260K/stories260K.gguf"));
  auto st = SafetensorsFile::parse(st_file.data(), st_file.size(), st_file.path());
  auto gg = GgufFile::parse(gg_file.data(), gg_file.size(), gg_file.path());
  EXPECT_EQ(st.tensors().size(), gg.tensors().size());
  ASSERT_EQ(st.metadata().size(), 1u);
  EXPECT_EQ(st.metadata()[0], (std::pair<std::string, std::string>{"format", "pt"}));

  auto same = [&](const std::string& hf, const std::string& gguf) {
    const SafetensorsTensor* a = st.find(hf);
    const GgufTensorInfo* b = gg.find_tensor(gguf);
    ASSERT_TRUE(a && b) << hf;
    ASSERT_EQ(a->dtype, SafetensorsDType::F32);
    // PyTorch shapes are ggml's ne reversed.
    ASSERT_EQ(std::vector<int64_t>(a->shape.rbegin(), a->shape.rend()), b->ne) << hf;
    EXPECT_EQ(std::memcmp(st.tensor_data(*a), gg.tensor_data(*b), a->end - a->begin), 0) << hf;
  };
  same("model.embed_tokens.weight", "token_embd.weight");
  same("lm_head.weight", "output.weight");
  same("model.norm.weight", "output_norm.weight");
  for (int l = 0; l < 5; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
    same(p + "input_layernorm.weight", b + "attn_norm.weight");
    same(p + "post_attention_layernorm.weight", b + "ffn_norm.weight");
    same(p + "self_attn.v_proj.weight", b + "attn_v.weight");
    same(p + "self_attn.o_proj.weight", b + "attn_output.weight");
    same(p + "mlp.gate_proj.weight", b + "ffn_gate.weight");
    same(p + "mlp.up_proj.weight", b + "ffn_up.weight");
    same(p + "mlp.down_proj.weight", b + "ffn_down.weight");
    // q/k: HF keeps rotate_half order, llama.cpp interleaves the two halves of each head.
    for (auto [hf, gguf, heads] : {std::tuple{"self_attn.q_proj.weight", "attn_q.weight", 8},
                                   std::tuple{"self_attn.k_proj.weight", "attn_k.weight", 4}}) {
      const SafetensorsTensor* a = st.find(p + hf);
      const GgufTensorInfo* g = gg.find_tensor(b + gguf);
      ASSERT_TRUE(a && g);
      const float* x = reinterpret_cast<const float*>(st.tensor_data(*a));
      const float* y = reinterpret_cast<const float*>(gg.tensor_data(*g));
      const int64_t cols = a->shape[1], head_dim = a->shape[0] / heads;
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < head_dim / 2; ++i)
          for (int64_t j = 0; j < 2; ++j)
            for (int64_t c = 0; c < cols; ++c)
              ASSERT_EQ(y[(h * head_dim + 2 * i + j) * cols + c], x[(h * head_dim + j * head_dim / 2 + i) * cols + c]);
    }
  }
}

TEST(Safetensors, WriterOutputReadsBack) {
  const std::string path = test::temp_path("w.safetensors");
  std::vector<float> a = test::random_floats(3 * 5, 7);
  std::vector<uint16_t> b = {1, 2, 3, 4, 5, 6, 7};
  write_safetensors(path,
                    {{"a.weight", SafetensorsDType::F32, {3, 5}, [&](uint8_t* o) { std::memcpy(o, a.data(), a.size() * 4); }},
                     {"b", SafetensorsDType::BF16, {7}, [&](uint8_t* o) { std::memcpy(o, b.data(), b.size() * 2); }},
                     {"empty", SafetensorsDType::I64, {0, 4}, nullptr}},
                    {{"format", "pt"}});
  MappedFile f(path);
  auto st = SafetensorsFile::parse(f.data(), f.size(), path);
  EXPECT_EQ(st.data_offset() % 8, 0u);
  ASSERT_EQ(st.tensors().size(), 3u);
  EXPECT_EQ(st.find("a.weight")->shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(std::memcmp(st.tensor_data(*st.find("a.weight")), a.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(st.tensor_data(*st.find("b")), b.data(), b.size() * 2), 0);
  EXPECT_EQ(st.find("empty")->n_elements(), 0);
  EXPECT_EQ(st.metadata().size(), 1u);
  std::remove(path.c_str());
}

TEST(Safetensors, EveryTruncationIsAnError) {
  const std::string header = R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const auto good = file_with_header(header, 16);
  EXPECT_EQ(error_of(good), "");
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    const std::string e = error_of(cut);
    EXPECT_EQ(e.rfind("bad.safetensors: ", 0), 0u) << "truncated to " << n << ": " << e;
  }
}

TEST(Safetensors, HostileHeadersNameTheFault) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"[1,2]", 0, "not a JSON object"},
      {"{\"x\":", 0, "not valid JSON"},
      {"{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not valid JSON"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "appears twice"},
      {R"({"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", 4, "unknown dtype 'Q4'"},
      {R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "non-negative"},
      {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "needs 8"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4000]}})", 4, "file truncated"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8, "is after end"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, "overlaps"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "gap of 4 bytes"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 12, "8 bytes after the last tensor"},
      {R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4, "unknown field 'extra'"},
      {R"({"x":{"dtype":"F32","shape":[1]}})", 4, "data_offsets must be"},
      {R"({"x":{"shape":[1],"data_offsets":[0,4]}})", 4, "dtype"},
      {R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 4, "overflows"},
      {R"({"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4, "dimensions"},
      {R"({"__metadata__":{"k":1}})", 0, "not a string"},
      {R"({"x":[1,2]})", 0, "expected an object"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(file_with_header(c.header, c.data));
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.header << " -> " << e;
    EXPECT_EQ(e.rfind("bad.safetensors: ", 0), 0u) << e;
  }
  // Header lengths that lie.
  std::vector<uint8_t> huge(16, 0);
  huge[7] = 0x7f;
  EXPECT_NE(error_of(huge).find("100 MB"), std::string::npos);
  std::vector<uint8_t> past = file_with_header("{}", 0);
  past[0] = 200;
  EXPECT_NE(error_of(past).find("past the end"), std::string::npos);
}

}  // namespace
}  // namespace chassis
