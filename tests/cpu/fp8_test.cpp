// The CPU backend on FP8 caches (docs/fp8.md): both formats against the float64 reference of the
// dequantized cache, with the tolerances of docs/design.md. The cache is quantized by the tests'
// own code (tests/support/fp8_cache.h), not the library's.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "fp8_cache.h"
#include "half_bits.h"
#include "host_decode.h"
#include "reference.h"

namespace openmla::test {
namespace {

struct Fp8Case {
  const char* name;
  Fp8CacheSpec cache;
  DType dtype;
};

const Fp8Case kFormats[] = {
    {"per_tensor_bf16", {.format = CacheFormat::fp8_per_tensor}, DType::bf16},
    {"per_tensor_fp16", {.format = CacheFormat::fp8_per_tensor}, DType::fp16},
    {"token656_bf16", {.format = CacheFormat::fp8_656}, DType::bf16},
    {"token656_fp16", {.format = CacheFormat::fp8_656}, DType::fp16},
    {"token656_pow2_bf16_as_fp8", {.format = CacheFormat::fp8_656, .pow2_scales = true, .bytes_dtype = DType::fp8_e4m3},
     DType::bf16},
};

class Fp8 : public ::testing::TestWithParam<Fp8Case> {
 protected:
  void expect_matches(ProblemSpec spec, int64_t num_parts = 0) {
    spec.dtype = GetParam().dtype;
    const Problem problem = make_problem(spec);
    const Fp8Cache cache = quantize_cache(problem, GetParam().cache);
    const Output output = host_decode(problem, num_parts, &cache);
    EXPECT_TRUE(matches(reference_decode(problem, cache), output.out_view(), output.lse_view()));
  }
};

TEST_P(Fp8, DecodeStep) {
  expect_matches({.b = 6, .h_q = 16, .s_k = 300, .varlen = true, .seed = 1});
}

TEST_P(Fp8, CausalMtpRowsAndGroups) {
  for (int64_t s_q : {2, 4}) {
    expect_matches({.b = 3, .s_q = s_q, .h_q = 8, .h_kv = 2, .s_k = 200, .varlen = true, .causal = true, .seed = 2});
  }
}

TEST_P(Fp8, ZeroLengthsAndRowsThatSeeNoKey) {
  expect_matches({.s_q = 4, .h_q = 4, .causal = true, .seed = 3, .lengths = {0, 1, 3, 70, 0, 129}}, 5);
}

TEST_P(Fp8, SplitsAndOtherPageSizes) {
  // Garbage (NaN bytes, NaN scales) in unused slots and poisoned table tails are on by default.
  for (int64_t page_size : {1, 16, 100}) {
    expect_matches({.b = 2, .h_q = 16, .s_k = 900, .varlen = true, .page_size = page_size, .seed = 4,
                    .extra_pages = 5},
                   7);
  }
}

TEST_P(Fp8, ManyHeads) {
  expect_matches({.b = 2, .s_q = 2, .h_q = 128, .s_k = 140, .causal = true, .seed = 5});
}

INSTANTIATE_TEST_SUITE_P(Cpu, Fp8, ::testing::ValuesIn(kFormats),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// The scale is applied: the same fp8 bytes under twice the scale give twice the output of a cache
// whose every value doubled, i.e. the reference of the new scale.
TEST(Fp8Scale, OutputFollowsTheScale) {
  const Problem problem = make_problem({.b = 2, .h_q = 8, .s_k = 100, .seed = 6});
  Fp8Cache cache = quantize_cache(problem, {.format = CacheFormat::fp8_per_tensor});
  cache.scale *= 4.0f;
  const Output output = host_decode(problem, 0, &cache);
  EXPECT_TRUE(matches(reference_decode(problem, cache), output.out_view(), output.lse_view()));
}

// The 656-byte token's layout, byte by byte: a key with one nonzero value per part must give the
// output that value places (v = the first 512 values, scaled; RoPE only moves the scores).
TEST(Fp8Layout, TokenBytesAreWhereDocsSay) {
  const Problem problem = make_problem({.h_q = 1, .lengths = {1}, .nan_unused = false});
  Fp8Cache cache = quantize_cache(problem, {.format = CacheFormat::fp8_656});
  auto* token = static_cast<uint8_t*>(cache.bytes.data()) + problem.block_table[0] * 64 * 656;  // slot 0
  std::memset(token, 0, 656);
  token[0] = 0x38;    // 1.0 at value 0 (tile 0)
  token[300] = 0xc0;  // -2.0 at value 300 (tile 2)
  const float scales[4] = {0.5f, 8.0f, 3.0f, 1.0f};
  std::memcpy(token + 512, scales, sizeof(scales));
  const Output output = host_decode(problem, 0, &cache);
  EXPECT_TRUE(matches(reference_decode(problem, cache), output.out_view(), output.lse_view()));
  EXPECT_EQ(half_to_double(output.out[0], DType::bf16), 0.5);    // one key: out = v
  EXPECT_EQ(half_to_double(output.out[300], DType::bf16), -6.0);
  EXPECT_EQ(half_to_double(output.out[1], DType::bf16), 0.0);
}

}  // namespace
}  // namespace openmla::test
