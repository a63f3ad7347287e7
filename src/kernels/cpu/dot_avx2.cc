// AVX2 dot products of a weight row with encoded activations. Each performs exactly the float
// operations of its scalar reference in kernels/ref/dot.cc, in the same order (integer partial sums
// are exact, so they may be formed any way), so results are bit-identical to the reference and the
// goldens keep matching. Types without a kernel here fall back to the reference.
#include "kernels/cpu/dot_avx2.h"

#include <cpuid.h>
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "core/fp16.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/quants.h"

namespace chassis {
namespace {
using namespace avx2;

// Four accumulators over steps of 32, combined (0+2)+(1+3), then hadd_reduce8 (ggml_vec_dot_f32/f16).
template <typename T>
CHASSIS_AVX2 float dot_4x8(const T* w, const T* a, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t np = n & ~int64_t(31);
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j) acc[j] = _mm256_fmadd_ps(load8(w + i + 8 * j), load8(a + i + 8 * j), acc[j]);
  const __m256 c = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
  if constexpr (std::is_same_v<T, float>) {
    float sum = hadd_reduce8(c);
    for (int64_t i = np; i < n; ++i) sum += w[i] * a[i];
    return sum;
  } else {
    double sum = hadd_reduce8(c);
    for (int64_t i = np; i < n; ++i) sum += double(h2f(w[i]) * h2f(a[i]));
    return float(sum);
  }
}

// tinyBLAS: one 8-lane FMA accumulator, then hsum8.
template <typename T>
CHASSIS_AVX2 float dot_8lane(const T* w, const T* a, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(load8(w + i), load8(a + i), acc);
  return hsum8(acc);
}


CHASSIS_AVX2 float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256 d = _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes_i8(x, y)), acc);
  }
  return hsum8(acc);
}

// Repacked Q4_0: one exact integer sum per block, FMA per block in order.
CHASSIS_AVX2 float dot_q4_0(const BlockQ4_0* w, const BlockQ8_0* a, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i x = _mm256_sub_epi8(nibbles(w[b].qs), _mm256_set1_epi8(8));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
    const int32_t s = hsum_i32(lanes_i8(x, y));
    acc = std::fma(float(s), h2f(w[b].d) * h2f(a[b].d), acc);
  }
  return acc;
}


// Repacked Q4_K: exact integer sums flushed per super-block (gemv) or per sub-block pair (gemm).
CHASSIS_AVX2 float dot_q4_k(const BlockQ4_K* w, const BlockQ8_K* a, int64_t nb, bool gemm) {
  float acc = 0, acc_min = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(w[i].d) * a[i].d;
    const float dmin = h2f(w[i].dmin) * a[i].d;
    int32_t isum = 0, imin = 0;
    for (int j = 0; j < 4; ++j) {  // 64 elements: low nibbles are sub-block 2j, high nibbles 2j+1
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * j));
      const __m256i lo = _mm256_and_si256(raw, _mm256_set1_epi8(0x0F));
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F));
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 64 * j));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 64 * j + 32));
      for (int h = 0; h < 2; ++h) {
        const int sb = 2 * j + h;
        int sc, mn;
        k4_scale_min(w[i].scales, sb, sc, mn);
        isum += sc * hsum_i32(lanes_u8(h ? hi : lo, h ? y1 : y0));
        imin += mn * (a[i].bsums[2 * sb] + a[i].bsums[2 * sb + 1]);
      }
      if (gemm) {
        acc = std::fma(float(isum), d, acc);
        acc_min = std::fma(float(imin), dmin, acc_min);
        isum = imin = 0;
      }
    }
    if (!gemm) {
      acc = std::fma(float(isum), d, acc);
      acc_min = std::fma(float(imin), dmin, acc_min);
    }
  }
  return acc - acc_min;
}

// Q6_K: per-lane integer sums over the super-block (unsigned 6-bit quants, scales per 16), the -32
// offset through the activation sums, one FMA with d per super-block, hsum8 at the end.
CHASSIS_AVX2 float dot_q6_k(const BlockQ6_K* w, const BlockQ8_K* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * h2f(w[i].d);
    const uint8_t* ql = w[i].ql;
    const uint8_t* qh = w[i].qh;
    const int8_t* q8 = a[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 2; ++j) {
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i b2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i bh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      __m256i q[4];
      q6_k_quants(b1, b2, bh, q);
      for (int k = 0; k < 4; ++k) {
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k));
        const __m256i p16 = _mm256_maddubs_epi16(q[k], y);
        const int16_t sa = w[i].scales[8 * j + 2 * k], sb = w[i].scales[8 * j + 2 * k + 1];
        const __m256i scale = _mm256_setr_epi16(sa, sa, sa, sa, sa, sa, sa, sa, sb, sb, sb, sb, sb, sb, sb, sb);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale, p16));
      }
      ql += 64;
      qh += 32;
      q8 += 128;
    }
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].bsums));
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales)));
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(bsums, sc16), 5));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum8(acc);
}

