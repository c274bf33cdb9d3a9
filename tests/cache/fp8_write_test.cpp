// openmla::write_cache into FP8 caches on the CPU (docs/fp8.md): every byte equals the model of the
// documented rule (fp8_cache.h's e4m3 table, double arithmetic), for both formats and row dtypes,
// random bit patterns (NaN, infinities) and normal values over ten decades, strided rows and padded
// pages; every bf16 and fp16 value quantized per tensor; the round trip within e4m3's rounding error;
// the 656-byte token's scales are the smallest powers of two that hold their group; negative slots
// skipped; a slot past the cache throws and writes nothing; k_scale read at each call.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fp8_cache.h"
#include "fp8_write_case.h"
#include "half_bits.h"
#include "openmla/cache.h"
#include "openmla/error.h"

namespace openmla::test {
namespace {

// The first byte where two caches differ, with its slot row and column, or "equal".
std::string first_difference(const Fp8WriteCase& c, const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i]) {
      const auto at = static_cast<int64_t>(i);
      const int64_t page = at / c.page_stride();
      const int64_t in_page = at % c.page_stride();
      return "byte " + std::to_string(i) + " (page " + std::to_string(page) + ", slot row " +
             std::to_string(in_page / c.row_bytes()) + ", column " + std::to_string(in_page % c.row_bytes()) +
             "): got " + std::to_string(got[i]) + ", want " + std::to_string(want[i]);
    }
  }
  return "equal";
}

const Fp8WriteShape kShapes[] = {
    {"per_tensor_bf16_bits", CacheFormat::fp8_per_tensor, DType::bf16, RowValues::bits, 37, 512, 64, 3, 64, 0.37f, 0,
     0},
    {"per_tensor_fp16_normal", CacheFormat::fp8_per_tensor, DType::fp16, RowValues::normal, 40, 512, 64, 2, 64,
     1.0f / 64, 0, 0},
    {"per_tensor_bf16_normal_strided", CacheFormat::fp8_per_tensor, DType::bf16, RowValues::normal, 20, 24, 5, 3, 7,
     2.5e-3f, 3, 5},
    {"per_tensor_fp16_no_rope", CacheFormat::fp8_per_tensor, DType::fp16, RowValues::bits, 9, 16, 0, 2, 8, 3.0f, 0, 0},
    {"token656_bf16_bits", CacheFormat::fp8_656, DType::bf16, RowValues::bits, 37, 512, 64, 2, 64, 1.0f, 0, 0},
    {"token656_bf16_normal", CacheFormat::fp8_656, DType::bf16, RowValues::normal, 60, 512, 64, 2, 64, 1.0f, 0, 0},
    {"token656_fp16_normal_strided", CacheFormat::fp8_656, DType::fp16, RowValues::normal, 30, 512, 64, 3, 16, 1.0f, 8,
     33},
};

class Fp8WriteCacheShapes : public ::testing::TestWithParam<Fp8WriteShape> {};

TEST_P(Fp8WriteCacheShapes, EveryByteIsTheRulesAndNothingElseChanges) {
  const Fp8WriteShape& s = GetParam();
  Fp8WriteCase c = make_fp8_write_case(s, 17);
  c.rows.slot_mapping[3] = -1;
  const std::vector<uint8_t> want = c.expected_cache();
  ASSERT_NE(want, c.k_cache) << "the case writes nothing";
  write_cache(c.args());
  EXPECT_EQ(first_difference(c, c.k_cache, want), "equal");
}

INSTANTIATE_TEST_SUITE_P(Cpu, Fp8WriteCacheShapes, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<Fp8WriteShape>& shape) {
                           return std::string(shape.param.name);
                         });

TEST(Fp8WriteCache, TheUint8ViewOfA656CacheIsWrittenAlike) {
  Fp8WriteCase c =
      make_fp8_write_case(CacheFormat::fp8_656, DType::bf16, RowValues::normal, 10, 512, 64, 1, 16, 1.0f, 5);
  c.cache_dtype = DType::uint8;
  const std::vector<uint8_t> want = c.expected_cache();
  write_cache(c.args());
  EXPECT_EQ(first_difference(c, c.k_cache, want), "equal");
}

