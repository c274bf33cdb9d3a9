// The CPU backend against the float64 reference over the test grid (docs/design.md, Testing):
//   b ∈ {1,2,6,64}, s_q ∈ {1,2,4}, s_k ∈ {20,140,4096}, h_q ∈ {1,3,9,63,64,126,128}, h_kv ∈ {1,2,3,8}
//   (h_q % h_kv == 0), fixed and variable lengths, causal and not.
//
// Pruned, to keep the suite to about a minute on 2 cores: the full grid is 2304 cases and takes hours.
// A case costs about 1 µs per (query row, key) pair, b·s_q·h_q·s_k (the backend and the float64
// reference), plus about 8 µs per (key, KV head), b·s_k·h_kv (making, gathering and converting the
// cache). Cases above kMaxCostMs are dropped; that removes the large end of b × s_k × (s_q·h_q
// or h_kv), e.g. every b=64, s_k=4096 case, and keeps ~1100 cases in which every value of every axis
// appears. kLargeCases then adds back a few large shapes, one per kind of size: many long sequences,
// many heads over long sequences with causal MTP rows, many KV heads, a big batch of many heads.

#include "grid.h"

#include <gtest/gtest.h>

#include <vector>

#include "check.h"
#include "host_decode.h"
#include "reference.h"

namespace openmla::test {
namespace {

constexpr int64_t kMaxCostMs = 100;

int64_t cost_ms(const ProblemSpec& s) { return s.b * s.s_k * (s.s_q * s.h_q + 8 * s.h_kv) / 1000; }

// b, s_q, h_q, h_kv, s_k of the large cases kept past kMaxCostMs (each 1-3 s), varlen and causal.
constexpr int64_t kLargeCases[][5] = {
    {64, 1, 1, 1, 4096},   // many long sequences: many splits per sequence and across sequences
    {1, 4, 128, 1, 4096},  // DeepSeek heads, MTP rows, one long sequence over every part
    {2, 2, 128, 8, 4096},  // the most KV heads
    {64, 2, 128, 2, 140},  // a big batch of many heads over short sequences
};

std::vector<ProblemSpec> cases() {
  std::vector<ProblemSpec> specs = design_grid([](const ProblemSpec& s) { return cost_ms(s) <= kMaxCostMs; });
  uint64_t seed = 10'000;
  for (const auto& c : kLargeCases) {
    specs.push_back(ProblemSpec{.b = c[0],
                                .s_q = c[1],
                                .h_q = c[2],
                                .h_kv = c[3],
                                .s_k = c[4],
                                .varlen = true,
                                .causal = true,
                                .seed = seed++});
  }
  return specs;
}

class Grid : public ::testing::TestWithParam<ProblemSpec> {};

TEST_P(Grid, MatchesReference) {
  const Problem problem = make_problem(GetParam());
  const Output output = host_decode(problem);
  EXPECT_TRUE(matches(reference_decode(problem), output.out_view(), output.lse_view()));
}

INSTANTIATE_TEST_SUITE_P(Cpu, Grid, ::testing::ValuesIn(cases()),
                         [](const auto& param_info) { return spec_name(param_info.param); });

}  // namespace
}  // namespace openmla::test
