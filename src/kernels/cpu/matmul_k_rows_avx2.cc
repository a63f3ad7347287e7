// Row-major tiles of the k-quants whose reference keeps eight lanes per row (Q6_K, Q3_K, Q2_K): a
// row's 32 consecutive elements fill one 256-bit vector, so its lanes are the reference's lanes, and
// with AVX-512 a super-block's two 128-element halves sit side by side in one register. (Q4_K and Q5_K
// are interleaved instead: matmul_interleaved_q4_k_avx2.cc, matmul_interleaved_q5_k_avx2.cc.)
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <cstring>

#include "kernels/cpu/matmul_avx2.h"
#include "kernels/cpu/row_tiles.h"

namespace chassis {
namespace {
using namespace avx2;
using namespace row_tiles;

// ---- Q6_K: per-lane integer sums over the super-block (scales per 16 elements), the -32 offset
// through the activation sums, one lane FMA with d per super-block, hsum8 at the end. Each 32
// quants' scaled pairs go into the lane sums by SCALED (madd then add; with AVX-VNNI one vpdpwssd,
// the same exact integers): one body for two targets, as a target attribute cannot be a template
// parameter. AVX-VNNI against madd + add (AVX-512 off), BM_Matmul_Q6_K one token, three
// alternations: one thread, hot, 19.6-20.0 -> 22.1-28.5 GB/s; two threads from memory 38.5-41.8 ->
// 50.4-53.3; Llama-3.2-1B decode (--ab) Q4_K_M 1.015, Q4_0 1.010.
CHASSIS_AVX2 inline __m256i q6_k_scaled(__m256i sums, __m256i scale, __m256i pairs) {
  return _mm256_add_epi32(sums, _mm256_madd_epi16(scale, pairs));
}
CHASSIS_AVX_VNNI inline __m256i q6_k_scaled_avx_vnni(__m256i sums, __m256i scale, __m256i pairs) {
  return _mm256_dpwssd_avx_epi32(sums, scale, pairs);
}
#define CHASSIS_DEFINE_Q6_K_TILE(NAME, TARGET, SCALED) \
struct NAME { \
  static constexpr int kRows = 2, kToks = 2; \
  template <int R, int T> \
  TARGET static void tile(const TileProblem& p) { \
    __m256 acc[R][T]; \
    zero(acc); \
    const int64_t nb = p.n / QK_K; \
    for (int64_t i = 0; i < nb; ++i) { \
      prefetch_ahead(p.w, i * R * int64_t(sizeof(BlockQ6_K)), R * int64_t(sizeof(BlockQ6_K))); \
      __m256i sumi[R][T]; \
      for (auto& row : sumi) \
        for (auto& s : row) s = _mm256_setzero_si256(); \
      for (int j = 0; j < 2; ++j) { \
        for (int r = 0; r < R; ++r) { \
          const BlockQ6_K& w = blocks<BlockQ6_K>(p.w, p.w_stride, r)[i]; \
          /* this half's 8 scales as int16 in both 128-bit halves; pair k takes scale 2k for its low \
             16 elements and 2k+1 for its high 16, picked by one shuffle */ \
          const __m256i sc8 = _mm256_broadcastsi128_si256( \
              _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w.scales + 8 * j)))); \
          const __m256i b1 = load256(w.ql + 64 * j), b2 = load256(w.ql + 64 * j + 32); \
          const __m256i bh = load256(w.qh + 32 * j); \
          __m256i q[4]; \
          q6_k_quants(b1, b2, bh, q); \
          for (int k = 0; k < 4; ++k) { \
            const int16_t pick_a = int16_t(0x0100 + 0x0202 * (2 * k)), pick_b = int16_t(0x0100 + 0x0202 * (2 * k + 1)); \
            const __m256i scale = _mm256_shuffle_epi8(sc8, _mm256_setr_epi16(pick_a, pick_a, pick_a, pick_a, pick_a, pick_a, pick_a, pick_a, \
                                                                             pick_b, pick_b, pick_b, pick_b, pick_b, pick_b, pick_b, pick_b)); \
            for (int t = 0; t < T; ++t) { \
              const __m256i y = load256(blocks<BlockQ8_K>(p.act, p.act_stride, t)[i].qs + 128 * j + 32 * k); \
              sumi[r][t] = SCALED(sumi[r][t], scale, _mm256_maddubs_epi16(q[k], y)); \
            } \
          } \
        } \
      } \
      for (int r = 0; r < R; ++r) { \
        const BlockQ6_K& w = blocks<BlockQ6_K>(p.w, p.w_stride, r)[i]; \
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales))); \
        const float dw = h2f(w.d); \
        for (int t = 0; t < T; ++t) { \
          const BlockQ8_K& a = blocks<BlockQ8_K>(p.act, p.act_stride, t)[i]; \
          const __m256i bsums = load256(a.bsums); \
          const __m256i s = _mm256_sub_epi32(sumi[r][t], _mm256_slli_epi32(_mm256_madd_epi16(bsums, sc16), 5)); \
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * dw), _mm256_cvtepi32_ps(s), acc[r][t]); \
        } \
      } \
    } \
    store_hsums(p, acc); \
  } \
};
CHASSIS_DEFINE_Q6_K_TILE(TileQ6_K, CHASSIS_AVX2, q6_k_scaled)
CHASSIS_DEFINE_Q6_K_TILE(TileQ6_KAvxVnni, CHASSIS_AVX_VNNI, q6_k_scaled_avx_vnni)
#undef CHASSIS_DEFINE_Q6_K_TILE

