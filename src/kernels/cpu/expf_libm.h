// expf of eight floats at once, bit-identical to the C library's scalar expf where that is glibc's
// FMA variant (Debian 12's glibc 2.36 on any x86-64 CPU with FMA): the same double-precision steps,
// constants and table, lane by lane. Why not a faster or more accurate exp: the attention kernels must
// reproduce their reference's every rounding, and the reference (llama.cpp's CPU attention, and our
// scalar kernels/ref) calls expf. Lanes the vector path does not cover (|x| >= 88, inf, NaN; the
// library's own slow path) are left to the caller's scalar expf, except -inf, whose result is 0.
//
// The algorithm (glibc sysdeps/ieee754/flt-32/e_expf.c, from Arm's optimized-routines), as its FMA
// build compiles it (read off the machine code of __expf_fma):
//   kd = fma(InvLn2N, x, Shift); ki = bits(kd); kd -= Shift;   k = round(x * 32 / ln2)
//   r  = fma(InvLn2N, x, -kd)                                  x * 32 / ln2 - k
//   s  = double(T[ki % 32] + (ki << 47))                       2^(k / 32)
//   y  = fma(fma(C0, r, C1), r * r, fma(C2, r, 1)) * s         2^(r / 32) * s
// The constants are the library's (__exp2f_data's invln2_scaled, shift, poly_scaled and tab).
// use_libm_expf8() checks the whole claim against the C library once per process and says whether
// to use expf8 at all. expf8_avx2 is the same on AVX2 (four doubles a register, the table by a
// gather), checked by use_libm_expf8_avx2().
#pragma once
#include "kernels/cpu/avx512_util.h"  // first: see there

#include <immintrin.h>

#include <cstdint>

