#include "core/page_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace chassis {
namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

PageBuffer::PageBuffer(size_t bytes, const char* what) : size_(bytes) {
  if (bytes == 0) return;
  // One huge page of slack so the data can start on a 2 MiB boundary (a huge page backs only an
  // aligned 2 MiB range of the mapping).
  mapping_bytes_ = bytes >= kHugePage ? bytes + kHugePage : bytes;
  mapping_ = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    throw Error("cannot allocate " + std::to_string(bytes >> 20) + " MiB for " + what + ": " + std::strerror(errno));
  }
  const auto base = reinterpret_cast<uintptr_t>(mapping_);
  const uintptr_t aligned = bytes >= kHugePage ? (base + kHugePage - 1) / kHugePage * kHugePage : base;
  data_ = reinterpret_cast<uint8_t*>(aligned);
#ifdef MADV_HUGEPAGE
  // Advice only: without THP (or with it set to "never") this fails harmlessly.
  if (bytes >= kHugePage) madvise(data_, bytes, MADV_HUGEPAGE);
#endif
}

void PageBuffer::populate(size_t offset, size_t n) const {
#ifdef __linux__
  constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE; glibc 2.36's headers may lack the name
  if (offset >= size_ || n == 0) return;
  n = std::min(n, size_ - offset);
  // madvise wants a page-aligned start: round down (the pages before belong to this buffer's mapping).
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data_ + offset) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(data_ + offset + n);
  madvise(reinterpret_cast<void*>(begin), end - begin, kPopulateWrite);  // advisory: ignore failure
#else
  (void)offset;
  (void)n;
#endif
}

PageBuffer::~PageBuffer() {
  if (mapping_) munmap(mapping_, mapping_bytes_);
}

}  // namespace chassis