// All 65536 bit patterns of each dtype as the values of 128 tokens of 512, at scales that are powers of
// two, not powers of two, tiny (everything saturates) and huge (everything underflows).
TEST(Fp8WriteCache, EveryHalfValueQuantizesPerTensorByTheRule) {
  for (DType dtype : {DType::bf16, DType::fp16}) {
    for (float scale : {1.0f, 0.37f, 3.0f, 1.0f / 1024, 1e-30f, 1e30f}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " scale " + std::to_string(scale));
      Fp8WriteCase c =
          make_fp8_write_case(CacheFormat::fp8_per_tensor, dtype, RowValues::bits, 128, 512, 0, 2, 64, scale, 1);
      for (int64_t t = 0; t < 128; ++t) {
        c.rows.slot_mapping[static_cast<size_t>(t)] = t;
        for (int64_t d = 0; d < 512; ++d) {
          c.rows.kv_c[static_cast<size_t>(t * 512 + d)] = static_cast<uint16_t>(t * 512 + d);
        }
      }
      const std::vector<uint8_t> want = c.expected_cache();
      write_cache(c.args());
      EXPECT_EQ(first_difference(c, c.k_cache, want), "equal");
    }
  }
}

// Dequantized (e4m3 value times its scale), each value is within half an e4m3 step of the row's: 2^-4
// of it for normal values, 2^-10 of the scale for subnormal ones.
void expect_round_trip(const Fp8WriteCase& c) {
  const WriteCase& w = c.rows;
  for (int64_t t = 0; t < w.tokens; ++t) {
    const int64_t slot = w.slot_mapping[static_cast<size_t>(t)];
    const uint8_t* row = c.k_cache.data() + fp8_row_offset(c, slot);
    for (int64_t d = 0; d < w.d_v; ++d) {
      double scale = c.scale;
      if (c.format == CacheFormat::fp8_656) {
        float s = 0.0f;
        std::memcpy(&s, row + 512 + 4 * (d / 128), 4);
        scale = s;
      }
      const double v = half_to_double(w.kv_c[static_cast<size_t>(t * (w.d_v + w.row_pad) + d)], w.dtype);
      const double back = e4m3_to_double(row[d]) * scale;
      ASSERT_LE(std::fabs(back - v), std::ldexp(std::fabs(v), -4) + std::ldexp(scale, -10))
          << "token " << t << ", value " << d << ": " << v << " came back as " << back;
    }
  }
}

TEST(Fp8WriteCache, RoundTripWithinE4m3Rounding) {
  Fp8WriteCase per_tensor =
      make_fp8_write_case(CacheFormat::fp8_per_tensor, DType::bf16, RowValues::bits, 50, 512, 64, 1, 64, 1.0f, 9);
  Fp8WriteCase token =
      make_fp8_write_case(CacheFormat::fp8_656, DType::fp16, RowValues::normal, 50, 512, 64, 1, 64, 1.0f, 9);
  // Per tensor: values in (-1, 1) with the scale a calibration to max 1 gives them (nothing saturates).
  for (uint16_t& bits : per_tensor.rows.kv_c) {
    bits = double_to_half((static_cast<double>(bits) / 32768.0 - 1.0) * 0.999, DType::bf16);
  }
  per_tensor.scale = 1.0f / 448;
  write_cache(per_tensor.args());
  expect_round_trip(per_tensor);
  write_cache(token.args());
  expect_round_trip(token);
}

