#include "fp8_write_case.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "fp8_cache.h"
#include "half_bits.h"
#include "random.h"

namespace openmla::test {

namespace {

constexpr uint8_t kCanary = 0xa5;
constexpr double kE4m3Max = 448.0;
constexpr uint8_t kE4m3NaN = 0x7f;

// The e4m3 byte of x: nearest, ties to even, +-448 beyond (infinities too), 0x7f for NaN.
uint8_t saturated_e4m3(double x) {
  if (std::isnan(x)) {
    return kE4m3NaN;
  }
  return double_to_e4m3(std::clamp(x, -kE4m3Max, kE4m3Max));
}

// The smallest power of two s with max(amax, 1e-30 as an fp32) <= 448 s, found by doubling and halving
// in exact double arithmetic; NaN for NaN, infinity for infinity.
double group_scale(double amax) {
  if (std::isnan(amax) || std::isinf(amax)) {
    return amax;
  }
  const double m = std::max(amax, static_cast<double>(1e-30f));
  double s = 1.0;
  while (kE4m3Max * s < m) {
    s *= 2.0;
  }
  while (kE4m3Max * (s / 2.0) >= m) {
    s /= 2.0;
  }
  return s;
}

uint16_t random_half(Rng& rng, RowValues values, double sigma, DType dtype) {
  if (values == RowValues::bits) {
    return static_cast<uint16_t>(rng.next() >> 48);
  }
  return double_to_half(rng.normal(0.0, sigma), dtype);
}

}  // namespace

TensorView Fp8WriteCase::k_cache_view() {
  TensorView v = make_view(k_cache.data(), cache_dtype, {rows.num_blocks, rows.page_size, 1, row_bytes()});
  v.strides[0] = page_stride();
  return v;
}

TensorView Fp8WriteCase::k_scale_view() {
  if (format != CacheFormat::fp8_per_tensor) {
    return TensorView{};
  }
  return make_view(&scale, DType::fp32, {1});
}

WriteCacheArgs Fp8WriteCase::args() {
  return WriteCacheArgs{.kv_c = rows.kv_c_view(),
                        .k_pe = rows.k_pe_view(),
                        .slot_mapping = rows.slot_mapping_view(),
                        .k_cache = k_cache_view(),
                        .cache_format = format,
                        .k_scale = k_scale_view()};
}

int64_t fp8_row_offset(const Fp8WriteCase& c, int64_t slot) {
  return slot / c.rows.page_size * c.page_stride() + slot % c.rows.page_size * c.row_bytes();
}

Fp8WriteCase make_fp8_write_case(const Fp8WriteShape& shape, uint64_t seed) {
  Fp8WriteCase c =
      make_fp8_write_case(shape.format, shape.dtype, shape.values, shape.tokens, shape.d_v, shape.d_rope,
                          shape.num_blocks, shape.page_size, shape.scale, seed, shape.row_pad, shape.page_pad);
  c.cache_dtype = shape.cache_dtype;
  return c;
}

std::vector<uint8_t> expected_row(const Fp8WriteCase& c, int64_t token) {
  const WriteCase& w = c.rows;
  const uint16_t* latent = w.kv_c.data() + token * (w.d_v + w.row_pad);   // [d_v]
  const uint16_t* rope = w.k_pe.data() + token * (w.d_rope + w.row_pad);  // [d_rope]
  std::vector<uint8_t> row(static_cast<size_t>(c.row_bytes()));
  if (c.format == CacheFormat::fp8_per_tensor) {
    // The quotient is an fp32 division, as the rule says.
    for (int64_t d = 0; d < w.d_qk(); ++d) {
      const uint16_t bits = d < w.d_v ? latent[d] : rope[d - w.d_v];
      row[static_cast<size_t>(d)] = saturated_e4m3(static_cast<float>(half_to_double(bits, w.dtype)) / c.scale);
    }
    return row;
  }
  for (int64_t g = 0; g < 4; ++g) {
    double amax = 0.0;
    for (int64_t d = 128 * g; d < 128 * (g + 1); ++d) {
      const double a = std::fabs(half_to_double(latent[d], w.dtype));
      amax = std::isnan(amax) || std::isnan(a) ? std::numeric_limits<double>::quiet_NaN() : std::max(amax, a);
    }
    const double s = group_scale(amax);
    for (int64_t d = 128 * g; d < 128 * (g + 1); ++d) {
      row[static_cast<size_t>(d)] = saturated_e4m3(half_to_double(latent[d], w.dtype) / s);
    }
    const auto stored = static_cast<float>(s);
    std::memcpy(row.data() + 512 + 4 * g, &stored, 4);
  }
  std::memcpy(row.data() + 528, rope, 128);
  return row;
}

std::vector<uint8_t> Fp8WriteCase::expected_cache() const {
  std::vector<uint8_t> cache = k_cache;
  for (int64_t t = 0; t < rows.tokens; ++t) {
    const int64_t slot = rows.slot_mapping[static_cast<size_t>(t)];
    if (slot < 0 || slot >= rows.slots()) {
      continue;
    }
    const std::vector<uint8_t> row = expected_row(*this, t);
    std::copy(row.begin(), row.end(), cache.begin() + fp8_row_offset(*this, slot));
  }
  return cache;
}

Fp8WriteCase make_fp8_write_case(CacheFormat format, DType dtype, RowValues values, int64_t tokens, int64_t d_v,
                                 int64_t d_rope, int64_t num_blocks, int64_t page_size, float scale, uint64_t seed,
                                 int64_t row_pad, int64_t page_pad) {
  Fp8WriteCase c;
  c.format = format;
  c.cache_dtype = DType::fp8_e4m3;
  c.rows = make_write_case(dtype, tokens, d_v, d_rope, num_blocks, page_size, seed, row_pad, 0);
  c.scale = scale;
  c.page_pad = page_pad;
  if (values == RowValues::normal) {
    Rng rng(seed ^ 0x9e3779b97f4a7c15ull);
    for (int64_t t = 0; t < tokens; ++t) {
      const double sigma = std::pow(10.0, -7.0 + 10.0 * rng.uniform());
      for (int64_t d = 0; d < d_v + row_pad; ++d) {
        c.rows.kv_c[static_cast<size_t>(t * (d_v + row_pad) + d)] = random_half(rng, values, sigma, dtype);
      }
      for (int64_t d = 0; d < d_rope + row_pad; ++d) {
        c.rows.k_pe[static_cast<size_t>(t * (d_rope + row_pad) + d)] = random_half(rng, values, sigma, dtype);
      }
    }
  }
  c.rows.k_cache.clear();
  c.k_cache.assign(static_cast<size_t>(num_blocks * c.page_stride()), kCanary);
  return c;
}

}  // namespace openmla::test
