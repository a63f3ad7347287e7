// The GGUF reader on well-formed input: every metadata type (nested arrays included), versions 2
// and 3, alignment, zero-copy tensor views, and vocab-only files.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"
#include "kernels/quants.h"
#include "test_util.h"
#include "tiny_model.h"

namespace chassis {
namespace {

using test::GgufBuilder;

TEST(Gguf, EveryMetadataTypeIncludingNestedArrays) {
  for (uint32_t version : {2u, 3u}) {
    GgufBuilder g(version);
    g.u64(0).u64(14);
    g.str("u8").u32(0).u8(200);
    g.str("i8").u32(1).u8(uint8_t(-5));
    g.str("u16").u32(2).u16(60000);
    g.str("i16").u32(3).u16(uint16_t(-300));
    g.str("u32").u32(4).u32(4000000000u);
    g.str("i32").u32(5).i32(-70000);
    g.str("f32").u32(6).f32(1.5f);
    g.str("bool").u32(7).u8(1);
    g.str("string").u32(8).str("héllo");
    g.str("u64").u32(10).u64(1ull << 40);
    g.str("i64").u32(11).u64(uint64_t(-5ll));
    g.str("f64").u32(12).raw("\0\0\0\0\0\0\xf8\x3f", 8);  // 1.5
    g.str("nested").u32(9).u32(9).u64(2);                 // array of 2 arrays
    g.u32(4).u64(2).u32(1).u32(2);                         //   [1, 2] (u32)
    g.u32(8).u64(1).str("x");                              //   ["x"]
    g.str("empty").u32(9).u32(6).u64(0);
    auto f = GgufFile::parse(g.bytes.data(), g.bytes.size(), "mem");
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(*f.get_int("u8"), 200);
    EXPECT_EQ(*f.get_int("i8"), -5);
    EXPECT_EQ(*f.get_int("u16"), 60000);
    EXPECT_EQ(*f.get_int("i16"), -300);
    EXPECT_EQ(*f.get_int("u32"), 4000000000ll);
    EXPECT_EQ(*f.get_int("i32"), -70000);
    EXPECT_EQ(*f.get_float("f32"), 1.5);
    EXPECT_EQ(*f.get_bool("bool"), true);
    EXPECT_EQ(*f.get_string("string"), "héllo");
    EXPECT_EQ(*f.get_int("u64"), 1ll << 40);
    EXPECT_EQ(*f.get_int("i64"), -5);
    EXPECT_EQ(*f.get_float("f64"), 1.5);
    const auto& nested = f.find("nested")->as_array();
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(nested.at(0).as_array().int_at(1), 2);
    EXPECT_EQ(nested.at(1).as_array().string_at(0), "x");
    EXPECT_EQ(f.find("empty")->as_array().size(), 0u);
    EXPECT_EQ(f.find("nested")->to_display(), "[2 x array] {[2 x u32], [1 x string]}");
    EXPECT_THROW(f.get_string("u8"), Error);  // wrong type is an error, not a silent conversion
  }
}

// A header array costs no memory beyond the file's own bytes: element values are read in place.
TEST(Gguf, LargeArraysAreViewsNotCopies) {
  GgufBuilder g;
  g.u64(0).u64(2);
  const size_t n = 16u << 20;
  g.str("big").u32(9).u32(0).u64(n);
  const size_t at = g.bytes.size();
  g.bytes.resize(at + n, 7);
  g.str("names").u32(9).u32(8).u64(3).str("a").str("bc").str("");
  auto f = GgufFile::parse(g.bytes.data(), g.bytes.size(), "mem");
  const GgufArray& big = f.find("big")->as_array();
  EXPECT_EQ(big.size(), n);
  EXPECT_EQ(big.raw, g.bytes.data() + at);
  EXPECT_EQ(big.int_at(n - 1), 7);
  const GgufArray& names = f.find("names")->as_array();
  EXPECT_EQ(names.string_at(1), "bc");
  EXPECT_EQ(names.string_at(1).data(), reinterpret_cast<const char*>(g.bytes.data()) + g.bytes.size() - 8 - 2);  // "bc" then the empty string's length
  EXPECT_THROW(names.int_at(0), Error);
}

// What our writer writes, our reader (and the layout rules it checks) reads back unchanged.
TEST(Gguf, WriterRoundTrip) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 7);
  w.add_f32("x.f", 0.25f);
  w.add_bool("x.b", true);
  w.add_strings("x.s", {"a", "", "ccc"});
  w.add_f32s("x.fs", {1.5f, -2.0f});
  w.add_i32s("x.is", {-3, 4});
  std::vector<float> t1 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<uint8_t> b1(t1.size() * 4);
  std::memcpy(b1.data(), t1.data(), b1.size());
  w.add_tensor("t1", DType::F32, {3, 4}, b1);
  w.add_tensor("t2", DType::Q8_0, {64}, [](std::vector<uint8_t>& out) {
    std::vector<float> v(64, 0.5f);
    out.resize(2 * sizeof(BlockQ8_0));
    quantize_row(DType::Q8_0, v.data(), out.data(), 64);
  });
  const std::string path = test::temp_path("written.gguf");
  w.write(path);
  MappedFile file(path);
  const GgufFile f = GgufFile::parse(file.data(), file.size(), path);
  EXPECT_EQ(*f.get_int("llama.block_count"), 7);
  EXPECT_EQ(*f.get_float("x.f"), 0.25);
  EXPECT_EQ(*f.get_bool("x.b"), true);
  EXPECT_EQ(f.find("x.s")->as_array().string_at(2), "ccc");
  EXPECT_EQ(f.find("x.fs")->as_array().number_at(1), -2.0);
  EXPECT_EQ(f.find("x.is")->as_array().int_at(0), -3);
  const auto* t = f.find_tensor("t1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(f.tensor_data(*t))[11], 12.0f);
  float back[64];
  dequantize_row(DType::Q8_0, f.tensor_data(*f.find_tensor("t2")), back, 64);
  EXPECT_NEAR(back[63], 0.5f, 1e-3);
  std::remove(path.c_str());
}

TEST(Gguf, AlignmentKeyMovesTheDataSection) {
  GgufBuilder g;
  g.u64(1).u64(1);
  g.kv_u32("general.alignment", 64);
  g.tensor_info("t", {16}, 0, 0);
  const size_t header = g.bytes.size();
  g.align(64);
  std::vector<float> v(16, 2.0f);
  g.raw(v.data(), 64);
  auto f = GgufFile::parse(g.bytes.data(), g.bytes.size(), "mem");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_GE(f.data_offset(), header);
  const float* p = reinterpret_cast<const float*>(f.tensor_data(*f.find_tensor("t")));
  EXPECT_EQ(p[15], 2.0f);
  EXPECT_EQ(static_cast<const void*>(p), static_cast<const void*>(g.bytes.data() + f.data_offset()));  // a view, not a copy
}

TEST(Gguf, RealModelsParse) {
  auto m = Model::load(test::shared("golden/models/tiny-qwen2-Q4_K_M.gguf"));
  EXPECT_EQ(m->config().arch, Arch::Qwen2);
  EXPECT_EQ(m->config().n_layer, 2);
  EXPECT_EQ(m->vocab().size(), 646);
  EXPECT_TRUE(m->weights().layers[0].bq);
}

TEST(Gguf, VocabOnlyFilesLoadTheirTokenizer) {
  // 0 tensors: the aligned data offset lies past the end of the file.
  const std::string path = test::shared("models/ggml-vocab/ggml-vocab-gpt-2.gguf");
  auto m = Model::load(path, /*vocab_only=*/true);
  EXPECT_EQ(m->vocab().size(), 50257);
  EXPECT_GT(m->gguf().data_offset(), m->file_size() - 32);
  try {
    Model::load(path);
    FAIL() << "a vocab-only file must not load as a runnable model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensors"), std::string::npos);
  }
}