TEST(Fp8WriteCache, TokenScalesAreTheSmallestPowersOfTwoThatHoldTheirGroup) {
  Fp8WriteCase c =
      make_fp8_write_case(CacheFormat::fp8_656, DType::bf16, RowValues::normal, 64, 512, 64, 1, 64, 1.0f, 12);
  // Token 0: a group whose max is exactly 448 * 2^-3 (scale 2^-3, a value of -448) and an all-zero group.
  for (int64_t d = 0; d < 256; ++d) {
    c.rows.kv_c[static_cast<size_t>(d)] =
        d < 128 ? double_to_half(static_cast<double>(d) / 128.0, DType::bf16) : uint16_t{0};
  }
  c.rows.kv_c[0] = double_to_half(-56.0, DType::bf16);
  write_cache(c.args());
  for (int64_t t = 0; t < c.rows.tokens; ++t) {
    const uint8_t* row = c.k_cache.data() + fp8_row_offset(c, c.rows.slot_mapping[static_cast<size_t>(t)]);
    for (int64_t g = 0; g < 4; ++g) {
      float s = 0.0f;
      std::memcpy(&s, row + 512 + 4 * g, 4);
      double amax = 0.0;
      for (int64_t d = 128 * g; d < 128 * (g + 1); ++d) {
        amax = std::max(amax, std::fabs(half_to_double(c.rows.kv_c[static_cast<size_t>(t * 512 + d)], DType::bf16)));
      }
      int exponent = 0;
      ASSERT_EQ(std::frexp(s, &exponent), 0.5) << "token " << t << " group " << g << ": scale " << s;
      const double floor = std::max(amax, static_cast<double>(1e-30f));
      ASSERT_LE(floor, 448.0 * s) << "token " << t << " group " << g;
      ASSERT_GT(floor, 224.0 * s) << "token " << t << " group " << g;
    }
  }
  const uint8_t* first = c.k_cache.data() + fp8_row_offset(c, c.rows.slot_mapping[0]);
  float s0 = 0.0f;
  std::memcpy(&s0, first + 512, 4);
  EXPECT_EQ(s0, 0.125f);
  EXPECT_EQ(first[0], 0xfe);  // -448
  EXPECT_EQ(first[128], 0x00);
}

TEST(Fp8WriteCache, NegativeSlotsAreSkipped) {
  for (CacheFormat format : {CacheFormat::fp8_per_tensor, CacheFormat::fp8_656}) {
    SCOPED_TRACE(cache_format_name(format));
    Fp8WriteCase c = make_fp8_write_case(format, DType::bf16, RowValues::normal, 6, 512, 64, 2, 4, 0.01f, 7);
    c.rows.slot_mapping = {-1, 3, INT64_MIN, 5, -4, 0};
    const std::vector<uint8_t> before = c.k_cache;
    const std::vector<uint8_t> want = c.expected_cache();
    write_cache(c.args());
    EXPECT_EQ(first_difference(c, c.k_cache, want), "equal");
    for (int64_t slot = 0; slot < c.rows.slots(); ++slot) {
      const auto at = fp8_row_offset(c, slot);
      const bool changed =
          !std::equal(c.k_cache.begin() + at, c.k_cache.begin() + at + c.row_bytes(), before.begin() + at);
      EXPECT_EQ(changed, slot == 3 || slot == 5 || slot == 0) << "slot " << slot;
    }
  }
}

TEST(Fp8WriteCache, SlotPastTheCacheThrowsAndWritesNothing) {
  for (CacheFormat format : {CacheFormat::fp8_per_tensor, CacheFormat::fp8_656}) {
    SCOPED_TRACE(cache_format_name(format));
    Fp8WriteCase c = make_fp8_write_case(format, DType::fp16, RowValues::normal, 5, 512, 64, 2, 4, 0.01f, 8);
    c.rows.slot_mapping[2] = c.rows.slots();
    const std::vector<uint8_t> before = c.k_cache;
    try {
      write_cache(c.args());
      ADD_FAILURE() << "write_cache accepted a slot past the cache";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(),
                   "openmla: slot_mapping[2]: expected a slot below num_blocks * page_size = 8, or a negative one "
                   "(skip), given 8");
    }
    EXPECT_EQ(c.k_cache, before);
  }
}

// k_scale is read when the write runs: a new value gives the bytes of the new scale.
TEST(Fp8WriteCache, EachCallReadsTheScale) {
  Fp8WriteCase c =
      make_fp8_write_case(CacheFormat::fp8_per_tensor, DType::bf16, RowValues::normal, 8, 512, 64, 1, 8, 0.5f, 3);
  const WriteCacheArgs args = c.args();
  write_cache(args);
  const std::vector<uint8_t> at_half = c.k_cache;
  c.scale = 0.001f;
  const std::vector<uint8_t> want = c.expected_cache();
  write_cache(args);
  EXPECT_NE(c.k_cache, at_half);
  EXPECT_EQ(first_difference(c, c.k_cache, want), "equal");
}

}  // namespace
}  // namespace openmla::test
