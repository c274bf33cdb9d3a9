#pragma once
// Quantizing to float8 e4m3fn (docs/fp8.md), one function for the host and the device, so that the CPU
// and the CUDA cache writes store the same bytes: fp32 -> e4m3 rounded to nearest even and saturated,
// and the scale of a 656-byte token's group of 128 values.

#include <cstdint>
#include <cstring>

#include "host_device.h"

namespace openmla::e4m3 {

inline constexpr float kMax = 448.0f;                    // the largest finite e4m3fn value, 0x7e
inline constexpr uint8_t kNaN = 0x7f;                    // the NaN every NaN input becomes (the sign is dropped)
inline constexpr uint8_t kMaxCode = 0x7e;                // 448
inline constexpr float kAmaxFloor = 1e-30f;              // a group's max |value| counts as at least this (no 0 scale)
inline constexpr uint32_t kMinNormalBits = 0x3c800000u;  // 2^-6, the smallest normal e4m3 value, as fp32 bits
inline constexpr uint32_t kMaxBits = 0x43e00000u;        // 448.0f as fp32 bits
inline constexpr uint32_t kScaleNaNBits = 0x7fc00000u;   // the scale of a group that holds a NaN

OPENMLA_HD uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
#endif
}

OPENMLA_HD float bits_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
#endif
}

// a / b correctly rounded (IEEE division), whatever the compiler's flags for `/` on the device.
OPENMLA_HD float divide(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// x as an e4m3fn byte: rounded to nearest even; |x| >= 448 (infinities included) saturates to +-448;
// NaN gives kNaN. The same rule as cvt.rn.satfinite.e4m3x2.f32, written out so that the host computes
// it too.
OPENMLA_HD uint8_t from_float(float x) {
  const uint32_t bits = float_bits(x);
  const auto sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) {
    return kNaN;
  }
  if (abs >= kMaxBits) {
    return static_cast<uint8_t>(sign | kMaxCode);  // 448 up to the tie at 464 rounds to 448; beyond, saturated
  }
  if (abs < kMinNormalBits) {
    // Subnormal: code = |x| / 2^-9 rounded to an integer (8 is 2^-6, the smallest normal's code). Adding
    // 2^14, whose fp32 ulp is 2^-9, makes the FPU round to nearest even.
    const uint32_t code = float_bits(bits_float(abs) + 16384.0f) - float_bits(16384.0f);
    return static_cast<uint8_t>(sign | code);
  }
  // Normal: keep 3 of the 23 mantissa bits, rounding to nearest even (a carry moves the exponent up,
  // at most to 448); rebias the exponent from 127 to 7.
  const uint32_t rounded = (abs + 0x7ffffu + ((abs >> 20) & 1u)) >> 20;
  return static_cast<uint8_t>(sign | (rounded - (120u << 3)));
}

// max(a, b) that propagates NaN (fmaxf drops it): a group with a NaN gets a NaN scale.
OPENMLA_HD float nan_max(float a, float b) {
  if (a != a) {
    return a;
  }
  if (b != b) {
    return b;
  }
  return a > b ? a : b;
}

// The scale of a 656-byte token's group whose largest |value| is amax: the smallest power of two s with
// max(amax, kAmaxFloor) <= 448 s. Powers of two, as FlashMLA's quantizer has them: every value / s is
// exact, and so is every e4m3 value times s in bf16 (in fp16 within its range), so a kernel that
// dequantizes a tile to bf16 before its products loses nothing. NaN gives the
// canonical NaN 0x7fc00000 (whichever NaN the group held) and an infinite amax an infinite scale.
OPENMLA_HD float group_scale(float amax) {
  if (amax != amax) {
    return bits_float(kScaleNaNBits);
  }
  const float ratio = divide(amax > kAmaxFloor ? amax : kAmaxFloor, kMax);  // a power of two
  const uint32_t bits = float_bits(ratio);                                  // only when amax / 448 is one
  if ((bits & 0x7f800000u) == 0x7f800000u || (bits & 0x007fffffu) == 0) {
    return ratio;  // infinite, or a power of two already
  }
  return bits_float((bits & 0x7f800000u) + 0x00800000u);
}

}  // namespace openmla::e4m3
