// The test support itself: conversions, problem layout and the reference on cases worked by hand, so
// that a passing comparison means something.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "compare.h"
#include "half_bits.h"
#include "problem.h"
#include "reference.h"

namespace openmla::test {
namespace {

TEST(HalfBits, KnownPatterns) {
  EXPECT_EQ(half_to_double(0x3f80, DType::bf16), 1.0);
  EXPECT_EQ(half_to_double(0xc000, DType::bf16), -2.0);
  EXPECT_EQ(half_to_double(0x3c00, DType::fp16), 1.0);
  EXPECT_EQ(half_to_double(0x0001, DType::fp16), std::ldexp(1.0, -24));
  EXPECT_EQ(half_to_double(0x7c00, DType::fp16), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(half_to_double(kBf16NaN, DType::bf16)));
  EXPECT_TRUE(std::isnan(half_to_double(kFp16NaN, DType::fp16)));
}

TEST(HalfBits, RoundTripAndNearestEven) {
  for (DType dtype : {DType::bf16, DType::fp16}) {
    for (uint32_t bits = 0; bits < 0x7c00; ++bits) {  // every finite positive pattern below fp16's inf
      const double v = half_to_double(static_cast<uint16_t>(bits), dtype);
      ASSERT_EQ(double_to_half(v, dtype), bits) << dtype_name(dtype) << " " << v;
    }
  }
  // 1 + 2^-8 lies halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(double_to_half(1.0 + std::ldexp(1.0, -8), DType::bf16), 0x3f80);
  EXPECT_EQ(double_to_half(1.0 + 3 * std::ldexp(1.0, -8), DType::bf16), 0x3f82);
  EXPECT_EQ(double_to_half(-1.0 - std::ldexp(1.0, -11), DType::fp16), 0xbc00);
}

TEST(Problem, LayoutFollowsTheSpec) {
  const Problem p = make_problem({.b = 5,
                                  .s_q = 2,
                                  .h_q = 4,
                                  .h_kv = 2,
                                  .s_k = 100,
                                  .varlen = true,
                                  .page_size = 16,
                                  .seed = 3,
                                  .zero_length_every = 4,
                                  .extra_pages = 7});
  ASSERT_EQ(p.seqlens.size(), 5u);
  EXPECT_EQ(p.seqlens[0], 0);
  EXPECT_EQ(p.seqlens[4], 0);
  std::set<int32_t> pages;
  int64_t used = 0;
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_GE(p.seqlens[i] == 0 ? 2 : p.seqlens[i], 2) << "varlen lengths are at least s_q";
    const int64_t n = (p.seqlens[i] + 15) / 16;
    used += n;
    for (int64_t j = 0; j < p.max_blocks_per_seq; ++j) {
      const int32_t block = p.block_table[i * p.max_blocks_per_seq + j];
      if (j < n) {
        EXPECT_TRUE(block >= 0 && block < p.num_blocks);
        pages.insert(block);
      } else {
        EXPECT_EQ(block, kPoisonPage);
      }
    }
  }
  EXPECT_EQ(static_cast<int64_t>(pages.size()), used) << "no page is shared";
  EXPECT_EQ(p.num_blocks, used + 7);
  // Unused slots are NaN, used ones finite and within ±1.
  const int64_t slot = 2 * 576;
  int64_t nan_slots = 0;
  for (int64_t t = 0; t < p.num_blocks * 16; ++t) {
    const double v = half_to_double(p.cache_data()[t * slot], DType::bf16);
    nan_slots += std::isnan(v);
    EXPECT_TRUE(std::isnan(v) || std::fabs(v) <= 1.0);
  }
  int64_t tokens = 0;
  for (int32_t s_k : p.seqlens) {
    tokens += s_k;
  }
  EXPECT_EQ(nan_slots, p.num_blocks * 16 - tokens);
}

TEST(Problem, FixedLengthsAndDeterministicData) {
  const ProblemSpec spec{.b = 3, .h_q = 2, .s_k = 70, .seed = 9};
  const Problem a = make_problem(spec);
  const Problem b = make_problem(spec);
  EXPECT_EQ(a.seqlens, (std::vector<int32_t>{70, 70, 70}));
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(a.block_table, b.block_table);
}

// One key: softmax weight 1, so out = v and lse = the one scaled score.
// laid_out_q puts each q row where a view with the given strides and offset reads it, zeros elsewhere:
// heads outside the query positions, padded to 580 elements, from element 3.
TEST(Problem, LaidOutQFollowsTheStrides) {
  const Problem p = make_problem({.b = 2, .s_q = 3, .h_q = 2, .seed = 5});
  const int64_t row = 580;
  const std::array<int64_t, 3> strides = {3 * 2 * row, row, 3 * row};  // [b, h_q, s_q, 580]
  const std::vector<uint16_t> laid = laid_out_q(p, strides, 3, 3 + 2 * 3 * 2 * row);
  ASSERT_EQ(laid.size(), static_cast<size_t>(3 + 2 * 3 * 2 * row));
  std::vector<bool> written(laid.size(), false);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t h = 0; h < 2; ++h) {
        const int64_t from = 3 + ((b * 2 + h) * 3 + i) * row;  // row (b, h, i) of [b, h_q, s_q, 580]
        for (int64_t d = 0; d < 576; ++d) {
          EXPECT_EQ(laid[from + d], p.q[((b * 3 + i) * 2 + h) * 576 + d]);
          written[from + d] = true;
        }
      }
    }
  }
  for (size_t x = 0; x < laid.size(); ++x) {
    if (!written[x]) {
      ASSERT_EQ(laid[x], 0) << "element " << x;
    }
  }
}