// Index of permutexvar_epi16 that spreads 16 int16 scales (sub-block order) over the 16-element
// halves of two 32-element vectors: {s[a] x 8, s[a+1] x 8} in the low 256 bits, {s[b] x 8, s[b+1] x 8}
// in the high 256.
CHASSIS_AVX512 inline __m512i spread_scales_index(int a, int b) {
  alignas(64) int16_t idx[32];
  for (int e = 0; e < 32; ++e) idx[e] = int16_t((e < 16 ? a : b) + (e % 16) / 8);
  return _mm512_load_si512(idx);
}

// Q6_K with 512-bit registers (AVX-512BW): a super-block's two halves side by side, j = 0 in the low
// 256 bits and j = 1 in the high, so each instruction unpacks and multiplies twice the quants, and a
// row's quants are unpacked once for the tile's tokens. The two halves' integer lane sums are added
// at the end of the super-block (exact integer arithmetic: the same sums TileQ6_K accumulates), then
// the float operations are TileQ6_K's.
struct TileQ6_KAvx512 {
  static constexpr int kRows = 1, kToks = 3;
  // Two 32-byte runs, lo at bits 0..255 and hi at 256..511.
  CHASSIS_AVX512 static __m512i join(const void* lo, const void* hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo)), load256(hi), 1);
  }
  template <int R, int T>
  CHASSIS_AVX512 static void tile(const TileProblem& p) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    // The qh shift of each 256-bit half: vectors 0 | 1 (low nibbles), 2 | 3 (high nibbles).
    const __m512i shift_01 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i shift_23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    __m256 acc[R][T];
    zero(acc);
    const int64_t nb = p.n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
      prefetch_ahead(p.w, i * R * int64_t(sizeof(BlockQ6_K)), R * int64_t(sizeof(BlockQ6_K)));
      for (int r = 0; r < R; ++r) {
        const BlockQ6_K& w = blocks<BlockQ6_K>(p.w, p.w_stride, r)[i];
        const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales))));
        __m512i sumi[T];
        for (auto& s : sumi) s = _mm512_setzero_si512();
        for (int j = 0; j < 2; ++j) {
          // Half j's vectors two at a time, each pair's 64 elements consecutive (so are their
          // activations): ql bytes 64j.. hold vectors 0 and 1 in their low nibbles, 2 and 3 in their
          // high ones; qh bytes 32j.. the high bits of all four.
          const __m512i b = _mm512_loadu_si512(w.ql + 64 * j);
          const __m512i hb = _mm512_broadcast_i64x4(load256(w.qh + 32 * j));
          __m512i q[2];
          q[0] = _mm512_or_si512(_mm512_and_si512(b, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, shift_01), m3), 4));
          q[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(b, 4), m4),
                                 _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, shift_23), m3), 4));
          for (int h = 0; h < 2; ++h) {
            const __m512i scale = _mm512_permutexvar_epi16(spread_scales_index(8 * j + 4 * h, 8 * j + 4 * h + 2), sc);
            for (int t = 0; t < T; ++t) {
              const BlockQ8_K& a = blocks<BlockQ8_K>(p.act, p.act_stride, t)[i];
              const __m512i y = _mm512_loadu_si512(a.qs + 128 * j + 64 * h);
              sumi[t] = _mm512_add_epi32(sumi[t], _mm512_madd_epi16(scale, _mm512_maddubs_epi16(q[h], y)));
            }
          }
        }
        const __m256i sc16 = _mm512_castsi512_si256(sc);
        const float dw = h2f(w.d);
        for (int t = 0; t < T; ++t) {
          const BlockQ8_K& a = blocks<BlockQ8_K>(p.act, p.act_stride, t)[i];
          const __m256i sum = _mm256_add_epi32(_mm512_castsi512_si256(sumi[t]), _mm512_extracti64x4_epi64(sumi[t], 1));
          const __m256i s = _mm256_sub_epi32(sum, _mm256_slli_epi32(_mm256_madd_epi16(load256(a.bsums), sc16), 5));
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * dw), _mm256_cvtepi32_ps(s), acc[r][t]);
        }
      }
    }
    store_hsums(p, acc);
  }
};

