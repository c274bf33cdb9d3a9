#pragma once
// bf16 / fp16 <-> fp32 on the host, round to nearest even, NaN kept NaN; fp32 elements as they are.

#include <cstdint>
#include <cstring>

#include "openmla/tensor.h"

namespace openmla::cpu {

inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t bits = float_to_bits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  }
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) {
    return bits_to_float(sign | 0x7f800000u | (mant << 13));
  }
  if (exp != 0) {
    return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
  }
  if (mant == 0) {
    return bits_to_float(sign);
  }
  // Subnormal: value = mant * 2^-24.
  const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

inline uint16_t float_to_fp16(float f) {
  const uint32_t bits = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) {
    return static_cast<uint16_t>(sign | 0x7e00u);
  }
  if (abs >= 0x477ff000u) {  // rounds to >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (abs < 0x38800000u) {  // below the smallest normal 2^-14: subnormal or zero
    const float magnitude = bits_to_float(abs);
    // Adding 0.5 makes the FPU round the subnormal mantissa (units of 2^-24) to nearest even.
    const uint32_t rounded = float_to_bits(magnitude + 0.5f) - float_to_bits(0.5f);
    return static_cast<uint16_t>(sign | rounded);
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

inline float load_half(const void* base, int64_t index, DType dtype) {
  const uint16_t h = static_cast<const uint16_t*>(base)[index];
  return dtype == DType::bf16 ? bf16_to_float(h) : fp16_to_float(h);
}

inline void store_half(void* base, int64_t index, float value, DType dtype) {
  static_cast<uint16_t*>(base)[index] = dtype == DType::bf16 ? float_to_bf16(value) : float_to_fp16(value);
}

// An element of a decode operand: bf16 / fp16, or fp32 (the CPU backend's extra dtype).
inline float load_element(const void* base, int64_t index, DType dtype) {
  return dtype == DType::fp32 ? static_cast<const float*>(base)[index] : load_half(base, index, dtype);
}

inline void store_element(void* base, int64_t index, float value, DType dtype) {
  if (dtype == DType::fp32) {
    static_cast<float*>(base)[index] = value;
  } else {
    store_half(base, index, value, dtype);
  }
}

}  // namespace openmla::cpu
