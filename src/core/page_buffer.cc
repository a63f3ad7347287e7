#include "core/page_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace chassis {
namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

PageBuffer::PageBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  // One huge page of slack so the data can start on a 2 MiB boundary (a huge page backs only an
  // aligned 2 MiB range of the mapping).
  mapping_bytes_ = bytes >= kHugePage ? bytes + kHugePage : bytes;
  mapping_ = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    throw Error("cannot allocate " + std::to_string(bytes >> 20) + " MiB for weights: " + std::strerror(errno));
  }
  const auto base = reinterpret_cast<uintptr_t>(mapping_);
  const uintptr_t aligned = bytes >= kHugePage ? (base + kHugePage - 1) / kHugePage * kHugePage : base;
  data_ = reinterpret_cast<uint8_t*>(aligned);
#ifdef MADV_HUGEPAGE
  // Advice only: without THP (or with it set to "never") this fails harmlessly.
  if (bytes >= kHugePage) madvise(data_, bytes, MADV_HUGEPAGE);
#endif
}

PageBuffer::~PageBuffer() {
  if (mapping_) munmap(mapping_, mapping_bytes_);
}

}  // namespace chassis
