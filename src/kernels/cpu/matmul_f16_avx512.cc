// Batched F16 (and BF16) matmul (the tinyBLAS order: one 8-lane FMA accumulator per output over
// steps of 8 elements, hsum8 at the end) with 512-bit registers, bit-identical to the 256-bit tiles.
// The two types differ only in how a tile's rows are widened to f32 when staged (both exactly).
//
// Why it can stay bit-identical: a 512-bit register holds two independent 8-lane accumulators, rows
// r and r + 1 for the same token, and each half performs exactly the FMA its 256-bit reference does.
// Why it is faster: this CPU retires about as many 512-bit FMAs per cycle as 256-bit ones (two units),
// so each instruction does twice the work. The weights' f16 -> f32 conversion would eat that gain if
// done per token, so a tile's rows are converted once into a small f32 buffer, laid out in row pairs
// (8 elements of row r, then the same 8 of row r + 1), and every token passes over that buffer.
//
// Blocking: a tile that ran over the whole inner dimension would stream every token's f32
// activations through the cache once per tile of rows — for Qwen's FFN down (4864 inputs x 128 tokens,
// 2.4 MiB) or Llama's (8192 inputs, 4 MiB) that is L3 traffic, 4 bytes per 10 products. Instead the
// rows go in blocks of kBlockRows and the inner dimension in blocks of kBlockSteps steps: a block's
// activations (128 tokens x 512 elements, 256 KiB) stay in L2 while all the block's row tiles pass
// over them, and each tile's staged rows (20 KiB) stay in L1 while every token passes. Between
// inner blocks a tile's accumulators wait in memory; each lane still performs exactly its
// reference's FMAs in order, so parking changes where a partial sum waits, not the arithmetic.
// Measured (bench, Qwen2.5-0.5B F16 pp128, alternating runs): see docs/performance.md.
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/tile_dispatch.h"

namespace chassis {
namespace {
using namespace avx2;

// A 5 x 5 tile: 25 accumulators, 5 staged row pairs and one broadcast activation in the 32 registers
// (fewer activation loads per FMA than the 3 x 7 before it: +6 % single-thread on model shapes).
constexpr int kPairs = 5;  // rows per tile: 5 pairs
constexpr int kToks = 5;
constexpr int64_t kBlockRows = 40;   // four tiles
constexpr int64_t kBlockSteps = 64;  // 512 elements

// Steps [j0, j0 + n_steps) of rows [0, n_rows) of the tile (n_rows <= 2 * kPairs) converted to f32
// in row pairs: pair k, step j0 + j at staged[(k * n_steps + j) * 16]: row 2k's elements, then row
// 2k+1's (a missing odd row repeats the last one; its results are not stored). BF16 when bf16, else F16.
template <bool kBf16>
CHASSIS_AVX512 void stage_rows(const TileProblem& p, int n_rows, int64_t j0, int64_t n_steps, float* staged) {
  for (int k = 0; k < (n_rows + 1) / 2; ++k) {
    const auto* a = reinterpret_cast<const uint16_t*>(p.w + (2 * k) * p.w_stride);
    const auto* b = reinterpret_cast<const uint16_t*>(p.w + std::min(2 * k + 1, n_rows - 1) * p.w_stride);
    float* out = staged + k * n_steps * 16;
    for (int64_t j = 0; j < n_steps; ++j) {
      const __m256i halves = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b + 8 * (j0 + j)),
                                                 reinterpret_cast<const __m128i*>(a + 8 * (j0 + j)));
      if constexpr (kBf16)
        _mm512_storeu_ps(out + 16 * j, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16)));
      else
        _mm512_storeu_ps(out + 16 * j, _mm512_cvtph_ps(halves));
    }
  }
}

// The 8 floats at p in both halves of a 512-bit register.
CHASSIS_AVX512 inline __m512 broadcast8(const float* p) {
  return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(reinterpret_cast<const double*>(p))));
}

