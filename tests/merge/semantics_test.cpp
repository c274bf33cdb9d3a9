// The merge rules on hand-made parts (CPU): parts with an infinite LSE contribute nothing and are not
// read, rows no part saw give out 0 / lse +inf, NaN propagates, one part is the identity, and any
// strides (slices, transposes, a stack made by an all-gather) give the same bits as contiguous views.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "openmla/merge.h"
#include "parts.h"

namespace openmla::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The merge formula in float64 for one element, from the parts as stored.
double expected_out(const Results& p, int64_t seq, int64_t i, int64_t h, int64_t d) {
  double max_lse = -INFINITY;
  for (int64_t k = 0; k < p.n; ++k) {
    const double l = p.lse[p.lse_index(k, seq, h, i)];
    max_lse = std::isfinite(l) ? std::max(max_lse, l) : max_lse;
  }
  double sum = 0.0;
  double acc = 0.0;
  for (int64_t k = 0; k < p.n; ++k) {
    const double l = p.lse[p.lse_index(k, seq, h, i)];
    if (std::isfinite(l)) {
      sum += std::exp(l - max_lse);
      acc += std::exp(l - max_lse) * p.out_at(p.out_index(k, seq, i, h, d));
    }
  }
  return acc / sum;
}

bool same_bits(const Results& a, const Results& b) {
  return a.out == b.out && std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float)) == 0;
}

TEST(MergeSemantics, MatchesTheFormulaForEveryDtypePair) {
  for (DType in : {DType::bf16, DType::fp16, DType::fp32}) {
    for (DType out : {DType::bf16, DType::fp16, DType::fp32}) {
      SCOPED_TRACE(std::string(dtype_name(in)) + " -> " + dtype_name(out));
      const Results parts = random_parts(in, 3, 2, 2, 3, 33, 7);
      const Results merged = merge_on_host(parts, out);
      // fp32 math, out rounded once to its dtype: within half an ulp of it, plus fp32 noise.
      const double ulp = out == DType::fp32 ? 0x1p-23 : out == DType::fp16 ? 0x1p-10 : 0x1p-7;
      for (int64_t seq = 0; seq < 2; ++seq) {
        for (int64_t i = 0; i < 2; ++i) {
          for (int64_t h = 0; h < 3; ++h) {
            for (int64_t d = 0; d < 33; ++d) {
              const double want = expected_out(parts, seq, i, h, d);
              ASSERT_NEAR(merged.out_at(merged.out_index(0, seq, i, h, d)), want, 1e-6 + ulp * std::fabs(want));
            }
          }
        }
      }
    }
  }
}

TEST(MergeSemantics, OnePartIsTheIdentity) {
  for (DType dtype : {DType::bf16, DType::fp16, DType::fp32}) {
    Results part = random_parts(dtype, 1, 3, 2, 4, 40, 8);
    part.lse[1] = kInf;  // row (seq 0, h 0, i 1): out must come back 0 whatever the part holds
    const Results merged = merge_on_host(part, dtype);
    for (int64_t seq = 0; seq < 3; ++seq) {
      for (int64_t i = 0; i < 2; ++i) {
        for (int64_t h = 0; h < 4; ++h) {
          const bool empty = seq == 0 && h == 0 && i == 1;
          EXPECT_EQ(merged.lse[merged.lse_index(0, seq, h, i)], part.lse[part.lse_index(0, seq, h, i)]);
          for (int64_t d = 0; d < 40; ++d) {
            const int64_t e = part.out_index(0, seq, i, h, d);
            ASSERT_EQ(merged.out_at(e), empty ? 0.0 : part.out_at(e)) << dtype_name(dtype) << " element " << e;
          }
        }
      }
    }
  }
}

// A part with lse +inf saw no key: it changes nothing, and its out (NaN here) is never read. -inf
// (no weight) is treated the same.
TEST(MergeSemantics, InfinitePartsContributeNothingAndAreNotRead) {
  const Results three = random_parts(DType::bf16, 3, 2, 3, 4, 64, 9);
  Results five = make_results(DType::bf16, 5, 2, 3, 4, 64);
  const int64_t part_elements = 2 * 3 * 4 * 64;
  const int64_t part_rows = 2 * 4 * 3;
  const int64_t from[] = {0, -1, 1, -1, 2};  // parts 1 and 3 are empty
  for (int64_t k = 0; k < 5; ++k) {
    for (int64_t r = 0; r < part_rows; ++r) {
      five.lse[k * part_rows + r] = from[k] >= 0 ? three.lse[from[k] * part_rows + r] : (k == 1 ? kInf : -kInf);
    }
    for (int64_t e = 0; e < part_elements && from[k] >= 0; ++e) {
      five.set_out(k * part_elements + e, three.out_at(from[k] * part_elements + e));
    }
  }
  EXPECT_TRUE(same_bits(merge_on_host(five, DType::fp32), merge_on_host(three, DType::fp32)));
}

