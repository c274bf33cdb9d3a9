// The GPU decode against the float64 reference over the test grid (tests/support/grid.h).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "check.h"
#include "device.h"
#include "grid.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

// Host-side data generation bounds the grid: cases with more than kLargeCacheRows cache rows
// (b * s_k * h_kv) keep h_kv <= 2 and h_q in {1, 64, 128}.
constexpr int64_t kLargeCacheRows = 64 * 1024;

bool keep(const ProblemSpec& s) {
  const bool large = s.b * s.s_k * s.h_kv > kLargeCacheRows;
  return !large || (s.h_kv <= 2 && (s.h_q == 1 || s.h_q == 64 || s.h_q == 128));
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

INSTANTIATE_TEST_SUITE_P(Grid, GpuGrid, ::testing::ValuesIn(design_grid(keep)),
                         [](const auto& param_info) { return spec_name(param_info.param); });

}  // namespace
}  // namespace openmla::test
