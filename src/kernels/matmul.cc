#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <vector>

#include "kernels/cpu/dot_avx2.h"
#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/ops_avx2.h"
#include "kernels/interleave.h"
#include "kernels/quants.h"

namespace chassis {
namespace {

// One activation row encoded as the kernels read it (see tiled_act_type: F16 weights read the
// f16-rounded values widened back to f32).
void encode_activation(DType act_type, DType vec_dot_type, const float* x, uint8_t* out, int64_t n) {
  if (act_type == vec_dot_type) {
    if (!use_simd_kernels() || !quantize_row_avx2(act_type, x, out, n)) quantize_row(act_type, x, out, n);
    return;
  }
  if (act_type == DType::F32 && vec_dot_type == DType::F16 && use_simd_kernels()) {
    round_f16_avx2(x, reinterpret_cast<float*>(out), n);
    return;
  }
  thread_local std::vector<uint8_t> rounded;
  rounded.resize(size_t(row_bytes(vec_dot_type, n)));
  quantize_row(vec_dot_type, x, rounded.data(), n);
  dequantize_row(vec_dot_type, rounded.data(), reinterpret_cast<float*>(out), n);
}

std::atomic<bool> g_tiles_enabled{true};

}  // namespace

void set_matmul_tiles_enabled(bool on) { g_tiles_enabled.store(on); }

bool matmul_prefers_interleaved(DType t) { return can_interleave(t) && use_simd_kernels() && has_tiled_avx2(t); }

const uint8_t* WeightMatrix::read_row(int64_t r, uint8_t* scratch) const {
  if (!interleaved) return row(r);
  deinterleave_row(type, data, n_in, r, scratch);
  return scratch;
}

void matmul_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool, bool row_invariant) {
  // The SIMD kernels give bit-identical results, so they replace the reference whenever they exist.
  const bool simd = use_simd_kernels();
  const bool tiled = simd && has_tiled_avx2(w.type) && g_tiles_enabled.load(std::memory_order_relaxed);
  const DType vec_dot_type = dtype_info(w.type).vec_dot_type;
  const DType act_type = tiled ? tiled_act_type(w.type) : vec_dot_type;
  const int64_t act_row = row_bytes(act_type, w.n_in);
  // Scratch reused across calls on this thread: one encoded copy of the activations.
  // (A thread_local is not captured by the lambdas below: take its pointer on this thread.)
  thread_local std::vector<uint8_t> act_storage;
  if (act_storage.size() < size_t(n_tok * act_row)) act_storage.resize(size_t(n_tok * act_row));
  uint8_t* act = act_storage.data();
  pool.parallel_for(n_tok, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) encode_activation(act_type, vec_dot_type, x + t * w.n_in, act + t * act_row, w.n_in);
  });
  // Interleaved weights are read by their own tiles, in whole groups of eight rows; anything else
  // (tiles off, a row range that splits a group) reads rows copied out of their groups.
  const bool interleaved_tiles = tiled && w.interleaved && row_begin % kInterleavedRows == 0 &&
                                 (row_end - row_begin) % kInterleavedRows == 0;
  thread_local std::vector<int32_t> sums_storage;
  const ActSums sums_kind = tiled ? tiled_act_sums(w.type, interleaved_tiles) : ActSums::kNone;
  const int64_t sums_stride = (w.n_in / QK) * (sums_kind == ActSums::kLanesTimes16 ? 8 : 1);
  if (sums_kind != ActSums::kNone) {
    if (sums_storage.size() < size_t(n_tok * sums_stride)) sums_storage.resize(size_t(n_tok * sums_stride));
    for (int64_t t = 0; t < n_tok; ++t)
      compute_act_sums(sums_kind, act + t * act_row, w.n_in / QK, sums_storage.data() + t * sums_stride);
  }
  const int32_t* sums = sums_storage.data();
  const int64_t n_rows = row_end - row_begin;
  const uint8_t* a = act;
  // Each token's place in the batch picks the reference's summation variant (see dot_variant).
  const int64_t batch = row_invariant ? 1 : n_tok;
  auto place = [&](int64_t t) { return row_invariant ? 0 : t; };

  if (interleaved_tiles || (tiled && !w.interleaved)) {
    // About 8 chunks per thread, in multiples of the tiles' height, taken dynamically.
    const int64_t height = interleaved_tiles ? interleaved_chunk_rows() : 4;
    const int64_t chunk = std::max<int64_t>(16, (n_rows / (8 * pool.size()) + height - 1) / height * height);
    const int64_t group_bytes = interleaved_tiles ? interleaved_group_bytes(w.type, w.n_in) : 0;
    pool.parallel_for_dynamic(n_rows, chunk, [&](int64_t b, int64_t e) {
      // Consecutive tokens with the same variant form one tile problem.
      for (int64_t t0 = 0; t0 < n_tok;) {
        const DotVariant v = dot_variant(w.n_in, batch, place(t0));
        int64_t t1 = t0 + 1;
        while (t1 < n_tok) {
          const DotVariant v1 = dot_variant(w.n_in, batch, place(t1));
          if (v1.tiny_blas != v.tiny_blas || v1.repack_gemm != v.repack_gemm) break;
          ++t1;
        }
        TileProblem p;
        p.w = interleaved_tiles ? w.data + (row_begin + b) / kInterleavedRows * group_bytes : w.row(row_begin + b);
        p.w_stride = interleaved_tiles ? group_bytes : w.row_stride();
        p.n_rows = e - b;
        p.act = a + t0 * act_row;
        p.act_stride = act_row;
        p.n_tok = t1 - t0;
        p.n = w.n_in;
        p.y = y + t0 * n_rows + b;
        p.y_stride = n_rows;
        p.variant = v;
        p.act_sums = sums + t0 * sums_stride;
        p.act_sums_stride = sums_stride;
        if (interleaved_tiles) matmul_interleaved_avx2(w.type, p);
        else matmul_tiles_avx2(w.type, p);
        t0 = t1;
      }
    });
    return;
  }
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e) {
    std::vector<uint8_t> scratch(w.interleaved ? size_t(w.row_stride()) : 0);
    for (int64_t r = b; r < e; ++r) {
      const uint8_t* wr = w.read_row(row_begin + r, scratch.data());
      for (int64_t t = 0; t < n_tok; ++t) {
        float& out = y[t * n_rows + r];
        if (!simd || !vec_dot_avx2(w.type, wr, a + t * act_row, w.n_in, batch, place(t), &out))
          out = vec_dot(w.type, wr, a + t * act_row, w.n_in, batch, place(t));
      }
    }
  });
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, bool row_invariant) {
  matmul_rows(w, 0, w.n_out, x, n_tok, y, pool, row_invariant);
}

}  // namespace chassis
