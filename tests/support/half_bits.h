#pragma once
// bf16 / fp16 bit patterns <-> double for the tests, written independently of src/cpu/half.h so that
// the library's conversions are checked rather than trusted.

#include <cstdint>

#include "openmla/tensor.h"

namespace openmla::test {

inline constexpr uint16_t kBf16NaN = 0x7fc0;
inline constexpr uint16_t kFp16NaN = 0x7e00;

uint16_t nan_bits(DType dtype);

// Exact value of a bf16 / fp16 bit pattern (inf and NaN included), through a 65536-entry table.
double half_to_double(uint16_t bits, DType dtype);

// Round to nearest even; `value` must be finite and below the format's largest finite value.
uint16_t double_to_half(double value, DType dtype);

}  // namespace openmla::test
