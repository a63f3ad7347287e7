// 512-bit kernels' shared prelude: the AVX2 helpers, and GCC 12's false -W(maybe-)uninitialized on
// its own AVX-512 headers' _mm512_undefined_* placeholders silenced for the file that includes this
// (GCC bug 105593, fixed in GCC 13). Include it first, before any other header that pulls in
// immintrin.h, so the pragma covers the intrinsics' definitions.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kernels/cpu/avx2_util.h"
