// AVX2+FMA+F16C dot products, bit-identical to the scalar reference (kernels/ref/dot.cc).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace chassis {

// Whether this CPU can run the AVX2 kernels (checked once).
bool cpu_has_avx2();
// Whether it also has AVX-512F/BW/VL with the OS saving the mask and upper registers (checked once).
bool cpu_has_avx512bw();
// Whether it also has AVX512-VNNI (checked once).
bool cpu_has_avx512vnni();
// Whether it has GFNI (gf2p8affineqb and kin; checked once).
bool cpu_has_gfni();
// Whether it has AVX2 and AVX-VNNI (the VEX-encoded 256-bit vpdpbusd; checked once).
bool cpu_has_avx_vnni();
// Whether to use them: the CPU can, and CHASSIS_REFERENCE_KERNELS is not set (which forces the scalar
// reference everywhere, to rule the SIMD kernels out when debugging).
bool use_simd_kernels();

// Computes *out like vec_dot() and returns true, or returns false for a type without an AVX2 kernel.
// Only call when cpu_has_avx2().
bool vec_dot_avx2(DType wt, const void* w, const void* act, int64_t n, int64_t batch_rows, int64_t row, float* out);

}  // namespace chassis