// A tile of P row pairs x T tokens over the staged steps [j0, j0 + staged_steps). `parked` keeps its
// P * T accumulators between inner blocks (the first block starts from zero; write_sums reads them
// after the last).
template <int P, int T, bool First>
CHASSIS_AVX512 void tile(const TileProblem& p, const float* staged, int64_t staged_steps, int64_t t0, int64_t j0,
                         float* parked) {
  __m512 acc[P][T];
  for (int k = 0; k < P; ++k)
    for (int t = 0; t < T; ++t) acc[k][t] = First ? _mm512_setzero_ps() : _mm512_loadu_ps(parked + 16 * (k * T + t));
  const float* act[T];
  for (int t = 0; t < T; ++t) act[t] = reinterpret_cast<const float*>(p.act + (t0 + t) * p.act_stride) + 8 * j0;
  for (int64_t j = 0; j < staged_steps; ++j) {
    __m512 w[P];
    for (int k = 0; k < P; ++k) w[k] = _mm512_loadu_ps(staged + (k * staged_steps + j) * 16);
    for (int t = 0; t < T; ++t) {
      const __m512 y = broadcast8(act[t] + 8 * j);
      for (int k = 0; k < P; ++k) acc[k][t] = _mm512_fmadd_ps(w[k], y, acc[k][t]);
    }
  }
  for (int k = 0; k < P; ++k)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(parked + 16 * (k * T + t), acc[k][t]);
}

// The tile's outputs from its parked accumulators (as tile<P, toks> leaves them): each half's hsum8.
CHASSIS_AVX512 void write_sums(const TileProblem& p, const float* parked, int n_rows, int64_t t0, int toks) {
  for (int k = 0; 2 * k < n_rows; ++k)
    for (int t = 0; t < toks; ++t) {
      const __m512 acc = _mm512_loadu_ps(parked + 16 * (k * toks + t));
      float* y = p.y + (t0 + t) * p.y_stride + 2 * k;
      y[0] = hsum8(_mm512_castps512_ps256(acc));
      if (2 * k + 1 < n_rows) y[1] = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
    }
}

// n floats of v starting on a cache line (v grows as needed).
float* cache_aligned(std::vector<float>& v, size_t n) {
  if (v.size() < n + 16) v.resize(n + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}

}  // namespace

int64_t f16_batch_block_rows() { return kBlockRows; }

void matmul_f16_batch_avx512(DType wt, const TileProblem& p) {
  constexpr int kTileRows = 2 * kPairs;
  const int64_t n_steps = p.n / 8;
  const int64_t block = std::min(kBlockSteps, n_steps);
  const int64_t n_tok_tiles = (p.n_tok + kToks - 1) / kToks;
  const int64_t parked_per_tile = kPairs * kToks * 16;
  // Both buffers start on a cache line, so that no 64-byte load straddles two (the heap's 16-byte
  // alignment split three staged-row loads in four: +9 % on model shapes once aligned).
  thread_local std::vector<float> staged_storage, parked_storage;
  float* staged = cache_aligned(staged_storage, size_t(kTileRows * block * 8));
  float* parked = cache_aligned(parked_storage, size_t(kBlockRows / kTileRows * n_tok_tiles * parked_per_tile));
  for (int64_t r0 = 0; r0 < p.n_rows; r0 += kBlockRows) {
    const int64_t block_rows = std::min<int64_t>(kBlockRows, p.n_rows - r0);
    for (int64_t j0 = 0; j0 < n_steps; j0 += block) {
      const int64_t steps = std::min(block, n_steps - j0);
      for (int64_t r = 0; r < block_rows; r += kTileRows) {
        const int n_rows = int(std::min<int64_t>(kTileRows, block_rows - r));
        TileProblem sub = p;
        sub.w = p.w + (r0 + r) * p.w_stride;
        sub.y = p.y + r0 + r;
        if (wt == DType::BF16) stage_rows<true>(sub, n_rows, j0, steps, staged);
        else stage_rows<false>(sub, n_rows, j0, steps, staged);
        float* tile_parked = parked + (r / kTileRows) * n_tok_tiles * parked_per_tile;
        for (int64_t t = 0; t < p.n_tok; t += kToks) {
          const int toks = int(std::min<int64_t>(kToks, p.n_tok - t));
          float* tile_tok_parked = tile_parked + (t / kToks) * parked_per_tile;
          with_constant<kPairs>((n_rows + 1) / 2, [&]<int P>() {
            with_constant<kToks>(toks, [&]<int T>() {
              if (j0 == 0) tile<P, T, true>(sub, staged, steps, t, j0, tile_tok_parked);
              else tile<P, T, false>(sub, staged, steps, t, j0, tile_tok_parked);
            });
          });
          if (j0 + steps == n_steps) write_sums(sub, tile_tok_parked, n_rows, t, toks);
        }
      }
    }
  }
}

}  // namespace chassis
