// A read-only memory map of a whole file: weights are used in place, never copied at load.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace chassis {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Drops this process's resident pages of the whole pages inside [p, p + n) of a read-only file
// mapping (they come back from the file if touched again): for weights that were copied elsewhere,
// e.g. quantized at load time, so the originals stop counting against memory.
void release_mapped_pages(const void* p, size_t n);
// Maps the pages of [p, p + n) of a mapped file in one call (MADV_POPULATE_READ, Linux 5.14+),
// reading any the page cache lacks, instead of a page fault every 4 KiB as a copy walks them (under
// a hypervisor each fault is dear). Advisory: where unsupported the copy faults them in as before.
void populate_mapped_pages(const void* p, size_t n);

}  // namespace chassis
