// Our k-quant weight quantizers against llama-quantize itself: the golden tiny models were written in
// F32 and converted by llama.cpp's llama-quantize, so quantizing the F32 file's tensors must give
// the bytes of the tensors llama-quantize stored as Q4_K / Q6_K.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "engine/quantize.h"
#include "kernels/quants.h"
#include "test_util.h"

namespace chassis {
namespace {

struct Counts {
  int64_t tensors = 0, blocks = 0, differing_blocks = 0;
};

Counts compare_with(const std::string& quantized_file, DType type) {
  MappedFile src_file(test::shared("golden/models/tiny-llama-F32.gguf"));
  MappedFile q_file(test::shared("golden/models/" + quantized_file));
  const GgufFile src = GgufFile::parse(src_file.data(), src_file.size(), src_file.path());
  const GgufFile q = GgufFile::parse(q_file.data(), q_file.size(), q_file.path());
  Counts c;
  const int64_t block_bytes = dtype_info(type).block_bytes;
  for (const auto& t : q.tensors()) {
    if (t.type != type) continue;
    const GgufTensorInfo* s = src.find_tensor(t.name);
    EXPECT_TRUE(s && s->type == DType::F32) << t.name;
    if (!s) continue;
    std::vector<uint8_t> ours(t.n_bytes);
    const int64_t row = t.ne[0], rows = t.n_elements() / row;
    const float* x = reinterpret_cast<const float*>(src.tensor_data(*s));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(type, x + r * row, ours.data() + r * row_bytes(type, row), row);
    const uint8_t* theirs = q.tensor_data(t);
    for (uint64_t b = 0; b < t.n_bytes; b += block_bytes) {
      ++c.blocks;
      if (std::memcmp(ours.data() + b, theirs + b, block_bytes) != 0) ++c.differing_blocks;
    }
    ++c.tensors;
  }
  return c;
}

TEST(QuantizeK, Q4_KMatchesLlamaQuantize) {
  const Counts c = compare_with("tiny-llama-Q4_K_M.gguf", DType::Q4_K);
  EXPECT_GT(c.tensors, 0);
  EXPECT_EQ(c.differing_blocks, 0) << "of " << c.blocks << " blocks in " << c.tensors << " tensors";
  std::printf("%lld blocks in %lld tensors identical\n", (long long)c.blocks, (long long)c.tensors);
}

TEST(QuantizeK, Q5_KMatchesLlamaQuantize) {
  const Counts c = compare_with("tiny-llama-Q5_K_M.gguf", DType::Q5_K);
  EXPECT_GT(c.tensors, 0);
  EXPECT_EQ(c.differing_blocks, 0) << "of " << c.blocks << " blocks in " << c.tensors << " tensors";
  std::printf("%lld blocks in %lld tensors identical\n", (long long)c.blocks, (long long)c.tensors);
}

TEST(QuantizeK, Q6_KMatchesLlamaQuantize) {
  const Counts c = compare_with("tiny-llama-Q6_K.gguf", DType::Q6_K);
  EXPECT_GT(c.tensors, 0);
  EXPECT_EQ(c.differing_blocks, 0) << "of " << c.blocks << " blocks in " << c.tensors << " tensors";
  std::printf("%lld blocks in %lld tensors identical\n", (long long)c.blocks, (long long)c.tensors);
}

// `chassis quantize` from the F32 golden to each preset must reproduce llama-quantize's file: the same
// type for every tensor (its Q4_K_M mixture included) and the same bytes; written by three threads
// (each tensor's rows split unevenly).
void expect_same_file(const std::string& preset, const std::string& golden) {
  const std::string out = test::temp_path(preset + ".gguf");
  quantize_gguf(test::shared("golden/models/tiny-llama-F32.gguf"), out, *quant_preset(preset), 3);
  MappedFile ours_file(out), theirs_file(test::shared("golden/models/" + golden));
  const GgufFile ours = GgufFile::parse(ours_file.data(), ours_file.size(), out);
  const GgufFile theirs = GgufFile::parse(theirs_file.data(), theirs_file.size(), theirs_file.path());
  ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
  for (const auto& t : theirs.tensors()) {
    const GgufTensorInfo* o = ours.find_tensor(t.name);
    ASSERT_TRUE(o) << t.name;
    EXPECT_EQ(dtype_name(o->type), dtype_name(t.type)) << preset << " " << t.name;
    if (o->type == t.type && o->n_bytes == t.n_bytes) {
      EXPECT_EQ(std::memcmp(ours.tensor_data(*o), theirs.tensor_data(t), t.n_bytes), 0) << preset << " " << t.name;
    }
  }
  EXPECT_EQ(ours.get_int("general.file_type"), theirs.get_int("general.file_type"));
  EXPECT_EQ(ours.get_string("tokenizer.ggml.model"), theirs.get_string("tokenizer.ggml.model"));
  std::remove(out.c_str());
}

TEST(QuantizeK, PresetsReproduceLlamaQuantizeFiles) {
  expect_same_file("q4_k_m", "tiny-llama-Q4_K_M.gguf");
  expect_same_file("q5_k_m", "tiny-llama-Q5_K_M.gguf");
  expect_same_file("q6_k", "tiny-llama-Q6_K.gguf");
  expect_same_file("q8_0", "tiny-llama-Q8_0.gguf");
  expect_same_file("q4_0", "tiny-llama-Q4_0.gguf");
  expect_same_file("f16", "tiny-llama-F16.gguf");
}

}  // namespace
}  // namespace chassis
