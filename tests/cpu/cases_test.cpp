// The CPU backend on the cases docs/semantics.md singles out: rows that see no key, garbage that must
// never be read, other page sizes and dtypes, strided views, determinism and the split count.

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "half_bits.h"
#include "host_decode.h"
#include "mapped_buffer.h"
#include "openmla/openmla.h"
#include "reference.h"

namespace openmla::test {
namespace {

void expect_matches(const ProblemSpec& spec, int64_t num_parts = 0) {
  const Problem problem = make_problem(spec);
  const Output output = host_decode(problem, num_parts);
  EXPECT_TRUE(matches(reference_decode(problem), output.out_view(), output.lse_view()));
}

TEST(Cases, ZeroLengthSequences) {
  // Every other sequence empty, including the first and the last; split over more parts than work.
  for (int64_t num_parts : {1, 3, 16}) {
    expect_matches({.b = 7, .s_q = 2, .h_q = 16, .s_k = 300, .varlen = true, .seed = 11, .zero_length_every = 2},
                   num_parts);
  }
}

TEST(Cases, AllSequencesEmpty) {
  const Problem problem = make_problem({.s_q = 2, .h_q = 4, .lengths = {0, 0, 0}, .extra_pages = 2});
  const Output output = host_decode(problem);
  for (uint16_t bits : output.out) {
    EXPECT_EQ(bits, 0);  // +0.0, written (not the sentinel)
  }
  for (float l : output.lse) {
    EXPECT_EQ(l, INFINITY);
  }
}

TEST(Cases, CausalRowsThatSeeNoKey) {
  // s_k < s_q: the first s_q - s_k rows of a causal sequence see no key.
  expect_matches({.s_q = 4, .h_q = 8, .causal = true, .seed = 12, .lengths = {1, 2, 3, 4, 5, 0}});
}

TEST(Cases, NaNInUnusedSlotsAndPoisonedTails) {
  // The default spec already poisons; here the unused pages and table columns are many.
  expect_matches({.b = 6,
                  .s_q = 2,
                  .h_q = 8,
                  .s_k = 130,
                  .varlen = true,
                  .causal = true,
                  .page_size = 64,
                  .seed = 13,
                  .nan_unused = true,
                  .poison_table_tail = true,
                  .extra_pages = 20,
                  .extra_table_columns = 5});
}

TEST(Cases, LengthsOnPageBoundaries) {
  expect_matches({.s_q = 2, .h_q = 4, .page_size = 64, .seed = 14, .lengths = {63, 64, 65, 128, 1, 129}});
}

class PageSize : public ::testing::TestWithParam<int64_t> {};

TEST_P(PageSize, MatchesReference) {
  expect_matches({.b = 3,
                  .s_q = 2,
                  .h_q = 16,
                  .h_kv = 2,
                  .s_k = 300,
                  .varlen = true,
                  .causal = true,
                  .page_size = GetParam(),
                  .seed = 15,
                  .extra_pages = 3});
}

INSTANTIATE_TEST_SUITE_P(Cpu, PageSize, ::testing::Values(1, 16, 64, 256));

TEST(Cases, Fp16) {
  expect_matches(
      {.b = 4, .s_q = 2, .h_q = 16, .s_k = 500, .varlen = true, .causal = true, .dtype = DType::fp16, .seed = 16});
}

TEST(Cases, SoftmaxScale) {
  // 10x the default scale sharpens the softmax; lse grows with it.
  expect_matches({.b = 3, .h_q = 16, .s_k = 700, .varlen = true, .softmax_scale = 0.4f, .seed = 17});
  expect_matches({.b = 3, .h_q = 16, .s_k = 700, .varlen = true, .softmax_scale = 0.01f, .seed = 18});
}

TEST(Cases, SmallHeadDimensions) {
  expect_matches({.b = 2, .s_q = 2, .h_q = 4, .s_k = 90, .d_qk = 64, .d_v = 32, .seed = 19});
  expect_matches({.b = 2, .h_q = 4, .s_k = 90, .d_qk = 40, .d_v = 40, .seed = 20});
}

// A view of `rows` rows of `cols` elements inside rows of `pitch` elements.
template <typename T>
std::vector<T> pad_rows(const T* src, int64_t rows, int64_t cols, int64_t pitch, T fill) {
  std::vector<T> dst(static_cast<size_t>(rows * pitch), fill);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(src + r * cols, src + (r + 1) * cols, dst.begin() + r * pitch);
  }
  return dst;
}

TEST(Cases, StridedViews) {
  const ProblemSpec spec{.b = 3, .s_q = 2, .h_q = 8, .h_kv = 2, .s_k = 200, .varlen = true, .causal = true, .seed = 21};
  const Problem p = make_problem(spec);
  const int64_t b = spec.b;
  const int64_t s_q = spec.s_q;
  const int64_t h_q = spec.h_q;
  const int64_t d_v = spec.d_v;

  // q: every row padded to d_qk + 24 elements of NaN.
  const int64_t q_pitch = spec.d_qk + 24;
  // [b, s_q, h_q, q_pitch]
  std::vector<uint16_t> q = pad_rows(p.q.data(), b * s_q * h_q, spec.d_qk, q_pitch, kBf16NaN);
  // block_table: every row padded by 3 poisoned columns; cache_seqlens: every other int32.
  std::vector<int32_t> table = pad_rows(p.block_table.data(), b, p.max_blocks_per_seq, p.max_blocks_per_seq + 3,
                                        kPoisonPage);                      // [b, max_blocks + 3]
  std::vector<int32_t> seqlens = pad_rows(p.seqlens.data(), b, 1, 2, -1);  // [b, 2]
  // out: a slice [:, :, :, :d_v] of [b, s_q, h_q, d_v + 8]; lse: the transpose of [b, s_q, h_q].
  const int64_t out_pitch = d_v + 8;
  std::vector<uint16_t> out(static_cast<size_t>(b * s_q * h_q * out_pitch), kOutSentinel);
  std::vector<float> lse(static_cast<size_t>(b * s_q * h_q), kLseSentinel);

  DecodeArgs args;
  args.q = make_view(q.data(), DType::bf16, {b, s_q, h_q, spec.d_qk});
  args.q.strides[0] = s_q * h_q * q_pitch;
  args.q.strides[1] = h_q * q_pitch;
  args.q.strides[2] = q_pitch;
  args.k_cache = p.k_cache_view();
  args.block_table = make_view(table.data(), DType::int32, {b, p.max_blocks_per_seq});
  args.block_table.strides[0] = p.max_blocks_per_seq + 3;
  args.cache_seqlens = make_view(seqlens.data(), DType::int32, {b});
  args.cache_seqlens.strides[0] = 2;
  args.causal = true;
  args.out = make_view(out.data(), DType::bf16, {b, s_q, h_q, d_v});
  args.out.strides[0] = s_q * h_q * out_pitch;
  args.out.strides[1] = h_q * out_pitch;
  args.out.strides[2] = out_pitch;
  args.lse = make_view(lse.data(), DType::fp32, {b, h_q, s_q});
  args.lse.strides[1] = 1;
  args.lse.strides[2] = h_q;

  const PlanConfig config{
      .batch = b, .s_q = s_q, .h_q = h_q, .h_kv = spec.h_kv, .page_size = spec.page_size, .num_parts = 5};
  const MappedBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Plan plan = openmla::plan(config, args.cache_seqlens, {plan_memory.data(), plan_buffer_size(config)});
  const int64_t ws_bytes = workspace_size(plan.config, d_v);
  const MappedBuffer workspace(static_cast<size_t>(ws_bytes));
  args.plan = &plan;
  args.workspace = {workspace.data(), ws_bytes};
  decode(args);

  EXPECT_TRUE(matches(reference_decode(p), args.out, args.lse));
  for (int64_t row = 0; row < b * s_q * h_q; ++row) {
    for (int64_t d = d_v; d < out_pitch; ++d) {
      ASSERT_EQ(out[row * out_pitch + d], kOutSentinel) << "padding of out row " << row << " was written";
    }
  }
}

TEST(Cases, Deterministic) {
  const Problem problem =
      make_problem({.b = 5, .s_q = 2, .h_q = 32, .s_k = 1500, .varlen = true, .causal = true, .seed = 22});
  for (int64_t num_parts : {0, 7}) {
    const Output first = host_decode(problem, num_parts);
    const Output second = host_decode(problem, num_parts);
    EXPECT_TRUE(bitwise_equal(first, second)) << "num_parts " << num_parts;
  }
}

TEST(Cases, IndependentOfNumParts) {
  const Problem problem = make_problem(
      {.b = 4, .s_q = 2, .h_q = 16, .s_k = 1000, .varlen = true, .causal = true, .seed = 23, .zero_length_every = 3});
  const Reference ref = reference_decode(problem);
  const Output single = host_decode(problem, 1);
  const Reference single_as_ref = reference_from_output(single.out_view(), single.lse_view());
  for (int64_t num_parts : {1, 2, 3, 5, 8, 13, 64, 1000}) {
    const Output output = host_decode(problem, num_parts);
    EXPECT_TRUE(matches(ref, output.out_view(), output.lse_view())) << "num_parts " << num_parts;
    EXPECT_TRUE(matches(single_as_ref, output.out_view(), output.lse_view())) << "num_parts " << num_parts << " vs 1";
  }
}

TEST(Cases, NaNInQueryGivesNaNRowWhateverTheSplits) {
  // One NaN element in q row (sequence 1, token 1, head 3): that row's out and lse are NaN, with one
  // part (no split) and with parts that split sequence 1 in several; every other row is as without it.
  const Problem clean = make_problem({.s_q = 2, .h_q = 8, .causal = true, .seed = 25, .lengths = {300, 2000, 100}});
  Problem poisoned = make_problem(clean.spec);
  const ProblemSpec& s = clean.spec;
  poisoned.q[static_cast<size_t>(((1 * s.s_q + 1) * s.h_q + 3) * s.d_qk + 100)] = kBf16NaN;
  for (int64_t num_parts : {1, 2, 16}) {
    SCOPED_TRACE("num_parts " + std::to_string(num_parts));
    const Output expected = host_decode(clean, num_parts);
    const Output got = host_decode(poisoned, num_parts);
    for (int64_t n = 0; n < s.b; ++n) {
      for (int64_t i = 0; i < s.s_q; ++i) {
        for (int64_t h = 0; h < s.h_q; ++h) {
          const bool nan_row = n == 1 && i == 1 && h == 3;
          const size_t lse_at = static_cast<size_t>((n * s.h_q + h) * s.s_q + i);
          if (nan_row) {
            EXPECT_TRUE(std::isnan(got.lse[lse_at])) << "lse " << got.lse[lse_at];
          } else {
            EXPECT_EQ(got.lse[lse_at], expected.lse[lse_at]) << "row " << n << ", " << i << ", " << h;
          }
          for (int64_t d = 0; d < s.d_v; ++d) {
            const size_t at = static_cast<size_t>(((n * s.s_q + i) * s.h_q + h) * s.d_v + d);
            if (nan_row) {
              ASSERT_TRUE(std::isnan(half_to_double(got.out[at], s.dtype))) << "out element " << d;
            } else {
              ASSERT_EQ(got.out[at], expected.out[at]) << "row " << n << ", " << i << ", " << h;
            }
          }
        }
      }
    }
  }
}

TEST(Cases, EmptyBatch) {
  // b = 0: plan and decode return at once; views with a zero dimension may have a null pointer.
  const PlanConfig config{.batch = 0, .h_q = 16, .num_parts = 4};
  const int64_t plan_bytes = plan_buffer_size(config);
  const int64_t ws_bytes = workspace_size(config, 512);
  EXPECT_LE(plan_bytes, 128);
  EXPECT_EQ(ws_bytes, 256);  // the status slot only
  const MappedBuffer plan_memory(static_cast<size_t>(plan_bytes));
  const MappedBuffer workspace(static_cast<size_t>(ws_bytes));
  const Plan plan = openmla::plan(config, make_view(nullptr, DType::int32, {0}), {plan_memory.data(), plan_bytes});
  const Problem cache = make_problem({.h_q = 16, .seed = 26});
  DecodeArgs args;
  args.q = make_view(nullptr, DType::bf16, {0, 1, 16, 576});
  args.k_cache = cache.k_cache_view();
  args.block_table = make_view(nullptr, DType::int32, {0, 4});
  args.cache_seqlens = make_view(nullptr, DType::int32, {0});
  args.plan = &plan;
  args.workspace = {workspace.data(), ws_bytes};
  args.out = make_view(nullptr, DType::bf16, {0, 1, 16, 512});
  args.lse = make_view(nullptr, DType::fp32, {0, 16, 1});
  decode(args);
  EXPECT_EQ(read_status(args.workspace).code, StatusCode::ok);
}

TEST(Cases, PlanServesOtherShapes) {
  // A plan made for h_q = 16, s_q = 1, page 64 serves a decode of h_q = 128, s_q = 2, h_kv = 2, page 32
  // of the same lengths: the schedule depends only on the lengths and num_parts. The workspace is
  // sized for the decode.
  const Problem problem =
      make_problem({.s_q = 2, .h_q = 128, .h_kv = 2, .page_size = 32, .seed = 27, .lengths = {700, 31, 1500}});
  const PlanConfig config{.batch = 3, .s_q = 1, .h_q = 16, .h_kv = 1, .page_size = 64, .num_parts = 5};
  const MappedBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Plan plan = openmla::plan(config, problem.seqlens_view(), {plan_memory.data(), plan_buffer_size(config)});
  const Output output = host_decode_with(problem, plan);
  EXPECT_TRUE(matches(reference_decode(problem), output.out_view(), output.lse_view()));
}

TEST(Cases, StatusOkAfterCpuDecode) {
  const Problem problem = make_problem({.b = 2, .h_q = 4, .s_k = 100, .seed = 24});
  const PlanConfig config{.batch = 2, .h_q = 4};
  const MappedBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Plan plan = openmla::plan(config, problem.seqlens_view(), {plan_memory.data(), plan_buffer_size(config)});
  const int64_t ws_bytes = workspace_size(plan.config, 512);
  const MappedBuffer workspace(static_cast<size_t>(ws_bytes));
  Output output = make_output(problem.spec);
  DecodeArgs args = host_args(problem, output);
  args.plan = &plan;
  args.workspace = {workspace.data(), ws_bytes};
  decode(args);
  const DecodeStatus status = read_status(args.workspace);
  EXPECT_EQ(status.code, StatusCode::ok);
  EXPECT_EQ(status.batch, -1);
  EXPECT_NO_THROW(check_status(status));
}

}  // namespace
}  // namespace openmla::test
