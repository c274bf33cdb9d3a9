#include "fp8_cache.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "half_bits.h"

namespace openmla::test {

namespace {

constexpr double kE4m3Max = 448.0;
constexpr uint8_t kE4m3NaN = 0x7f;

// The 127 non-negative finite e4m3 values in code order, which is value order.
const std::array<double, 127>& positive_values() {
  static const std::array<double, 127> values = [] {
    std::array<double, 127> v{};
    for (int code = 0; code < 127; ++code) {
      v[code] = e4m3_to_double(static_cast<uint8_t>(code));
    }
    return v;
  }();
  return values;
}

double max_abs(const uint16_t* src, int64_t n, DType dtype) {
  double m = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = std::fabs(half_to_double(src[i], dtype));
    m = std::isnan(x) ? x : std::max(m, x);
    if (std::isnan(m)) {
      return m;
    }
  }
  return m;
}

}  // namespace

double e4m3_to_double(uint8_t bits) {
  const int sign = bits & 0x80 ? -1 : 1;
  const int exp = (bits >> 3) & 0xf;
  const int mant = bits & 0x7;
  if (exp == 0xf && mant == 0x7) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double magnitude = exp == 0 ? std::ldexp(mant, -9) : std::ldexp(8 + mant, exp - 10);
  return sign * magnitude;
}

uint8_t double_to_e4m3(double value) {
  if (std::isnan(value)) {
    return kE4m3NaN;
  }
  const auto& v = positive_values();
  const double a = std::fabs(value);
  const auto above = std::lower_bound(v.begin(), v.end(), a);  // first value >= a
  int code = 0;
  if (above == v.end()) {
    code = 126;
  } else if (above == v.begin()) {
    code = 0;
  } else {
    const int hi = static_cast<int>(above - v.begin());
    const double up = v[hi] - a;
    const double down = a - v[hi - 1];
    code = up < down ? hi : down < up ? hi - 1 : (hi % 2 == 0 ? hi : hi - 1);
  }
  return static_cast<uint8_t>(code | (std::signbit(value) ? 0x80 : 0));
}

TensorView Fp8Cache::view() const {
  const DType dtype = spec.format == CacheFormat::fp8_656 ? spec.bytes_dtype : DType::fp8_e4m3;
  return make_view(bytes.data(), dtype, {num_blocks, page_size, h_kv, row_bytes});
}

TensorView Fp8Cache::scale_view() const {
  if (spec.format != CacheFormat::fp8_per_tensor) {
    return TensorView{};
  }
  return make_view(const_cast<float*>(&scale), DType::fp32, {1});
}

void Fp8Cache::dequantize(int64_t block, int64_t slot, int64_t head, double* dst) const {
  const auto* row = static_cast<const uint8_t*>(bytes.data()) + ((block * page_size + slot) * h_kv + head) * row_bytes;
  if (spec.format == CacheFormat::fp8_per_tensor) {
    for (int64_t d = 0; d < d_qk; ++d) {
      dst[d] = e4m3_to_double(row[d]) * static_cast<double>(scale);
    }
    return;
  }
  float scales[4];
  std::memcpy(scales, row + 512, sizeof(scales));
  for (int64_t d = 0; d < 512; ++d) {
    dst[d] = e4m3_to_double(row[d]) * static_cast<double>(scales[d / 128]);
  }
  for (int64_t d = 0; d < 64; ++d) {
    uint16_t h;
    std::memcpy(&h, row + 528 + 2 * d, 2);
    dst[512 + d] = half_to_double(h, rope_dtype);
  }
}

Fp8Cache quantize_cache(const Problem& p, const Fp8CacheSpec& spec) {
  const ProblemSpec& s = p.spec;
  Fp8Cache c;
  c.spec = spec;
  c.num_blocks = p.num_blocks;
  c.page_size = s.page_size;
  c.h_kv = s.h_kv;
  c.d_qk = s.d_qk;
  c.rope_dtype = s.dtype;
  const bool tokens = spec.format == CacheFormat::fp8_656;
  c.row_bytes = tokens ? 656 : s.d_qk;
  const int64_t rows = p.num_blocks * s.page_size * s.h_kv;
  c.bytes = MappedBuffer(static_cast<size_t>(rows * c.row_bytes));
  const uint16_t* src = p.cache_data();  // [rows, d_qk]
  auto* dst = static_cast<uint8_t*>(c.bytes.data());
  if (!tokens) {
    double amax = 0.0;
    for (int64_t i = 0; i < rows * s.d_qk; ++i) {
      const double x = std::fabs(half_to_double(src[i], s.dtype));
      amax = std::isnan(x) ? amax : std::max(amax, x);
    }
    c.scale = spec.scale != 0.0f ? spec.scale : static_cast<float>(std::max(amax, 1e-4) / kE4m3Max);
    for (int64_t i = 0; i < rows * s.d_qk; ++i) {
      const double x = half_to_double(src[i], s.dtype) / static_cast<double>(c.scale);
      dst[i] = double_to_e4m3(std::clamp(x, -kE4m3Max, kE4m3Max));
    }
    return c;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* k = src + r * s.d_qk;  // [576]
    uint8_t* token = dst + r * 656;        // [656]
    for (int t = 0; t < 4; ++t) {
      const double amax = max_abs(k + 128 * t, 128, s.dtype);
      float scale = static_cast<float>(std::max(amax, 1e-4) / kE4m3Max);  // NaN for a NaN tile
      if (spec.pow2_scales && std::isfinite(scale)) {
        scale = std::exp2(std::ceil(std::log2(scale)));
      }
      std::memcpy(token + 512 + 4 * t, &scale, 4);
      for (int d = 0; d < 128; ++d) {
        const double x = half_to_double(k[128 * t + d], s.dtype) / static_cast<double>(scale);
        token[128 * t + d] = double_to_e4m3(std::isnan(x) ? x : std::clamp(x, -kE4m3Max, kE4m3Max));
      }
    }
    std::memcpy(token + 528, k + 512, 128);
  }
  return c;
}

void use_cache(DecodeArgs& args, const Fp8Cache& cache) {
  args.k_cache = cache.view();
  args.cache_format = cache.spec.format;
  args.k_scale = cache.scale_view();
}

}  // namespace openmla::test
