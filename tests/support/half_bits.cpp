#include "half_bits.h"

#include <cmath>
#include <limits>
#include <vector>

namespace openmla::test {

namespace {

struct Format {
  int mantissa_bits;
  int exponent_bits;
  int bias;
};

Format format_of(DType dtype) { return dtype == DType::bf16 ? Format{7, 8, 127} : Format{10, 5, 15}; }

double decode(uint16_t bits, const Format& f) {
  const int exponent_max = (1 << f.exponent_bits) - 1;
  const int exponent = (bits >> f.mantissa_bits) & exponent_max;
  const int mantissa = bits & ((1 << f.mantissa_bits) - 1);
  double magnitude = 0.0;
  if (exponent == exponent_max) {
    magnitude = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (exponent == 0) {
    magnitude = std::ldexp(mantissa, 1 - f.bias - f.mantissa_bits);
  } else {
    magnitude = std::ldexp(mantissa + (1 << f.mantissa_bits), exponent - f.bias - f.mantissa_bits);
  }
  return (bits & 0x8000u) ? -magnitude : magnitude;
}

const std::vector<double>& table(DType dtype) {
  static const auto build = [](DType t) {
    std::vector<double> values(65536);  // [bit pattern]
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      values[bits] = decode(static_cast<uint16_t>(bits), format_of(t));
    }
    return values;
  };
  static const std::vector<double> bf16 = build(DType::bf16);
  static const std::vector<double> fp16 = build(DType::fp16);
  return dtype == DType::bf16 ? bf16 : fp16;
}

}  // namespace

uint16_t nan_bits(DType dtype) { return dtype == DType::bf16 ? kBf16NaN : kFp16NaN; }

double half_to_double(uint16_t bits, DType dtype) { return table(dtype)[bits]; }

uint16_t double_to_half(double value, DType dtype) {
  const Format f = format_of(dtype);
  const uint16_t sign = std::signbit(value) ? 0x8000u : 0u;
  const double magnitude = std::fabs(value);
  const double min_normal = std::ldexp(1.0, 1 - f.bias);
  if (magnitude < min_normal) {
    // Subnormal: an integer count of the smallest step; nearbyint rounds half to even. A count of
    // 2^mantissa_bits is exactly the smallest normal's bit pattern.
    const double steps = std::nearbyint(std::ldexp(magnitude, f.bias - 1 + f.mantissa_bits));
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(steps));
  }
  int exponent = 0;
  std::frexp(magnitude, &exponent);
  --exponent;  // magnitude = 1.m * 2^exponent
  const double mantissa = std::nearbyint((std::ldexp(magnitude, -exponent) - 1.0) * std::ldexp(1.0, f.mantissa_bits));
  // A mantissa rounded up to 2^mantissa_bits carries into the exponent, which is the right result.
  const int bits = ((exponent + f.bias) << f.mantissa_bits) + static_cast<int>(mantissa);
  return static_cast<uint16_t>(sign | bits);
}

}  // namespace openmla::test
