#pragma once
// float8 e4m3fn -> fp32 on the host: every e4m3 value is exact in fp32; 0x7f and 0xff are NaN.

#include <cstdint>

#include "half.h"

namespace openmla::cpu {

inline float e4m3_to_float(uint8_t v) {
  const uint32_t sign = static_cast<uint32_t>(v & 0x80u) << 24;
  const uint32_t exp = (v >> 3) & 0xfu;
  const uint32_t mant = v & 0x7u;
  if (exp == 0xfu && mant == 0x7u) {
    return bits_to_float(sign | 0x7fc00000u);
  }
  if (exp != 0) {
    return bits_to_float(sign | ((exp + 120u) << 23) | (mant << 20));  // bias 7 -> 127
  }
  // Subnormal: value = mant * 2^-9.
  const float magnitude = static_cast<float>(mant) * 0.001953125f;
  return sign ? -magnitude : magnitude;
}

}  // namespace openmla::cpu
