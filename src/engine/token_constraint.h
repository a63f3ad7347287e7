// The seam for constrained decoding (JSON schemas, grammars, tool-call formats): a per-sequence
// object the batch engine asks, before each sampling step, which tokens may come next, and tells
// which token was chosen. Implementations arrive with the constrained-decoding work.
#pragma once
#include <cstdint>
#include <vector>

namespace chassis {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Fill `allowed` (n_vocab entries, 1 = may be sampled) and return true, or return false when
  // any token may follow. Sampling keeps its temperature/top-k/top-p among the allowed tokens.
  virtual bool allowed_next(std::vector<uint8_t>& allowed) = 0;
  // The token that was sampled (always one that was allowed).
  virtual void accept(int32_t token) = 0;
  // True once the constrained output is complete: the sequence then ends with "stop".
  virtual bool complete() const { return false; }
};

}  // namespace chassis