// ggml_vec_dot_bf16 (single row): four mul-then-add accumulators, (c1+c3)+(c2+c4), hsum8, double tail.
CHASSIS_AVX2 float dot_bf16_single(const Bf16* w, const Bf16* a, int64_t n) {
  __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t np = n & ~int64_t(31);
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j) c[j] = _mm256_add_ps(_mm256_mul_ps(load8(w + i + 8 * j), load8(a + i + 8 * j)), c[j]);
  double sum = hsum8(_mm256_add_ps(_mm256_add_ps(c[0], c[2]), _mm256_add_ps(c[1], c[3])));
  for (int64_t i = np; i < n; ++i) sum += double(bf16_to_f32(w[i].v) * bf16_to_f32(a[i].v));
  return float(sum);
}

CHASSIS_AVX2 float dot_q5_0(const BlockQ5_0* w, const BlockQ8_0* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256 d = _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d));
    const __m256i x = _mm256_sub_epi8(_mm256_or_si256(nibbles(w[b].qs), fifth_bits(w[b].qh)), _mm256_set1_epi8(16));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes_i8(x, y)), acc);
  }
  return hsum8(acc);
}

// Q4_1 / Q5_1: unsigned quants, minimum term through the activation sums, added at the end.
template <typename B>
CHASSIS_AVX2 float dot_min_q8_1(const B* w, const BlockQ8_1* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < nb; ++b) {
    mins = std::fma(h2f(w[b].m), h2f(a[b].s), mins);
    __m256i x = nibbles(w[b].qs);
    if constexpr (std::is_same_v<B, BlockQ5_1>) x = _mm256_or_si256(x, fifth_bits(w[b].qh));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
    const __m256 d = _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes_u8(x, y)), acc);
  }
  return hsum8(acc) + mins;
}

// Scales for the two 16-element halves of a 32-element vector, as 16 int16 lanes.
CHASSIS_AVX2 inline __m256i scale_pair(int16_t lo, int16_t hi) {
  return _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi);
}

CHASSIS_AVX2 float dot_q2_k(const BlockQ2_K* w, const BlockQ8_K* a, int64_t nb) {
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * h2f(w[i].d);
    const float dmin = -a[i].d * h2f(w[i].dmin);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0F)));
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].bsums));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsums)), acc);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 2; ++j) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * j));
      for (int k = 0; k < 4; ++k) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 128 * j + 32 * k));
        const int g = 8 * j + 2 * k;
        const __m256i sc = scale_pair(w[i].scales[g] & 0xF, w[i].scales[g + 1] & 0xF);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, _mm256_maddubs_epi16(q, y)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum8(acc);
}

CHASSIS_AVX2 float dot_q3_k(const BlockQ3_K* w, const BlockQ8_K* a, int64_t nb) {
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * h2f(w[i].d);
    int16_t scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = int16_t(q3k_scale(w[i].scales, j));
    const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].hmask));
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 2; ++j) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * j));
      for (int k = 0; k < 4; ++k) {
        const int bit = 4 * j + k;
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
        // 4 where the high bit is clear: the value is low - 4
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hmask, bit), _mm256_set1_epi8(1));
        const __m256i minus = _mm256_slli_epi16(_mm256_xor_si256(hb, _mm256_set1_epi8(1)), 2);
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 128 * j + 32 * k));
        const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(low, y), _mm256_maddubs_epi16(minus, y));
        const int g = 8 * j + 2 * k;
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair(scales[g], scales[g + 1]), p16));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum8(acc);
}

CHASSIS_AVX2 float dot_q5_k(const BlockQ5_K* w, const BlockQ8_K* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = a[i].d * h2f(w[i].d);
    const float dmin = -a[i].d * h2f(w[i].dmin);
    int sc[8], mn[8];
    int32_t msum = 0;
    for (int sb = 0; sb < 8; ++sb) {
      k4_scale_min(w[i].scales, sb, sc[sb], mn[sb]);
      msum += mn[sb] * (a[i].bsums[2 * sb] + a[i].bsums[2 * sb + 1]);
    }
    mins = std::fma(dmin, float(msum), mins);
    const __m256i hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh));
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * j));
      for (int h = 0; h < 2; ++h) {
        const int sb = 2 * j + h;
        const __m256i lo = _mm256_and_si256(h ? _mm256_srli_epi16(raw, 4) : raw, _mm256_set1_epi8(0x0F));
        const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, sb), _mm256_set1_epi8(1)), 4);
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * sb));
        const __m256i p16 = _mm256_maddubs_epi16(_mm256_or_si256(lo, hi), y);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_set1_epi16(int16_t(sc[sb])), p16));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum8(acc) + mins;
}

}  // namespace

