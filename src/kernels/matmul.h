// Matrix products of a weight matrix (any stored type, in place in the mmapped file or interleaved at
// load, see kernels/interleave.h) with a batch of activation rows. Activations are first encoded as the weight's vec_dot_type, as llama.cpp
// does, so results match the reference's rounding.
#pragma once
#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace chassis {

// A 2-D weight as stored in GGUF: n_out rows of n_in elements each (ggml ne0 = n_in, ne1 = n_out);
// or, when `interleaved`, the same rows regrouped eight at a time for the fast kernels
// (kernels/interleave.h: n_out is then a multiple of 8, and rows must be read with read_row).
struct WeightMatrix {
  DType type = DType::F32;
  const uint8_t* data = nullptr;
  int64_t n_in = 0;
  int64_t n_out = 0;
  bool interleaved = false;
  int64_t row_stride() const { return row_bytes(type, n_in); }
  // Row r in place (not for an interleaved matrix).
  const uint8_t* row(int64_t r) const { return data + r * row_stride(); }
  // Row r in its stored form: in place, or copied out of its group into scratch (row_stride() bytes).
  const uint8_t* read_row(int64_t r, uint8_t* scratch) const;
  explicit operator bool() const { return data != nullptr; }
};

// y (n_tok, n_out) = x (n_tok, n_in) * W^T. Rows are split across the pool's threads.
// By default each activation row is summed as the reference sums it in a batch of n_tok (its
// kernels differ by batch size); row_invariant sums every row as a batch of one, so a row's result
// never depends on the other rows (continuous batching of independent requests).
void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            bool row_invariant = false);

// Same, for output rows [row_begin, row_end) only; y is (n_tok, row_end - row_begin).
void matmul_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool, bool row_invariant = false);

// One product of a group: y (n_tok, row_end - row_begin) = x * W[row_begin, row_end)^T.
struct MatmulTarget {
  const WeightMatrix* w = nullptr;
  int64_t row_begin = 0;
  int64_t row_end = 0;
  float* y = nullptr;
};

// Several products of one input (a layer's q, k and v; gate and up), each exactly as matmul_rows
// computes it, in one parallel region: the input is encoded once per encoding the weights need, and
// a thread done with one product's rows goes on to the next one's instead of waiting at a barrier
// (a decode step is a few hundred short regions; k and v are small ones). All share n_in.
void matmul_group(std::span<const MatmulTarget> targets, const float* x, int64_t n_tok, ThreadPool& pool,
                  bool row_invariant = false);

// Whether matmul reads weights of this type faster interleaved eight rows at a time (kernels/
// interleave.h): they can be, and the SIMD kernels that read them are in use on this CPU.
bool matmul_prefers_interleaved(DType t);

// The AVX2 tiles are on by default (where the CPU has AVX2 and CHASSIS_REFERENCE_KERNELS is unset);
// turning them off falls back to one dot product at a time (same results), for benchmarks.
void set_matmul_tiles_enabled(bool on);

}  // namespace chassis