namespace chassis {

namespace expf_detail {
inline constexpr uint64_t kTable[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
inline constexpr uint64_t kInvLn2N = 0x40471547652b82fe;  // 32 / ln 2
inline constexpr uint64_t kShift = 0x4338000000000000;    // 0x1.8p52
inline constexpr uint64_t kC0 = 0x3ebc6af84b912394, kC1 = 0x3f2ebfce50fac4f3, kC2 = 0x3f962e42ff0c52d6;
}  // namespace expf_detail

// expf of the lanes of x whose |x| < 88 (the library's fast path) or x == -inf (0). `scalar` gets the
// lanes left to the caller (bit l for lane l): every other lane of the result is expf's.
CHASSIS_AVX512 inline __m256 expf8(__m256 x, unsigned& scalar) {
  using namespace expf_detail;
  const __m512d c_inv = _mm512_set1_pd(__builtin_bit_cast(double, kInvLn2N));
  const __m512d c_shift = _mm512_set1_pd(__builtin_bit_cast(double, kShift));
  const __m512d xd = _mm512_cvtps_pd(x);
  const __m512d kd = _mm512_fmadd_pd(c_inv, xd, c_shift);
  const __m512i ki = _mm512_castpd_si512(kd);
  const __m512d r = _mm512_fmsub_pd(c_inv, xd, _mm512_sub_pd(kd, c_shift));
  // T[ki % 32]: two 16-entry lookups, picked by bit 4 of the index.
  const __m512i t0 = _mm512_permutex2var_epi64(_mm512_loadu_si512(kTable), ki, _mm512_loadu_si512(kTable + 8));
  const __m512i t1 = _mm512_permutex2var_epi64(_mm512_loadu_si512(kTable + 16), ki, _mm512_loadu_si512(kTable + 24));
  const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
  const __m512i t = _mm512_add_epi64(_mm512_mask_blend_epi64(upper, t0, t1), _mm512_slli_epi64(ki, 47));
  const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(__builtin_bit_cast(double, kC0)), r, _mm512_set1_pd(__builtin_bit_cast(double, kC1)));
  const __m512d y0 = _mm512_fmadd_pd(_mm512_set1_pd(__builtin_bit_cast(double, kC2)), r, _mm512_set1_pd(1.0));
  const __m512d y = _mm512_mul_pd(_mm512_fmadd_pd(z, _mm512_mul_pd(r, r), y0), _mm512_castsi512_pd(t));
  __m256 out = _mm512_cvtpd_ps(y);
  // The library's slow path: the top twelve bits of |x| at or above those of 88 (NaN and inf too).
  const __m256i abstop = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
  const __mmask8 slow = _mm256_cmpgt_epi32_mask(abstop, _mm256_set1_epi32(0x42a));
  const __mmask8 minus_inf = _mm256_cmpeq_epi32_mask(_mm256_castps_si256(x), _mm256_set1_epi32(int32_t(0xff800000u)));
  out = _mm256_mask_blend_ps(minus_inf, out, _mm256_setzero_ps());
  scalar = unsigned(slow & ~minus_inf);
  return out;
}

// The same on AVX2 alone: the eight lanes as two halves of four doubles, T[ki % 32] by a gather, the
// slow-path and -inf lanes found by compares. Every step is expf8's, so the two agree bit for bit.
CHASSIS_AVX2 inline __m256d expf4_fast_path(__m128 x) {
  using namespace expf_detail;
  const __m256d c_inv = _mm256_set1_pd(__builtin_bit_cast(double, kInvLn2N));
  const __m256d c_shift = _mm256_set1_pd(__builtin_bit_cast(double, kShift));
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d kd = _mm256_fmadd_pd(c_inv, xd, c_shift);
  const __m256i ki = _mm256_castpd_si256(kd);
  const __m256d r = _mm256_fmsub_pd(c_inv, xd, _mm256_sub_pd(kd, c_shift));
  const __m256i index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i t = _mm256_add_epi64(_mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTable), index, 8),
                                     _mm256_slli_epi64(ki, 47));
  const __m256d z = _mm256_fmadd_pd(_mm256_set1_pd(__builtin_bit_cast(double, kC0)), r, _mm256_set1_pd(__builtin_bit_cast(double, kC1)));
  const __m256d y0 = _mm256_fmadd_pd(_mm256_set1_pd(__builtin_bit_cast(double, kC2)), r, _mm256_set1_pd(1.0));
  return _mm256_mul_pd(_mm256_fmadd_pd(z, _mm256_mul_pd(r, r), y0), _mm256_castsi256_pd(t));
}
CHASSIS_AVX2 inline __m256 expf8_avx2(__m256 x, unsigned& scalar) {
  const __m128 lo = _mm256_cvtpd_ps(expf4_fast_path(_mm256_castps256_ps128(x)));
  const __m128 hi = _mm256_cvtpd_ps(expf4_fast_path(_mm256_extractf128_ps(x, 1)));
  __m256 out = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i abstop = _mm256_and_si256(_mm256_srli_epi32(bits, 20), _mm256_set1_epi32(0x7ff));
  const __m256i slow = _mm256_cmpgt_epi32(abstop, _mm256_set1_epi32(0x42a));
  const __m256i minus_inf = _mm256_cmpeq_epi32(bits, _mm256_set1_epi32(int32_t(0xff800000u)));
  out = _mm256_andnot_ps(_mm256_castsi256_ps(minus_inf), out);
  scalar = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_andnot_si256(minus_inf, slow))));
  return out;
}

// Which of the two a check or a caller means.
enum class ExpfLanes { kAvx512, kAvx2 };

// How many floats with bit patterns first_bits, first_bits + stride, ... <= last_bits get from
// expf8 (or expf8_avx2; on the lanes it does not leave to the caller) other bits than from expf.
int64_t expf8_mismatches(uint32_t first_bits, uint32_t last_bits, uint32_t stride, ExpfLanes lanes = ExpfLanes::kAvx512);

// Whether expf8 matches this process's expf (checked once, over a sweep of the fast path's range
// and its edges), and the CPU has AVX-512. Elsewhere the callers keep to scalar expf.
bool use_libm_expf8();
// The same for expf8_avx2, on a CPU with AVX2 (whether or not it has AVX-512).
bool use_libm_expf8_avx2();

}  // namespace chassis