TEST(Reference, SingleKey) {
  Problem p = make_problem({.b = 1, .h_q = 1, .s_k = 1, .d_qk = 8, .d_v = 4, .seed = 2});
  const Reference r = reference_decode(p);
  const uint16_t* k = p.cache_data() + p.block_table[0] * 8;
  double score = 0.0;
  for (int d = 0; d < 8; ++d) {
    score += half_to_double(p.q[d], DType::bf16) * half_to_double(k[d], DType::bf16);
  }
  for (int d = 0; d < 4; ++d) {
    EXPECT_EQ(r.out[d], half_to_double(k[d], DType::bf16));
  }
  // The scale is a float, as in the library: 1 / sqrt(8) rounded to fp32.
  EXPECT_NEAR(r.lse[0], score * static_cast<double>(p.softmax_scale()), 1e-15);
}

// Two keys with hand-set values: weights e^s / (e^s0 + e^s1).
TEST(Reference, TwoKeysAndCausalRows) {
  Problem p = make_problem({.b = 1,
                            .s_q = 2,
                            .h_q = 1,
                            .s_k = 2,
                            .causal = true,
                            .page_size = 1,
                            .d_qk = 2,
                            .d_v = 1,
                            .softmax_scale = 1.0f,
                            .seed = 5});
  auto* cache = static_cast<uint16_t*>(p.k_cache.data());
  const int32_t page0 = p.block_table[0];
  const int32_t page1 = p.block_table[1];
  cache[page0 * 2] = double_to_half(1.0, DType::bf16);
  cache[page0 * 2 + 1] = double_to_half(0.0, DType::bf16);
  cache[page1 * 2] = double_to_half(-1.0, DType::bf16);
  cache[page1 * 2 + 1] = double_to_half(1.0, DType::bf16);
  for (uint16_t& x : p.q) {
    x = double_to_half(0.5, DType::bf16);
  }
  const Reference r = reference_decode(p);
  // Row 0 sees key 0 only (s_k - s_q + 0 = 0); row 1 sees both: scores 0.5 and 0.
  EXPECT_EQ(r.out[0], 1.0);
  EXPECT_DOUBLE_EQ(r.lse[0], 0.5);
  const double w0 = std::exp(0.5) / (std::exp(0.5) + 1.0);
  EXPECT_DOUBLE_EQ(r.out[1], w0 * 1.0 + (1.0 - w0) * -1.0);
  EXPECT_DOUBLE_EQ(r.lse[1], std::log(std::exp(0.5) + 1.0));
}

