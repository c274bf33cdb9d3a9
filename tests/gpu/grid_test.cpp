// The GPU decode against the float64 reference over DESIGN.md §5's grid:
// b ∈ {1,2,6,64}, s_q ∈ {1,2,4}, s_k ∈ {20,140,4096}, h_q ∈ {1,3,9,63,64,126,128}, h_kv ∈ {1,2,3,8}
// (h_q % h_kv == 0), fixed and variable lengths, causal and not. Every combination runs; only the
// problem size bounds the host-side data generation: cases with more than kMaxCacheRows cache rows
// (b * s_k * h_kv) keep h_kv <= 2 and h_q in {1, 64, 128}.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "check.h"
#include "device.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

constexpr int64_t kMaxCacheRows = 64 * 4096;

std::vector<ProblemSpec> grid() {
  std::vector<ProblemSpec> specs;
  uint64_t seed = 1;
  for (int64_t b : {1, 2, 6, 64}) {
    for (int64_t s_q : {1, 2, 4}) {
      for (int64_t s_k : {20, 140, 4096}) {
        for (int64_t h_q : {1, 3, 9, 63, 64, 126, 128}) {
          for (int64_t h_kv : {1, 2, 3, 8}) {
            if (h_q % h_kv != 0) {
              continue;
            }
            const bool large = b * s_k * h_kv > kMaxCacheRows / 4;
            if (large && (h_kv > 2 || (h_q != 1 && h_q != 64 && h_q != 128))) {
              continue;
            }
            for (bool varlen : {false, true}) {
              for (bool causal : {false, true}) {
                specs.push_back(ProblemSpec{.b = b, .s_q = s_q, .h_q = h_q, .h_kv = h_kv, .s_k = s_k,
                                            .varlen = varlen, .causal = causal, .seed = seed++});
              }
            }
          }
        }
      }
    }
  }
  return specs;
}

std::string name(const ::testing::TestParamInfo<ProblemSpec>& info) {
  const ProblemSpec& s = info.param;
  return "b" + std::to_string(s.b) + "_sq" + std::to_string(s.s_q) + "_sk" + std::to_string(s.s_k) + "_hq" +
         std::to_string(s.h_q) + "_hkv" + std::to_string(s.h_kv) + (s.varlen ? "_varlen" : "_fixed") +
         (s.causal ? "_causal" : "");
}

class GpuGrid : public ::testing::TestWithParam<ProblemSpec> {};

TEST_P(GpuGrid, MatchesFloat64Reference) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem(GetParam());
  const DeviceProblem device = upload(problem);
  const GpuRun run = gpu_decode(problem, device);
  EXPECT_EQ(run.status.code, StatusCode::ok);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
}

INSTANTIATE_TEST_SUITE_P(Grid, GpuGrid, ::testing::ValuesIn(grid()), name);

}  // namespace
}  // namespace openmla::test
