// Run-time tile shapes to compile-time template arguments.
#pragma once
#include <utility>

namespace chassis {

// Calls fn.template operator()<V>() for the V in [1, N] that equals v (nothing when v is out of
// range), through a chain of compares and direct calls. Why not a constexpr table of function
// pointers, the usual way: GCC 12 at -O2 miscompiled one (the 1 x 3 table of a tile<1, T> became
// &tile<1, 1> + (T - 1), a call into the middle of a function).
template <int N, class Fn>
inline void with_constant(int v, Fn&& fn) {
  [&]<int... Is>(std::integer_sequence<int, Is...>) {
    (void)((v == Is + 1 ? (fn.template operator()<Is + 1>(), true) : false) || ...);
  }(std::make_integer_sequence<int, N>{});
}

}  // namespace chassis