TEST(Gguf, TinyBuiltModelGeneratesTheSameTokensWithAnyThreadCount) {
  const std::string path = test::temp_path("tiny.gguf");
  test::write_file(path, test::build_tiny_model());
  auto m = Model::load(path);
  std::vector<int32_t> first;
  for (int threads : {1, 2, 3}) {
    Session s(*m, 64, threads);
    GenerateRequest req;
    req.prompt = m->vocab().tokenize("ab ab", true, true);
    req.n_predict = 8;
    req.sampling.temperature = 0;
    auto r = s.generate(req);
    ASSERT_EQ(r.tokens.size(), r.stop_reason == "eos" ? r.tokens.size() : 8u);
    for (int32_t t : r.tokens) ASSERT_LT(t, m->vocab().size());
    if (first.empty()) first = r.tokens;
    EXPECT_EQ(r.tokens, first) << threads << " threads";
  }
  std::remove(path.c_str());
}

TEST(Gguf, GenerationStopsAtEndOfGeneration) {
  test::TinyModelSpec spec;
  spec.always_eos = true;
  const std::string path = test::temp_path("eos.gguf");
  test::write_file(path, test::build_tiny_model(spec));
  auto m = Model::load(path);
  ASSERT_TRUE(m->vocab().is_eog(2));
  Session s(*m, 64, 1);
  GenerateRequest req;
  req.prompt = m->vocab().tokenize("ab", true, true);
  req.n_predict = 10;
  req.sampling.temperature = 0;
  const auto r = s.generate(req);
  EXPECT_EQ(r.tokens, std::vector<int32_t>{2});
  EXPECT_EQ(r.stop_reason, "eos");
  EXPECT_EQ(r.text, "");  // the end token's own text is not part of the output
  std::remove(path.c_str());
}

}  // namespace
}  // namespace chassis