namespace {
// CPUID check (compilers disagree on which names __builtin_cpu_supports knows): AVX2, FMA, F16C, and
// the OS saving the YMM registers.
bool detect_avx2() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 6) != 6) return false;  // XMM and YMM state enabled
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return b & (1u << 5);
}
}  // namespace

static bool detect_avx512bw() {
  unsigned a, b, c, d;
  if (!detect_avx2() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31);
  if (!(f && bw && vl)) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 0xE0) == 0xE0;  // opmask, ZMM upper halves and ZMM16-31 state enabled
}

bool cpu_has_avx512bw() {
  static const bool ok = detect_avx512bw();
  return ok;
}

bool cpu_has_gfni() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 8)) != 0;
  }();
  return ok;
}

bool cpu_has_avx512vnni() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    return cpu_has_avx512bw() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11)) != 0;
  }();
  return ok;
}

bool cpu_has_avx_vnni() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    return cpu_has_avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) != 0;
  }();
  return ok;
}

bool cpu_has_avx2() {
  static const bool ok = detect_avx2();
  return ok;
}

bool use_simd_kernels() {
  static const bool ok = cpu_has_avx2() && std::getenv("CHASSIS_REFERENCE_KERNELS") == nullptr;
  return ok;
}

bool vec_dot_avx2(DType wt, const void* w, const void* act, int64_t n, int64_t batch_rows, int64_t row, float* out) {
  const auto [tiny_blas, repack_gemm] = dot_variant(n, batch_rows, row);
  switch (wt) {
    case DType::F32: {
      const auto* x = static_cast<const float*>(w);
      const auto* y = static_cast<const float*>(act);
      *out = tiny_blas ? dot_8lane(x, y, n) : dot_4x8(x, y, n);
      return true;
    }
    case DType::F16: {
      const auto* x = static_cast<const uint16_t*>(w);
      const auto* y = static_cast<const uint16_t*>(act);
      *out = tiny_blas ? dot_8lane(x, y, n) : dot_4x8(x, y, n);
      return true;
    }
    case DType::BF16: {
      const auto* x = static_cast<const Bf16*>(w);
      const auto* y = static_cast<const Bf16*>(act);
      *out = tiny_blas ? dot_8lane(x, y, n) : dot_bf16_single(x, y, n);
      return true;
    }
    case DType::Q5_0:
      *out = dot_q5_0(static_cast<const BlockQ5_0*>(w), static_cast<const BlockQ8_0*>(act), n / QK);
      return true;
    case DType::Q4_1:
      *out = dot_min_q8_1(static_cast<const BlockQ4_1*>(w), static_cast<const BlockQ8_1*>(act), n / QK);
      return true;
    case DType::Q5_1:
      *out = dot_min_q8_1(static_cast<const BlockQ5_1*>(w), static_cast<const BlockQ8_1*>(act), n / QK);
      return true;
    case DType::Q2_K:
      *out = dot_q2_k(static_cast<const BlockQ2_K*>(w), static_cast<const BlockQ8_K*>(act), n / QK_K);
      return true;
    case DType::Q3_K:
      *out = dot_q3_k(static_cast<const BlockQ3_K*>(w), static_cast<const BlockQ8_K*>(act), n / QK_K);
      return true;
    case DType::Q5_K:
      *out = dot_q5_k(static_cast<const BlockQ5_K*>(w), static_cast<const BlockQ8_K*>(act), n / QK_K);
      return true;
    case DType::Q8_0:
      *out = dot_q8_0(static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(act), n / QK);
      return true;
    case DType::Q4_0:
      *out = dot_q4_0(static_cast<const BlockQ4_0*>(w), static_cast<const BlockQ8_0*>(act), n / QK);
      return true;
    case DType::Q4_K:
      *out = dot_q4_k(static_cast<const BlockQ4_K*>(w), static_cast<const BlockQ8_K*>(act), n / QK_K, repack_gemm);
      return true;
    case DType::Q6_K:
      *out = dot_q6_k(static_cast<const BlockQ6_K*>(w), static_cast<const BlockQ8_K*>(act), n / QK_K);
      return true;
    default:
      return false;
  }
}

}  // namespace chassis
