// Our k-quant weight quantizers against llama-quantize itself: the golden tiny models were written in
// F32 and converted by llama.cpp's llama-quantize, so quantizing the F32 file's tensors must give
// the bytes of the tensors llama-quantize stored as Q4_K / Q6_K.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "io/gguf.h"
#include "io/mapped_file.h"
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

TEST(QuantizeK, Q6_KMatchesLlamaQuantize) {
  const Counts c = compare_with("tiny-llama-Q6_K.gguf", DType::Q6_K);
  EXPECT_GT(c.tensors, 0);
  EXPECT_EQ(c.differing_blocks, 0) << "of " << c.blocks << " blocks in " << c.tensors << " tensors";
  std::printf("%lld blocks in %lld tensors identical\n", (long long)c.blocks, (long long)c.tensors);
}

}  // namespace
}  // namespace chassis