// Decode: one row at a time, so the weights stream as one linear run (as TileF16Single).
struct TileQ6_KAvx512Decode : TileQ6_KAvx512 {
  static constexpr int kRows = 1, kToks = 1;
};

// ---- Q2_K and Q3_K (reference: ggml_vec_dot_q2_K_q8_K / _q3_K_q8_K on AVX2, as dot_avx2 computes
// them): per-lane integer sums over the super-block, each 16-element half of a 32-element vector
// times its scale, one FMA by d per super-block (Q2_K's minimums first, one FMA by -dmin per lane).
// In 512-bit registers, each step's integer lane sums in the two 256-bit halves of one register,
// added at the end of the super-block (exact integer arithmetic: the same eight lane sums the
// reference accumulates, so the float steps are its own); a row's quants unpacked once for the
// tile's tokens.
//
// Q2_K: a step takes two consecutive 32-element vectors of one 128-element half (k and k + 1 of half
// j), so its 64 activations are one load and both vectors' quants come out of the same 32 bytes by
// one shift (the high copy shifted by 2 beforehand): 5 instructions per 64 quants with VNNI (6
// without), where the halves side by side (j = 0 | j = 1, vector k of each) took 7. BM_Matmul_Q2_K,
// one thread, hot, best of 24: decode 19.0 -> 17.8 us, 64 tokens 1.02 -> 0.95 ms.

// Step s (0..3) of a Q2_K super-block: vectors k = 2 (s % 2) and k + 1 of half j = s / 2.
template <int S>
struct Q2KStep {
  static constexpr int j = S / 2, k = 2 * (S % 2);
  // Its 2-bit quants: bits 2k.. of the half's 32 bytes for vector k (low 256 bits), bits 2k + 2.. for
  // vector k + 1 (high 256): one shift of both, after the high copy was shifted by 2 (pair_up).
  CHASSIS_AVX512 static __m512i quants(__m512i paired_bits) {
    return _mm512_and_si512(_mm512_srli_epi16(paired_bits, 2 * k), _mm512_set1_epi8(3));
  }
  // The scales of its four 16-element pieces: 8j + 2k .. 8j + 2k + 3, spread over their elements.
  CHASSIS_AVX512 static __m512i scale_index() { return spread_scales_index(8 * j + 2 * k, 8 * j + 2 * k + 2); }
};

// 32 bytes in the low 256 bits, and the same shifted right by SHIFT (16-bit lanes) in the high.
template <int SHIFT>
CHASSIS_AVX512 inline __m512i pair_up(const uint8_t* bytes) {
  const __m256i v = load256(bytes);
  return _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, SHIFT), 1);
}

// sums + scale * pairs (each int32 lane: its two int16 products), by madd, or by VNNI's vpdpwssd.
CHASSIS_AVX512 inline __m512i scaled_pairs(__m512i sums, __m512i scale, __m512i pairs) {
  return _mm512_add_epi32(sums, _mm512_madd_epi16(scale, pairs));
}
CHASSIS_VNNI inline __m512i scaled_pairs_vnni(__m512i sums, __m512i scale, __m512i pairs) {
  return _mm512_dpwssd_epi32(sums, scale, pairs);
}

// Q3_K keeps the halves side by side (j = 0 | j = 1, vector k of each). Tried in Q2_K's layout it ran
// no faster in decode and 1.4x slower in prefill (its activations and their offsets as two 512-bit
// loads a token and step split cache lines where the joined 256-bit halves did not); with VNNI, a
// per-token staged offset (one maddubs less a step) or its scales unpacked in vector registers,
// decode did not move either (BM_Matmul_Q3_K, one thread, hot, best of 24: 26.8-27.5 us each).