TEST(MergeSemantics, RowsNoPartSawGiveZeroAndInf) {
  Results parts = random_parts(DType::fp16, 4, 2, 1, 3, 16, 10);
  for (int64_t k = 0; k < 4; ++k) {
    parts.lse[parts.lse_index(k, 1, 2, 0)] = k % 2 ? kInf : -kInf;
    for (int64_t d = 0; d < 16; ++d) {
      parts.set_out(parts.out_index(k, 1, 0, 2, d), NAN);
    }
  }
  const Results merged = merge_on_host(parts, DType::fp16);
  EXPECT_EQ(merged.lse[merged.lse_index(0, 1, 2, 0)], kInf);
  for (int64_t d = 0; d < 16; ++d) {
    EXPECT_EQ(merged.out_at(merged.out_index(0, 1, 0, 2, d)), 0.0);
  }
  EXPECT_TRUE(std::isfinite(merged.lse[merged.lse_index(0, 1, 1, 0)]));
}

TEST(MergeSemantics, NanLseMakesTheRowNan) {
  Results parts = random_parts(DType::bf16, 3, 2, 2, 2, 8, 11);
  parts.lse[parts.lse_index(2, 0, 1, 1)] = kNaN;
  parts.lse[parts.lse_index(0, 1, 0, 0)] = kInf;  // a NaN wins over +inf parts too
  parts.lse[parts.lse_index(1, 1, 0, 0)] = kNaN;
  parts.lse[parts.lse_index(2, 1, 0, 0)] = kInf;
  const Results merged = merge_on_host(parts, DType::bf16);
  for (const auto [seq, h, i] : {std::array<int64_t, 3>{0, 1, 1}, std::array<int64_t, 3>{1, 0, 0}}) {
    EXPECT_TRUE(std::isnan(merged.lse[merged.lse_index(0, seq, h, i)]));
    for (int64_t d = 0; d < 8; ++d) {
      EXPECT_TRUE(std::isnan(merged.out_at(merged.out_index(0, seq, i, h, d))));
    }
  }
  EXPECT_TRUE(std::isfinite(merged.lse[merged.lse_index(0, 0, 0, 0)]));
  EXPECT_FALSE(std::isnan(merged.out_at(merged.out_index(0, 0, 0, 0, 0))));
}

// NaN in the out of a part that contributes reaches the same element of the result; lse stays finite.
TEST(MergeSemantics, NanOutOfAContributingPartPropagates) {
  Results parts = random_parts(DType::fp32, 2, 1, 1, 2, 8, 12);
  parts.lse[parts.lse_index(1, 0, 0, 0)] = -120.0f;  // a weight that underflows to 0 still carries NaN
  parts.set_out(parts.out_index(1, 0, 0, 0, 5), NAN);
  const Results merged = merge_on_host(parts, DType::bf16);
  EXPECT_TRUE(std::isnan(merged.out_at(merged.out_index(0, 0, 0, 0, 5))));
  EXPECT_FALSE(std::isnan(merged.out_at(merged.out_index(0, 0, 0, 0, 4))));
  EXPECT_TRUE(std::isfinite(merged.lse[0]));
}

