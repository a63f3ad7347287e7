// Anonymous memory for large, long-lived buffers (weights re-encoded at load time, the KV cache).
//
// Why not a std::vector: a vector zero-fills (touches) every page before we write it, and its pages
// are ordinary 4 KiB ones. Decode streams every weight byte once per token; with 4 KiB pages that is
// a TLB miss every 4 KiB and hardware prefetch stopping at each page edge. This buffer is mmapped,
// aligned to 2 MiB and advised for transparent huge pages (Linux, "madvise" mode) before the first
// touch, so the kernel can back it with 2 MiB pages: measured here, a 2-thread read stream gains
// 3-5 %. Where huge pages are off or unavailable it is plain anonymous memory.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chassis {

class PageBuffer {
 public:
  // Zero-filled (anonymous pages, touched only when written); `what` names the buffer in the error
  // when the memory is not there.
  explicit PageBuffer(size_t bytes, const char* what = "weights");
  ~PageBuffer();
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  // Backs [offset, offset + n) with pages now (MADV_POPULATE_WRITE, Linux 5.14+): one call per
  // range instead of a page fault per page as a copy first writes it; under a hypervisor faults
  // were most of loading a model (Llama-3.2-1B Q8_0: `run -n 1` 1.7-2.9 -> 1.2-1.5 s). Advisory:
  // where unsupported, the first writes fault as before.
  void populate(size_t offset, size_t n) const;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace chassis
