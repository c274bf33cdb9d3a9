// The merge on the CPU against the float64 attention over the union of the parts' keys: n = 1..8
// parts of interleaved, contiguous and random key sets, bf16 / fp16 / fp32 partials, causal rows
// that see none of a part's keys, zero-length sequences; and the context-parallel recipe: two decodes
// over two block tables that share a sequence's pages, merged, equal one decode over the whole.

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "check.h"
#include "host_decode.h"
#include "openmla/decode.h"
#include "openmla/merge.h"
#include "openmla/plan.h"
#include "parts.h"
#include "random.h"
#include "reference.h"

namespace openmla::test {
namespace {

ProblemSpec union_spec(uint64_t seed) {
  return {.b = 4,
          .s_q = 2,
          .h_q = 6,
          .h_kv = 2,
          .causal = true,
          .page_size = 16,
          .d_qk = 72,
          .d_v = 64,
          .seed = seed,
          .lengths = {0, 1, 37, 150}};
}

struct UnionCase {
  int64_t n;
  DType parts;
  DType out;
};

void PrintTo(const UnionCase& c, std::ostream* os) {
  *os << c.n << " parts " << dtype_name(c.parts) << " -> " << dtype_name(c.out);
}

std::string case_name(const ::testing::TestParamInfo<UnionCase>& info) {
  std::ostringstream name;
  name << 'n' << info.param.n << '_' << dtype_name(info.param.parts) << "_to_" << dtype_name(info.param.out);
  return name.str();
}

class MergeUnion : public ::testing::TestWithParam<UnionCase> {};

// Keys dealt to the parts three ways: round robin, contiguous ranges, at random.
TEST_P(MergeUnion, EqualsAttentionOverTheUnion) {
  const UnionCase c = GetParam();
  const Problem problem = make_problem(union_spec(static_cast<uint64_t>(c.n)));
  const Reference whole = reference_decode(problem);
  Rng rng(99);
  const KeyOwner owners[] = {
      [&](int64_t seq, int64_t key) { return (key + seq) % c.n; },
      [&](int64_t seq, int64_t key) { return key * c.n / std::max<int64_t>(problem.seqlens[seq], 1); },
      [&](int64_t, int64_t) { return rng.below(c.n); },
  };
  for (const KeyOwner& owner : owners) {
    const Results merged = merge_on_host(reference_parts(problem, c.n, owner, c.parts), c.out);
    EXPECT_TRUE(matches(whole, merged.out_view(), merged.lse_view()));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cpu, MergeUnion,
    ::testing::Values(UnionCase{1, DType::bf16, DType::bf16}, UnionCase{2, DType::bf16, DType::bf16},
                      UnionCase{3, DType::fp16, DType::fp16}, UnionCase{4, DType::fp32, DType::bf16},
                      UnionCase{5, DType::bf16, DType::fp16}, UnionCase{6, DType::fp16, DType::bf16},
                      UnionCase{7, DType::fp32, DType::fp16}, UnionCase{8, DType::bf16, DType::bf16}),
    case_name);

// fp32 partials merged into fp32: only fp32 rounding is left, far inside the bf16 tolerances.
TEST(MergeUnionFp32, TightAgainstFloat64) {
  const Problem problem = make_problem(union_spec(5));
  const Reference whole = reference_decode(problem);
  const Results merged =
      merge_on_host(reference_parts(
                        problem, 5, [](int64_t seq, int64_t key) { return (key * 3 + seq) % 5; }, DType::fp32),
                    DType::fp32);
  for (size_t r = 0; r < whole.lse.size(); ++r) {
    const double want = whole.lse[r];
    ASSERT_TRUE(std::isinf(want) ? merged.lse[r] == want
                                 : std::fabs(merged.lse[r] - want) <= 1e-6 * (1 + std::fabs(want)))
        << "lse row " << r << ": " << merged.lse[r] << ", reference " << want;
  }
  for (size_t e = 0; e < whole.out.size(); ++e) {
    const double got = merged.out_at(static_cast<int64_t>(e));
    ASSERT_LE(std::fabs(got - whole.out[e]), 1e-6 + 1e-5 * std::fabs(whole.out[e])) << "out element " << e;
  }
}

// One decode of the problem over the given block table and lengths, into part `part` of `stack`.
void decode_share(const Problem& p, const PageShare& share, bool causal, Results& stack, int64_t part) {
  Output unused = make_output(p.spec);
  DecodeArgs args = host_args(p, unused);
  args.block_table =
      make_view(const_cast<int32_t*>(share.block_table.data()), DType::int32, {p.spec.b, p.max_blocks_per_seq});
  args.cache_seqlens = make_view(const_cast<int32_t*>(share.seqlens.data()), DType::int32, {p.spec.b});
  args.causal = causal;
  const PlanConfig config{.batch = p.spec.b,
                          .s_q = p.spec.s_q,
                          .h_q = p.spec.h_q,
                          .h_kv = p.spec.h_kv,
                          .page_size = p.spec.page_size,
                          .num_parts = 3};
  std::vector<uint64_t> plan_memory(static_cast<size_t>(plan_buffer_size(config) / 8 + 1));
  const Plan plan = openmla::plan(config, args.cache_seqlens, Buffer{plan_memory.data(), plan_buffer_size(config)});
  const int64_t workspace_bytes = workspace_size(plan.config, p.spec.d_v);
  const MappedBuffer workspace(static_cast<size_t>(workspace_bytes));
  args.plan = &plan;
  args.workspace = Buffer{workspace.data(), workspace_bytes};
  // Decode writes straight into the stack: part `part` of [n, b, s_q, h_q, d_v] and [n, b, h_q, s_q].
  args.out = stack.out_view();
  args.out.data =
      reinterpret_cast<char*>(stack.out.data()) + part * p.spec.b * p.spec.s_q * p.spec.h_q * p.spec.d_v * 2;
  args.lse = stack.lse_view();
  args.lse.data = stack.lse.data() + part * p.spec.b * p.spec.h_q * p.spec.s_q;
  decode(args);
}

void expect_halves_merge_to_whole(const ProblemSpec& spec) {
  const Problem problem = make_problem(spec);
  const std::vector<PageShare> shares = split_pages_in_two(problem);
  Results stack = make_results(spec.dtype, 2, spec.b, spec.s_q, spec.h_q, spec.d_v);
  decode_share(problem, shares[0], false, stack, 0);
  decode_share(problem, shares[1], spec.causal, stack, 1);
  const Results merged = merge_on_host(stack, spec.dtype);
  EXPECT_TRUE(matches(reference_decode(problem), merged.out_view(), merged.lse_view()));
  const Output whole = host_decode(problem);
  EXPECT_TRUE(matches(reference_from_output(whole.out_view(), whole.lse_view()), merged.out_view(), merged.lse_view()));
}

TEST(MergeDecodeHalves, EqualsOneDecodeOverTheWhole) {
  expect_halves_merge_to_whole({.b = 5, .h_q = 16, .s_k = 700, .varlen = true, .seed = 3, .zero_length_every = 4});
}

TEST(MergeDecodeHalves, CausalMultiTokenStaysExact) {
  for (int64_t s_q : {2, 4, 9}) {
    SCOPED_TRACE("s_q " + std::to_string(s_q));
    expect_halves_merge_to_whole(
        {.b = 6, .s_q = s_q, .h_q = 8, .causal = true, .seed = 4, .lengths = {0, 3, 64, 65, 129, 500}});
  }
}

TEST(MergeDecodeHalves, Fp16AndOddPageSize) {
  expect_halves_merge_to_whole({.b = 3,
                                .s_q = 3,
                                .h_q = 4,
                                .h_kv = 2,
                                .causal = true,
                                .page_size = 7,
                                .dtype = DType::fp16,
                                .seed = 5,
                                .lengths = {8, 50, 300}});
}

}  // namespace
}  // namespace openmla::test