// Views with padding in every dim, lse transposed, out a slice of a wider head dim: the same bits
// as contiguous views.
TEST(MergeSemantics, StridedViewsGiveTheContiguousResult) {
  const int64_t n = 3, b = 2, s_q = 2, h_q = 3, d_v = 20;
  const Results parts = random_parts(DType::bf16, n, b, s_q, h_q, d_v, 13);
  const Results want = merge_on_host(parts, DType::bf16);

  // out_parts inside [n, b + 1, s_q, h_q + 2, d_v + 4], lse_parts as [n, b, s_q, h_q] transposed.
  std::vector<uint16_t> big_out(static_cast<size_t>(n * (b + 1) * s_q * (h_q + 2) * (d_v + 4)), 0x7fc0);
  std::vector<float> lse_bshq(static_cast<size_t>(n * b * s_q * h_q));
  TensorView op = make_view(big_out.data(), DType::bf16, {n, b + 1, s_q, h_q + 2, d_v + 4});
  op.sizes[1] = b;
  op.sizes[3] = h_q;
  op.sizes[4] = d_v;
  op.data = big_out.data() + op.strides[3] + 2;  // start at head 1, column 2
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t seq = 0; seq < b; ++seq) {
      for (int64_t i = 0; i < s_q; ++i) {
        for (int64_t h = 0; h < h_q; ++h) {
          for (int64_t d = 0; d < d_v; ++d) {
            const auto* src = reinterpret_cast<const uint16_t*>(parts.out.data());
            static_cast<uint16_t*>(
                op.data)[k * op.strides[0] + seq * op.strides[1] + i * op.strides[2] + h * op.strides[3] + d] =
                src[parts.out_index(k, seq, i, h, d)];
          }
          lse_bshq[((k * b + seq) * s_q + i) * h_q + h] = parts.lse[parts.lse_index(k, seq, h, i)];
        }
      }
    }
  }
  TensorView lp = make_view(lse_bshq.data(), DType::fp32, {n, b, h_q, s_q});
  lp.strides[2] = 1;
  lp.strides[3] = h_q;

  std::vector<uint16_t> big_result(static_cast<size_t>(b * s_q * (h_q + 1) * 32), 0);
  TensorView out = make_view(big_result.data(), DType::bf16, {b, s_q, h_q + 1, 32});
  out.sizes[2] = h_q;
  out.sizes[3] = d_v;
  std::vector<float> lse_bsh(static_cast<size_t>(b * s_q * h_q));
  TensorView lse = make_view(lse_bsh.data(), DType::fp32, {b, h_q, s_q});
  lse.strides[1] = 1;
  lse.strides[2] = h_q;
  merge(MergeArgs{.out_parts = op, .lse_parts = lp, .out = out, .lse = lse});

  const auto* want_out = reinterpret_cast<const uint16_t*>(want.out.data());
  for (int64_t seq = 0; seq < b; ++seq) {
    for (int64_t i = 0; i < s_q; ++i) {
      for (int64_t h = 0; h < h_q; ++h) {
        ASSERT_EQ(lse_bsh[(seq * s_q + i) * h_q + h], want.lse[want.lse_index(0, seq, h, i)]);
        for (int64_t d = 0; d < d_v; ++d) {
          ASSERT_EQ(big_result[seq * out.strides[0] + i * out.strides[1] + h * out.strides[2] + d],
                    want_out[want.out_index(0, seq, i, h, d)]);
        }
      }
    }
  }
}

// The same lse for every part through a zero stride: inputs may overlap themselves.
TEST(MergeSemantics, InputsMayBroadcast) {
  Results parts = random_parts(DType::fp32, 4, 1, 1, 2, 8, 14);
  Results merged = make_results(DType::fp32, 1, 1, 1, 2, 8);
  TensorView lp = parts.stacked_lse();
  lp.strides[0] = 0;  // every part has part 0's lse: weights 1/4 each
  merge(
      MergeArgs{.out_parts = parts.stacked_out(), .lse_parts = lp, .out = merged.out_view(), .lse = merged.lse_view()});
  EXPECT_NEAR(merged.lse[0], parts.lse[0] + std::log(4.0), 1e-6);
  double mean = 0.0;
  for (int64_t k = 0; k < 4; ++k) {
    mean += parts.out_at(parts.out_index(k, 0, 0, 0, 3)) / 4;
  }
  EXPECT_NEAR(merged.out_at(3), mean, 1e-6);
}

TEST(MergeSemantics, EmptyBatchWritesNothing) {
  std::vector<float> storage(4, kLseSentinel);  // non-null pointers for views with no element
  const TensorView out_parts = make_view(storage.data(), DType::bf16, {2, 0, 1, 4, 8});
  const TensorView lse_parts = make_view(storage.data() + 1, DType::fp32, {2, 0, 4, 1});
  const TensorView out = make_view(storage.data() + 2, DType::bf16, {0, 1, 4, 8});
  const TensorView lse = make_view(storage.data() + 3, DType::fp32, {0, 4, 1});
  merge(MergeArgs{.out_parts = out_parts, .lse_parts = lse_parts, .out = out, .lse = lse});
  EXPECT_EQ(storage, std::vector<float>(4, kLseSentinel));
}

}  // namespace
}  // namespace openmla::test
