// What a run keeps resident: a packed model decodes from its owned copies alone, so the file's
// mapping stays unread (RSS = packed weights + KV cache + activations + tokenizer, as `chassis bench`
// plans it; the bound is file size + KV cache + 15 %).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/generate.h"
#include "engine/model.h"
#include "test_util.h"

namespace chassis {
namespace {

// Pages of this process's mappings of `path` that are present in its page tables
// (/proc/self/pagemap: bit 63 of each page's entry; readable without privileges).
int64_t present_pages_of(const std::string& path) {
  const std::string file = std::filesystem::canonical(path).string();
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  const int fd = ::open("/proc/self/pagemap", O_RDONLY);
  EXPECT_GE(fd, 0) << "cannot open /proc/self/pagemap";
  if (fd < 0) return -1;
  int64_t present = 0;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, name;
    in >> range >> perms >> offset >> dev >> inode >> name;
    if (name != file) continue;
    const uint64_t begin = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    const uint64_t end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    std::vector<uint64_t> entries(size_t((end - begin) / uint64_t(page)));
    const ssize_t want = ssize_t(entries.size() * sizeof(uint64_t));
    EXPECT_EQ(::pread(fd, entries.data(), size_t(want), off_t(begin / uint64_t(page) * sizeof(uint64_t))), want);
    for (uint64_t e : entries) present += int64_t(e >> 63);
  }
  ::close(fd);
  return present;
}

// Norms and biases are copies and the mapping is released after packing: before, each decode step
// read the norms through the mapping and faulted the file's pages around them back in (Qwen2.5-0.5B
// Q8_0: 62 MiB above its packed weights).
TEST(ResidentMemory, APackedModelDecodesWithoutReadingItsFile) {
  int tied = 0;
  for (const char* file : {"tiny-qwen2-Q8_0.gguf", "tiny-qwen2-Q4_0.gguf", "tiny-qwen3-Q8_0.gguf", "tiny-gemma2-Q8_0.gguf",
                           "tiny-llama3-Q4_K_M.gguf", "tiny-phi3-Q8_0.gguf"}) {
    const std::string path = test::shared(std::string("golden/models/") + file);
    auto model = Model::load(path);
    // An embedding that is not also the output matrix stays in the file, read a row per token.
    if (!model->weights().tied_output) continue;
    ++tied;
    Session session(*model, 128, 2);
    GenerateRequest req;
    req.prompt = model->vocab().tokenize("Once upon a time, in a small village by the sea,", true, true);
    req.n_predict = 16;
    req.sampling.temperature = 0;
    ASSERT_EQ(session.generate(req).tokens.size(), 16u) << file;
    // At most the file's last, partial page (release_mapped_pages keeps pages it does not cover whole).
    EXPECT_LE(present_pages_of(path), 1) << file << ": decoding read the model file's mapping";
  }
  EXPECT_GE(tied, 2) << "the test needs models whose embedding is also the output matrix";
}

}  // namespace
}  // namespace chassis