TEST(Reference, RowsThatSeeNoKey) {
  const Problem p = make_problem({.s_q = 4, .h_q = 2, .causal = true, .lengths = {0, 2}});
  const Reference r = reference_decode(p);
  // Sequence 0 sees nothing; sequence 1 (s_k = 2 < s_q = 4): rows 0 and 1 see nothing.
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_EQ(r.lse[(0 * 2 + h) * 4 + i], std::numeric_limits<double>::infinity());
      EXPECT_EQ(std::isinf(r.lse[(1 * 2 + h) * 4 + i]), i < 2) << h << " " << i;
    }
  }
  EXPECT_EQ(r.out[(1 * 4 + 0) * 2 * 512], 0.0);
  EXPECT_NE(r.out[(1 * 4 + 3) * 2 * 512], 0.0);
}

// The comparison flags each kind of offence the tolerances name (docs/design.md), and accepts the reference itself.
class Compare : public ::testing::Test {
 protected:
  void SetUp() override {
    problem_ = make_problem({.s_q = 2, .h_q = 4, .causal = true, .seed = 6, .lengths = {50, 1}});
    ref_ = reference_decode(problem_);
    output_ = make_output(problem_.spec);
    for (size_t i = 0; i < ref_.out.size(); ++i) {
      output_.out[i] = double_to_half(ref_.out[i], DType::bf16);
    }
    for (size_t i = 0; i < ref_.lse.size(); ++i) {
      output_.lse[i] = static_cast<float>(ref_.lse[i]);
    }
  }

  Comparison run() const { return compare(ref_, output_.out_view(), output_.lse_view()); }

  Problem problem_;
  Reference ref_;
  Output output_;
};

TEST_F(Compare, AcceptsTheRoundedReference) {
  const Comparison c = run();
  EXPECT_TRUE(c.ok()) << c.summary();
  EXPECT_LT(c.rel_frobenius, 5e-3);
}

TEST_F(Compare, FlagsAnOutElementOffByMoreThanTheBound) {
  output_.out[7] = double_to_half(ref_.out[7] + 2e-3 + std::fabs(ref_.out[7]) / 32, DType::bf16);
  const Comparison c = run();
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.out_mismatches, 1);
  ASSERT_FALSE(c.first.empty());
  EXPECT_NE(c.first[0].find("out[0, 0, 0, 7]"), std::string::npos) << c.first[0];
}

TEST_F(Compare, FlagsLseErrorsInfAndNaN) {
  output_.lse[0] += 1e-3f;    // row (0, h 0, i 0): finite, off by more than 1e-5 + 2e-4 |ref|
  output_.lse[1] = INFINITY;  // +inf where the reference is finite
  output_.lse[2] = NAN;
  const Comparison c = run();
  EXPECT_EQ(c.lse_mismatches, 3);
  EXPECT_EQ(c.nans, 1);
  EXPECT_FALSE(c.ok());
}

TEST_F(Compare, FlagsARowThatSeesNoKeyWithoutInfOrZero) {
  // Sequence 1 has one key and s_q = 2, causal: its row i = 0 sees nothing.
  const size_t lse_index = (1 * 4 + 0) * 2 + 0;
  ASSERT_TRUE(std::isinf(ref_.lse[lse_index]));
  output_.lse[lse_index] = 0.0f;
  const size_t out_index = ((1 * 2 + 0) * 4 + 0) * 512 + 3;
  output_.out[out_index] = double_to_half(1e-4, DType::bf16);  // small, but not the exact 0 required
  const Comparison c = run();
  EXPECT_EQ(c.lse_mismatches, 1);
  EXPECT_EQ(c.out_mismatches, 1);
}

TEST_F(Compare, FlagsFrobeniusErrorEvenWhenEveryElementIsWithinBound) {
  // Shift every element by 0.9 of its bound: each passes, the whole does not.
  for (size_t i = 0; i < ref_.out.size(); ++i) {
    output_.out[i] = double_to_half(ref_.out[i] + 0.9 * (1e-3 + std::fabs(ref_.out[i]) / 64), DType::bf16);
  }
  const Comparison c = run();
  EXPECT_GT(c.rel_frobenius, 5e-3);
  EXPECT_FALSE(c.ok());
}

}  // namespace
}  // namespace openmla::test
