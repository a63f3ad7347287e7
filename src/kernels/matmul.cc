#include "kernels/matmul.h"

#include <cstdlib>
#include <vector>

#include "kernels/cpu/dot_avx2.h"
#include "kernels/quants.h"

namespace chassis {

void matmul_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool, bool row_invariant) {
  const DType act_type = dtype_info(w.type).vec_dot_type;
  const int64_t act_row = row_bytes(act_type, w.n_in);
  // Scratch reused across calls on this thread: one encoded copy of the activations.
  // (A thread_local is not captured by the lambdas below: take its pointer on this thread.)
  thread_local std::vector<uint8_t> act_storage;
  if (act_storage.size() < size_t(n_tok * act_row)) act_storage.resize(size_t(n_tok * act_row));
  uint8_t* act = act_storage.data();
  pool.parallel_for(n_tok, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) quantize_row(act_type, x + t * w.n_in, act + t * act_row, w.n_in);
  });
  const int64_t n_rows = row_end - row_begin;
  const uint8_t* a = act;
  // The SIMD kernels give bit-identical results, so they replace the reference whenever they exist.
  const bool simd = use_simd_kernels();
  const int64_t batch = row_invariant ? 1 : n_tok;
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const uint8_t* wr = w.row(row_begin + r);
      for (int64_t t = 0; t < n_tok; ++t) {
        float& out = y[t * n_rows + r];
        const int64_t place = row_invariant ? 0 : t;
        if (!simd || !vec_dot_avx2(w.type, wr, a + t * act_row, w.n_in, batch, place, &out))
          out = vec_dot(w.type, wr, a + t * act_row, w.n_in, batch, place);
      }
    }
  });
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, bool row_invariant) {
  matmul_rows(w, 0, w.n_out, x, n_tok, y, pool, row_invariant);
}

}  // namespace chassis
