// Hub names as users write them, and GGUF file names matched to quantization types.
#include <gtest/gtest.h>

#include "core/error.h"
#include "store/hub_cache.h"
#include "store/model_ref.h"

namespace chassis::store {
namespace {

TEST(ModelRef, ParsesRepoFileQuantAndRevision) {
  auto r = parse_model_ref("Qwen/Qwen2.5-0.5B-Instruct");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repo, "Qwen/Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(r->revision, "main");
  EXPECT_FALSE(r->revision_given);
  EXPECT_TRUE(r->file.empty() && r->quant.empty());

  r = parse_model_ref("bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m@v1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->quant, "Q4_K_M");
  EXPECT_EQ(r->revision, "v1.0");
  EXPECT_EQ(r->text(), "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@v1.0");

  r = parse_model_ref("org/repo:sub/Model-Q8_0.GGUF@0123456789abcdef0123456789abcdef01234567");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->file, "sub/Model-Q8_0.GGUF");
  EXPECT_TRUE(is_commit_hash(r->revision));
}

TEST(ModelRef, RejectsWhatIsNotAHubName) {
  for (const char* bad : {"", "model.gguf", "./dir/model", "/abs/path", "a/b/c", "org/", "/repo", "org/re po",
                          "org/repo:", "org/repo@", "org/repo:../../etc/passwd.gguf", "org/repo@../x", "org/-repo",
                          "org/re--po", "org/repo:Q4 K", "../x/y"})
    EXPECT_FALSE(parse_model_ref(bad)) << bad;
}

TEST(ModelRef, QuantTypesMatchWholeTokens) {
  EXPECT_TRUE(file_has_quant("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"));
  EXPECT_TRUE(file_has_quant("qwen2.5-0.5b-instruct-q4_k_m.gguf", "q4_k_m"));
  EXPECT_TRUE(file_has_quant("model.Q8_0.gguf", "Q8_0"));
  EXPECT_TRUE(file_has_quant("sub/model_f16.gguf", "F16"));
  EXPECT_FALSE(file_has_quant("Llama-Q4_K_M.gguf", "Q4_K"));
  EXPECT_FALSE(file_has_quant("Llama-IQ4_XS.gguf", "Q4_XS"));
  EXPECT_FALSE(file_has_quant("Llama-Q4_K_M.safetensors", "Q4_K_M"));
  EXPECT_TRUE(file_has_quant("big-Q4_K_M-00001-of-00003.gguf", "Q4_K_M"));
  EXPECT_EQ(quant_of_filename("x-Q5_K_S.gguf"), "Q5_K_S");
  EXPECT_EQ(quant_of_filename("x-bf16.gguf"), "BF16");
  EXPECT_EQ(quant_of_filename("x.gguf"), "");
}

TEST(ModelRef, FilesForANamePickWhatItNeeds) {
  const std::vector<std::string> repo = {"README.md", "a-Q4_K_M.gguf", "a-Q8_0.gguf", "b-Q6_K-00001-of-00002.gguf",
                                         "b-Q6_K-00002-of-00002.gguf"};
  ModelRef r = *parse_model_ref("o/r:Q4_K_M");
  EXPECT_EQ(files_for(r, repo), (std::vector<std::string>{"a-Q4_K_M.gguf"}));
  r = *parse_model_ref("o/r:Q6_K");
  EXPECT_EQ(files_for(r, repo).size(), 2u);
  EXPECT_THROW(files_for(*parse_model_ref("o/r"), repo), chassis::Error);
  EXPECT_THROW(files_for(*parse_model_ref("o/r:Q2_K"), repo), chassis::Error);
  const std::vector<std::string> folder = {"config.json", "model-00001-of-00002.safetensors",
                                           "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                           "tokenizer.json", "pytorch_model.bin", "onnx/model.onnx", "LICENSE"};
  EXPECT_EQ(files_for(*parse_model_ref("o/r"), folder),
            (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                      "model.safetensors.index.json", "tokenizer.json", "LICENSE"}));
}

}  // namespace
}  // namespace chassis::store