// Q3_K's 16 six-bit signed scales from their 12 packed bytes, four at a time (llama.cpp's unpacking:
// low nibbles from bytes 0..7, high two bits from bytes 8..11).
CHASSIS_AVX2 inline __m128i q3_k_scales(const uint8_t* packed) {
  uint32_t aux[3];
  std::memcpy(aux, packed, 12);
  constexpr uint32_t k2 = 0x03030303, k4 = 0x0f0f0f0f;
  const __m128i v = _mm_set_epi32(int(((aux[1] >> 4) & k4) | (((aux[2] >> 6) & k2) << 4)),
                                  int(((aux[0] >> 4) & k4) | (((aux[2] >> 4) & k2) << 4)),
                                  int((aux[1] & k4) | (((aux[2] >> 2) & k2) << 4)),
                                  int((aux[0] & k4) | ((aux[2] & k2) << 4)));
  return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

struct TileQ3_KAvx512 {
  static constexpr int kRows = 1, kToks = 3;
  template <int R, int T>
  CHASSIS_AVX512 static void tile(const TileProblem& p) {
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    __m256 acc[R][T];
    zero(acc);
    for (int64_t i = 0; i < p.n / QK_K; ++i) {
      prefetch_ahead(p.w, i * R * int64_t(sizeof(BlockQ3_K)), R * int64_t(sizeof(BlockQ3_K)));
      for (int r = 0; r < R; ++r) {
        const BlockQ3_K& w = blocks<BlockQ3_K>(p.w, p.w_stride, r)[i];
        const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(q3_k_scales(w.scales)));
        const __m512i bits = TileQ6_KAvx512::join(w.qs, w.qs + 32);
        // hmask bit 4j + k is the high bit of vector k of half j: half 1's bits moved down by 4.
        const __m256i hm = load256(w.hmask);
        const __m512i high = _mm512_inserti64x4(_mm512_castsi256_si512(hm), _mm256_srli_epi16(hm, 4), 1);
        __m512i sumi[T];
        for (auto& s : sumi) s = _mm512_setzero_si512();
        for (int k = 0; k < 4; ++k) {
          const __m512i low = _mm512_and_si512(_mm512_srli_epi16(bits, 2 * k), m3);
          // 4 where the high bit is clear: the quant is low - 4
          const __m512i minus = _mm512_slli_epi16(_mm512_andnot_si512(_mm512_srli_epi16(high, k), one), 2);
          const __m512i scale = _mm512_permutexvar_epi16(spread_scales_index(2 * k, 8 + 2 * k), sc);
          for (int t = 0; t < T; ++t) {
            const BlockQ8_K& a = blocks<BlockQ8_K>(p.act, p.act_stride, t)[i];
            const __m512i y = TileQ6_KAvx512::join(a.qs + 32 * k, a.qs + 128 + 32 * k);
            const __m512i q16 = _mm512_sub_epi16(_mm512_maddubs_epi16(low, y), _mm512_maddubs_epi16(minus, y));
            sumi[t] = _mm512_add_epi32(sumi[t], _mm512_madd_epi16(scale, q16));
          }
        }
        const float dw = h2f(w.d);
        for (int t = 0; t < T; ++t) {
          const BlockQ8_K& a = blocks<BlockQ8_K>(p.act, p.act_stride, t)[i];
          const __m256i sum = _mm256_add_epi32(_mm512_castsi512_si256(sumi[t]), _mm512_extracti64x4_epi64(sumi[t], 1));
          acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * dw), _mm256_cvtepi32_ps(sum), acc[r][t]);
        }
      }
    }
    store_hsums(p, acc);
  }
};

