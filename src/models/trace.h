// Named intermediates: the forward pass reports each activation where it is produced
// ("blk.3.attn_norm", "blk.3.q_rope", ...). A Tracer receives them, so a divergence from a reference
// implementation can be found layer by layer. Costs nothing when no tracer is set.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace chassis {

class Tracer {
 public:
  virtual ~Tracer() = default;
  // data is (n_tokens, n) row-major; `pos0` is the position of its first row.
  virtual void tensor(const std::string& name, const float* data, int64_t n_tokens, int64_t n, int64_t pos0) = 0;
};

// Writes each tensor as <dir>/<call>-<name>.f32 (raw little-endian float32, rows of n) and prints a
// one-line summary (shape, mean, abs-max, first values) to stderr.
class DumpTracer : public Tracer {
 public:
  explicit DumpTracer(std::string dir);
  void tensor(const std::string& name, const float* data, int64_t n_tokens, int64_t n, int64_t pos0) override;

 private:
  std::string dir_;
  int64_t call_ = 0;
};

}  // namespace chassis
