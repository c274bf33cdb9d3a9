#pragma once
// int64 arithmetic that reports overflow instead of wrapping: sizes computed from caller counts.

#include <cstdint>
#include <initializer_list>

namespace openmla::detail {

// The product of `factors`, or false when it does not fit in int64.
inline bool checked_product(std::initializer_list<int64_t> factors, int64_t& product) {
  product = 1;
  for (int64_t f : factors) {
    if (__builtin_mul_overflow(product, f, &product)) {
      return false;
    }
  }
  return true;
}

// The sum of `terms`, or false when it does not fit in int64.
inline bool checked_sum(std::initializer_list<int64_t> terms, int64_t& sum) {
  sum = 0;
  for (int64_t t : terms) {
    if (__builtin_add_overflow(sum, t, &sum)) {
      return false;
    }
  }
  return true;
}

}  // namespace openmla::detail