// Q2_K's tile for two targets, its scaled sums by SCALED (the same body: a target attribute cannot be
// a template parameter).
#define CHASSIS_DEFINE_Q2_K_TILE(Q2_NAME, TARGET, SCALED)                                              \
  struct Q2_NAME {                                                                                     \
    static constexpr int kRows = 1, kToks = 3;                                                         \
    template <int S, int T>                                                                            \
    TARGET static void step(const __m512i (&bits)[2], __m512i scale_index, const BlockQ8_K* const (&a)[T], __m512i sc, \
                            __m512i (&sumi)[T]) {                                                      \
      using St = Q2KStep<S>;                                                                           \
      const __m512i q = St::quants(bits[St::j]), scale = _mm512_permutexvar_epi16(scale_index, sc);    \
      for (int t = 0; t < T; ++t)                                                                      \
        sumi[t] = SCALED(sumi[t], scale, _mm512_maddubs_epi16(q, _mm512_loadu_si512(a[t]->qs + 128 * St::j + 32 * St::k))); \
    }                                                                                                  \
    template <int R, int T>                                                                            \
    TARGET static void tile(const TileProblem& p) {                                                    \
      const __m128i m4 = _mm_set1_epi8(0x0F);                                                          \
      const __m512i index[4] = {Q2KStep<0>::scale_index(), Q2KStep<1>::scale_index(), Q2KStep<2>::scale_index(), \
                                Q2KStep<3>::scale_index()};                                            \
      __m256 acc[R][T];                                                                                \
      zero(acc);                                                                                       \
      for (int64_t i = 0; i < p.n / QK_K; ++i) {                                                       \
        prefetch_ahead(p.w, i * R * int64_t(sizeof(BlockQ2_K)), R * int64_t(sizeof(BlockQ2_K)));     \
        const BlockQ8_K* a[T];                                                                         \
        for (int t = 0; t < T; ++t) a[t] = &blocks<BlockQ8_K>(p.act, p.act_stride, t)[i];              \
        for (int r = 0; r < R; ++r) {                                                                  \
          const BlockQ2_K& w = blocks<BlockQ2_K>(p.w, p.w_stride, r)[i];                               \
          const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));             \
          const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4)));     \
          const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));        \
          const __m512i bits[2] = {pair_up<2>(w.qs), pair_up<2>(w.qs + 32)};                           \
          __m512i sumi[T];                                                                             \
          for (auto& s : sumi) s = _mm512_setzero_si512();                                             \
          step<0>(bits, index[0], a, sc, sumi);                                                        \
          step<1>(bits, index[1], a, sc, sumi);                                                        \
          step<2>(bits, index[2], a, sc, sumi);                                                        \
          step<3>(bits, index[3], a, sc, sumi);                                                        \
          const float dw = h2f(w.d), mw = h2f(w.dmin);                                                 \
          for (int t = 0; t < T; ++t) {                                                                \
            const __m256i min_sums = _mm256_madd_epi16(mins, load256(a[t]->bsums));                    \
            acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(-a[t]->d * mw), _mm256_cvtepi32_ps(min_sums), acc[r][t]); \
            const __m256i sum = _mm256_add_epi32(_mm512_castsi512_si256(sumi[t]), _mm512_extracti64x4_epi64(sumi[t], 1)); \
            acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t]->d * dw), _mm256_cvtepi32_ps(sum), acc[r][t]); \
          }                                                                                            \
        }                                                                                              \
      }                                                                                                \
      store_hsums(p, acc);                                                                             \
    }                                                                                                  \
  };
CHASSIS_DEFINE_Q2_K_TILE(TileQ2_KAvx512, CHASSIS_AVX512, scaled_pairs)
CHASSIS_DEFINE_Q2_K_TILE(TileQ2_KVnni, CHASSIS_VNNI, scaled_pairs_vnni)
#undef CHASSIS_DEFINE_Q2_K_TILE

// Decode: one row at a time (as TileQ6_KAvx512Decode).
template <class Tile>
struct OneRowOneToken : Tile {
  static constexpr int kRows = 1, kToks = 1;
};

// The tile for one token or several, on the VNNI target where the CPU has it.
template <class Tile, class VnniTile>
void run_q2_k_tiles(const TileProblem& p) {
  if (use_vnni_tiles()) {
    if (p.n_tok == 1) return run_tiles<OneRowOneToken<VnniTile>>(p);
    return run_tiles<VnniTile>(p);
  }
  if (p.n_tok == 1) return run_tiles<OneRowOneToken<Tile>>(p);
  return run_tiles<Tile>(p);
}

}  // namespace

void matmul_k_rows_avx2(DType wt, const TileProblem& p) {
  switch (wt) {
    case DType::Q6_K:
      if (use_avx512_tiles()) {
        if (p.n_tok == 1) return run_tiles<TileQ6_KAvx512Decode>(p);
        return run_tiles<TileQ6_KAvx512>(p);
      }
      if (use_avx_vnni_tiles()) return run_tiles<TileQ6_KAvxVnni>(p);
      return run_tiles<TileQ6_K>(p);
    case DType::Q3_K:
      if (p.n_tok == 1) return run_tiles<OneRowOneToken<TileQ3_KAvx512>>(p);
      return run_tiles<TileQ3_KAvx512>(p);
    case DType::Q2_K: return run_q2_k_tiles<TileQ2_KAvx512, TileQ2_KVnni>(p);
    default: return;
  }
}

}  // namespace chassis
