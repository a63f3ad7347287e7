// Compile a region of a file for an instruction set: every function defined between
// CHASSIS_TARGET_BEGIN("avx2,fma,...") and CHASSIS_TARGET_END gets that target, templates and
// in-class members included. GCC takes `#pragma GCC target`; clang ignores that pragma and takes its
// attribute pragma instead (the fuzz build compiles the library with clang). Include standard headers
// before the region: their inline templates must not be instantiated under a wider target.
#pragma once

#define CHASSIS_DO_PRAGMA(...) _Pragma(#__VA_ARGS__)
#if defined(__clang__)
#define CHASSIS_TARGET_BEGIN(features) \
  CHASSIS_DO_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define CHASSIS_TARGET_END CHASSIS_DO_PRAGMA(clang attribute pop)
#else
#define CHASSIS_TARGET_BEGIN(features) CHASSIS_DO_PRAGMA(GCC push_options) CHASSIS_DO_PRAGMA(GCC target(features))
#define CHASSIS_TARGET_END CHASSIS_DO_PRAGMA(GCC pop_options)
#endif
